package wechat

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestExchangeKeepsConnectionAndHeaders checks what exchange's shortcuts
// must not cost: the body is whole whether or not the answer states its
// length, the connection is reused (the body is read to its end), and every
// request says it is JSON, also through a client with a cookie jar, from
// many goroutines at once (-race).
func TestExchangeKeepsConnectionAndHeaders(t *testing.T) {
	body := `{"errcode":0,"errmsg":"ok","order":{"order_id":"3704612354559743232"}}`
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct, acc := r.Header.Get("Content-Type"), r.Header.Get("Accept"); ct != "application/json" || acc != "application/json" {
			http.Error(w, fmt.Sprintf("Content-Type %q, Accept %q", ct, acc), http.StatusBadRequest)
			return
		}
		if c := r.Header.Values("Cookie"); len(c) > 1 {
			http.Error(w, fmt.Sprintf("cookies of other requests: %q", c), http.StatusBadRequest)
			return
		}
		if r.URL.Query().Has("chunked") {
			_, _ = io.WriteString(w, body[:10])
			w.(http.Flusher).Flush() // no Content-Length: chunked
			_, _ = io.WriteString(w, body[10:])
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = io.WriteString(w, body)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	// A jar with a cookie for the server writes it into each request's
	// headers: they must be the request's own.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "s1"}})
	for _, tc := range []struct {
		name string
		hc   *http.Client
	}{
		{"plain client", &http.Client{Transport: &http.Transport{}}},
		{"client with a cookie jar", &http.Client{Transport: &http.Transport{}, Jar: jar}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns.Store(0)
			for _, query := range []string{"", "?chunked=1"} {
				for range 5 { // one after the other: one connection
					status, raw, err := exchange(context.Background(), tc.hc, srv.URL+"/x"+query, []byte(`{}`))
					if err != nil || status != http.StatusOK || string(raw) != body {
						t.Fatalf("exchange%s = %d, %q, %v; want 200 and the whole body", query, status, raw, err)
					}
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("10 calls in a row opened %d connections, want 1", n)
			}
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					status, raw, err := exchange(context.Background(), tc.hc, srv.URL+"/x", []byte(`{}`))
					if err != nil || status != http.StatusOK || !strings.HasPrefix(string(raw), `{"errcode":0`) {
						t.Errorf("concurrent exchange = %d, %q, %v", status, raw, err)
					}
				})
			}
			wg.Wait()
		})
	}
}
