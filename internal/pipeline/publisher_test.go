package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

func received() events.Received {
	return events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "p", SkuID: "s", ProductCnt: 1}}}
}

func TestPublisherStoresWithMsgID(t *testing.T) {
	_, js, s := startStream(t)
	p := pipeline.NewPublisher(js)
	var mu sync.Mutex
	var published []events.Stage
	p.OnPublished = func(st events.Stage, _ string) { mu.Lock(); published = append(published, st); mu.Unlock() }
	var stored []string
	p.OnStored = func(m *nats.Msg) { mu.Lock(); stored = append(stored, m.Subject); mu.Unlock() }

	rcv := newEnv(t, events.StageReceived, events.SourceChannels, "3704612354559743232", received(), nil, "")
	enr := newEnv(t, events.StageEnriched, events.SourceChannels, "3704612354559743232", events.Enriched{}, rcv, "")
	if err := p.Publish(t.Context(), rcv, enr); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*events.Envelope{rcv, enr} {
		m, err := s.GetLastMsgForSubject(t.Context(), e.Subject())
		if err != nil {
			t.Fatalf("%s not stored: %v", e.Subject(), err)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != e.MsgID() {
			t.Errorf("Nats-Msg-Id = %q, want %q", got, e.MsgID())
		}
		if got := m.Header.Get(events.HeaderEventType); got != e.Type {
			t.Errorf("%s = %q", events.HeaderEventType, got)
		}
		d, err := events.Decode(m.Data)
		if err != nil || d.ID != e.ID {
			t.Errorf("stored body: %v, %v", d, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(published) != 2 || published[0] != events.StageReceived || published[1] != events.StageEnriched {
		t.Errorf("OnPublished saw %v", published)
	}
	if len(stored) != 2 || stored[0] != rcv.Subject() || stored[1] != enr.Subject() {
		t.Errorf("OnStored saw %v", stored)
	}
}

func TestPublisherDeduplicates(t *testing.T) {
	_, js, s := startStream(t)
	p := pipeline.NewPublisher(js)
	e := newEnv(t, events.StageReceived, events.SourceAPI, "D-1", received(), nil, "")
	// Twice in one call, then again in another call, then rebuilt from scratch
	// (what a crash and restart does).
	if err := p.Publish(t.Context(), e, e); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	again, err := events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: events.SourceAPI, OrderID: "D-1", Data: received()}, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if n := countOn(t, s, e.Subject()); n != 1 {
		t.Fatalf("%d messages stored for one logical event, want 1", n)
	}
	// A different logical event of the same order is kept.
	replay := newEnv(t, events.StageReceived, events.SourceAPI, "D-1", received(), nil, "replay-1")
	if err := p.Publish(t.Context(), replay); err != nil {
		t.Fatal(err)
	}
	if n := countOn(t, s, e.Subject()); n != 2 {
		t.Fatalf("%d messages after a replay event, want 2", n)
	}
}

func TestPublisherBatch(t *testing.T) {
	_, js, s := startStream(t)
	p := pipeline.NewPublisher(js)
	var mu sync.Mutex
	count := 0
	p.OnPublished = func(events.Stage, string) { mu.Lock(); count++; mu.Unlock() }
	const n = 500
	envs := make([]*events.Envelope, n)
	for i := range envs {
		envs[i] = newEnv(t, events.StageReceived, events.SourceChannels, fmt.Sprint("B-", i), received(), nil, "")
	}
	if err := p.Publish(t.Context(), envs...); err != nil {
		t.Fatal(err)
	}
	if got := countOn(t, s, "orders.received.>"); got != n {
		t.Fatalf("%d stored, want %d", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if count != n {
		t.Fatalf("OnPublished called %d times, want %d", count, n)
	}
}

func TestPublisherRefusesInvalidEnvelope(t *testing.T) {
	_, js, s := startStream(t)
	obs := observe(js)
	p := pipeline.NewPublisher(obs)
	good := newEnv(t, events.StageReceived, events.SourceAPI, "V-1", received(), nil, "")
	bad := *good
	bad.Type = "order.packed"
	if err := p.Publish(t.Context(), good, &bad); !errors.Is(err, events.ErrInvalidStage) {
		t.Fatalf("Publish with an invalid envelope = %v, want ErrInvalidStage", err)
	}
	// All or nothing: the valid one was not sent either.
	if obs.Calls() != 0 || countOn(t, s, "orders.>") != 0 {
		t.Fatalf("something was published: %d calls", obs.Calls())
	}
}

func TestPublisherRetriesUntilStreamExists(t *testing.T) {
	_, js := startJS(t) // no stream yet
	obs := observe(js)
	p := pipeline.NewPublisher(obs)
	p.RetryWait = 10 * time.Millisecond
	e := newEnv(t, events.StageReceived, events.SourceAPI, "R-1", received(), nil, "")

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Publish(ctx, e) }()

	// The second attempt starts only after the first failed: no stream.
	select {
	case <-obs.called(2):
	case err := <-done:
		t.Fatalf("Publish returned %v without a stream", err)
	}
	s, _, err := service.EnsureStream(ctx, js, events.StreamLimits{Replicas: 1, MaxAge: time.Hour}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Publish after the stream appeared: %v", err)
	}
	if n := countOn(t, s, e.Subject()); n != 1 {
		t.Fatalf("%d stored after %d attempts, want 1", n, obs.Calls())
	}
}

func TestPublisherReturnsContextError(t *testing.T) {
	_, js := startJS(t) // no stream, ever
	p := pipeline.NewPublisher(js)
	p.RetryWait = 10 * time.Millisecond
	e := newEnv(t, events.StageReceived, events.SourceAPI, "C-1", received(), nil, "")

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := p.Publish(ctx, e)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish without a stream = %v, want context.DeadlineExceeded", err)
	}

	cctx, ccancel := context.WithCancel(t.Context())
	ccancel()
	if err := p.Publish(cctx, e); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context = %v, want context.Canceled", err)
	}
}

// A lost acknowledgement (here: a plain subscriber answers nothing where a
// stream would) must not hang the publisher past its context.
func TestPublisherLostAckEndsWithContext(t *testing.T) {
	nc, js := startJS(t)
	sub, err := nc.SubscribeSync("orders.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	p := pipeline.NewPublisher(js)
	e := newEnv(t, events.StageReceived, events.SourceAPI, "L-1", received(), nil, "")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Publish(ctx, e) }()
	m, err := sub.NextMsg(10 * time.Second) // the publish went out and nobody acks it
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(jetstream.MsgIDHeader) != e.MsgID() {
		t.Errorf("Nats-Msg-Id on the wire = %q", m.Header.Get(jetstream.MsgIDHeader))
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish = %v, want context.Canceled", err)
	}
}

func TestPublishMsgsDeduplicatesPreparedMessages(t *testing.T) {
	_, js, s := startStream(t)
	p := pipeline.NewPublisher(js)
	mk := func() *nats.Msg {
		m := nats.NewMsg(events.DeadLetterSubject)
		m.Data = []byte(`{"raw":"x"}`)
		m.Header.Set(jetstream.MsgIDHeader, "deadletter:test:1")
		return m
	}
	if err := p.PublishMsgs(t.Context(), mk(), mk()); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishMsgs(t.Context(), mk()); err != nil {
		t.Fatal(err)
	}
	if n := countOn(t, s, events.DeadLetterSubject); n != 1 {
		t.Fatalf("%d stored, want 1", n)
	}
	// Nothing to publish is a no-op.
	if err := p.PublishMsgs(t.Context()); err != nil {
		t.Fatal(err)
	}
}
