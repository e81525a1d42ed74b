// Package tracing is the pipeline's OpenTelemetry tracing: one trace per
// order from ingest through the enricher to the shipper, its context carried
// from stage to stage in the W3C traceparent and tracestate headers of the
// NATS messages (events.HeaderTraceparent), with a span for each handling
// of the order by a stage and for each platform call.
//
// A nil *Tracer is tracing off, the default: every method then returns at
// once without allocating, so the hot path pays nothing. Setup turns it on
// when OTEL_EXPORTER_OTLP_ENDPOINT is set.
//
// What spans carry is bounded on purpose: shop, stage, event and
// correlation ids, endpoint, errcode, attempts. Never a token, a secret, a
// URL query (WeChat's access_token travels in it), an openid, an error
// message or an order id (order ids stay in the logs and the stream; the
// correlation id finds an order's trace from either).
package tracing

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfill/pipeline/pkg/events"
)

// Scope is the instrumentation scope of the pipeline's spans.
const Scope = "github.com/fulfill/pipeline"

// Attribute keys of the pipeline's spans.
const (
	Shop          = attribute.Key("fulfill.shop")
	Stage         = attribute.Key("fulfill.stage") // ingest, enricher, shipper
	Source        = attribute.Key("fulfill.source")
	EventID       = attribute.Key("fulfill.event_id")
	CorrelationID = attribute.Key("fulfill.correlation_id")
	Endpoint      = attribute.Key("fulfill.endpoint")
	Errcode       = attribute.Key("fulfill.errcode")
	Attempts      = attribute.Key("fulfill.attempts")
	Calls         = attribute.Key("fulfill.calls")
	BatchSize     = attribute.Key("fulfill.batch_size")
	Outcome       = attribute.Key("fulfill.outcome")
	Via           = attribute.Key("fulfill.via")        // poll, push
	PushEvent     = attribute.Key("fulfill.push_event") // channels_ec_order_pay, …
)

// Tracer starts the spans of one service. nil is tracing off.
type Tracer struct {
	tracer trace.Tracer
	// provider is the SDK provider Setup made, shut down (flushed) by
	// Shutdown; nil for a Tracer made by New.
	provider *sdktrace.TracerProvider
}

// New is a Tracer of tp (tests: an SDK provider with an in-memory
// exporter).
func New(tp trace.TracerProvider) *Tracer {
	return &Tracer{tracer: tp.Tracer(Scope)}
}

// On reports whether tracing is on.
func (t *Tracer) On() bool { return t != nil }

// Shutdown flushes the spans not yet exported and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// noSpan is what the methods of a nil Tracer return: the API's no-op span,
// shared, so tracing off allocates nothing.
var noSpan = trace.SpanFromContext(context.Background())

// propagator reads and writes W3C traceparent and tracestate only: no
// baggage, which could carry anything a caller put in it.
var propagator = propagation.TraceContext{}

// Start starts a span named name of kind as a child of ctx's span.
func (t *Tracer) Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	return t.tracer.Start(ctx, name, trace.WithSpanKind(kind))
}

// StartRoot starts a span that begins a trace of its own, linked to ctx's
// span if any (the poll that found an order starts the order's own trace).
func (t *Tracer) StartRoot(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(kind)}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	return t.tracer.Start(ctx, name, opts...)
}

// Consume starts span name, stage's handling of a message whose envelope
// is env: a child of the span the message's traceparent names (the one
// that published it), or a new trace when it names none.
func (t *Tracer) Consume(ctx context.Context, name string, stage events.Component, h nats.Header, env *events.Envelope) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	ctx = propagator.Extract(ctx, Header(h))
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer))
	span.SetAttributes(Stage.String(string(stage)))
	SetEvent(span, env)
	return ctx, span
}

// Link starts, and ends at once, a span under ctx's span that stands for the
// order's share of a call made for many orders (one batchGetOrder for a
// batch): it covers the call's time and links to the call's own span.
func (t *Tracer) Link(ctx context.Context, name string, call trace.SpanContext, start, end time.Time, attrs ...attribute.KeyValue) {
	if t == nil {
		return
	}
	_, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start),
		trace.WithLinks(trace.Link{SpanContext: call}), trace.WithAttributes(attrs...))
	span.End(trace.WithTimestamp(end))
}

// StartBatch starts the span of a call made for many orders: a trace of
// its own, linked to each order's span (ctxs), and each of those linked
// back to it.
func (t *Tracer) StartBatch(ctx context.Context, name string, ctxs []context.Context) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	links := make([]trace.Link, 0, len(ctxs))
	for _, c := range ctxs {
		if sc := trace.SpanContextFromContext(c); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(BatchSize.Int(len(ctxs))))
	for _, c := range ctxs {
		trace.SpanFromContext(c).AddLink(trace.Link{SpanContext: span.SpanContext()})
	}
	return ctx, span
}

// Inject writes the W3C trace context of ctx's span into a message's
// headers, so the stage that handles it continues the trace. Without a span
// (tracing off) it writes nothing.
func Inject(ctx context.Context, h nats.Header) {
	if ctx == nil || h == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, Header(h))
}

// SetEvent sets the attributes of the event a span handles: shop, source,
// event id, correlation id (the span's name says the event's stage). Never
// the order id.
func SetEvent(span trace.Span, env *events.Envelope) {
	if env == nil || span == nil || !span.IsRecording() {
		return
	}
	span.SetAttributes(Shop.String(env.Shop), Source.String(string(env.Source)),
		EventID.String(env.ID), CorrelationID.String(env.CorrelationID))
}

// SetOutcome records how a stage's handling ended ("enriched", "failed",
// "retry", …) and the platform's errcode, if any (0: none); a failed
// outcome or an errcode marks the span as an error.
func SetOutcome(span trace.Span, outcome string, errcode int) {
	if span == nil || !span.IsRecording() {
		return
	}
	span.SetAttributes(Outcome.String(outcome))
	if errcode != 0 {
		span.SetAttributes(Errcode.Int(errcode))
	}
	if outcome == "failed" {
		span.SetStatus(codes.Error, outcome)
	}
}

// Set sets attributes on span when it records (the attributes are built by
// the caller only then, when they cost something).
func Set(span trace.Span, attrs func() []attribute.KeyValue) {
	if span != nil && span.IsRecording() {
		span.SetAttributes(attrs()...)
	}
}

// Header adapts a NATS message's headers to the propagator. NATS headers
// are case-sensitive; W3C names them in lower case, and a publisher that
// wrote them otherwise is still read.
type Header nats.Header

// Get is the first value of key.
func (h Header) Get(key string) string {
	if v := nats.Header(h).Get(key); v != "" {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Set sets key to value.
func (h Header) Set(key, value string) { nats.Header(h).Set(key, value) }

// Keys lists the keys.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
