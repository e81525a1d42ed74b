package pipeline_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

// The server itself refuses a second shipped event for an order, whatever
// its event id or source: what keeps replicas, replays and redeliveries
// from recording an order shipped twice.
func TestExpectLastRefusesASecondShippedEvent(t *testing.T) {
	_, js, s := startStream(t)
	p := pipeline.NewPublisher(js)
	rcv := newEnv(t, events.StageReceived, events.SourceChannels, "42", received(), nil, "")
	copyOf := newEnv(t, events.StageReceived, events.SourceChannels, "42", received(), rcv, "replay-1")
	first := newEnv(t, events.StageShipped, events.SourceChannels, "42", events.Shipped{DeliveryID: "SF", WaybillID: "W", Attempts: 1}, rcv, "")
	second := newEnv(t, events.StageShipped, events.SourceAPI, "42", events.Shipped{DeliveryID: "SF", WaybillID: "W", Attempts: 1, AlreadyShipped: true}, copyOf, "")
	if first.ID == second.ID || first.Subject() == second.Subject() {
		t.Fatalf("the two shipped events must differ in id and subject: %s %s", first.Subject(), second.Subject())
	}
	filter, err := events.OrderFilter(events.StageShipped, events.DefaultShop, "42")
	if err != nil {
		t.Fatal(err)
	}
	msg := func(e *events.Envelope) *nats.Msg {
		m, err := e.Msg()
		if err != nil {
			t.Fatal(err)
		}
		pipeline.ExpectLast(m, filter, 0)
		return m
	}
	errs := p.PublishEach(t.Context(), msg(first))
	if errs[0] != nil {
		t.Fatalf("first shipped event refused: %v", errs[0])
	}
	errs = p.PublishEach(t.Context(), msg(second))
	if !errors.Is(errs[0], pipeline.ErrDecided) {
		t.Fatalf("second shipped event: %v; want ErrDecided", errs[0])
	}
	// The same first event sent again (its answer lost) is refused too, and
	// the record still holds the first.
	if err := p.StartMsg(msg(first)).Wait(t.Context()); !errors.Is(err, pipeline.ErrDecided) {
		t.Fatalf("the first event re-sent: %v; want ErrDecided", err)
	}
	if n := countOn(t, s, "orders.shipped.>"); n != 1 {
		t.Fatalf("%d shipped events stored, want 1", n)
	}
	last, err := s.GetLastMsgForSubject(t.Context(), filter)
	if err != nil || last.Header.Get(jetstream.MsgIDHeader) != first.ID {
		t.Fatalf("stored shipped event: %v, %v; want %s", last, err, first.ID)
	}
	// A failed event expecting the failed record it read is stored once:
	// the second writer, having read the same (empty) record, is refused.
	ffilter, _ := events.OrderFilter(events.StageFailed, events.DefaultShop, "42")
	f1 := newEnv(t, events.StageFailed, events.SourceChannels, "42", events.Failed{Stage: "shipper"}, rcv, "")
	f2 := newEnv(t, events.StageFailed, events.SourceChannels, "42", events.Failed{Stage: "shipper"}, copyOf, "")
	m1, _ := f1.Msg()
	m2, _ := f2.Msg()
	pipeline.ExpectLast(m1, ffilter, 0)
	pipeline.ExpectLast(m2, ffilter, 0)
	errs = p.PublishEach(t.Context(), m1, m2)
	if errs[0] != nil || !errors.Is(errs[1], pipeline.ErrDecided) {
		t.Fatalf("two failed events on the same record: %v; want the first stored and the second ErrDecided", errs)
	}
}
