package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/internal/tracing/otlptest"
	"github.com/fulfill/pipeline/pkg/events"
)

// recorder is a Tracer whose ended spans the test reads.
func recorder(t testing.TB) (*tracing.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracing.New(tp), rec
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func received(t testing.TB) *events.Envelope {
	t.Helper()
	e, err := events.New(events.Fact{Stage: events.StageReceived, Source: events.SourceChannels, Shop: "acme", OrderID: "3704612354559743232",
		Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}}, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Without an endpoint nothing is made: no provider, no exporter, no
// goroutine; and OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none turn an
// endpoint off.
func TestSetupOffWithoutEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint string
		vars     map[string]string
	}{
		{"unset", "", nil},
		{"only other OTEL variables", "", map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_SAMPLER": "always_on"}},
		{"SDK disabled", "http://127.0.0.1:1", map[string]string{"OTEL_SDK_DISABLED": "true"}},
		{"exporter none", "http://127.0.0.1:1", map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			tr, err := tracing.Setup(context.Background(), "shipper", tc.endpoint, env(tc.vars), zerolog.Nop())
			if err != nil || tr != nil || tr.On() {
				t.Fatalf("Setup = %v, %v: want nil (off)", tr, err)
			}
			if tracing.Enabled(tc.endpoint, env(tc.vars)) {
				t.Error("Enabled says on")
			}
			if n := runtime.NumGoroutine(); n > before {
				t.Errorf("%d goroutines after Setup, %d before: something runs", n, before)
			}
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown of off: %v", err)
			}
		})
	}
}

func TestSetupRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER"},
		{map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://user:hunter2@collector:4318"}, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ""},
	} {
		tr, err := tracing.Setup(context.Background(), "shipper", "http://127.0.0.1:4318", env(tc.vars), zerolog.Nop())
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.vars, err)
			}
			_ = tr.Shutdown(context.Background())
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+" ") {
			t.Errorf("%v: Setup = %v, want an error naming %s", tc.vars, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
	}
	_, err := tracing.Setup(context.Background(), "shipper", "", env(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://user:hunter2@x"}), zerolog.Nop())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a bad endpoint with credentials: %v", err)
	}
}

func TestSampler(t *testing.T) {
	for name, want := range map[string]string{
		"":                         "ParentBased{root:AlwaysOnSampler",
		"always_on":                "AlwaysOnSampler",
		"always_off":               "AlwaysOffSampler",
		"traceidratio":             "TraceIDRatioBased{1}",
		"parentbased_traceidratio": "ParentBased{root:TraceIDRatioBased{1}",
		"parentbased_always_off":   "ParentBased{root:AlwaysOffSampler",
	} {
		s, err := tracing.Sampler(name, "")
		if err != nil || !strings.HasPrefix(s.Description(), want) {
			t.Errorf("Sampler(%q) = %v, %v; want %s", name, s, err, want)
		}
	}
	if s, err := tracing.Sampler("traceidratio", "0.25"); err != nil || s.Description() != "TraceIDRatioBased{0.25}" {
		t.Errorf("ratio 0.25: %v %v", s, err)
	}
}

// With an endpoint, spans go to the OTLP receiver over HTTP protobuf, in
// batches, and Shutdown sends what is left; the service is named after the
// binary unless OTEL_SERVICE_NAME says otherwise.
func TestSetupExportsOTLP(t *testing.T) {
	for _, tc := range []struct{ serviceName, want string }{{"", "fulfill-shipper"}, {"ship-eu", "ship-eu"}} {
		rcv := otlptest.Start()
		defer rcv.Close()
		tr, err := tracing.Setup(context.Background(), "shipper", rcv.URL, env(map[string]string{"OTEL_SERVICE_NAME": tc.serviceName}), zerolog.Nop())
		if err != nil || !tr.On() {
			t.Fatalf("Setup: %v %v", tr, err)
		}
		_, span := tr.Start(context.Background(), "shipper ship", trace.SpanKindConsumer)
		span.End()
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		spans := rcv.Spans()
		if len(spans) != 1 || spans[0].Name != "shipper ship" || spans[0].Service != tc.want || spans[0].Kind != "CONSUMER" {
			t.Fatalf("received %+v (errors %v), want one span of %s", spans, rcv.Errors(), tc.want)
		}
	}
}

// The signal's own endpoint is used as it is.
func TestSetupTracesEndpoint(t *testing.T) {
	rcv := otlptest.Start()
	defer rcv.Close()
	tr, err := tracing.Setup(context.Background(), "enricher", "", env(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rcv.URL + "/v1/traces"}), zerolog.Nop())
	if err != nil || !tr.On() {
		t.Fatalf("Setup: %v %v", tr, err)
	}
	_, span := tr.Start(context.Background(), "x", trace.SpanKindInternal)
	span.End()
	_ = tr.Shutdown(context.Background())
	if n := len(rcv.Spans()); n != 1 {
		t.Fatalf("%d spans received", n)
	}
}

// The publisher's span travels in the message's headers; the consumer's
// span is its child, in the same trace, with the event's attributes and
// never its order id.
func TestInjectConsume(t *testing.T) {
	tr, rec := recorder(t)
	e := received(t)
	ctx, pub := tr.Start(context.Background(), "ingest publish", trace.SpanKindProducer)
	m := nats.NewMsg(e.Subject())
	tracing.Inject(ctx, m.Header)
	pub.End()
	tp := m.Header.Get(events.HeaderTraceparent)
	if !strings.HasPrefix(tp, "00-"+pub.SpanContext().TraceID().String()+"-"+pub.SpanContext().SpanID().String()) {
		t.Fatalf("traceparent %q does not name the publish span", tp)
	}
	_, span := tr.Consume(context.Background(), "enricher enrich", events.ComponentEnricher, m.Header, e)
	span.End()
	ended := rec.Ended()
	c := ended[len(ended)-1]
	if c.Parent().SpanID() != pub.SpanContext().SpanID() || c.SpanContext().TraceID() != pub.SpanContext().TraceID() || !c.Parent().IsRemote() {
		t.Fatalf("consumer span's parent %v, want the publish span %v", c.Parent(), pub.SpanContext())
	}
	got := map[string]string{}
	for _, kv := range c.Attributes() {
		got[string(kv.Key)] = kv.Value.Emit()
	}
	want := map[string]string{"fulfill.shop": "acme", "fulfill.stage": "enricher", "fulfill.source": "channels",
		"fulfill.event_id": e.ID, "fulfill.correlation_id": e.CorrelationID}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k, v := range got {
		if strings.Contains(v, e.OrderID) {
			t.Errorf("attribute %s carries the order id", k)
		}
	}

	// A header written in another case is still read.
	h := nats.Header{"Traceparent": []string{tp}}
	_, span = tr.Consume(context.Background(), "x", events.ComponentShipper, h, e)
	span.End()
	if p := rec.Ended()[len(rec.Ended())-1].Parent(); p.SpanID() != pub.SpanContext().SpanID() {
		t.Errorf("Traceparent (capitalised) not read: parent %v", p)
	}
	// No traceparent: a trace of its own.
	_, span = tr.Consume(context.Background(), "x", events.ComponentShipper, nats.Header{}, e)
	span.End()
	if p := rec.Ended()[len(rec.Ended())-1].Parent(); p.IsValid() {
		t.Errorf("span without a traceparent has parent %v", p)
	}
}

// Tracing off costs nothing: no allocation, no header, the transport and
// the handler are the ones given.
func TestOffIsFree(t *testing.T) {
	var tr *tracing.Tracer
	e := received(t)
	h := nats.Header{}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := tr.Consume(ctx, "shipper ship", events.ComponentShipper, h, e)
		c2, span2 := tr.Start(c, "x", trace.SpanKindProducer)
		tracing.SetEvent(span2, e)
		tracing.SetOutcome(span, "shipped", 0)
		tracing.Inject(c2, h)
		c3, span3 := tr.StartRoot(c2, "y", trace.SpanKindInternal)
		tracing.Inject(c3, h)
		span3.End()
		span2.End()
		span.End()
	})
	if allocs != 0 {
		t.Errorf("tracing off allocates %v times per order", allocs)
	}
	if len(h) != 0 {
		t.Errorf("tracing off wrote headers %v", h)
	}
	base := http.DefaultTransport
	if tr.Transport(base, "acme") != base {
		t.Error("Transport of off wraps the transport")
	}
	handler := &plainHandler{}
	if got := tr.Handler("POST /v1/orders", handler); got != http.Handler(handler) {
		t.Error("Handler of off wraps the handler")
	}
}

type plainHandler struct{}

func (*plainHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// A platform call is a client span named by its path, with the errcode of
// the answer, under the caller's span; never the query, where the token
// travels, nor anything of the body.
func TestTransport(t *testing.T) {
	const token = "ACCESS-TOKEN-abc123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/channels/ec/order/delivery/send":
			_, _ = io.WriteString(w, `{"errcode":100003,"errmsg":"busy `+token+`"}`)
		case "/tool/erps/detail":
			_, _ = io.WriteString(w, `{"msg":"ok","data":{"list":[{"tid":"1"}]},"code":"0"}`)
		case "/cgi-bin/stable_token":
			_, _ = io.WriteString(w, `{"access_token":"`+token+`","expires_in":7200}`)
		default:
			http.Error(w, "no", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	tr, rec := recorder(t)
	hc := &http.Client{Transport: tr.Transport(http.DefaultTransport, "acme")}
	parentCtx, parent := tr.Start(context.Background(), "shipper ship", trace.SpanKindConsumer)
	for _, path := range []string{"/channels/ec/order/delivery/send?access_token=" + token, "/tool/erps/detail", "/cgi-bin/stable_token", "/nope?access_token=" + token} {
		req, _ := http.NewRequestWithContext(parentCtx, http.MethodPost, srv.URL+path, strings.NewReader(`{"secret":"s3cr3t"}`))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	// A transport error names the URL: its span must not.
	req, _ := http.NewRequestWithContext(parentCtx, http.MethodPost, "http://127.0.0.1:1/x?access_token="+token, nil)
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
	}
	parent.End()

	type want struct {
		errcode, status string
		failed          bool
	}
	wants := map[string]want{
		"channels/ec/order/delivery/send": {"100003", "200", true},
		"tool/erps/detail":                {"0", "200", false},
		"cgi-bin/stable_token":            {"", "200", false},
		"nope":                            {"", "502", true},
		"x":                               {"", "", true},
	}
	seen := 0
	for _, s := range rec.Ended() {
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		for _, text := range append([]string{s.Name(), s.Status().Description}, func() []string {
			var out []string
			for k, v := range attrs {
				out = append(out, k, v)
			}
			return out
		}()...) {
			if strings.Contains(text, token) || strings.Contains(text, "s3cr3t") || strings.Contains(text, "access_token") {
				t.Errorf("span %s carries %q", s.Name(), text)
			}
		}
		w, ok := wants[s.Name()]
		if !ok {
			continue
		}
		seen++
		if s.SpanKind() != trace.SpanKindClient || s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("%s: kind %v parent %v", s.Name(), s.SpanKind(), s.Parent())
		}
		if attrs["fulfill.errcode"] != w.errcode || attrs["http.response.status_code"] != w.status || attrs["fulfill.shop"] != "acme" || attrs["fulfill.endpoint"] != s.Name() {
			t.Errorf("%s: attributes %v, want errcode %q status %q", s.Name(), attrs, w.errcode, w.status)
		}
		if failed := s.Status().Code.String() == "Error"; failed != w.failed {
			t.Errorf("%s: status %v, want failed %v", s.Name(), s.Status(), w.failed)
		}
	}
	if seen != len(wants) {
		t.Errorf("%d call spans, want %d", seen, len(wants))
	}
}

// The order API's request is a server span, continuing the caller's trace
// when it sends a traceparent.
func TestHandler(t *testing.T) {
	tr, rec := recorder(t)
	var inner trace.SpanContext
	h := tr.Handler("POST /v1/orders", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner = trace.SpanContextFromContext(r.Context())
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	req := httptest.NewRequest(http.MethodPost, "/v1/orders?token=x", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	s := rec.Ended()[0]
	if s.Name() != "POST /v1/orders" || s.SpanKind() != trace.SpanKindServer || s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		s.Parent().SpanID().String() != "00f067aa0ba902b7" || inner.SpanID() != s.SpanContext().SpanID() {
		t.Fatalf("server span %s %v parent %v (handler saw %v)", s.Name(), s.SpanContext(), s.Parent(), inner)
	}
	if s.Status().Code.String() != "Error" || w.Code != http.StatusServiceUnavailable {
		t.Errorf("a 503 is not an error: %v", s.Status())
	}
	for _, kv := range s.Attributes() {
		if strings.Contains(kv.Value.Emit(), "token") {
			t.Errorf("attribute %s = %s", kv.Key, kv.Value.Emit())
		}
	}
}

// A batch call is a trace of its own linked both ways to the orders' spans;
// each order's span gets the call's share, linked to it.
func TestBatch(t *testing.T) {
	tr, rec := recorder(t)
	var ctxs []context.Context
	var items []trace.Span
	for range 3 {
		c, s := tr.Start(context.Background(), "enricher enrich", trace.SpanKindConsumer)
		ctxs, items = append(ctxs, c), append(items, s)
	}
	_, call := tr.StartBatch(context.Background(), "enricher batchGetOrder", ctxs)
	start := time.Now()
	call.End()
	for _, c := range ctxs {
		tr.Link(c, "batchget", call.SpanContext(), start, time.Now(), tracing.Errcode.Int(0))
	}
	for _, s := range items {
		s.End()
	}
	var batch sdktrace.ReadOnlySpan
	shares, linked := 0, 0
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "enricher batchGetOrder":
			batch = s
		case "batchget":
			shares++
			if len(s.Links()) != 1 || s.Links()[0].SpanContext.SpanID() != call.SpanContext().SpanID() {
				t.Errorf("share links %v", s.Links())
			}
		case "enricher enrich":
			for _, l := range s.Links() {
				if l.SpanContext.SpanID() == call.SpanContext().SpanID() {
					linked++
				}
			}
		}
	}
	if batch == nil || batch.Parent().IsValid() || len(batch.Links()) != 3 || shares != 3 || linked != 3 {
		t.Fatalf("batch %v, %d shares, %d orders linked to it", batch, shares, linked)
	}
}
