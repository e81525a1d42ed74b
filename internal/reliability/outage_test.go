package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/ctl"
	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestPlatformOutageThenRedrive (fault 3): at a random moment of a run
// delivery/send starts answering -1 (system busy) to every call, for longer
// than SHIP_MAX_ELAPSED, so every order not yet shipped ends failed with a
// reason naming SHIP_MAX_ELAPSED. The platform recovers; fulfillctl dlq
// redrive --all sends every failed order through its stage again; each
// order must then end as the scenario says, shipped exactly once, and a
// replay of the shipper's input afterwards must not call the platform.
func TestPlatformOutageThenRedrive(t *testing.T) {
	start := time.Now()
	n := size(1000, 300)
	st := faulttest.StartStack(t, stack.Options{Sandbox: scenario(31, n), Env: fastEnv(map[string]string{
		"SHIP_CONCURRENCY": "64",
		"SHIP_MAX_ELAPSED": "500ms",
		"SHIP_BACKOFF_MAX": "100ms",
	})})
	sb := st.Sandbox
	logs := &faulttest.SyncBuffer{}
	startPipeline(t, st, logs, 2, nil)
	_, js := faulttest.Connect(t, st.NATSURL)
	want := sb.Scenario()

	rng := rngFor(t, 31)
	at := n/10 + rng.IntN(n/6)
	waitSends(t, sb, at, 2*time.Minute, logs)
	outage := sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, Code: -1, Times: -1})
	outageAt := time.Now()
	shippedBefore := sb.Stats().SuccessfulSends
	shippable := 0
	for _, o := range want {
		if o.Expect == sandbox.OutcomeShipped {
			shippable++
		}
	}

	tl := faulttest.WaitTerminal(t, js, want, 3*time.Minute, logs)
	outageLasted := time.Since(outageAt)
	timedOut := 0
	for _, o := range want {
		s := tl.Orders[faulttest.Key(o)]
		if o.Expect != sandbox.OutcomeShipped || s.Latest == events.StageShipped {
			continue
		}
		f := s.LastFailed
		// The last answer is the outage's -1, or a transient order's own
		// code when SHIP_MAX_ELAPSED ran out before its own faults did.
		if s.Latest != events.StageFailed || f == nil || f.Stage != "shipper" || (f.Errcode != -1 && f.Errcode != o.Code) || !strings.Contains(f.Reason, "SHIP_MAX_ELAPSED") {
			t.Errorf("order %s (%s) during the outage: latest %q, failure %+v; want failed by the shipper with errcode -1 and a reason naming SHIP_MAX_ELAPSED", o.OrderID, o.Fault, s.Latest, f)
			continue
		}
		timedOut++
	}
	// Every shippable order not shipped when the outage began runs into
	// it, but those whose successful call was already under way: at most
	// the shippers' calls in flight (2 × SHIP_CONCURRENCY).
	if notShipped := shippable - shippedBefore; timedOut == 0 || timedOut < notShipped-2*64 {
		t.Fatalf("only %d orders ran into the outage; %d were not shipped when it began", timedOut, notShipped)
	}
	failedBefore := tl.Terminal(events.StageFailed)
	terminalsBefore := map[string]int{}
	for _, o := range tl.Orders {
		terminalsBefore[o.OrderID] = len(o.Terminals) // the default shop's: keyed by order id
	}

	// Recovery, then the operator's re-drive.
	sb.RemoveFault(outage)
	redriven := redrive(t, st, "dlq", "redrive", "--all", "--json")
	if len(redriven) != failedBefore {
		t.Fatalf("dlq redrive --all re-drove %d orders, want every one of the %d failed", len(redriven), failedBefore)
	}
	tl = faulttest.WaitStream(t, js, 3*time.Minute, logs, "every re-driven order to reach a new terminal event", func(tl *tally.Tally) bool {
		for id := range redriven {
			if o := tl.Order(events.DefaultShop, id); o == nil || len(o.Terminals) <= terminalsBefore[id] {
				return false
			}
		}
		return true
	})
	var problems []string
	for _, o := range want {
		s := tl.Orders[faulttest.Key(o)]
		wantTerminals := 1
		if redriven[o.OrderID] {
			wantTerminals = 2
		}
		if len(s.Terminals) != wantTerminals || string(s.Latest) != string(o.Expect) {
			problems = append(problems, fmt.Sprintf("%s (%s): %d terminal events, latest %q; want %d, %s", o.OrderID, o.Fault, len(s.Terminals), s.Latest, wantTerminals, o.Expect))
		}
		if s.Latest == events.StageShipped && s.Terminals[len(s.Terminals)-1].CorrelationID != s.Terminals[0].CorrelationID {
			problems = append(problems, fmt.Sprintf("%s: the re-driven chain lost its correlation id", o.OrderID))
		}
	}
	if len(problems) > 0 {
		t.Errorf("%d orders ended wrongly after the re-drive, e.g.:\n%s", len(problems), strings.Join(problems[:min(len(problems), 10)], "\n"))
	}
	faulttest.CheckPlatformRules(t, sb)

	// A replay of the last hour through the shipper ships nothing again: it
	// skips every shipped order and re-drives only those still failed.
	sends, dupSends := sb.Stats().SuccessfulSends, sb.Stats().DuplicateSends
	replayed := redrive(t, st, "replay", "--stage", "shipper", "--since", "1h", "--json")
	expect := map[string]sandbox.Outcome{}
	for _, o := range want {
		expect[o.OrderID] = o.Expect
	}
	for id := range replayed {
		if expect[id] != sandbox.OutcomeFailed {
			t.Errorf("replay re-drove order %s, which is shipped", id)
		}
		terminalsBefore[id] = len(tl.Order(events.DefaultShop, id).Terminals)
	}
	faulttest.WaitStream(t, js, 3*time.Minute, logs, "every replayed order to reach a new terminal event", func(tl *tally.Tally) bool {
		for id := range replayed {
			if o := tl.Order(events.DefaultShop, id); o == nil || len(o.Terminals) <= terminalsBefore[id] {
				return false
			}
		}
		return true
	})
	if s := sb.Stats(); s.SuccessfulSends != sends || s.DuplicateSends != dupSends {
		t.Errorf("replay caused %d more successful sends and %d more sends of shipped orders", s.SuccessfulSends-sends, s.DuplicateSends-dupSends)
	}
	noPanics(t, "a service", logs.String())
	res := faulttest.Count(sb, tl, want)
	record(t, 3, "platform outage longer than SHIP_MAX_ELAPSED, then `dlq redrive --all`", res, start, fmt.Sprintf(
		"outage from send %d for %.1f s (SHIP_MAX_ELAPSED 500ms): %d orders failed naming SHIP_MAX_ELAPSED; %d failed orders re-driven, each ended as the scenario says; a replay afterwards re-drove only the %d still failed, 0 new sends",
		shippedBefore, outageLasted.Seconds(), timedOut, len(redriven), len(replayed)))
}

// fulfillctl runs one fulfillctl command against the stack and returns its
// standard output.
func fulfillctl(t testing.TB, st *stack.Stack, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := ctl.Env{Getenv: st.Getenv(nil), Stdout: &out, Stderr: &errOut}
	if err := ctl.Run(ctx, append([]string{"fulfillctl"}, args...), env); err != nil {
		t.Fatalf("fulfillctl %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// redrive runs a fulfillctl re-drive command (dlq redrive or replay) with
// --json and returns the orders it re-drove.
func redrive(t testing.TB, st *stack.Stack, args ...string) map[string]bool {
	t.Helper()
	var results []struct {
		OrderID string `json:"order_id"`
		Action  string `json:"action"`
	}
	out := fulfillctl(t, st, args...)
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("fulfillctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	driven := map[string]bool{}
	for _, r := range results {
		if r.Action == "redrive" {
			driven[r.OrderID] = true
		}
	}
	return driven
}
