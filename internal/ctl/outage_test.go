package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// startPipeline runs the whole pipeline in process for a test.
func startPipeline(t *testing.T, sb sandbox.Config, env map[string]string) (*stack.Stack, jetstream.JetStream) {
	t.Helper()
	st := faulttest.StartStack(t, stack.Options{Sandbox: sb, Env: env})
	ctx, cancel := context.WithCancel(context.Background())
	g := st.RunPipeline(ctx, io.Discard, 1)
	t.Cleanup(func() { cancel(); _ = g.Wait() })
	_, js := faulttest.Connect(t, st.NATSURL)
	return st, js
}

// fulfillctl runs one command against the stack and returns its stdout.
func fulfillctl(t *testing.T, st *stack.Stack, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{Getenv: st.Getenv(nil), Stdout: &out, Stderr: &errOut}
	if err := Run(context.Background(), append([]string{"fulfillctl"}, args...), env); err != nil {
		t.Fatalf("fulfillctl %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

func watch(t *testing.T, js jetstream.JetStream, what string, cond func(*tally.Tally) bool) *tally.Tally {
	t.Helper()
	return faulttest.WaitStream(t, js, 2*time.Minute, nil, what, cond)
}

// TestOutageThenRedrive: every delivery/send answers -1 for longer than
// SHIP_MAX_ELAPSED, so every order ends failed; the outage lifts;
// dlq redrive --all ships each exactly once; a replay of the last hour then
// causes no further successful send.
func TestOutageThenRedrive(t *testing.T) {
	const orders = 200
	sbCfg := sandbox.Config{Seed: 3, Orders: orders}
	st, js := startPipeline(t, sbCfg, map[string]string{
		"SHIP_MAX_ELAPSED":     "500ms",
		"SHIP_BACKOFF_INITIAL": "20ms",
		"SHIP_BACKOFF_MAX":     "100ms",
		"INGEST_POLL_INTERVAL": "200ms",
		"ENRICH_MAX_WAIT":      "20ms",
	})
	st.Sandbox.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, Code: -1, Times: -1})
	ids := make([]string, 0, orders)
	for _, o := range st.Sandbox.Scenario() {
		ids = append(ids, o.OrderID)
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = events.OrderKey(events.DefaultShop, id)
	}

	watch(t, js, "every order to fail during the outage", func(tl *tally.Tally) bool {
		return tl.AllTerminal(keys) && tl.Terminal(events.StageFailed) == orders
	})
	var listed []dlqEntry
	if err := json.Unmarshal([]byte(fulfillctl(t, st, "dlq", "list", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != orders {
		t.Fatalf("dlq list has %d orders, want %d", len(listed), orders)
	}
	for _, en := range listed {
		if en.FailedIn != "shipper" || en.Errcode != -1 || en.Attempts < 1 || !strings.Contains(en.Reason, "SHIP_MAX_ELAPSED") {
			t.Fatalf("dlq entry %+v: want stage shipper, errcode -1 and a reason naming SHIP_MAX_ELAPSED", en)
		}
	}
	if got := st.Sandbox.Stats().SuccessfulSends; got != 0 {
		t.Fatalf("%d successful sends during the outage", got)
	}

	st.Sandbox.ClearFaults()
	dry := fulfillctl(t, st, "dlq", "redrive", "--all", "--dry-run")
	if !strings.Contains(dry, "200 would be re-driven") {
		t.Fatalf("dry run:\n%s", dry)
	}
	if tl, _ := tally.Read(context.Background(), js); tl.Terminal(events.StageFailed) != orders {
		t.Fatal("a dry run changed the stream")
	}
	out := fulfillctl(t, st, "dlq", "redrive", "--all")
	if !strings.Contains(out, "200 re-driven") {
		t.Fatalf("redrive:\n%s", out)
	}
	tl := watch(t, js, "every order to be shipped after the re-drive", func(tl *tally.Tally) bool {
		return tl.Terminal(events.StageShipped) == orders
	})
	for _, id := range ids {
		if n := st.Sandbox.Sends(id); n != 1 {
			t.Errorf("order %s: %d successful sends, want 1", id, n)
		}
		o := tl.Order(events.DefaultShop, id)
		if o.Shipped != 1 || o.Failed != 1 {
			t.Errorf("order %s: %d shipped and %d failed events, want 1 and 1", id, o.Shipped, o.Failed)
		}
		last := o.Terminals[len(o.Terminals)-1]
		if last.CorrelationID != o.Terminals[0].CorrelationID {
			t.Errorf("order %s: the re-driven chain lost its correlation id", id)
		}
	}

	sends := st.Sandbox.Stats().SuccessfulSends
	calls := st.Sandbox.Stats().Calls[sandbox.EndpointDeliverySend]
	replay := fulfillctl(t, st, "replay", "--stage", "shipper", "--since", "1h")
	if !strings.Contains(replay, "0 re-driven") {
		t.Fatalf("replay after recovery re-drove orders:\n%s", replay)
	}
	if again := fulfillctl(t, st, "dlq", "redrive", "--all"); !strings.Contains(again, "0 orders") {
		t.Fatalf("a second redrive found failed orders:\n%s", again)
	}
	stats := st.Sandbox.Stats()
	if stats.SuccessfulSends != sends || stats.Calls[sandbox.EndpointDeliverySend] != calls {
		t.Fatalf("replay caused %d more successful sends and %d more calls",
			stats.SuccessfulSends-sends, stats.Calls[sandbox.EndpointDeliverySend]-calls)
	}
}
