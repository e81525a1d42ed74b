package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// observed is one Observer report.
type observed struct {
	ep   Endpoint
	code int
}

// observerLog collects Observer reports.
type observerLog struct {
	mu  sync.Mutex
	got []observed
}

func (o *observerLog) observe(ep Endpoint, code int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observed{ep, code})
}

func (o *observerLog) all() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observed(nil), o.got...)
}

// TestErrcodesOverHTTP serves every listed errcode and checks the error the client
// returns: an *APIError with the code, classified as listed, and one HTTP call
// (token codes cannot be replayed with a static token).
func TestErrcodesOverHTTP(t *testing.T) {
	lr := newLeakRecorder(t)
	for _, tt := range listedCodes {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			var cl callLog
			srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, fmt.Sprintf(`{"errcode":%d,"errmsg":"message of %d"}`, tt.code, tt.code))
			})
			var obs observerLog
			err := staticClient(srv, WithObserver(obs.observe)).SendDelivery(context.Background(), SendDeliveryRequest{OrderID: "1"})
			lr.record(err)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want *APIError", err)
			}
			if ae.Code != tt.code || ae.Endpoint != EndpointDeliverySend || ae.HTTPStatus != http.StatusOK || ae.Msg != "message of "+strconv.Itoa(tt.code) {
				t.Errorf("APIError = %+v", ae)
			}
			if got := Classify(err); got != tt.want {
				t.Errorf("Classify = %v, want %v", got, tt.want)
			}
			if Code(err) != tt.code {
				t.Errorf("Code = %d, want %d", Code(err), tt.code)
			}
			if n := cl.count(""); n != 1 {
				t.Errorf("%d HTTP calls, want 1", n)
			}
			if tt.want == ClassToken && !errors.Is(err, ErrStaticToken) {
				t.Errorf("token error without ErrStaticToken: %v", err)
			}
			if got := obs.all(); len(got) != 1 || got[0] != (observed{EndpointDeliverySend, tt.code}) {
				t.Errorf("observer got %v", got)
			}
		})
	}
}

// hijackClose closes the connection without an answer.
func hijackClose(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_ = conn.Close()
	}
}

// blockUntilGone blocks the handler until the client goes away or the test ends.
// It reads the request body first: the server notices a closed connection (and
// cancels r.Context()) only once the body is consumed.
func blockUntilGone(release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// TestFailures covers the answers and failures that carry no platform errcode:
// HTTP statuses, undecodable bodies, the read limit, timeouts and network errors.
func TestFailures(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the servers close (LIFO)

	big := `{"errcode":0,"errmsg":"` + strings.Repeat("a", MaxResponseBytes) + `"}`
	exact := `{"errcode":0,"next_key":"` + strings.Repeat("k", MaxResponseBytes-len(`{"errcode":0,"next_key":""}`)) + `"}`

	shortTimeout := &http.Client{Timeout: 100 * time.Millisecond}
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		deadHost  bool          // call a closed server (connection refused)
		hc        *http.Client  // client override
		ctxTO     time.Duration // request context timeout
		wantClass Class
		wantIs    []error
		wantCode  int
		status    int // want APIError.HTTPStatus (0: no APIError)
		wantOK    bool
	}{
		{name: "HTTP 500 empty", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
			wantClass: ClassTransient, wantIs: []error{ErrHTTPStatus}, status: 500},
		{name: "HTTP 502 HTML page", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		}, wantClass: ClassTransient, wantIs: []error{ErrHTTPStatus}, status: 502},
		{name: "HTTP 503 with errcode -1", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 503, `{"errcode":-1,"errmsg":"system busy"}`)
		}, wantClass: ClassTransient, wantIs: []error{ErrHTTPStatus}, wantCode: -1, status: 503},
		{name: "HTTP 504", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(504) },
			wantClass: ClassTransient, wantIs: []error{ErrHTTPStatus}, status: 504},
		{name: "HTTP 429", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) },
			wantClass: ClassTransient, wantIs: []error{ErrHTTPStatus}, status: 429},
		{name: "HTTP 400", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) },
			wantClass: ClassPermanent, wantIs: []error{ErrHTTPStatus}, status: 400},
		{name: "HTTP 403", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) },
			wantClass: ClassPermanent, wantIs: []error{ErrHTTPStatus}, status: 403},
		{name: "HTTP 404 JSON without errcode", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 404, `{"error":"not found"}`)
		}, wantClass: ClassPermanent, wantIs: []error{ErrHTTPStatus}, status: 404},
		{name: "truncated JSON", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"errcode":0,"order_id_list":["37046123545`)
		}, wantClass: ClassTransient, wantIs: []error{ErrBadResponse}},
		{name: "HTML page with 200", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><body>系统繁忙</body></html>")
		}, wantClass: ClassTransient, wantIs: []error{ErrBadResponse}},
		{name: "empty body", handler: func(w http.ResponseWriter, r *http.Request) {},
			wantClass: ClassTransient, wantIs: []error{ErrBadResponse}},
		{name: "JSON array", handler: func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `[]`) },
			wantClass: ClassTransient, wantIs: []error{ErrBadResponse}},
		{name: "JSON null", handler: func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `null`) },
			wantClass: ClassTransient, wantIs: []error{ErrBadResponse}},
		{name: "errcode as string", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"errcode":"0","errmsg":"ok"}`)
		}, wantClass: ClassTransient, wantIs: []error{ErrBadResponse}},
		{name: "wrong id type", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"errcode":0,"order_id_list":[true]}`)
		}, wantClass: ClassTransient, wantIs: []error{ErrBadResponse, ErrInvalidID}},
		{name: "fractional id", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"errcode":0,"order_id_list":[3.704612354559743e18]}`)
		}, wantClass: ClassTransient, wantIs: []error{ErrBadResponse, ErrInvalidID}},
		{name: "trailing garbage", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"errcode":0}{"errcode":1}`)
		}, wantClass: ClassTransient, wantIs: []error{ErrBadResponse}},
		{name: "body over the read limit", handler: func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, big) },
			wantClass: ClassTransient, wantIs: []error{ErrBadResponse}},
		{name: "body exactly at the read limit", handler: func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, exact) },
			wantOK: true},
		{name: "client timeout, slow server", handler: blockUntilGone(release), hc: shortTimeout,
			wantClass: ClassTransient},
		{name: "client timeout, slow body", hc: shortTimeout, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"errcode":0,`)
			w.(http.Flusher).Flush()
			blockUntilGone(release)(w, r)
		}, wantClass: ClassTransient},
		{name: "context deadline, slow server", handler: blockUntilGone(release), ctxTO: 100 * time.Millisecond,
			wantClass: ClassTransient, wantIs: []error{context.DeadlineExceeded}},
		{name: "server closes connection", handler: hijackClose(t), wantClass: ClassTransient},
		{name: "connection cut mid-body", handler: func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"errcode\":0,")
			_ = buf.Flush()
			_ = conn.Close()
		}, wantClass: ClassTransient, wantIs: []error{io.ErrUnexpectedEOF}},
		{name: "connection refused", deadHost: true, wantClass: ClassTransient},
	}
	lr := newLeakRecorder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := tt.handler
			if handler == nil {
				handler = func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, okBody) }
			}
			srv := newServer(t, nil, handler)
			t.Cleanup(srv.CloseClientConnections) // runs before srv.Close
			if tt.deadHost {
				srv.Close()
			}
			var obs observerLog
			opts := []Option{WithObserver(obs.observe)}
			if tt.hc != nil {
				opts = append(opts, WithHTTPClient(tt.hc))
			}
			c := staticClient(srv, opts...)
			ctx := context.Background()
			if tt.ctxTO > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTO)
				defer cancel()
			}
			_, err := c.ListOrders(ctx, ListOrdersRequest{UpdateTimeRange: &TimeRange{StartTime: 1, EndTime: 2}})
			lr.record(err)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatal("got nil error")
			}
			if got := Classify(err); got != tt.wantClass {
				t.Errorf("Classify(%v) = %v, want %v", err, got, tt.wantClass)
			}
			for _, target := range tt.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			if Code(err) != tt.wantCode {
				t.Errorf("Code = %d, want %d", Code(err), tt.wantCode)
			}
			var ae *APIError
			if got := errors.As(err, &ae); got != (tt.status != 0) || (got && ae.HTTPStatus != tt.status) {
				t.Errorf("APIError %+v (found %v), want HTTP status %d", ae, got, tt.status)
			}
			if !strings.HasPrefix(err.Error(), "wechat order/list/get: ") {
				t.Errorf("error %q lacks the endpoint prefix", err)
			}
			wantObs := ObservedFailure
			if tt.wantCode != 0 {
				wantObs = tt.wantCode
			}
			if got := obs.all(); len(got) == 0 || got[len(got)-1] != (observed{EndpointOrderList, wantObs}) {
				t.Errorf("observer got %v, want last {%s %d}", got, EndpointOrderList, wantObs)
			}
		})
	}
}

// TestTimeoutIsNetTimeout checks that a client timeout stays inspectable as a
// net.Error with Timeout() after redaction.
func TestTimeoutIsNetTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, nil, blockUntilGone(release))
	t.Cleanup(func() { close(release) })
	lr := newLeakRecorder(t)
	err := staticClient(srv, WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond})).SendDelivery(context.Background(), SendDeliveryRequest{OrderID: "1"})
	lr.record(err)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a net.Error with Timeout()", err)
	}
}

// TestContextHonoured checks that an already-cancelled context makes no call.
func TestContextHonoured(t *testing.T) {
	var cl callLog
	srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, okBody) })
	lr := newLeakRecorder(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := staticClient(srv).SendDelivery(ctx, SendDeliveryRequest{OrderID: "1"})
	lr.record(err)
	if !errors.Is(err, context.Canceled) || Classify(err) != ClassTransient {
		t.Errorf("got %v (%v), want context.Canceled, transient", err, Classify(err))
	}
	if n := cl.count(""); n != 0 {
		t.Errorf("%d HTTP calls, want 0", n)
	}
}

// TestBadBaseURL checks that a malformed base URL is a permanent error without the
// token.
func TestBadBaseURL(t *testing.T) {
	lr := newLeakRecorder(t)
	for _, base := range []string{"http://bad host", "http://[::1", "http://x\x7f.example"} {
		c := NewClient(StaticToken(testToken), WithBaseURL(base))
		err := c.SendDelivery(context.Background(), SendDeliveryRequest{OrderID: "1"})
		lr.record(err)
		if err == nil || Classify(err) != ClassPermanent {
			t.Errorf("base %q: got %v (%v), want a permanent error", base, err, Classify(err))
		}
	}
}

// TestDefaultHTTPClient checks the defaults of NewClient.
func TestDefaultHTTPClient(t *testing.T) {
	c := NewClient(StaticToken(testToken))
	if c.baseURL != DefaultBaseURL {
		t.Errorf("base URL %q", c.baseURL)
	}
	if c.hc.Timeout != DefaultTimeout {
		t.Errorf("timeout %v", c.hc.Timeout)
	}
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost != 512 {
		t.Errorf("transport %#v", c.hc.Transport)
	}
	if tr == http.DefaultTransport {
		t.Error("default transport shared, want a clone")
	}
	if c2 := NewClient(StaticToken(testToken), WithBaseURL("http://x/prefix/")); c2.baseURL != "http://x/prefix" {
		t.Errorf("trailing slash kept: %q", c2.baseURL)
	}
}

func TestEndpointPath(t *testing.T) {
	want := map[Endpoint]string{
		EndpointStableToken:   "/cgi-bin/stable_token",
		EndpointOrderList:     "/channels/ec/order/list/get",
		EndpointOrderGet:      "/channels/ec/order/get",
		EndpointDeliverySend:  "/channels/ec/order/delivery/send",
		EndpointBatchGetOrder: "/cgi-bin/express/business/order/batchget",
		EndpointGetOrder:      "/cgi-bin/express/business/order/get",
		Endpoint("nope"):      "",
	}
	for ep, p := range want {
		if ep.Path() != p {
			t.Errorf("%s.Path() = %q, want %q", ep, ep.Path(), p)
		}
	}
}
