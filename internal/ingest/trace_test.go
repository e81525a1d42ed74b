package ingest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/events"
)

// A pushed order's trace: the push request is a server span, its stored
// push carries the context to the consumer's span, and the order's own
// trace (order/get, then the publish whose context the received event
// carries) starts there, linked to it.
func TestPushTraced(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := startPushEnv(t, 1, func(in *ingest.Ingester) { in.Tracer = tracing.New(tp) })
	id := e.sb.Scenario()[0].OrderID
	if code, _ := e.send(t, e.keys, orderMsg(ingest.EventOrderPay, id, time.Now().Unix(), "")); code != http.StatusOK {
		t.Fatalf("push answered %d", code)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for deadline := time.Now().Add(10 * time.Second); byName["ingest push"] == nil || byName["ingest publish"] == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("spans %v: want the push request, its handling and the order's publish", byName)
		}
		time.Sleep(20 * time.Millisecond)
		for _, s := range rec.Ended() {
			byName[s.Name()] = s
		}
	}
	req, handled, order, pub := byName["POST /v1/wechat/push/{shop}"], byName["ingest push"], byName["ingest order"], byName["ingest publish"]
	if req == nil || order == nil {
		t.Fatalf("spans %v", byName)
	}
	if handled.Parent().SpanID() != req.SpanContext().SpanID() || handled.SpanContext().TraceID() != req.SpanContext().TraceID() {
		t.Errorf("the push's handling (parent %v) is not the child of the request %v", handled.Parent(), req.SpanContext())
	}
	if order.Parent().IsValid() || len(order.Links()) != 1 || order.Links()[0].SpanContext.SpanID() != handled.SpanContext().SpanID() {
		t.Errorf("the order's root (parent %v, links %v) is not linked to the push's handling", order.Parent(), order.Links())
	}
	if pub.Parent().SpanID() != order.SpanContext().SpanID() {
		t.Errorf("publish's parent %v, want the order's root", pub.Parent())
	}
	attrs := map[string]string{}
	for _, kv := range order.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["fulfill.via"] != events.ViaPush {
		t.Errorf("order span attributes %v: want via push", attrs)
	}
	msg, err := e.stream.GetLastMsgForSubject(t.Context(), "orders.received.>")
	if err != nil {
		t.Fatal(err)
	}
	if tp := msg.Header.Get(events.HeaderTraceparent); tp != "00-"+pub.SpanContext().TraceID().String()+"-"+pub.SpanContext().SpanID().String()+"-01" {
		t.Errorf("the received event's traceparent %q does not name the publish span", tp)
	}
}
