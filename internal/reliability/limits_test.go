package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
)

// TestRetentionMisconfigurationRefused (fault 13): a stream that keeps
// events for less time than an order may wait would drop parked orders
// silently (with STREAM_MAX_AGE=2m and SHIP_WAIT_DELAY=3m they aged out
// before their redelivery: no failed event, not in dlq list, gone). Every
// such configuration is refused at start, by the service's own settings or
// by the stream it finds, and a refused service changes nothing.
func TestRetentionMisconfigurationRefused(t *testing.T) {
	start := time.Now()
	st := faulttest.StartStack(t, stack.Options{Sandbox: scenario(71, 50), Env: fastEnv(nil)})
	_, js := faulttest.Connect(t, st.NATSURL)
	// A stream created by hand (or by an old version) keeping one hour.
	if _, err := js.CreateStream(t.Context(), events.StreamConfig(events.StreamLimits{Replicas: 1, MaxAge: time.Hour})); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		service string
		env     map[string]string
		says    []string
	}{
		{"shipper", map[string]string{"STREAM_MAX_AGE": "2m", "SHIP_WAIT_DELAY": "3m"}, []string{"STREAM_MAX_AGE 2m0s is shorter", "SHIP_WAIT_DELAY 3m0s"}},
		{"shipper", map[string]string{"STREAM_MAX_AGE": "90s"}, []string{"STREAM_MAX_AGE", "duplicate window"}},
		{"shipper", map[string]string{"SHIP_WAIT_DELAY": "10m"}, []string{"the ORDERS stream keeps events 1h0m0s", "SHIP_WAIT_MAX_ATTEMPTS"}},
		{"enricher", map[string]string{"STREAM_MAX_AGE": "10m"}, []string{"STREAM_MAX_AGE 10m0s is shorter", "ENRICH_ACK_WAIT"}},
	}
	var refusals []string
	for _, c := range cases {
		extra := map[string]string{"ADMIN_ADDR": "127.0.0.1:0"}
		for k, v := range c.env {
			extra[k] = v
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := stack.Services[c.service](ctx, []string{c.service}, st.Getenv(extra), &bytes.Buffer{}, &bytes.Buffer{})
		cancel()
		if err == nil {
			t.Fatalf("%s with %v started", c.service, c.env)
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s with %v: %q does not say %q", c.service, c.env, err, s)
			}
		}
		refusals = append(refusals, fmt.Sprintf("%s %v", c.service, c.env))
	}
	s, err := js.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if age := s.CachedInfo().Config.MaxAge; age != time.Hour {
		t.Fatalf("a refused service changed the stream's max age to %s", age)
	}
	// Raised by the operator, the same services run and every order ends.
	fulfillctl(t, st, "stream", "apply", "--max-age", "168h")
	logs := &faulttest.SyncBuffer{}
	p := startPipeline(t, st, logs, 1, nil)
	want := st.Sandbox.Scenario()
	tl := faulttest.WaitTerminal(t, js, want, 2*time.Minute, logs)
	res := faulttest.CheckOutcomes(t, st, tl, want)
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
	record(t, 13, "retention misconfiguration: the stream would drop waiting orders", res, start, fmt.Sprintf(
		"%d configurations refused at start, each in one line naming the variables (%s); the refused services left the shared stream as it was (1h); after `fulfillctl stream apply --max-age 168h` the same services took every order to its end",
		len(refusals), strings.Join(refusals, "; ")))
}

// TestStorageFull (fault 14): STREAM_MAX_BYTES fills mid-run. The stream
// refuses new events (DiscardNew) instead of dropping stored ones; the
// order API answers 503 saying so; polls and stages wait. Once the
// operator raises the bound, every order ends, none lost or doubled.
func TestStorageFull(t *testing.T) {
	start := time.Now()
	n := size(1000, 300)
	token := "storage-full-token"
	apiAddr := freeAddr(t)
	st := faulttest.StartStack(t, stack.Options{Sandbox: scenario(73, n), Env: fastEnv(map[string]string{
		"STREAM_MAX_BYTES": "256KiB", "INGEST_API_TOKEN": token, "INGEST_HTTP_ADDR": apiAddr,
	})})
	logs := &faulttest.SyncBuffer{}
	p := startPipeline(t, st, logs, 1, nil)
	_, js := faulttest.Connect(t, st.NATSURL)
	// The stream fills: wait until it stops growing at its bound.
	full := faulttest.WaitStream(t, js, 2*time.Minute, logs, "the stream to fill", func(tl *tally.Tally) bool {
		info, err := js.Stream(context.Background(), events.StreamName)
		if err != nil {
			return false
		}
		si, err := info.Info(context.Background())
		return err == nil && si.State.Bytes > 200<<10
	})
	body, _ := json.Marshal(map[string]any{"order_id": "API-FULL-1", "delivery_id": "SF",
		"products": []map[string]any{{"product_id": "1", "sku_id": "2", "product_cnt": 1}}})
	var status int
	var answer string
	deadline := time.Now().Add(time.Minute)
	for status != http.StatusServiceUnavailable && time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+apiAddr+"/v1/orders", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		status, answer = resp.StatusCode, b.String()
		if status == http.StatusAccepted { // there was room still: another order
			body = bytes.Replace(body, []byte(`"API-FULL-`), []byte(`"API-FULL-1`), 1)
		}
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(answer, "full") {
		t.Fatalf("the order API on a full stream answered %d %s; want 503 saying the stream is full", status, answer)
	}
	terminalWhenFull := full.Terminal(events.StageShipped) + full.Terminal(events.StageFailed)

	fulfillctl(t, st, "stream", "apply", "--max-bytes", "0")
	want := st.Sandbox.Scenario()
	tl := faulttest.WaitTerminal(t, js, want, 3*time.Minute, logs)
	res := faulttest.CheckOutcomes(t, st, tl, want, faulttest.RepeatedCalls())
	faulttest.CheckChains(t, js, faulttest.OrderKeys(want))
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
	noPanics(t, "a service", logs.String())
	record(t, 14, "storage full: STREAM_MAX_BYTES reached mid-run", res, start, fmt.Sprintf(
		"STREAM_MAX_BYTES 256KiB filled with %d of %d orders terminal; the order API answered 503 %q; nothing stored was dropped (DiscardNew); after `fulfillctl stream apply --max-bytes 0` every order ended once",
		terminalWhenFull, n, strings.TrimSpace(answer)))
}
