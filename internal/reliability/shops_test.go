package reliability

import (
	"context"
	"fmt"
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

// shopsRun is one run of three shops: how long each took, from the start
// of the services to its last terminal event.
type shopsRun struct {
	took map[string]time.Duration
	res  faulttest.Result
}

// TestShopsFairDuringOneShopsOutage (issue 16): three shops of 1,000 orders
// each on one deployment (300 below full size). In one run shop-2's
// platform answers delivery/send with -1, then with 40001, for two minutes
// (20 s below full size). Every order of every shop ends with exactly one terminal
// event and one successful send; shops 1 and 3 finish within 20 % of their
// time in a run without the outage; shop-2 is shown backing off while it
// lasts, and all its orders ship once it recovers.
func TestShopsFairDuringOneShopsOutage(t *testing.T) {
	start := time.Now()
	perShop := size(1000, 300)
	outage := 2 * time.Minute
	if !full() {
		outage = 20 * time.Second
	}
	// The bound, 20 %, holds at full size. Below it the runs
	// last about 6 s on 2 cores, and the outage's own work (parking the
	// failing shop's orders, the breaker's probes) costs the others up to
	// a second that a 2-minute run spreads thin: 50 % there.
	bound := 20
	if !full() {
		bound = 50
	}
	base := runShops(t, perShop, 0)
	out := runShops(t, perShop, outage)
	var times []string
	for _, shop := range []string{stack.ShopID(0), stack.ShopID(2)} {
		b, o := base.took[shop], out.took[shop]
		t.Logf("%s: %v without the outage, %v with shop-2's outage", shop, b.Round(time.Millisecond), o.Round(time.Millisecond))
		times = append(times, fmt.Sprintf("%s %.1f s (%.1f s without it)", shop, o.Seconds(), b.Seconds()))
		if o > b*time.Duration(100+bound)/100 {
			t.Errorf("%s took %v during shop-2's outage, more than %d%% over its %v without it", shop, o, bound, b)
		}
	}
	record(t, 15, "one shop's platform down (-1, then 40001) among three shops", out.res, start, fmt.Sprintf(
		"3 shops × %d orders; shop-2's delivery/send answered -1, then 40001, for %s; shop-2 shown backing_off, token_refused, then ok; other shops finished: %s; every order shipped exactly once after the recovery",
		perShop, outage, strings.Join(times, ", ")))
}

// runShops runs three shops of perShop orders each, shop-2's delivery/send
// failing for outage (0: never), and checks that every order ends shipped
// exactly once.
func runShops(t *testing.T, perShop int, outage time.Duration) shopsRun {
	t.Helper()
	// The platform answers in 100 ms and each shop may have 8 calls under
	// way (of the shipper's 32): a shop's time is set by its own slots,
	// not by how busy the machine is.
	st := faulttest.StartStack(t, stack.Options{Shops: 3,
		Sandbox: sandbox.Config{Seed: 16, Orders: perShop, Latency: 100 * time.Millisecond, MaxOrdersPerWindow: 5000},
		Env: fastEnv(map[string]string{
			"SHIP_CONCURRENCY":      "32",
			"SHIP_SHOP_CONCURRENCY": "8",
			"SHIP_BACKOFF_MAX":      "2s",
		})})
	sb := st.Sandbox
	b := sb.Apps()[1].AppID
	var faults []int
	if outage > 0 {
		faults = append(faults, sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, AppID: b, Code: -1, Times: -1}))
	}
	logs := &faulttest.SyncBuffer{}
	start := time.Now()
	p := startPipeline(t, st, logs, 1, nil)
	_, js := faulttest.Connect(t, st.NATSURL)
	want := sb.Scenario()
	if len(want) != 3*perShop {
		t.Fatalf("%d orders, want %d", len(want), 3*perShop)
	}
	keysOf := func(shop string) []string {
		var keys []string
		for _, o := range want {
			if st.ShopOf(o.AppID) == shop {
				keys = append(keys, st.Key(o))
			}
		}
		return keys
	}
	others := append(keysOf(stack.ShopID(0)), keysOf(stack.ShopID(2))...)

	if outage > 0 {
		// Shops 1 and 3 finish during shop-2's outage, which the
		// shippers report; then its platform refuses the token instead.
		faulttest.WaitStream(t, js, 3*time.Minute, logs, "shops 1 and 3 to finish during shop-2's outage",
			func(tl *tally.Tally) bool { return tl.AllTerminal(others) })
		waitShopState(t, js, stack.ShopID(1), "backing_off", logs)
		if tl := readTally(t, js); tl.Terminal(events.StageShipped) > 2*perShop {
			t.Errorf("%d orders shipped while shop-2's delivery/send answers -1; want only shops 1 and 3's %d", tl.Terminal(events.StageShipped), 2*perShop)
		}
		waitFor(t, start.Add(outage/2))
		sb.RemoveFault(faults[0])
		faults[0] = sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, AppID: b, Code: 40001, Times: -1})
		waitShopState(t, js, stack.ShopID(1), "token_refused", logs)
		waitFor(t, start.Add(outage))
		sb.RemoveFault(faults[0])
	}
	tl := faulttest.WaitStream(t, js, 3*time.Minute+outage, logs, "every order of every shop to be shipped",
		func(tl *tally.Tally) bool { return tl.AllTerminal(st.Keys(want)) })
	_, text := httpGet(t, "http://"+p.admins["shipper"][0]+"/metrics")
	t.Logf("shipper parked %v orders of a shop with no room, %v of a shop backing off", metric(text, "fulfill_parked_total", `reason="shop_busy"`), metric(text, "fulfill_parked_total", `reason="shop_backing_off"`))
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}

	var problems []string
	for _, o := range want {
		s := tl.Orders[st.Key(o)]
		if s == nil || s.Latest != events.StageShipped || len(s.Terminals) != 1 || sb.Sends(o.OrderID) != 1 {
			problems = append(problems, fmt.Sprintf("%s: %+v, %d successful sends", st.Key(o), s, sb.Sends(o.OrderID)))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%d orders did not end shipped exactly once, e.g.:\n%s", len(problems), strings.Join(problems[:min(len(problems), 10)], "\n"))
	}
	if stats := sb.Stats(); stats.DuplicateSends != 0 || stats.ConcurrentSends != 0 {
		t.Errorf("sandbox saw %d second shipments and %d concurrent sends", stats.DuplicateSends, stats.ConcurrentSends)
	}
	if outage > 0 {
		waitShopState(t, js, stack.ShopID(1), "ok", logs)
	}
	res := outcomes(st, tl, want)
	return shopsRun{took: finishTimes(t, js, start), res: res}
}

// waitFor waits until the moment at.
func waitFor(t *testing.T, at time.Time) {
	t.Helper()
	select {
	case <-t.Context().Done():
	case <-time.After(time.Until(at)):
	}
}

func readTally(t *testing.T, js jetstream.JetStream) *tally.Tally {
	t.Helper()
	tl, err := tally.Read(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

// waitShopState waits until fulfillctl status would show shop in state.
func waitShopState(t *testing.T, js jetstream.JetStream, shop, state string, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rep, err := tally.Status(t.Context(), js, shop)
		if err == nil {
			for _, s := range rep.Shops {
				if s.Shop == shop && s.State == state {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("shop %s never showed %s in status (last: %+v, %v)\n%s", shop, state, rep, err, faulttest.Tail(logs.String(), 30))
		}
		select {
		case <-t.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// finishTimes is, for each shop, the time from start to its last terminal
// event as the stream stored it.
func finishTimes(t *testing.T, js jetstream.JetStream, start time.Time) map[string]time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	filters := []string{events.FilterSubject(events.StageShipped), events.FilterSubject(events.StageFailed)}
	took := map[string]time.Duration{}
	err = tally.Scan(ctx, s, filters, time.Time{}, time.Time{}, func(m jetstream.Msg, md *jetstream.MsgMetadata) {
		_, _, shop, _, err := events.ParseSubject(m.Subject())
		if err == nil {
			took[shop] = max(took[shop], md.Timestamp.Sub(start))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return took
}
