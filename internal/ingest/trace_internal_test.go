package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fulfill/pipeline/pkg/events"
)

// With tracing off (no Tracer), ingest's tracing costs no allocation.
func TestTracingOffAllocatesNothing(t *testing.T) {
	in := &Ingester{}
	env, err := events.New(events.Fact{Stage: events.StageReceived, Source: events.SourceChannels, Shop: "acme", OrderID: "1",
		Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(env.Subject())
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		pctx, poll := in.startPoll(ctx, "acme", events.SourceChannels)
		octx, order := in.startOrder(pctx, "acme", events.SourceChannels, events.ViaPoll)
		c, pub := in.startPublish(octx, env)
		inject(c, m)
		tracePublished(c, nil)
		pub.End()
		order.End()
		poll.End()
	}); n != 0 {
		t.Errorf("%v allocations per order with tracing off", n)
	}
	if len(m.Header) != 0 {
		t.Errorf("headers written with tracing off: %v", m.Header)
	}
	var none *Ingester
	if none.tracer() != nil || (&API{In: none}).Handler() == nil {
		t.Error("an API without an ingester has no handler")
	}
}
