package enricher

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

// Traces of the enricher: each received event it handles is a span, a
// child of the ingest span that published it (its traceparent header), and
// the parent of the enriched or failed event it publishes. One
// batchGetOrder serves up to 100 orders, so the call is a trace of its own
// (the HTTP call and any token refresh under it) linked to each order's
// span, and each order's span gets a span of the call's time that links
// to it.

// startItem starts the span of handling one received event.
func (e *Enricher) startItem(ctx context.Context, it *item) {
	it.ctx, it.span = e.Tracer.Consume(ctx, "enricher enrich", events.ComponentEnricher, it.msg.Headers(), it.env)
}

// spans are the spans of a batch's items, ended once it is settled.
type spans []trace.Span

func (s *spans) add(span trace.Span) {
	if span.IsRecording() {
		*s = append(*s, span)
	}
}

func (s *spans) end() {
	for _, span := range *s {
		span.End()
	}
}

// traceRetry records that an order goes back for another try after err.
func traceRetry(span trace.Span, err error) {
	if span != nil && span.IsRecording() { // the errcode is looked up only then
		tracing.SetOutcome(span, "retry", wechat.Code(err))
	}
}

// batchCall is the span of one batchGetOrder for several orders.
type batchCall struct {
	ctx   context.Context
	span  trace.Span // nil with tracing off
	start time.Time
}

// startCall starts the span of the batchGetOrder call for items.
func (e *Enricher) startCall(ctx context.Context, items []item) batchCall {
	if !e.Tracer.On() {
		return batchCall{ctx: ctx}
	}
	ctxs := make([]context.Context, len(items))
	for i, it := range items {
		ctxs[i] = it.ctx
	}
	ctx, span := e.Tracer.StartBatch(ctx, "enricher batchGetOrder", ctxs)
	span.SetAttributes(tracing.Stage.String(string(events.ComponentEnricher)), tracing.Shop.String(items[0].env.Shop))
	return batchCall{ctx: ctx, span: span, start: time.Now()}
}

// end ends the call's span and gives each order's span its share of it.
func (c batchCall) end(t *tracing.Tracer, items []item, err error) {
	if c.span == nil {
		return
	}
	code := wechat.Code(err)
	if code != 0 {
		c.span.SetAttributes(tracing.Errcode.Int(code))
	}
	c.span.End()
	end := time.Now()
	name := strings.TrimPrefix(wechat.EndpointBatchGetOrder.Path(), "/")
	for _, it := range items {
		t.Link(it.ctx, name, c.span.SpanContext(), c.start, end,
			tracing.Endpoint.String(name), tracing.Shop.String(it.env.Shop), tracing.BatchSize.Int(len(items)), tracing.Errcode.Int(code))
	}
}
