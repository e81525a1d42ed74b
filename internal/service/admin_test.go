package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/service"
)

type admin struct {
	*service.Admin
	base    string
	metrics *service.Metrics
	stop    func() error
}

// startAdmin serves an Admin on a free loopback port until the test ends.
func startAdmin(t *testing.T) *admin { return startAdminWith(t, false) }

func startAdminWith(t *testing.T, pprof bool) *admin {
	t.Helper()
	m := service.NewMetrics()
	a, err := service.NewAdmin("127.0.0.1:0", m, pprof)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Serve(ctx) }()
	var stopped atomic.Bool
	var stopErr error
	stop := func() error {
		if stopped.CompareAndSwap(false, true) {
			cancel()
			stopErr = <-errc
		}
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	return &admin{Admin: a, base: "http://" + a.Addr(), metrics: m, stop: stop}
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestAdminHealthz(t *testing.T) {
	a := startAdmin(t)
	// Liveness does not depend on readiness.
	a.AddCheck("nats", func(context.Context) error { return errors.New("nats CONNECTING") })
	code, body, _ := get(t, a.base+"/healthz")
	if code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
}

func TestAdminReadyz(t *testing.T) {
	a := startAdmin(t)

	// No checks: ready.
	code, body, hdr := get(t, a.base+"/readyz")
	if code != http.StatusOK {
		t.Fatalf("/readyz without checks = %d %s", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}

	var consumerOK atomic.Bool
	a.AddCheck("nats", func(context.Context) error { return nil })
	a.AddCheck("consumer", func(context.Context) error {
		if consumerOK.Load() {
			return nil
		}
		return errors.New("consumer shipper not found")
	})

	code, body, _ = get(t, a.base+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a failing check = %d %s, want 503", code, body)
	}
	var status map[string]string
	if err := json.Unmarshal([]byte(body), &status); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if status["consumer"] != "consumer shipper not found" || status["nats"] != "ok" {
		t.Errorf("/readyz body %v: want the failing check's message and ok for the other", status)
	}

	consumerOK.Store(true)
	code, body, _ = get(t, a.base+"/readyz")
	if code != http.StatusOK {
		t.Fatalf("/readyz with all checks ok = %d %s", code, body)
	}
	status = nil
	if err := json.Unmarshal([]byte(body), &status); err != nil || status["consumer"] != "ok" || status["nats"] != "ok" {
		t.Errorf("/readyz body %q", body)
	}

	// A check added under an existing name replaces it.
	a.AddCheck("nats", func(context.Context) error { return errors.New("nats RECONNECTING") })
	code, body, _ = get(t, a.base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "nats RECONNECTING") {
		t.Fatalf("/readyz after replacing a check = %d %s", code, body)
	}
}

// A check that hangs is cut off and reported, not waited on forever.
func TestAdminReadyzCheckTimeout(t *testing.T) {
	a := startAdmin(t)
	a.AddCheck("stuck", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	start := time.Now()
	code, body, _ := get(t, a.base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "deadline exceeded") {
		t.Fatalf("/readyz with a stuck check = %d %s", code, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("/readyz took %v", d)
	}
}

func TestAdminMetrics(t *testing.T) {
	a := startAdmin(t)
	a.metrics.In("received", "acme")
	a.metrics.EventsOut.WithLabelValues("enriched", "acme").Add(3)
	a.metrics.ObserveAPI("acme", "channels/ec/order/get", 0, 20*time.Millisecond)
	a.metrics.ObserveAPI("acme", "channels/ec/order/delivery/send", 100003, time.Second)
	a.metrics.Pending.WithLabelValues("shipper").Set(42)
	code, body, hdr := get(t, a.base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want Prometheus text", ct)
	}
	for _, want := range []string{
		`fulfill_events_in_total{shop="acme",stage="received"} 1`,
		`fulfill_events_out_total{shop="acme",stage="enriched"} 3`,
		`fulfill_api_calls_total{endpoint="channels/ec/order/get",errcode="0",shop="acme"} 1`,
		`fulfill_api_calls_total{endpoint="channels/ec/order/delivery/send",errcode="100003",shop="acme"} 1`,
		`fulfill_api_call_seconds_count{endpoint="channels/ec/order/get",shop="acme"} 1`,
		`fulfill_consumer_pending{consumer="shipper"} 42`,
		"# TYPE fulfill_batch_size histogram",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestAdminMethodsAndPaths(t *testing.T) {
	a := startAdmin(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodPost, "/readyz", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodHead, "/healthz", http.StatusOK},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, a.base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestAdminServeStops(t *testing.T) {
	a := startAdmin(t)
	if code, _, _ := get(t, a.base+"/healthz"); code != http.StatusOK {
		t.Fatal(code)
	}
	if err := a.stop(); err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Get(a.base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("admin still answers after Serve returned")
	}
}

func TestNewAdminAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = service.NewAdmin(ln.Addr().String(), service.NewMetrics(), false)
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("NewAdmin on a busy address = %v, want an error naming it", err)
	}
}

func TestMetricsRegistriesAreIndependent(t *testing.T) {
	m1, m2 := service.NewMetrics(), service.NewMetrics()
	m1.In("received", "acme")
	mf, err := m2.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() == "fulfill_events_in_total" && len(f.GetMetric()) > 0 {
			t.Fatalf("a second Metrics sees the first one's counts")
		}
	}
}

// Profiles have no auth and cost CPU while anyone asks: off unless
// ADMIN_PPROF asks for them.
func TestPprofOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		a := startAdminWith(t, on)
		code, _, _ := get(t, a.base+"/debug/pprof/")
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; code != want {
			t.Errorf("ADMIN_PPROF=%v: /debug/pprof/ answered %d, want %d", on, code, want)
		}
	}
}

// A console log written to a pipe or a file carries no colour codes.
func TestConsoleLogHasNoColoursOffATerminal(t *testing.T) {
	var buf bytes.Buffer
	log := service.NewLogger(&buf, "shipper", "info", "console")
	log.Info().Str("order_id", "1").Msg("shipped")
	if strings.Contains(buf.String(), "\x1b[") || !strings.Contains(buf.String(), "shipped") {
		t.Fatalf("console log %q: want plain text", buf.String())
	}
}
