package pipeline_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

// A held message outlives its ack wait several times over without being
// redelivered; once the hold stops without an ack, JetStream redelivers it.
func TestHoldKeepsAMessageFromBeingRedelivered(t *testing.T) {
	_, js, s := startStream(t)
	const ackWait = 500 * time.Millisecond
	e := newEnv(t, events.StageEnriched, events.SourceChannels, "1", received(), nil, "")
	if err := pipeline.NewPublisher(js).Publish(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateOrUpdateConsumer(t.Context(), jetstream.ConsumerConfig{Durable: "held",
		FilterSubject: "orders.enriched.>", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	msg := next(t, c)
	h := pipeline.StartHold(ackWait/4, msg)
	renewals := &countingRenewer{}
	h.Attach(renewals)

	b, err := c.Fetch(1, jetstream.FetchMaxWait(4*ackWait))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		md, _ := m.Metadata()
		t.Fatalf("held message redelivered (delivered %d times)", md.NumDelivered)
	}
	if n := renewals.n.Load(); n < 4 {
		t.Fatalf("the lease was renewed %d times in %s at a beat of %s", n, 4*ackWait, ackWait/4)
	}
	h.Stop()
	h.Stop() // harmless
	again := next(t, c)
	if md, _ := again.Metadata(); md.NumDelivered != 2 {
		t.Fatalf("after the hold stopped: delivered %d times, want 2", md.NumDelivered)
	}
	after := renewals.n.Load()
	_ = again.Ack()
	if renewals.n.Load() != after {
		t.Fatal("the lease was renewed after Stop")
	}
}

type countingRenewer struct{ n atomic.Int32 }

func (c *countingRenewer) Renew(ctx context.Context) error {
	c.n.Add(1)
	if ctx.Err() != nil {
		return errors.New("renewed with an ended context")
	}
	return nil
}

// TryStop stops a hold at once when no beat is under way, and says so when
// one is: Stop then waits for it, and no beat comes after either.
func TestHoldTryStop(t *testing.T) {
	_, js, s := startStream(t)
	e := newEnv(t, events.StageEnriched, events.SourceChannels, "1", received(), nil, "")
	if err := pipeline.NewPublisher(js).Publish(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateOrUpdateConsumer(t.Context(), jetstream.ConsumerConfig{Durable: "held",
		FilterSubject: "orders.enriched.>", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	msg := next(t, c)

	idle := pipeline.StartHold(time.Hour, msg)
	if !idle.TryStop() {
		t.Fatal("TryStop of a hold with no beat under way = false")
	}
	idle.Stop() // harmless after TryStop

	r := &blockingRenewer{entered: make(chan struct{}, 16), release: make(chan struct{})}
	busy := pipeline.StartHold(time.Millisecond, msg)
	busy.Attach(r)
	<-r.entered // a beat is renewing now
	if busy.TryStop() {
		t.Fatal("TryStop during a beat = true")
	}
	stopped := make(chan struct{})
	go func() { busy.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a beat was under way")
	case <-r.entered:
		t.Fatal("a second beat began during the first")
	default:
	}
	close(r.release)
	<-stopped
	if n := r.n.Load(); n != 1 {
		t.Fatalf("%d renewals, want the one under way only", n)
	}
	_ = msg.Ack()
}

type blockingRenewer struct {
	n       atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (r *blockingRenewer) Renew(ctx context.Context) error {
	r.n.Add(1)
	r.entered <- struct{}{}
	<-r.release
	return nil
}
