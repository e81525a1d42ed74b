package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// TestTwoIngestReplicas runs ingest as the Kubernetes base does: two
// replicas of one Deployment (the same environment, each its own
// ADMIN_ADDR), both polling the same shop. 1,000 orders are waiting when
// the first starts; the second starts while the first is still taking them
// in, so both poll the same windows at once, and 500 more orders arrive in
// bursts during the run, each burst while the previous one is being taken
// in. Once both replicas have stopped, every order of the shop must have
// exactly one order.received event in ORDERS (ingest publishes nothing
// else for these orders: order/get answers every one of them), and
// nothing else may be in the stream.
//
// What makes it safe: the ledger in JetStream KV is shared, and a fact both
// replicas publish before either has recorded it carries the same
// Nats-Msg-Id, which JetStream's duplicate window drops.
func TestTwoIngestReplicas(t *testing.T) {
	seed := int64(seedFor(t, 19))
	rng := rand.New(rand.NewPCG(uint64(seed), 19))
	const initial, added = 1000, 500
	cfg := scenario(seed, initial)
	// A little latency per platform call stretches each poll over a few
	// hundred milliseconds, so the two replicas' polls overlap.
	cfg.Latency = time.Millisecond
	// Bursts land within one second; keep such a second listable (see
	// TestKillServices).
	cfg.MaxOrdersPerWindow = 0
	st := faulttest.StartStack(t, stack.Options{Sandbox: cfg, Env: fastEnv(map[string]string{
		"INGEST_POLL_INTERVAL": "100ms",
	})})
	sb := st.Sandbox
	logs := &faulttest.SyncBuffer{}
	_, js := faulttest.Connect(t, st.NATSURL)

	first := startServices(t, st, logs, nil, "ingest")
	// The second replica starts once the first has published a random
	// share of the waiting orders: its first poll reads the whole
	// lookback again, the same orders the first is still publishing.
	waitMsgs(t, js, uint64(1+rng.IntN(initial/2)), logs)
	second := startServices(t, st, logs, nil, "ingest")
	replicas := append(first.admins["ingest"], second.admins["ingest"]...)

	// The added orders, in bursts of random size: each burst once every
	// order but the last burst's is in the stream.
	for left, inBefore := added, initial; left > 0; {
		n := min(left, 10+rng.IntN(41))
		waitMsgs(t, js, uint64(inBefore), logs)
		inBefore = len(sb.Scenario())
		for range n {
			sb.AddOrder(sandbox.ScenarioOrder{}, 1+rng.IntN(3))
		}
		left -= n
	}
	want := sb.Scenario()
	if len(want) != initial+added {
		t.Fatalf("scenario has %d orders, want %d", len(want), initial+added)
	}
	ids := faulttest.OrderKeys(want)
	faulttest.WaitStream(t, js, 2*time.Minute, logs, fmt.Sprintf("all %d orders to be received", len(ids)),
		func(tl *tally.Tally) bool {
			for _, id := range ids {
				if o := tl.Orders[id]; o == nil || o.Received == 0 {
					return false
				}
			}
			return true
		})

	// Both replicas worked: each listed orders and published some.
	var published []float64
	for _, addr := range replicas {
		_, text := httpGet(t, "http://"+addr+"/metrics")
		lists := metric(text, "fulfill_api_calls_total", `order/list/get"`)
		pub := metric(text, "fulfill_events_in_total", `stage="received"`)
		if lists == 0 || pub == 0 {
			t.Errorf("replica on %s: %v order/list/get calls, %v received events published; want both replicas polling and publishing", addr, lists, pub)
		}
		published = append(published, pub)
	}

	// Stop both (SIGTERM-equivalent): nothing is in flight afterwards, so
	// the reading below is final.
	for _, p := range []*pipeline{second, first} {
		if err := p.stop(); err != nil {
			t.Errorf("ingest did not stop cleanly: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tl, err := tally.Read(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, id := range ids {
		o := tl.Orders[id]
		switch {
		case o == nil:
			problems = append(problems, id+": no event")
		case o.Received != 1 || o.Enriched+o.Shipped+o.Failed != 0:
			problems = append(problems, fmt.Sprintf("%s: %d received, %d enriched, %d shipped, %d failed events; want one received",
				id, o.Received, o.Enriched, o.Shipped, o.Failed))
		}
	}
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	for id := range tl.Orders {
		if !known[id] {
			problems = append(problems, id+": events for an order the shop does not have")
		}
	}
	if tl.DeadLetters+tl.Undecodable != 0 {
		problems = append(problems, fmt.Sprintf("%d dead letters, %d undecodable messages", tl.DeadLetters, tl.Undecodable))
	}
	if got := tl.Messages[events.StageReceived]; got != len(ids) {
		problems = append(problems, fmt.Sprintf("%d received events in the stream, want %d", got, len(ids)))
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
		}
		t.Errorf("%d problems:\n%s\nlogs:\n%s", len(problems), strings.Join(problems, "\n"), faulttest.Tail(logs.String(), 30))
	}
	noPanics(t, "an ingest replica", logs.String())
	t.Logf("%d orders (%d added during the run), one received event each; the replicas published %v received events, %v in all (JetStream dropped the repeats by Nats-Msg-Id); order/list/get calls: %d",
		len(ids), added, published, published[0]+published[1], sb.Stats().Calls[sandbox.EndpointOrderList])
}

// waitMsgs blocks until the ORDERS stream holds at least n messages (or
// fails the test after two minutes with the end of logs).
func waitMsgs(t testing.TB, js jetstream.JetStream, n uint64, logs fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var have uint64
	for {
		if s, err := js.Stream(ctx, events.StreamName); err == nil {
			if info, err := s.Info(ctx); err == nil {
				have = info.State.Msgs
				if have >= n {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %d messages in %s (have %d): %v\nlogs:\n%s", n, events.StreamName, have, ctx.Err(), faulttest.Tail(logs.String(), 30))
		case <-tick.C:
		}
	}
}
