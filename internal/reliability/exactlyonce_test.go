package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
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

// defaultAckWait is SHIP_ACK_WAIT's default, which these tests run with:
// the takeover they measure is the one a deployment gets.
const defaultAckWait = 3 * time.Second

// TestExactlyOnceReplayDuringFlight (fault 9): three shipper replicas
// (child processes) and at least 1,000 orders, 5 % of them answering their
// first delivery/send after 3 s. While orders are in flight an operator
// runs `fulfillctl replay --stage shipper --since 1h` and `dlq redrive
// --all`, and one shipper is SIGKILLed. For every order: one successful
// delivery/send if it ships, never two shipped events, no terminal event
// without a new input before it; platform-wide: zero overlapping calls.
// After the kill, the longest stretch without a successful send while
// orders remain stays under 5 s with the default SHIP_ACK_WAIT.
func TestExactlyOnceReplayDuringFlight(t *testing.T) {
	runExactlyOnce(t, exactlyOnceCase{
		n: size(1000, 300), seed: 91, row: 9, fault: "replay and `dlq redrive` during in-flight work, 3 shippers, a SIGKILL",
	})
}

// TestExactlyOnceSlowBeyondAckWait (fault 10): the same, with every
// delivery/send slower than the ack wait (4 s against 3 s) for a minute
// (15 s in the fast subset) from the start, the replay, re-drive and kill
// falling inside that minute. Held messages must not be redelivered to
// another replica while their holder waits on the platform.
func TestExactlyOnceSlowBeyondAckWait(t *testing.T) {
	runExactlyOnce(t, exactlyOnceCase{
		n: size(1000, 300), seed: 92, row: 10, fault: "delivery/send slower than the ack wait, replay and re-drive meanwhile, 3 shippers, a SIGKILL",
		slow: size(60, 15), slowBy: defaultAckWait + time.Second,
	})
}

type exactlyOnceCase struct {
	n     int
	seed  int64
	row   int
	fault string
	// slow > 0: every delivery/send takes slowBy for the first slow
	// seconds of the run.
	slow   int
	slowBy time.Duration
}

func runExactlyOnce(t *testing.T, c exactlyOnceCase) {
	start := time.Now()
	st := faulttest.StartStack(t, stack.Options{Sandbox: scenario(c.seed, c.n), Env: fastEnv(nil)})
	sb := st.Sandbox
	want := sb.Scenario()
	// A platform slower than ingest and the enricher (0.3–1.5 s a call)
	// keeps a backlog of orders in flight at the shippers while the
	// operator acts; 5 % of first calls take 3 s more.
	rng := rand.New(rand.NewPCG(uint64(c.seed), 5))
	slowFirst := 0
	for _, o := range want {
		sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, OrderID: o.OrderID,
			Latency: 300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond)))})
		if rng.IntN(100) < 5 {
			sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, OrderID: o.OrderID, Latency: 3 * time.Second, Times: 1})
			slowFirst++
		}
	}
	var slowID int
	if c.slow > 0 {
		slowID = sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, Latency: c.slowBy})
	}
	t.Logf("seed %d: %d orders, %d answer their first delivery/send after 3 s; every call slowed by %s for %d s", c.seed, c.n, slowFirst, c.slowBy, c.slow)

	p, shippers, allLogs := startWithShipperProcesses(t, st, 3)
	_, js := faulttest.Connect(t, st.NATSURL)

	// In flight: a tenth shipped.
	mark := c.n / 10
	waitSends(t, sb, mark, 3*time.Minute, allLogs)
	replayed := redrive(t, st, "replay", "--stage", "shipper", "--since", "1h", "--json")
	redriven := redrive(t, st, "dlq", "redrive", "--all", "--json")
	killAt := time.Now()
	shippers[0].Kill()
	t.Logf("after %d successful sends: replay re-drove %d orders, dlq redrive %d; shipper 1 killed", sb.Stats().SuccessfulSends, len(replayed), len(redriven))
	if len(replayed) < c.n/5 {
		t.Fatalf("the replay re-drove %d orders: too few in flight to test anything", len(replayed))
	}
	if c.slow > 0 {
		if left := time.Until(start.Add(time.Duration(c.slow) * time.Second)); left > 0 {
			<-time.After(left) // the scenario's slow minute, not a synchronisation
		}
		sb.RemoveFault(slowID)
	}

	tl := faulttest.WaitTerminal(t, js, want, 5*time.Minute, allLogs)
	waitDrained(t, js, 3*time.Minute, allLogs)
	tl = faulttest.WaitStream(t, js, time.Minute, allLogs, "a reading", func(*tally.Tally) bool { return true })

	ids := faulttest.OrderKeys(want)
	chains := faulttest.CheckChains(t, js, ids)
	var problems []string
	for _, o := range want {
		s := tl.Orders[faulttest.Key(o)]
		sends := sb.Sends(o.OrderID)
		switch {
		case s == nil || s.Latest == "":
			problems = append(problems, o.OrderID+": no terminal event")
		case string(s.Latest) != string(o.Expect):
			problems = append(problems, fmt.Sprintf("%s (%s): ended %s, want %s", o.OrderID, o.Fault, s.Latest, o.Expect))
		case o.Expect == sandbox.OutcomeShipped && (sends != 1 || s.Shipped != 1):
			problems = append(problems, fmt.Sprintf("%s: %d successful sends, %d shipped events; want 1 and 1", o.OrderID, sends, s.Shipped))
		case o.Expect == sandbox.OutcomeFailed && (sends != 0 || s.Shipped != 0):
			problems = append(problems, fmt.Sprintf("%s: failed with %d successful sends, %d shipped events", o.OrderID, sends, s.Shipped))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Errorf("%d orders broke a promise:\n%s", len(problems), strings.Join(problems[:min(len(problems), 20)], "\n"))
	}
	faulttest.CheckPlatformRules(t, sb)
	stats := sb.Stats()
	gap, lastSend := longestGap(sb.Calls(), killAt)
	takeover, cut := takeoverAfter(sb.Calls(), killAt)
	t.Logf("after the kill: longest stretch without a successful send %s (until the last at +%s); %d calls cut by the kill, taken over within %s; %d already-shipped answers (109001)",
		gap.Round(time.Millisecond), lastSend.Sub(killAt).Round(time.Millisecond), cut, takeover.Round(time.Millisecond), stats.DuplicateSends)
	if c.slow == 0 && gap >= 5*time.Second {
		t.Errorf("after the SIGKILL, %s passed without a successful send while orders remained (want < 5 s)", gap)
	}

	for i, ch := range shippers[1:] {
		if err := ch.Term(); err != nil {
			t.Errorf("shipper %d did not stop cleanly: %v", i+2, err)
		}
	}
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
	noPanics(t, "a service", allLogs.String())
	res := faulttest.Count(sb, tl, want)
	slowNote := ""
	if c.slow > 0 {
		slowNote = fmt.Sprintf("every delivery/send took %s for the first %d s (ack wait %s); ", c.slowBy, c.slow, defaultAckWait)
	}
	record(t, c.row, c.fault, res, start, fmt.Sprintf(
		"%s%d orders' first call answered after 3 s; replay re-drove %d orders and dlq redrive %d while in flight, %d copies in all; %d orders decided again after a re-drive of a failure, none twice by one attempt; overlapping calls %d (sandbox); at most %d shipped event per order; 109001 answers %d; after the SIGKILL the longest stretch without a successful send was %s and the killed shipper's %d cut calls were taken over within %s",
		slowNote, slowFirst, len(replayed), len(redriven), chains.Copies, chains.Redecided, stats.ConcurrentSends, chains.MaxShipped, stats.DuplicateSends,
		gap.Round(100*time.Millisecond), cut, takeover.Round(100*time.Millisecond)))
}

// TestShipperCrashRecovery (fault 11): two shipper replicas, every
// delivery/send taking 0.5–1.5 s so each holds a full set of calls; one is
// SIGKILLed while calls are under way. With the default SHIP_ACK_WAIT (3 s) and
// SHIP_HEARTBEAT (750 ms) the calls it had under way are taken over by the
// other within 5 s of the kill.
func TestShipperCrashRecovery(t *testing.T) {
	start := time.Now()
	const seed = 93
	n := size(600, 150)
	st := faulttest.StartStack(t, stack.Options{Sandbox: sandbox.Config{Seed: seed, Orders: n, MaxOrdersPerWindow: 300},
		Env: fastEnv(nil)})
	sb := st.Sandbox
	rng := rngFor(t, seed)
	for _, o := range sb.Scenario() {
		sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, OrderID: o.OrderID,
			Latency: 500*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second)))})
	}
	p, shippers, allLogs := startWithShipperProcesses(t, st, 2)
	_, js := faulttest.Connect(t, st.NATSURL)

	waitSends(t, sb, n/4, 3*time.Minute, allLogs)
	// Kill while both shippers have calls under way (16 each at most).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sb.WaitUntil(ctx, func() bool { return sb.InFlightSends() >= 24 }); err != nil {
		t.Fatalf("the shippers never had 24 calls under way: %v", err)
	}
	killAt := time.Now()
	shippers[0].Kill()
	want := sb.Scenario()
	tl := faulttest.WaitTerminal(t, js, want, 5*time.Minute, allLogs)
	res := faulttest.CheckOutcomes(t, st, tl, want, faulttest.RepeatedCalls())
	takeover, cut := takeoverAfter(sb.Calls(), killAt)
	gap, _ := longestGap(sb.Calls(), killAt)
	t.Logf("%d calls cut by the kill, the last taken over %s after it; longest stretch without a successful send %s", cut, takeover, gap)
	if cut == 0 {
		t.Fatal("the kill cut no call: nothing was taken over")
	}
	if takeover >= 5*time.Second {
		t.Errorf("the killed shipper's orders were taken over %s after the kill (want < 5 s)", takeover)
	}
	if err := shippers[1].Term(); err != nil {
		t.Errorf("shipper 2 did not stop cleanly: %v", err)
	}
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
	record(t, 11, "crash recovery time: a shipper SIGKILLed with its calls under way", res, start, fmt.Sprintf(
		"every delivery/send took 0.5–1.5 s, 2 shippers × SHIP_CONCURRENCY 16, killed with 24+ calls under way, SHIP_ACK_WAIT %s; the kill cut %d calls, all taken over by the other shipper within %s of the kill (bound 5 s); longest stretch without a successful send %s",
		defaultAckWait, cut, takeover.Round(100*time.Millisecond), gap.Round(100*time.Millisecond)))
}

// startWithShipperProcesses runs ingest and the enricher in process and n
// shipper replicas as child processes (so one can be SIGKILLed), and
// returns them with a reader of all their logs.
func startWithShipperProcesses(t *testing.T, st *stack.Stack, n int) (*pipeline, []*faulttest.Child, fmt.Stringer) {
	t.Helper()
	logs := &faulttest.SyncBuffer{}
	p := startPipeline(t, st, logs, 0, nil)
	logDir := t.TempDir()
	shippers := make([]*faulttest.Child, 0, n)
	for range n {
		ch, _ := startChildReady(t, st, "shipper", logDir, nil)
		shippers = append(shippers, ch)
	}
	return p, shippers, multiLogs{logs, childLogs{&shippers}}
}

// longestGap is the longest stretch, from since until the last successful
// delivery/send, without a successful one (by arrival time), and the time of
// that last one.
func longestGap(calls []sandbox.Call, since time.Time) (time.Duration, time.Time) {
	var ok []time.Time
	for _, c := range calls {
		if c.Endpoint == sandbox.EndpointDeliverySend && c.Code == 0 && !c.At.Before(since) {
			ok = append(ok, c.At)
		}
	}
	slices.SortFunc(ok, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	prev := since
	for _, at := range ok {
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	return gap, prev
}

// takeoverAfter finds the delivery/send calls a kill cut (arrived before it,
// their client gone) and returns the longest time from the kill to the next
// call for the same order, and how many were cut.
func takeoverAfter(calls []sandbox.Call, killAt time.Time) (time.Duration, int) {
	cut := map[string]bool{}
	for _, c := range calls {
		if c.Endpoint == sandbox.EndpointDeliverySend && c.Code == sandbox.CodeClientGone && c.At.Before(killAt) && len(c.OrderIDs) == 1 {
			cut[c.OrderIDs[0]] = true
		}
	}
	next := map[string]time.Time{}
	for _, c := range calls {
		if c.Endpoint != sandbox.EndpointDeliverySend || len(c.OrderIDs) != 1 || !cut[c.OrderIDs[0]] || c.At.Before(killAt) {
			continue
		}
		if at, ok := next[c.OrderIDs[0]]; !ok || c.At.Before(at) {
			next[c.OrderIDs[0]] = c.At
		}
	}
	var worst time.Duration
	for id := range cut {
		at, ok := next[id]
		if !ok {
			return time.Duration(1<<63 - 1), len(cut) // never taken over
		}
		worst = max(worst, at.Sub(killAt))
	}
	return worst, len(cut)
}

// waitDrained waits until the enricher and shipper consumers hold nothing:
// every copy a replay or re-drive made has been settled too.
func waitDrained(t testing.TB, js jetstream.JetStream, deadline time.Duration, logs fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		drained := true
		for _, name := range []string{events.ConsumerEnricher, events.ConsumerShipper} {
			c, err := js.Consumer(ctx, events.StreamName, name)
			if err != nil {
				drained = false
				break
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				drained = false
				break
			}
		}
		if drained {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumers not drained within %s\n%s", deadline, faulttest.Tail(logs.String(), 30))
		case <-tick.C:
		}
	}
}
