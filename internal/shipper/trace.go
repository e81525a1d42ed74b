package shipper

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/events"
)

// Traces of the shipper: each handling of an enriched event is a span, a
// child of the enricher span that published it (its traceparent header),
// the parent of every delivery/send call made for it (and of a token
// refresh they need), and of the shipped or failed event it stores.

// startShip starts the span of one handling of an enriched event.
func (s *Shipper) startShip(ctx context.Context, msg jetstream.Msg, env *events.Envelope, md *jetstream.MsgMetadata) (context.Context, trace.Span) {
	ctx, span := s.Tracer.Consume(ctx, "shipper ship", events.ComponentShipper, msg.Headers(), env)
	if span.IsRecording() {
		span.SetAttributes(tracing.Attempts.Int(int(md.NumDelivered)))
	}
	return ctx, span
}

// traceOutcome records how the handling ended.
func traceOutcome(span trace.Span, out outcome) {
	if !span.IsRecording() {
		return
	}
	switch {
	case out.settled != "":
		tracing.SetOutcome(span, "already settled", 0)
	case out.event != nil && out.event.Stage() == events.StageShipped:
		var d events.Shipped
		_ = out.event.DecodeData(&d)
		tracing.SetOutcome(span, "shipped", 0)
		span.SetAttributes(tracing.Calls.Int(d.Calls))
	case out.event != nil && out.event.Stage() == events.StageFailed:
		var f events.Failed
		_ = out.event.DecodeData(&f)
		tracing.SetOutcome(span, "failed", f.Errcode)
		span.SetAttributes(tracing.Calls.Int(f.Calls))
	default:
		tracing.SetOutcome(span, "retry", 0)
	}
}
