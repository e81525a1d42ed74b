package tracing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/events"
)

// benchOrder numbers the orders of every run of BenchmarkPublishHandle, so
// none is de-duplicated by an earlier one's Nats-Msg-Id.
var benchOrder atomic.Uint64

// BenchmarkPublishHandle measures one order crossing a stage boundary the
// way the pipeline does it, with tracing off, on (the real OTLP/HTTP
// exporter, every span sampled and sent to a loopback collector that
// discards it) and on but sampling nothing: the upstream stage publishes
// the enriched event under its span (traceparent injected) and waits for
// JetStream's ack; the shipper fetches it, decodes it, starts its span
// from the header, calls delivery/send on a loopback platform through the
// tracing transport, publishes the shipped event with its own context and
// acks. It reports wall time per order and the process's CPU per order
// (cpu-ns/op: user+system of the whole test process, the embedded NATS
// server and the fake platform included, as in the pipeline bench).
//
//	go test -run '^$' -bench PublishHandle -benchtime 3000x -count 5 ./internal/tracing
func BenchmarkPublishHandle(b *testing.B) {
	ctx := context.Background()
	srv, err := embednats.Start(embednats.Options{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	nc, js, err := service.Connect(ctx, srv.ClientURL(), "", "bench", zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	stream, _, err := service.EnsureStream(ctx, js, events.StreamLimits{Replicas: 1, MaxAge: time.Hour}, false)
	if err != nil {
		b.Fatal(err)
	}
	cc, err := events.ConsumerConfig(events.ConsumerShipper, 1000, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		b.Fatal(err)
	}
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	defer platform.Close()
	for _, mode := range benchModes(b) {
		b.Run(mode.name, func(b *testing.B) {
			tr := mode.tracer(b)
			hc := &http.Client{Timeout: 10 * time.Second, Transport: tr.Transport(service.Transport(), "acme")}
			pub := pipeline.NewPublisher(js)
			sendURL := platform.URL + "/channels/ec/order/delivery/send?access_token=bench-token"
			cpu0 := cpuTime()
			b.ReportAllocs()
			for b.Loop() {
				if err := handleOne(ctx, tr, pub, cons, hc, sendURL); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchMode is tracing off, on (every span sampled, exported over
// OTLP/HTTP to a loopback collector that discards it) or on but sampling
// nothing.
type benchMode struct {
	name string
	vars map[string]string
}

// benchModes are off, on and on-unsampled, their collector closed when b
// ends.
func benchModes(b *testing.B) []benchMode {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(collector.Close)
	return []benchMode{
		{"off", nil},
		{"on", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}},
		{"on-unsampled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL, "OTEL_TRACES_SAMPLER": "always_off"}},
	}
}

// tracer is the mode's Tracer (nil when off), shut down when b ends.
func (m benchMode) tracer(b *testing.B) *tracing.Tracer {
	tr, err := tracing.Setup(context.Background(), "shipper", m.vars["OTEL_EXPORTER_OTLP_ENDPOINT"], env(m.vars), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// handleOne publishes one enriched event as the enricher does and handles
// it as the shipper does.
func handleOne(ctx context.Context, tr *tracing.Tracer, pub *pipeline.Publisher, cons jetstream.Consumer, hc *http.Client, sendURL string) error {
	orderID := strconv.FormatUint(3704612354559743232+benchOrder.Add(1), 10)
	products := []events.Product{{ProductID: "1000001", SkuID: "2000001", ProductCnt: 2}}
	now := time.Now()

	// Upstream: the enricher stores the enriched event under its span.
	upCtx, up := tr.Start(ctx, "enricher enrich", trace.SpanKindConsumer)
	rcv, err := events.New(events.Fact{Stage: events.StageReceived, Source: events.SourceChannels, Shop: "acme", OrderID: orderID,
		Data: events.Received{DeliveryID: "SF", Products: products}}, now)
	if err != nil {
		return err
	}
	enr, err := rcv.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF", WaybillID: "SF1234567890", Products: products, ReceivedAt: now}, now)
	if err != nil {
		return err
	}
	m, err := enr.Msg()
	if err != nil {
		return err
	}
	tracing.Inject(upCtx, m.Header)
	if err := pub.PublishMsgs(ctx, m); err != nil {
		return err
	}
	up.End()

	// The shipper: fetch, decode, span from the header, the platform
	// call, the terminal event with its context, ack.
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		return err
	}
	msg, ok := <-batch.Messages()
	if !ok {
		return errors.New("no message fetched")
	}
	in, data, err := pipeline.DecodeInput[events.Enriched](msg, events.StageEnriched)
	if err != nil {
		return err
	}
	shipCtx, span := tr.Consume(ctx, "shipper ship", events.ComponentShipper, msg.Headers(), in)
	req, err := http.NewRequestWithContext(shipCtx, http.MethodPost, sendURL, strings.NewReader(`{"order_id":"`+orderID+`"}`))
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	out, err := in.Next(events.StageShipped, events.Shipped{DeliveryID: data.DeliveryID, WaybillID: data.WaybillID, Attempts: 1, Calls: 1}, time.Now())
	if err != nil {
		return err
	}
	om, err := out.Msg()
	if err != nil {
		return err
	}
	tracing.Inject(shipCtx, om.Header)
	if err := pub.PublishMsgs(ctx, om); err != nil {
		return err
	}
	tracing.SetOutcome(span, "shipped", 0)
	span.End()
	return msg.Ack()
}

// cpuTime is the user and system time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSpansPerOrder measures the tracing work alone that a stage does
// for one order (start its span from the message header, one platform
// call through the tracing transport, inject the context into the event
// it stores, end), without NATS or a network: the absolute cost that
// BenchmarkPublishHandle puts in proportion. "baseline" is the same loop
// without the tracing calls (the fake platform call and the header map
// are its 5 allocations): what "off" must equal.
func BenchmarkSpansPerOrder(b *testing.B) {
	ctx := context.Background()
	e := received(b)
	for _, mode := range append([]benchMode{{name: "baseline"}}, benchModes(b)...) {
		b.Run(mode.name, func(b *testing.B) {
			tr := mode.tracer(b)
			fake := roundTripper(func(*http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(`{"errcode":0,"errmsg":"ok"}`))}, nil
			})
			req, _ := http.NewRequest(http.MethodPost, "http://platform/channels/ec/order/delivery/send?access_token=x", nil)
			if mode.name == "baseline" {
				var base http.RoundTripper = fake // called as the transport is
				b.ReportAllocs()
				for b.Loop() {
					resp, err := base.RoundTrip(req.WithContext(ctx))
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					headerSink = nats.Header{} // the event's headers, as below
				}
				return
			}
			rt := tr.Transport(fake, "acme")
			// The upstream stage's header, as a message would carry it.
			upCtx, up := tr.Start(ctx, "enricher enrich", trace.SpanKindConsumer)
			in := nats.Header{}
			tracing.Inject(upCtx, in)
			up.End()
			b.ReportAllocs()
			for b.Loop() {
				sctx, span := tr.Consume(ctx, "shipper ship", events.ComponentShipper, in, e)
				resp, err := rt.RoundTrip(req.WithContext(sctx))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				out := nats.Header{}
				tracing.Inject(sctx, out)
				tracing.SetOutcome(span, "shipped", 0)
				span.End()
			}
		})
	}
}

// headerSink keeps the baseline's header map on the heap, as a message's is.
var headerSink nats.Header

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
