// Package otlptest is an OTLP/HTTP receiver for tests: a loopback HTTP
// server that accepts what an OpenTelemetry exporter sends to /v1/traces
// (protobuf, gzip or not) and keeps the spans, flattened, for the test to
// read. Point a service's OTEL_EXPORTER_OTLP_ENDPOINT at URL.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, its ids in hex.
type Span struct {
	// Service is its resource's service.name.
	Service  string
	Resource map[string]string
	TraceID  string
	SpanID   string
	ParentID string // "" for a root
	Name     string
	Kind     string
	Attrs    map[string]string
	Links    []Link
	Events   []string
	// Status is "ERROR" for a span that failed, with StatusMessage.
	Status        string
	StatusMessage string
	Start, End    time.Time
}

// Link is a span's link to another span.
type Link struct {
	TraceID, SpanID string
	Attrs           map[string]string
}

// Strings is every text the span carries: name, attribute keys and
// values, status message, event names, link attributes and resource
// attributes (for checks that nothing secret is in it).
func (s Span) Strings() []string {
	out := []string{s.Name, s.StatusMessage}
	out = append(out, s.Events...)
	for _, m := range append([]map[string]string{s.Attrs, s.Resource}, linkAttrs(s.Links)...) {
		for k, v := range m {
			out = append(out, k, v)
		}
	}
	return out
}

func linkAttrs(ls []Link) []map[string]string {
	out := make([]map[string]string, len(ls))
	for i, l := range ls {
		out[i] = l.Attrs
	}
	return out
}

// Receiver is a running OTLP/HTTP receiver.
type Receiver struct {
	// URL is what OTEL_EXPORTER_OTLP_ENDPOINT takes.
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	spans    []Span
	requests int
	errs     []string
}

// Start runs a receiver on a free loopback port until Close.
func Start() *Receiver {
	r := &Receiver{}
	r.srv = httptest.NewServer(r.handler())
	r.URL = r.srv.URL
	return r
}

// StartOn runs a receiver on addr (e.g. the exporters' default,
// 127.0.0.1:4318) until Close.
func StartOn(addr string) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &Receiver{}
	r.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: r.handler(), ReadHeaderTimeout: 5 * time.Second}}
	r.srv.Start()
	r.URL = r.srv.URL
	return r, nil
}

func (r *Receiver) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.traces)
	// Anything else an exporter might send is counted too.
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests++
		r.mu.Unlock()
		http.NotFound(w, req)
	})
	return mux
}

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

// Requests is how many export requests arrived.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Errors lists the requests that could not be read.
func (r *Receiver) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// Spans is every span received so far, in order of start.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Span(nil), r.spans...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

func (r *Receiver) fail(w http.ResponseWriter, format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
}

func (r *Receiver) traces(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.fail(w, "gzip: %v", err)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		r.fail(w, "read: %v", err)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		r.fail(w, "content type %q, want application/x-protobuf", ct)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &msg); err != nil {
		r.fail(w, "decode: %v", err)
		return
	}
	var got []Span
	for _, rs := range msg.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := Span{
					Service: res["service.name"], Resource: res,
					TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
					Name: sp.GetName(), Kind: strings.TrimPrefix(sp.GetKind().String(), "SPAN_KIND_"),
					Attrs:         attrs(sp.GetAttributes()),
					Status:        strings.TrimPrefix(sp.GetStatus().GetCode().String(), "STATUS_CODE_"),
					StatusMessage: sp.GetStatus().GetMessage(),
					Start:         time.Unix(0, int64(sp.GetStartTimeUnixNano())),
					End:           time.Unix(0, int64(sp.GetEndTimeUnixNano())),
				}
				if p := sp.GetParentSpanId(); len(p) > 0 {
					s.ParentID = hex.EncodeToString(p)
				}
				for _, l := range sp.GetLinks() {
					s.Links = append(s.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId()), Attrs: attrs(l.GetAttributes())})
				}
				for _, e := range sp.GetEvents() {
					s.Events = append(s.Events, e.GetName())
					for k, v := range attrs(e.GetAttributes()) {
						s.Events = append(s.Events, k, v)
					}
				}
				got = append(got, s)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.requests++
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// attrs flattens OTLP attributes to text.
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		out[kv.GetKey()] = value(kv.GetValue())
	}
	return out
}

func value(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_ArrayValue:
		parts := make([]string, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, value(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *commonpb.AnyValue_BytesValue:
		return string(x.BytesValue)
	}
	return v.String()
}
