package shipper

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/tracing"
)

// With tracing off (no Tracer), the shipper's tracing costs no allocation.
func TestTracingOffAllocatesNothing(t *testing.T) {
	s := &Shipper{}
	env, _ := input(t)
	msg := &jstest.Msg{Hdr: nats.Header{}}
	md := &jetstream.MsgMetadata{NumDelivered: 2}
	out := nats.Header{}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		c, span := s.startShip(ctx, msg, env, md)
		traceOutcome(span, outcome{retry: 1})
		tracing.Inject(c, out)
		span.End()
	}); n != 0 {
		t.Errorf("%v allocations per handling with tracing off", n)
	}
	if len(out) != 0 {
		t.Errorf("headers written with tracing off: %v", out)
	}
}
