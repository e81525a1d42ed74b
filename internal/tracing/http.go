package tracing

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Transport wraps base so that every platform call made through it is a
// client span, a child of the request context's span, named by the URL's
// path (the endpoint) and carrying shop, HTTP status and the errcode of the
// answer. The query is never recorded: WeChat's access_token travels in it.
// Nothing is sent to the platform: its requests carry no traceparent. With
// tracing off it is base itself.
func (t *Tracer) Transport(base http.RoundTripper, shop string) http.RoundTripper {
	if t == nil {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, tracer: t.tracer, shop: shop}
}

type transport struct {
	base   http.RoundTripper
	tracer trace.Tracer
	shop   string
}

// RoundTrip makes the call under a span that ends when the body is read to
// its end or closed.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint := strings.TrimPrefix(req.URL.Path, "/")
	// Few attributes: each one costs the exporter allocations per span.
	_, span := t.tracer.Start(req.Context(), endpoint, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		Endpoint.String(endpoint), Shop.String(t.shop)))
	resp, err := t.base.RoundTrip(req)
	if err == nil && !span.IsRecording() {
		span.End() // not sampled: nothing to read the answer for
		return resp, nil
	}
	if err != nil {
		// Not err's text: a url.Error names the whole URL, query included.
		span.SetStatus(codes.Error, "transport error")
		span.End()
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, "HTTP "+strconv.Itoa(resp.StatusCode))
	}
	resp.Body = &tracedBody{rc: resp.Body, span: span}
	return resp, nil
}

// sniffBytes is how much of an answer is kept to find its errcode: the
// platforms put it first, and a waybill batch's print_html can be large.
const sniffBytes = 64 << 10

// tracedBody ends the call's span once the answer is read or closed, with
// the errcode the answer's JSON carries ("errcode" for WeChat, "code" for
// vv-tool). The body itself is never recorded.
type tracedBody struct {
	rc    io.ReadCloser
	span  trace.Span
	head  bytes.Buffer
	ended bool
}

func (b *tracedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if room := sniffBytes - b.head.Len(); room > 0 {
		b.head.Write(p[:min(n, room)])
	}
	if err != nil {
		b.end()
	}
	return n, err
}

func (b *tracedBody) Close() error {
	b.end()
	return b.rc.Close()
}

func (b *tracedBody) end() {
	if b.ended {
		return
	}
	b.ended = true
	if code, ok := answerCode(b.head.Bytes()); ok {
		b.span.SetAttributes(Errcode.Int(code))
		if code != 0 {
			b.span.SetStatus(codes.Error, "errcode "+strconv.Itoa(code))
		}
	}
	b.span.End()
}

// answerCode finds the top-level "errcode" (or "code") of a JSON object
// and reads it as a number or a numeric string; false for anything else, a
// truncated head included. It scans the bytes once without decoding (no
// allocation): a platform call's span must cost little.
func answerCode(b []byte) (int, bool) {
	depth, key := 0, false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			depth++
			key = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			key = depth == 1
		case '"':
			end := stringEnd(b, i+1)
			if end < 0 {
				return 0, false
			}
			if key {
				key = false
				if name := b[i+1 : end]; string(name) == "errcode" || string(name) == "code" {
					return numberAfterColon(b[end+1:])
				}
			}
			i = end
		}
	}
	return 0, false
}

// stringEnd is the index of the quote closing a JSON string that starts at
// b[i], or -1.
func stringEnd(b []byte, i int) int {
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// numberAfterColon reads ": 123", ": -1" or `: "0"` at the start of b.
func numberAfterColon(b []byte) (int, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return 0, false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) > 0 && b[0] == '"' {
		end := stringEnd(b, 1)
		if end < 0 {
			return 0, false
		}
		b = bytes.TrimSpace(b[1:end])
	} else if end := bytes.IndexAny(b, ",} \t\r\n"); end >= 0 {
		b = b[:end]
	} else {
		return 0, false // the number may go on past the head
	}
	n, err := strconv.Atoi(string(b))
	return n, err == nil
}

// Handler wraps an HTTP handler so that each request is a server span
// named route: a child of the caller's traceparent if it sent one (a
// merchant's system tracing its own calls), else a new trace. It records
// method, route and status, never the URL, the query or a header. With
// tracing off it is h itself.
func (t *Tracer) Handler(route string, h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(ctx, route, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", r.Method), attribute.String("http.route", route)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, "HTTP "+strconv.Itoa(sw.status))
		}
	})
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// SpanContext is the span context of ctx's span (for a link).
func SpanContext(ctx context.Context) trace.SpanContext { return trace.SpanContextFromContext(ctx) }
