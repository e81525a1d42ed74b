package tally_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func mustNew(t *testing.T, f events.Fact) *events.Envelope {
	t.Helper()
	e, err := events.New(f, t0)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// must fails t on err; called as must(t)(e.Next(…)).
func must(t *testing.T) func(*events.Envelope, error) *events.Envelope {
	return func(e *events.Envelope, err error) *events.Envelope {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
}

// TestReadSaysWhereEveryOrderIs publishes the histories of four orders and
// a few unusable messages, and checks the tally read back.
func TestReadSaysWhereEveryOrderIs(t *testing.T) {
	_, js, _ := jstest.StartStream(t)
	products := []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}
	rcv := func(id string) *events.Envelope {
		return mustNew(t, events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: events.SourceChannels, OrderID: id,
			Data: events.Received{DeliveryID: "SF", Products: products}})
	}
	// A shipped; B failed at the shipper, re-driven, failed again; C failed
	// at the enricher, then shipped after a re-drive; D in flight.
	a, b, c, d := rcv("A"), rcv("B"), rcv("C"), rcv("D")
	aE := must(t)(a.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF", WaybillID: "W"}, t0))
	aS := must(t)(aE.Next(events.StageShipped, events.Shipped{DeliveryID: "SF", WaybillID: "W", Attempts: 1}, t0))
	bE := must(t)(b.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF", WaybillID: "W"}, t0))
	bF1 := must(t)(bE.Next(events.StageFailed, events.Failed{Stage: events.ComponentShipper, Errcode: 109000}, t0))
	bE2 := must(t)(bE.Copy("redrive:1", t0))
	bF2 := must(t)(bE2.Next(events.StageFailed, events.Failed{Stage: events.ComponentShipper, Errcode: 606005, Reason: "fix it"}, t0))
	cF := must(t)(c.Next(events.StageFailed, events.Failed{Stage: events.ComponentEnricher, Errcode: 9300507}, t0))
	cE := must(t)(c.Copy("redrive:2", t0))
	cE2 := must(t)(cE.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF", WaybillID: "W"}, t0))
	cS := must(t)(cE2.Next(events.StageShipped, events.Shipped{DeliveryID: "SF", WaybillID: "W", Attempts: 1}, t0))
	p := pipeline.NewPublisher(js)
	if err := p.Publish(t.Context(), a, aE, aS, b, bE, bF1, bE2, bF2, c, cF, cE, cE2, cS, d); err != nil {
		t.Fatal(err)
	}
	for subj, body := range map[string]string{events.DeadLetterSubject: "{}", "orders.bogus": "x", "orders.failed.api.default.X": "not json"} {
		if _, err := js.Publish(t.Context(), subj, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}

	tl, err := tally.Read(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		latest                             events.Stage
		received, enriched, shipped, faild int
		terminals                          int
	}{
		"A": {events.StageShipped, 1, 1, 1, 0, 1},
		"B": {events.StageFailed, 1, 2, 0, 2, 2},
		"C": {events.StageShipped, 2, 1, 1, 1, 2},
		"D": {"", 1, 0, 0, 0, 0},
	}
	for id, w := range want {
		o := tl.Order(events.DefaultShop, id)
		if o == nil {
			t.Fatalf("order %s missing", id)
		}
		if o.Latest != w.latest || o.Received != w.received || o.Enriched != w.enriched || o.Shipped != w.shipped ||
			o.Failed != w.faild || len(o.Terminals) != w.terminals {
			t.Errorf("order %s: %+v; want %+v", id, o, w)
		}
	}
	if b := tl.Order(events.DefaultShop, "B"); b.LastFailed == nil || b.LastFailed.Errcode != 606005 || b.LastFailedEvent.ID != bF2.ID {
		t.Errorf("B's last failure %+v, want bF2", b.LastFailed)
	}
	if n := tl.Terminal(events.StageShipped); n != 2 {
		t.Errorf("%d orders shipped, want 2", n)
	}
	var failed []string
	for _, o := range tl.FailedOrders() {
		failed = append(failed, o.OrderID)
	}
	if !slices.Equal(failed, []string{"B", "X"}) {
		t.Errorf("failed orders %v, want B then X, oldest failure first (an unreadable failure still names its order)", failed)
	}
	if tl.DeadLetters != 1 || tl.Undecodable != 2 {
		t.Errorf("dead letters %d, undecodable %d; want 1 and 2 (orders.bogus, a failed event that is not JSON)", tl.DeadLetters, tl.Undecodable)
	}
	if tl.AllTerminal([]string{"default.A", "default.B", "default.C"}) != true || tl.AllTerminal([]string{"default.A", "default.D"}) != false {
		t.Error("AllTerminal wrong")
	}
	if tl.Messages[events.StageEnriched] != 4 || tl.Messages[events.StageReceived] != 5 {
		t.Errorf("messages per stage %v", tl.Messages)
	}
}

func TestScanWindowAndFilters(t *testing.T) {
	_, js, s := jstest.StartStream(t)
	p := pipeline.NewPublisher(js)
	for _, id := range []string{"1", "2", "3"} {
		e := mustNew(t, events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: events.SourceAPI, OrderID: id,
			Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}})
		if err := p.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	f2, _ := events.OrderFilter(events.StageReceived, events.DefaultShop, "2")
	err := tally.Scan(t.Context(), s, []string{f2}, time.Time{}, time.Time{}, func(m jetstream.Msg, _ *jetstream.MsgMetadata) {
		got = append(got, m.Subject())
	})
	if err != nil || len(got) != 1 || got[0] != "orders.received.api.default.2" {
		t.Fatalf("scan of order 2: %v, %v", got, err)
	}
	got = nil
	err = tally.Scan(t.Context(), s, nil, time.Now().Add(time.Hour), time.Time{}, func(m jetstream.Msg, _ *jetstream.MsgMetadata) {
		got = append(got, m.Subject())
	})
	if err != nil || len(got) != 0 {
		t.Fatalf("scan from an hour ahead: %v, %v", got, err)
	}
}

func TestStatusCountsStagesAndConsumers(t *testing.T) {
	_, js, s := jstest.StartStream(t)
	e := mustNew(t, events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: events.SourceAPI, OrderID: "1",
		Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}})
	if err := pipeline.NewPublisher(js).Publish(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	cc, _ := events.ConsumerConfig(events.ConsumerEnricher, 10, 0)
	if _, err := s.CreateOrUpdateConsumer(t.Context(), cc); err != nil {
		t.Fatal(err)
	}
	rep, err := tally.Status(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stream.Name != events.StreamName || rep.Stream.Messages != 1 || !rep.Stream.Healthy {
		t.Errorf("stream %+v", rep.Stream)
	}
	stages := map[string]tally.StageStatus{}
	for _, st := range rep.Stages {
		stages[st.Stage] = st
	}
	if stages["received"].Messages != 1 || stages["received"].Orders != 1 || stages["shipped"].Messages != 0 {
		t.Errorf("stages %+v", rep.Stages)
	}
	if len(rep.Consumers) != 1 || rep.Consumers[0].Name != events.ConsumerEnricher || rep.Consumers[0].Pending != 1 {
		t.Errorf("consumers %+v, want the enricher with 1 pending (the shipper's is not created)", rep.Consumers)
	}
}

// status counts orders, not subjects: a poison subject is an unusable
// message, not an order; an order shipped twice is counted; an enriched
// order without a terminal event is at the shipper.
func TestStatusCountsOrdersNotSubjects(t *testing.T) {
	_, js, _ := jstest.StartStream(t)
	rcv := mustNew(t, events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: events.SourceAPI, OrderID: "1",
		Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}})
	enr := must(t)(rcv.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF", WaybillID: "W"}, t0))
	enr2 := mustNew(t, events.Fact{Shop: events.DefaultShop, Stage: events.StageEnriched, Source: events.SourceChannels, OrderID: "2", Data: events.Enriched{DeliveryID: "SF", WaybillID: "W"}})
	s1 := must(t)(enr.Next(events.StageShipped, events.Shipped{DeliveryID: "SF"}, t0))
	s1b := must(t)(enr.Copy("x", t0))
	s1c := must(t)(s1b.Next(events.StageShipped, events.Shipped{DeliveryID: "SF"}, t0))
	if err := pipeline.NewPublisher(js).Publish(t.Context(), rcv, enr, enr2, s1, s1b, s1c); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "orders.received.api.default.1.2", []byte("poison")); err != nil {
		t.Fatal(err)
	}
	rep, err := tally.Status(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range rep.Stages {
		if st.Stage == "received" && (st.Orders != 1 || st.Messages != 2 || st.Unusable != 1) {
			t.Errorf("received: %+v; want 1 order, 2 messages, 1 unusable", st)
		}
	}
	if rep.ShippedTwice != 1 || rep.AtShipper != 1 || rep.ParkedCount != 0 {
		t.Errorf("shipped twice %d, at shipper %d, parked %d; want 1, 1 (order 2), 0 (just enriched)", rep.ShippedTwice, rep.AtShipper, rep.ParkedCount)
	}
}
