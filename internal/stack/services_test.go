package stack

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/pkg/events"
)

// TestServicesHelpAndBadConfig checks each binary's Run: --help lists every
// variable the binary reads, and a bad value is refused in one line that
// names the variable, before anything connects.
func TestServicesHelpAndBadConfig(t *testing.T) {
	for name, run := range Services {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			var stderr bytes.Buffer
			if err := run(context.Background(), []string{name, "--help"}, func(string) string { return "" }, &out, &stderr); err != nil {
				t.Fatalf("--help: %v", err)
			}
			if stderr.Len() > 0 {
				t.Errorf("--help wrote to stderr (it is output: stdout): %q", stderr.String())
			}
			for _, v := range config.VarsFor(name) {
				if !strings.Contains(out.String(), v.Name) {
					t.Errorf("--help does not list %s", v.Name)
				}
			}
			env := map[string]string{"STREAM_REPLICAS": "many"}
			err := run(context.Background(), []string{name}, func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), "STREAM_REPLICAS") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line naming STREAM_REPLICAS", err)
			}
		})
	}
}

// TestServicesRefuseRetentionShorterThanTheirWaits: a stream that keeps
// events for less time than a service may hold an order would lose waiting
// orders silently; the service refuses to start, naming the variables.
func TestServicesRefuseRetentionShorterThanTheirWaits(t *testing.T) {
	base := map[string]string{"WECHAT_APPID": "wx", "WECHAT_APPSECRET": "s", "INGEST_DELIVERY_ID": "SF", "NATS_URL": "nats://127.0.0.1:1"}
	tests := []struct {
		service string
		env     map[string]string
		names   []string
	}{
		{"shipper", map[string]string{"STREAM_MAX_AGE": "2m", "SHIP_WAIT_DELAY": "3m"}, []string{"STREAM_MAX_AGE", "SHIP_WAIT_DELAY", "SHIP_WAIT_MAX_ATTEMPTS", "SHIP_MAX_ELAPSED"}},
		{"shipper", map[string]string{"STREAM_MAX_AGE": "20h"}, []string{"STREAM_MAX_AGE", "SHIP_WAIT_DELAY"}}, // 10m × 144 + 15m
		{"enricher", map[string]string{"STREAM_MAX_AGE": "10m"}, []string{"STREAM_MAX_AGE", "ENRICH_ACK_WAIT"}},
	}
	for _, tt := range tests {
		t.Run(tt.service+"/"+tt.env["STREAM_MAX_AGE"], func(t *testing.T) {
			getenv := func(k string) string {
				if v, ok := tt.env[k]; ok {
					return v
				}
				return base[k]
			}
			err := Services[tt.service](context.Background(), []string{tt.service}, getenv, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want a one-line refusal", err)
			}
			for _, n := range tt.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("%q does not name %s", err, n)
				}
			}
		})
	}
}

// TestServiceKeepsASharedStreamAndRefusesItWhenTooShort: a replica started
// with other STREAM_* settings must not rewrite the stream every service
// shares; and a stream that keeps events for less than the service may hold
// an order is refused, even if this service's own settings are fine.
func TestServiceKeepsASharedStreamAndRefusesItWhenTooShort(t *testing.T) {
	_, js := jstest.Start(t)
	url := js.Conn().ConnectedUrl()
	if _, err := js.CreateStream(t.Context(), events.StreamConfig(events.StreamLimits{Replicas: 1, MaxAge: time.Hour})); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NATS_URL": url, "ADMIN_ADDR": "127.0.0.1:0", "WECHAT_APPID": "wx", "WECHAT_APPSECRET": "s"}
	var logs bytes.Buffer
	err := Services["shipper"](t.Context(), []string{"shipper"}, func(k string) string { return env[k] }, &logs, &logs)
	if err == nil || !strings.Contains(err.Error(), "keeps events 1h0m0s") || !strings.Contains(err.Error(), "SHIP_WAIT_MAX_ATTEMPTS") {
		t.Fatalf("shipper against a 1h stream: %v; want a refusal naming the stream's age and the shipper's waits", err)
	}
	if !strings.Contains(logs.String(), "differs from this service") {
		t.Errorf("the difference was not logged:\n%s", logs.String())
	}
	s, err := js.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if age := s.CachedInfo().Config.MaxAge; age != time.Hour {
		t.Fatalf("the shipper changed the shared stream's max age to %s", age)
	}
}
