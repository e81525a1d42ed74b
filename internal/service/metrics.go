package service

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the Prometheus series every stage reports. Each binary has its
// own registry, so several can run in one process (fulfillctl up, tests).
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
}

// NewMetrics registers the series on a fresh registry, with Go runtime and
// process collectors.
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
	}
	r.MustRegister(m.EventsIn, m.EventsOut, m.APICalls, m.APILatency, m.Retries, m.BatchSize, m.Latency,
		m.Pending, m.AckPending, m.Redelivers)
	return m
}

// ObserveAPI records one platform call; it fits the clients' observer hooks.
func (m *Metrics) ObserveAPI(endpoint string, code int, d time.Duration) {
	m.APICalls.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	m.APILatency.WithLabelValues(endpoint).Observe(d.Seconds())
}
