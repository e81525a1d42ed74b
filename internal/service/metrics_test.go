package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

// TestObserveStored counts failed events and dead letters by the component
// that gave up and their errcode, and nothing else.
func TestObserveStored(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	msgOf := func(t *testing.T, stage events.Stage, data any) *nats.Msg {
		t.Helper()
		env, err := events.New(events.Fact{Stage: stage, Source: events.SourceChannels, Shop: "acme", OrderID: "42", Data: data}, at)
		if err != nil {
			t.Fatal(err)
		}
		m, err := env.Msg()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	failedMsg := func(t *testing.T, f events.Failed) *nats.Msg { return msgOf(t, events.StageFailed, f) }
	shippedMsg := func(t *testing.T) *nats.Msg {
		return msgOf(t, events.StageShipped, events.Shipped{DeliveryID: "SF", WaybillID: "W1", Attempts: 1})
	}
	deadLetter := func(t *testing.T, f events.Failed) *nats.Msg {
		t.Helper()
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		return &nats.Msg{Subject: events.DeadLetterSubject, Data: b}
	}
	tests := []struct {
		name   string
		msg    func(*testing.T) *nats.Msg
		labels []string // stage, errcode, shop of the one series counted; nil: none
	}{
		{"shipper permanent", func(t *testing.T) *nats.Msg {
			return failedMsg(t, events.Failed{Stage: events.ComponentShipper, Errcode: 606003, Reason: "r"})
		}, []string{"shipper", "606003", "acme"}},
		{"enricher cancelled waybill", func(t *testing.T) *nats.Msg {
			return failedMsg(t, events.Failed{Stage: events.ComponentEnricher, Reason: "r"})
		}, []string{"enricher", "0", "acme"}},
		{"dead letter", func(t *testing.T) *nats.Msg {
			return deadLetter(t, events.Failed{Stage: events.ComponentShipper, Reason: "r"})
		}, []string{"shipper", "0", "unknown"}},
		{"undecodable failed event", func(t *testing.T) *nats.Msg {
			return &nats.Msg{Subject: "orders.failed.channels.acme.42", Data: []byte("not json")}
		}, []string{"unknown", "0", "acme"}},
		{"shipped event", shippedMsg, nil},
		{"foreign subject", func(*testing.T) *nats.Msg { return &nats.Msg{Subject: "elsewhere", Data: []byte("{}")} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := service.NewMetrics()
			m.ObserveStored(tt.msg(t))
			n := testutil.CollectAndCount(m.Failed)
			if tt.labels == nil {
				if n != 0 {
					t.Fatalf("%d fulfill_failed_total series, want none", n)
				}
				return
			}
			if n != 1 {
				t.Fatalf("%d fulfill_failed_total series, want 1", n)
			}
			if got := testutil.ToFloat64(m.Failed.WithLabelValues(tt.labels...)); got != 1 {
				t.Errorf("fulfill_failed_total%v = %v, want 1", tt.labels, got)
			}
		})
	}
}

// TestObserveShipped measures from the carried received time, and skips an
// enriched event that carried none.
func TestObserveShipped(t *testing.T) {
	shipped := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		received  time.Time
		wantCount uint64
		wantSum   float64
	}{
		{"carried", shipped.Add(-90 * time.Second), 1, 90},
		{"not carried", time.Time{}, 0, 0},
		{"clock skew", shipped.Add(time.Second), 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := service.NewMetrics()
			m.ObserveShipped("acme", tt.received, shipped)
			mfs, err := m.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != "fulfill_received_to_shipped_seconds" {
					continue
				}
				h := mf.GetMetric()[0].GetHistogram()
				if h.GetSampleCount() != tt.wantCount || h.GetSampleSum() != tt.wantSum {
					t.Errorf("count %d sum %v, want %d and %v", h.GetSampleCount(), h.GetSampleSum(), tt.wantCount, tt.wantSum)
				}
				return
			}
			if tt.wantCount > 0 {
				t.Fatal("fulfill_received_to_shipped_seconds is not exported")
			}
		})
	}
}

// TestWeChatCountsTokenRefreshes drives the client service.WeChat builds
// against a fake platform and checks fulfill_token_refreshes_total by
// result, and that stable_token calls are platform calls in the metrics.
func TestWeChatCountsTokenRefreshes(t *testing.T) {
	const (
		tokenOK  = `{"access_token":"T1","expires_in":7200}`
		tokenBad = `{"errcode":40125,"errmsg":"invalid appsecret"}`
		rejected = `{"errcode":40001,"errmsg":"invalid credential"}`
		sent     = `{"errcode":0,"errmsg":"ok"}`
	)
	tests := []struct {
		name        string
		staticToken string
		tokenAnswer string
		sendAnswer  string
		sends       int
		want        map[string]float64 // result → count
		wantCalls   float64            // stable_token calls observed
	}{
		// One fetch on the cold cache, then the cached token.
		{"cold cache", "", tokenOK, sent, 2, map[string]float64{"ok": 1}, 1},
		// The secret is wrong: every call asks again and fails.
		{"wrong secret", "", tokenBad, sent, 2, map[string]float64{"error": 2}, 2},
		// The platform keeps rejecting the one token it hands out: the first
		// refresh fetches twice (plain, then force_refresh), the second may
		// not force again within 30 s and is refused.
		{"force_refresh throttled", "", tokenOK, rejected, 2, map[string]float64{"ok": 4, "refused": 1}, 4},
		// A fixed token cannot be refreshed: each rejection is a refusal.
		{"fixed token rejected", "FIXED", "", rejected, 2, map[string]float64{"refused": 2}, 0},
		{"fixed token accepted", "FIXED", "", sent, 2, map[string]float64{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == wechat.EndpointStableToken.Path() {
					fmt.Fprint(w, tt.tokenAnswer)
					return
				}
				fmt.Fprint(w, tt.sendAnswer)
			}))
			t.Cleanup(srv.Close)
			m := service.NewMetrics()
			cfg := &config.Config{WeChatAPIBase: srv.URL, WeChatAppID: "wx1", WeChatAccessToken: tt.staticToken}
			if tt.staticToken == "" {
				cfg.WeChatAppSecret = "s3cret"
			}
			shops, err := service.OpenShops(cfg, nil, m, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			c, err := shops.WeChat(events.DefaultShop)
			if err != nil {
				t.Fatal(err)
			}
			for range tt.sends {
				_ = c.SendDelivery(context.Background(), wechat.SendDeliveryRequest{OrderID: "1"})
			}
			for _, result := range []string{service.TokenOK, service.TokenError, service.TokenRefused} {
				if got := testutil.ToFloat64(m.TokenRefreshes.WithLabelValues(result, events.DefaultShop)); got != tt.want[result] {
					t.Errorf("fulfill_token_refreshes_total{result=%q} = %v, want %v", result, got, tt.want[result])
				}
			}
			var calls float64
			for _, code := range []string{"0", "40125"} {
				calls += testutil.ToFloat64(m.APICalls.WithLabelValues(string(wechat.EndpointStableToken), code, events.DefaultShop))
			}
			if calls != tt.wantCalls {
				t.Errorf("fulfill_api_calls_total{endpoint=%q} = %v, want %v", wechat.EndpointStableToken, calls, tt.wantCalls)
			}
		})
	}
}

// TestTokenRefreshResultsExportedAtZero: every result is a series from the
// start of a shop's client, so an alert on increase() sees the first
// failure.
func TestTokenRefreshResultsExportedAtZero(t *testing.T) {
	m := service.NewMetrics()
	shops, err := service.OpenShops(&config.Config{WeChatAPIBase: "http://127.0.0.1:1", WeChatAppID: "wx1", WeChatAppSecret: "s"}, nil, m, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shops.WeChat(events.DefaultShop); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.TokenRefreshes, "fulfill_token_refreshes_total"); n != 3 {
		t.Fatalf("%d fulfill_token_refreshes_total series before any refresh, want 3 (ok, error, refused)", n)
	}
}
