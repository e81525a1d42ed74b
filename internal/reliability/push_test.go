package reliability

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// pushEnv is a run whose orders come in by push alone: polling every 10
// minutes with no look back, so only the pushes bring orders in.
func pushEnv(over map[string]string) map[string]string {
	env := map[string]string{"INGEST_POLL_INTERVAL": "10m", "INGEST_LOOKBACK": "1s", "SHIP_CONCURRENCY": "32"}
	for k, v := range over {
		env[k] = v
	}
	return fastEnv(env)
}

// TestPushShipsWithinASecond (issue 17): 1,000 paid orders pushed to ingest
// (20 % of pushes duplicated, 10 % of orders with an event before and
// again after their pay push, 50 orders cancelled right after payment, 10
// forged pushes), polling every 10 minutes: every order is received once,
// by push; p99 from the push to the delivery/send call is at most a
// second; no cancelled order is sent; every forged push is refused and
// nothing of it stored.
func TestPushShipsWithinASecond(t *testing.T) {
	start := time.Now()
	const n, cancels, forged = 1000, 50, 10
	st := faulttest.StartStack(t, stack.Options{Push: true, Env: pushEnv(nil), Sandbox: sandbox.Config{
		Seed: 17, Orders: n, Faults: sandbox.NoFaults(),
		PushRate: 50, PushTimeScale: 0.001, PushDuplicates: 0.2, PushReorder: 0.1,
		CancelBeforeShipping: cancels, ForgedPushes: forged,
	}})
	sb := st.Sandbox
	logs := &faulttest.SyncBuffer{}
	p := startPipeline(t, st, logs, 1, nil)
	_, js := faulttest.Connect(t, st.NATSURL)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	if err := sb.StartPushes(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.StopPushes()
	if err := sb.PushesSettled(ctx); err != nil {
		t.Fatalf("pushes not settled: %v\n%s", err, faulttest.Tail(logs.String(), 30))
	}
	want := sb.Scenario()
	tl := faulttest.WaitTerminal(t, js, want, 3*time.Minute, logs)
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}

	stats := sb.Stats().Pushes
	t.Logf("pushes: %+v", stats)
	if stats.ForgedRefused != forged || stats.ForgedAccepted != 0 || stats.GivenUp != 0 {
		t.Errorf("forged pushes refused %d, accepted %d (want %d and 0); valid pushes given up %d (want 0)", stats.ForgedRefused, stats.ForgedAccepted, forged, stats.GivenUp)
	}
	sendAt := map[string]time.Time{}
	for _, c := range sb.Calls() {
		if c.Endpoint == sandbox.EndpointDeliverySend {
			for _, id := range c.OrderIDs {
				if _, seen := sendAt[id]; !seen {
					sendAt[id] = c.At
				}
			}
		}
	}
	var lat []time.Duration
	var problems []string
	cancelled, tooLate := 0, 0
	cancelledFirst := 0 // cancelled before ingest fetched them: never received
	for _, o := range want {
		s := tl.Orders[faulttest.Key(o)]
		// The sandbox's buyer cancels once the pay push was answered; the
		// pipeline may have shipped the order by then (tens of
		// milliseconds), and a shipped order can no longer be cancelled:
		// the platform keeps it shipped and sends no cancel push.
		if v, ok := sb.Order(o.OrderID); o.Push.Cancel && ok && v.Status != sandbox.OrderStatusCancelled {
			tooLate++
		} else if o.Push.Cancel {
			cancelled++
			switch {
			case s == nil || s.Shipped != 0 || sb.Sends(o.OrderID) != 0 || !s.LastFailed.Cancelled() || s.Received > 1:
				problems = append(problems, fmt.Sprintf("%s, cancelled after payment: %+v, %d sends; want never sent, failed cancelled, received at most once", o.OrderID, s, sb.Sends(o.OrderID)))
			case s.Received == 0:
				cancelledFirst++
			}
			continue
		}
		if s == nil || s.Received != 1 || s.Via != events.ViaPush {
			problems = append(problems, fmt.Sprintf("%s: %+v; want one received event, by push", o.OrderID, s))
			continue
		}
		if s.Latest != events.StageShipped || sb.Sends(o.OrderID) != 1 {
			problems = append(problems, fmt.Sprintf("%s: latest %q, %d sends; want shipped once", o.OrderID, s.Latest, sb.Sends(o.OrderID)))
			continue
		}
		first, ok := sb.FirstPush(o.OrderID)
		if at, sent := sendAt[o.OrderID]; ok && sent {
			lat = append(lat, at.Sub(first))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%d orders went wrong, e.g.:\n%s", len(problems), strings.Join(problems[:min(len(problems), 10)], "\n"))
	}
	if tooLate != stats.CancelsTooLate || cancelled+tooLate != cancels {
		t.Errorf("%d orders cancelled after payment and %d shipped before their cancel (sandbox: %d too late), want %d in all", cancelled, tooLate, stats.CancelsTooLate, cancels)
	}
	t.Logf("of the %d orders cancelled after payment, %d were cancelled before ingest fetched them (not received), %d after (received, then failed); %d shipped before their buyer could cancel", cancelled, cancelledFirst, cancelled-cancelledFirst, tooLate)
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("push to delivery/send: p50 %v, p99 %v over %d orders", p50.Round(time.Millisecond), p99.Round(time.Millisecond), len(lat))
	if p99 > time.Second {
		t.Errorf("p99 from push to delivery/send %v, want at most 1 s", p99)
	}
	// Each valid push is stored once, however often it was sent: a pay per
	// order, a wait_shipping for the reordered ones, a cancel for the
	// cancelled. Forged ones are not stored at all.
	reordered := 0
	for _, o := range want {
		if o.Push.Reorder {
			reordered++
		}
	}
	// A cancel that came too late (the order shipped first) sends no push.
	if got, wantPushes := tl.Messages[events.StagePush], n+reordered+stats.Cancelled; got != wantPushes {
		t.Errorf("%d pushes stored, want %d (one per distinct push; none forged)", got, wantPushes)
	}
	res := outcomes(st, tl, want)
	record(t, 16, "orders by push: duplicated, reordered and forged pushes, cancels after payment", res, start, fmt.Sprintf(
		"%d orders pushed at 50/s, polling every 10 min: %d pushes sent (duplicates, reordered events and retries among them), each order received at most once, by push; p50 %.0f ms, p99 %.0f ms from push to delivery/send; %d cancelled after payment never sent (%d before ingest fetched them); %d forged pushes refused, none stored",
		n, stats.Sent, float64(p50)/float64(time.Millisecond), float64(p99)/float64(time.Millisecond), cancelled, cancelledFirst, stats.ForgedRefused))
}

// TestPushDuringNATSOutage (issue 17): with NATS down, pushes are answered
// with an error, so WeChat sends them again; once NATS is back the retried
// pushes are stored and their orders shipped: nothing lost.
func TestPushDuringNATSOutage(t *testing.T) {
	start := time.Now()
	const n = 200
	st := faulttest.StartStack(t, stack.Options{Push: true, Env: pushEnv(nil), Sandbox: sandbox.Config{
		Seed: 18, Orders: n, Faults: sandbox.NoFaults(), PushRate: 50, PushTimeScale: 0.01,
	}})
	sb := st.Sandbox
	logs := &faulttest.SyncBuffer{}
	p := startPipeline(t, st, logs, 1, nil)
	_, js := faulttest.Connect(t, st.NATSURL)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	port := natsPort(t, st.NATSURL)
	st.Server.Shutdown()
	st.Server.WaitForShutdown()
	if err := sb.StartPushes(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.StopPushes()
	// Every push of the first seconds finds NATS away and is answered an
	// error; the sandbox retries them on WeChat's (scaled) schedule.
	if err := sb.WaitUntil(ctx, func() bool { return sb.Stats().Pushes.Failed >= n/2 }); err != nil {
		t.Fatalf("pushes were not refused while NATS was down: %+v", sb.Stats().Pushes)
	}
	refused := sb.Stats().Pushes.Failed
	srv, err := embednats.Start(embednats.Options{StoreDir: st.DataDir, Port: port})
	if err != nil {
		t.Fatalf("restart NATS: %v", err)
	}
	st.Server = srv
	if err := sb.PushesSettled(ctx); err != nil {
		t.Fatalf("pushes not settled after NATS came back: %v (%+v)", err, sb.Stats().Pushes)
	}
	want := sb.Scenario()
	tl := faulttest.WaitTerminal(t, js, want, 3*time.Minute, logs)
	res := faulttest.CheckOutcomes(t, st, tl, want, faulttest.RepeatedCalls())
	for _, o := range want {
		if s := tl.Orders[faulttest.Key(o)]; s == nil || s.Received != 1 || s.Via != events.ViaPush {
			t.Errorf("order %s: %+v; want received once, by push", o.OrderID, s)
		}
	}
	if stats := sb.Stats().Pushes; stats.GivenUp != 0 {
		t.Errorf("%d pushes given up", stats.GivenUp)
	}
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
	record(t, 17, "NATS down while the platform pushes orders", res, start, fmt.Sprintf(
		"%d orders pushed while NATS was down: %d pushes answered an error and sent again by the sandbox on WeChat's schedule (scaled); after the restart every order received once by push and ended as expected",
		n, refused))
}
