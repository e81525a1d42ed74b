package ingest

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/events"
)

// Traces of ingest: a poll is a trace of its own (its list calls); each
// order it finds starts the order's trace (its order/get, then the publish
// of its received event), linked to the poll; an API request is a trace of
// its own unless the caller sent a traceparent. A push request's trace
// goes on, through the stored push's headers, to its handling, to which
// the order's trace is linked as to a poll. The publish span's context
// goes into the event's NATS headers, where the enricher picks it up.

// tracer is in's Tracer (nil, off, for an Ingester not made by Run).
func (in *Ingester) tracer() *tracing.Tracer {
	if in == nil {
		return nil
	}
	return in.Tracer
}

// startPoll starts the span of one poll of a shop's source: a new trace.
func (in *Ingester) startPoll(ctx context.Context, shop string, source events.Source) (context.Context, trace.Span) {
	ctx, span := in.tracer().StartRoot(ctx, "ingest poll", trace.SpanKindInternal)
	tracing.Set(span, func() []attribute.KeyValue {
		return []attribute.KeyValue{tracing.Stage.String(string(events.ComponentIngest)), tracing.Shop.String(shop), tracing.Source.String(string(source))}
	})
	return ctx, span
}

// startOrder starts the trace of one order a poll or a push found (via),
// linked to the poll's or the push's span.
func (in *Ingester) startOrder(ctx context.Context, shop string, source events.Source, via string) (context.Context, trace.Span) {
	// A constant name: building one costs an allocation even with tracing
	// off.
	ctx, span := in.tracer().StartRoot(ctx, "ingest order", trace.SpanKindInternal)
	tracing.Set(span, func() []attribute.KeyValue {
		return []attribute.KeyValue{tracing.Stage.String(string(events.ComponentIngest)), tracing.Shop.String(shop),
			tracing.Source.String(string(source)), tracing.Via.String(via)}
	})
	return ctx, span
}

// startPush starts the span of handling a stored push of event (e.g.
// channels_ec_order_pay), a child of the push request's.
func (in *Ingester) startPush(ctx context.Context, msg jetstream.Msg, env *events.Envelope, event string) (context.Context, trace.Span) {
	ctx, span := in.tracer().Consume(ctx, "ingest push", events.ComponentIngest, msg.Headers(), env)
	tracing.Set(span, func() []attribute.KeyValue { return []attribute.KeyValue{tracing.PushEvent.String(event)} })
	return ctx, span
}

// startPublish starts the span of publishing env, under the poll's order,
// the API request, or a new trace.
func (in *Ingester) startPublish(ctx context.Context, env *events.Envelope) (context.Context, trace.Span) {
	ctx, span := in.tracer().Start(ctx, "ingest publish", trace.SpanKindProducer)
	tracing.Set(span, func() []attribute.KeyValue {
		return []attribute.KeyValue{tracing.Stage.String(string(events.ComponentIngest))}
	})
	tracing.SetEvent(span, env)
	return ctx, span
}

// inject writes ctx's trace context into m's headers (tracing.Inject).
func inject(ctx context.Context, m *nats.Msg) { tracing.Inject(ctx, m.Header) }

// tracePublished records on ctx's span how a publish ended.
func tracePublished(ctx context.Context, err error) {
	span := trace.SpanFromContext(ctx)
	switch {
	case !span.IsRecording():
	case err == nil:
		tracing.SetOutcome(span, "stored", 0)
	case errors.Is(err, pipeline.ErrDecided):
		tracing.SetOutcome(span, "already received", 0)
	default:
		tracing.SetOutcome(span, "failed", 0)
	}
}
