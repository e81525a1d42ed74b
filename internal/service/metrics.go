package service

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

// Metrics are the Prometheus series every stage reports. Each binary has its
// own registry, so several can run in one process (fulfillctl up, tests).
// Labels are bounded sets (stage, consumer, endpoint, errcode, result):
// never an order id, an openid or a token.
type Metrics struct {
	Registry *prometheus.Registry

	EventsIn   *prometheus.CounterVec   // stage
	EventsOut  *prometheus.CounterVec   // stage
	APICalls   *prometheus.CounterVec   // endpoint, errcode
	APILatency *prometheus.HistogramVec // endpoint
	Retries    *prometheus.CounterVec   // errcode
	BatchSize  prometheus.Histogram
	Latency    *prometheus.HistogramVec // stage
	Pending    *prometheus.GaugeVec     // consumer
	AckPending *prometheus.GaugeVec     // consumer
	Redelivers *prometheus.CounterVec   // stage
	Failed     *prometheus.CounterVec   // stage (the component that gave up), errcode
	// TokenRefreshes counts access-token fetches by result (TokenOK,
	// TokenError, TokenRefused).
	TokenRefreshes    *prometheus.CounterVec
	ReceivedToShipped prometheus.Histogram
}

// Results of fulfill_token_refreshes_total.
const (
	// TokenOK: stable_token answered a token.
	TokenOK = "ok"
	// TokenError: the stable_token call failed (transport, HTTP status or
	// a platform errcode such as a wrong secret or a missing IP whitelist).
	TokenError = "error"
	// TokenRefused: the platform rejected a token and no other could be had
	// without a failed call of its own: a fixed WECHAT_ACCESS_TOKEN, or
	// force_refresh used less than 30 s before.
	TokenRefused = "refused"
)

// NewMetrics registers the series on a fresh registry, with Go runtime and
// process collectors (go_goroutines, process_cpu_seconds_total,
// process_resident_memory_bytes, …).
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: r,
		EventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_events_in_total",
			Help: "Events consumed, by stage of the event."}, []string{"stage"}),
		EventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_events_out_total",
			Help: "Events published and acknowledged by JetStream, by stage."}, []string{"stage"}),
		APICalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_api_calls_total",
			Help: "Platform API calls by endpoint and errcode (-2: transport or decoding failure)."}, []string{"endpoint", "errcode"}),
		APILatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fulfill_api_call_seconds",
			Help: "Platform API call latency.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"endpoint"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_retries_total",
			Help: "Retries of platform calls, by the errcode that caused them."}, []string{"errcode"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fulfill_batch_size",
			Help: "Orders per batchGetOrder call.", Buckets: []float64{1, 5, 10, 25, 50, 75, 90, 95, 99, 100}}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fulfill_processing_seconds",
			Help:    "Time from an event's occurred_at to its handling being done, by stage handled.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}, []string{"stage"}),
		Pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fulfill_consumer_pending",
			Help: "Messages not yet delivered to the consumer (lag)."}, []string{"consumer"}),
		AckPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fulfill_consumer_ack_pending",
			Help: "Messages delivered to the consumer and not yet acknowledged."}, []string{"consumer"}),
		Redelivers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_redeliveries_total",
			Help: "Messages received again after a nak, a timeout or a crash, by stage."}, []string{"stage"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_failed_total",
			Help: "Terminal failed events stored, by the component that gave up (stage: ingest, enricher, shipper) and the errcode it recorded (0: none from the platform, e.g. a cancelled waybill or an unusable message)."},
			[]string{"stage", "errcode"}),
		TokenRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_token_refreshes_total",
			Help: "Access-token fetches from stable_token (cold cache, expiry, or after the platform rejected a token), by result: ok, error (the call failed), refused (a rejected token could not be replaced: a fixed token, or force_refresh throttled)."},
			[]string{"result"}),
		ReceivedToShipped: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fulfill_received_to_shipped_seconds",
			Help:    "Time from an order's received event (its occurred_at, carried in the enriched event) to its shipped event being stored, retries, waits on the merchant and re-drives included.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}}),
	}
	r.MustRegister(m.EventsIn, m.EventsOut, m.APICalls, m.APILatency, m.Retries, m.BatchSize, m.Latency,
		m.Pending, m.AckPending, m.Redelivers, m.Failed, m.TokenRefreshes, m.ReceivedToShipped)
	// Every result is exported from the start at 0, so the first failure
	// is an increase an alert sees, not a series appearing at 1.
	for _, r := range []string{TokenOK, TokenError, TokenRefused} {
		m.TokenRefreshes.WithLabelValues(r)
	}
	return m
}

// ObserveAPI records one platform call; it fits the clients' observer hooks.
func (m *Metrics) ObserveAPI(endpoint string, code int, d time.Duration) {
	m.APICalls.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	m.APILatency.WithLabelValues(endpoint).Observe(d.Seconds())
}

// ObserveToken records one stable_token call (wechat.WithTokenObserver): as
// a platform call, and as a token refresh by result.
func (m *Metrics) ObserveToken(ep wechat.Endpoint, code int, d time.Duration) {
	m.ObserveAPI(string(ep), code, d)
	result := TokenOK
	if code != 0 {
		result = TokenError
	}
	m.TokenRefreshes.WithLabelValues(result).Inc()
}

// ObserveStored counts a failed event (or dead letter) JetStream stored, by
// the component that gave up and its errcode; it fits
// pipeline.Publisher.OnStored and ignores every other event.
func (m *Metrics) ObserveStored(msg *nats.Msg) {
	var f events.Failed
	switch stage, _, _, _, err := events.ParseSubject(msg.Subject); {
	case err == nil && stage == events.StageFailed:
		if env, err := events.Decode(msg.Data); err == nil {
			_ = env.DecodeData(&f)
		}
	case msg.Subject == events.DeadLetterSubject:
		_ = json.Unmarshal(msg.Data, &f)
	default:
		return
	}
	stage := string(f.Stage)
	if !f.Stage.Valid() {
		stage = "unknown"
	}
	m.Failed.WithLabelValues(stage, strconv.Itoa(f.Errcode)).Inc()
}

// ObserveShipped records an order's time from received to shipped; a zero
// received time (an enriched event written before it was carried) is not
// measured.
func (m *Metrics) ObserveShipped(received, shipped time.Time) {
	if received.IsZero() {
		return
	}
	m.ReceivedToShipped.Observe(max(shipped.Sub(received), 0).Seconds())
}
