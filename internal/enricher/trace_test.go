package enricher

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/fulfill/pipeline/internal/tracing"
)

// With tracing off (no Tracer), the enricher's tracing costs no
// allocation.
func TestTracingOffAllocatesNothing(t *testing.T) {
	e := &Enricher{}
	it, _ := received(t, "1", 1)
	items := []item{it}
	out := nats.Header{}
	failure := errors.New("HTTP 502")
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		var open spans
		e.startItem(ctx, &items[0])
		open.add(items[0].span)
		call := e.startCall(ctx, items)
		call.end(e.Tracer, items, failure)
		traceRetry(items[0].span, failure)
		tracing.SetOutcome(items[0].span, "enriched", 0)
		tracing.Inject(items[0].ctx, out)
		open.end()
	}); n != 0 {
		t.Errorf("%v allocations per order with tracing off", n)
	}
	if len(out) != 0 {
		t.Errorf("headers written with tracing off: %v", out)
	}
}
