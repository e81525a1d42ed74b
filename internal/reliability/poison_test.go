package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// poison is one unusable message injected into the stream.
type poison struct {
	name    string
	subject string
	body    []byte
	// deadLetter: the subject names no order, so the record goes to
	// orders.deadletter instead of orders.failed.<source>.<id>.
	deadLetter bool
	stage      events.Component // the component that must set it aside
	seq        uint64           // stream sequence once published
}

// poisons are the unusable messages of one round (tag keeps ids unique).
func poisons(t testing.TB, tag string) []*poison {
	t.Helper()
	now := time.Now()
	envelope := func(stage events.Stage, id string, data any, edit func(map[string]any)) []byte {
		env, err := events.New(events.Fact{Shop: events.DefaultShop, Stage: stage, Source: events.SourceAPI, OrderID: id, Data: data}, now)
		if err != nil {
			t.Fatal(err)
		}
		b, err := env.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err = json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	received := events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}
	enriched := events.Enriched{DeliveryID: "SF", WaybillID: "W1", Products: received.Products}
	id := func(s string) string { return "poison-" + tag + "-" + s }
	return []*poison{
		{name: "not JSON", subject: "orders.received.channels.default." + id("notjson"), stage: "enricher",
			body: []byte("this is not JSON \x00\xff\xfe {")},
		{name: "empty body", subject: "orders.received.api.default." + id("empty"), stage: "enricher", body: []byte{}},
		{name: "wrong version", subject: "orders.received.api.default." + id("v2"), stage: "enricher",
			body: envelope(events.StageReceived, id("v2"), received, func(m map[string]any) { m["version"] = 2 })},
		{name: "envelope for another order", subject: "orders.received.api.default." + id("other"), stage: "enricher",
			body: envelope(events.StageReceived, id("someone-else"), received, func(map[string]any) {})},
		{name: "payload without products", subject: "orders.received.api.default." + id("noproducts"), stage: "enricher",
			body: envelope(events.StageReceived, id("noproducts"), received, func(m map[string]any) {
				m["data"] = map[string]any{"delivery_id": "SF", "products": []any{}}
			})},
		{name: "order id with a dot", subject: "orders.received.api.default.12.3" + tag, stage: "enricher", deadLetter: true,
			body: envelope(events.StageReceived, id("dot"), received, func(m map[string]any) { m["order_id"] = "12.3" + tag })},
		{name: "not JSON (shipper)", subject: "orders.enriched.channels.default." + id("e-notjson"), stage: "shipper",
			body: []byte(`{"id":"truncated`)},
		{name: "wrong version (shipper)", subject: "orders.enriched.api.default." + id("v99"), stage: "shipper",
			body: envelope(events.StageEnriched, id("v99"), enriched, func(m map[string]any) { m["version"] = 99 })},
		{name: "order id with a dot (shipper)", subject: "orders.enriched.api.default.4.5" + tag, stage: "shipper", deadLetter: true,
			body: []byte(`{"order_id":"4.5"}`)},
	}
}

// TestPoisonInput (fault 5) injects unusable messages straight into the
// stream, before the services start and again at a random moment mid-run:
// bodies that are not JSON or empty, envelopes of a wrong version, of
// another order, without products, and subjects whose order id has a dot
// (orders.received.api.default.12.3), on the enricher's and the shipper's input.
// Each must end as one failed event (or one dead letter when the subject
// names no order) keeping the raw bytes, be terminated after a single
// delivery (JetStream's terminated advisory says deliveries 1), and the
// consumers must go on shipping every real order.
func TestPoisonInput(t *testing.T) {
	start := time.Now()
	n := size(1000, 300)
	mix := sandbox.DefaultFaults()
	mix.Wait = 0 // waiting codes are redelivered on purpose: keep the redelivery count exact
	st := faulttest.StartStack(t, stack.Options{
		Sandbox: sandbox.Config{Seed: 51, Orders: n, Faults: mix, MaxOrdersPerWindow: 300},
		Env:     fastEnv(nil),
	})
	nc, js := faulttest.Connect(t, st.NATSURL)
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, events.StreamConfig(events.StreamLimits{Replicas: 1, MaxAge: time.Hour})); err != nil {
		t.Fatal(err)
	}

	// JetStream reports every terminated message, with its delivery count.
	var mu sync.Mutex
	terminated := map[uint64][]int{}
	sub, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>", func(m *nats.Msg) {
		var a struct {
			StreamSeq  uint64 `json:"stream_seq"`
			Deliveries int    `json:"deliveries"`
		}
		if json.Unmarshal(m.Data, &a) == nil {
			mu.Lock()
			terminated[a.StreamSeq] = append(terminated[a.StreamSeq], a.Deliveries)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	inject := func(ps []*poison) {
		for _, p := range ps {
			ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: p.subject, Data: p.body})
			if err != nil {
				t.Fatalf("inject %s: %v", p.name, err)
			}
			p.seq = ack.Sequence
		}
	}
	all := poisons(t, "a")
	inject(all) // waiting at the head of the stream when the consumers start

	logs := &faulttest.SyncBuffer{}
	pl := startPipeline(t, st, logs, 2, nil)
	waitSends(t, st.Sandbox, n/10+rngFor(t, 51).IntN(n/2), 2*time.Minute, logs)
	mid := poisons(t, "b")
	inject(mid) // mid-run, among real orders
	all = append(all, mid...)

	want := st.Sandbox.Scenario()
	var ids []string
	for _, p := range all {
		if !p.deadLetter {
			_, _, shop, id, _ := events.ParseSubject(p.subject)
			ids = append(ids, events.OrderKey(shop, id))
		}
	}
	dead := 0
	for _, p := range all {
		if p.deadLetter {
			dead++
		}
	}
	tl := faulttest.WaitStream(t, js, 3*time.Minute, logs, "every order and every poison message to be settled", func(tl *tally.Tally) bool {
		return tl.AllTerminal(faulttest.OrderKeys(want)) && tl.AllTerminal(ids) && tl.DeadLetters >= dead
	})
	res := faulttest.CheckOutcomes(t, st, tl, want)

	// Each poison message: one record with its raw bytes.
	letters := deadLetters(t, js)
	for _, p := range all {
		var recs []events.Failed
		if p.deadLetter {
			for _, f := range letters {
				if f.OriginalSeq == p.seq {
					recs = append(recs, f)
				}
			}
		} else {
			_, _, shop, id, _ := events.ParseSubject(p.subject)
			o := tl.Order(shop, id)
			// The poison message itself is the one received or enriched event.
			in := o != nil && ((p.stage == "enricher" && o.Received == 1 && o.Enriched == 0) || (p.stage == "shipper" && o.Received == 0 && o.Enriched == 1))
			if !in || o.Failed != 1 || o.Shipped != 0 || o.LastFailed == nil {
				t.Errorf("%s (%s): %+v; want exactly one failed event and nothing else", p.name, p.subject, o)
				continue
			}
			recs = append(recs, *o.LastFailed)
		}
		if len(recs) != 1 {
			t.Errorf("%s (%s): %d records, want 1", p.name, p.subject, len(recs))
			continue
		}
		f := recs[0]
		if !bytes.Equal(f.Raw, p.body) || f.OriginalSubject != p.subject || f.OriginalSeq != p.seq || f.Stage != p.stage || f.Reason == "" || f.Errmsg == "" {
			t.Errorf("%s: record %+v; want the raw bytes %q, subject %s, seq %d, stage %s, an error and a reason", p.name, f, p.body, p.subject, p.seq, p.stage)
		}
	}
	if tl.DeadLetters != dead {
		t.Errorf("%d dead letters, want %d", tl.DeadLetters, dead)
	}

	// Nothing looped: each poison message was delivered once and
	// terminated; the consumers hold nothing and redelivered nothing.
	faulttest.WaitStream(t, js, 30*time.Second, logs, "a terminated advisory for every poison message", func(*tally.Tally) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range all {
			if len(terminated[p.seq]) == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	for _, p := range all {
		if d := terminated[p.seq]; len(d) != 1 || d[0] != 1 {
			t.Errorf("%s (seq %d): terminated with delivery counts %v, want [1]", p.name, p.seq, d)
		}
	}
	mu.Unlock()
	redelivered := 0
	for _, c := range []struct{ name, filter string }{
		{events.ConsumerEnricher, events.FilterSubject(events.StageReceived)},
		{events.ConsumerShipper, events.FilterSubject(events.StageEnriched)},
	} {
		r := redeliveries(t, js, c.name, countSubjects(t, js, c.filter))
		info := consumerInfo(t, js, c.name)
		if r != 0 || info.NumAckPending != 0 || info.NumPending != 0 {
			t.Errorf("consumer %s: %d redeliveries, %d unacked, %d pending at the end; want none", c.name, r, info.NumAckPending, info.NumPending)
		}
		redelivered += r
	}
	noPanics(t, "a service", logs.String())
	if err := pl.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
	names := map[string]bool{}
	for _, p := range all {
		names[strings.TrimSuffix(p.name, " (shipper)")] = true
	}
	record(t, 5, "poison input injected straight into the stream", res, start, fmt.Sprintf(
		"%d poison messages (%d kinds: not JSON, empty, wrong version, another order's envelope, no products, a dot in the order id; on the enricher's and the shipper's input) before the start and mid-run: each one failed event or dead letter with its raw bytes, terminated after 1 delivery; %d redeliveries; every real order settled",
		len(all), len(names), redelivered))
}

// deadLetters reads every record on orders.deadletter.
func deadLetters(t testing.TB, js jetstream.JetStream) []events.Failed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Failed
	err = tally.Scan(ctx, s, []string{events.DeadLetterSubject}, time.Time{}, time.Time{}, func(m jetstream.Msg, _ *jetstream.MsgMetadata) {
		var f events.Failed
		if err := json.Unmarshal(m.Data(), &f); err != nil {
			t.Errorf("dead letter %q: %v", m.Data(), err)
			return
		}
		out = append(out, f)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// countSubjects is the number of messages of ORDERS on filter.
func countSubjects(t testing.TB, js jetstream.JetStream, filter string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}
