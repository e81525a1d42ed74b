package service

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

// Metrics are the Prometheus series every stage reports. Each binary has its
// own registry, so several can run in one process (fulfillctl up, tests).
// Labels are bounded sets (stage, consumer, endpoint, errcode, result,
// reason, and shop: a shop of the registry, else "unknown"): never an order
// id, an openid or a token.
type Metrics struct {
	Registry *prometheus.Registry

	EventsIn   *prometheus.CounterVec   // stage, shop
	EventsOut  *prometheus.CounterVec   // stage, shop
	APICalls   *prometheus.CounterVec   // endpoint, errcode, shop
	APILatency *prometheus.HistogramVec // endpoint, shop
	Retries    *prometheus.CounterVec   // errcode, shop
	// Parked counts messages the shipper put back for later without a
	// platform call, by reason (ParkLeaseTaken, ParkShopBusy,
	// ParkShopBackingOff) and shop.
	Parked     *prometheus.CounterVec
	BatchSize  prometheus.Histogram
	Latency    *prometheus.HistogramVec // stage, shop
	Pending    *prometheus.GaugeVec     // consumer
	AckPending *prometheus.GaugeVec     // consumer
	Redelivers *prometheus.CounterVec   // stage, shop
	Failed     *prometheus.CounterVec   // stage (the component that gave up), errcode, shop
	// TokenRefreshes counts access-token fetches by result (TokenOK,
	// TokenError, TokenRefused) and shop.
	TokenRefreshes    *prometheus.CounterVec
	ReceivedToShipped *prometheus.HistogramVec // shop
	// ShopState is 1 for each shop's state as the shipper sees it (ok,
	// backing_off, token_refused), 0 for the others.
	ShopState *prometheus.GaugeVec // shop, state
	// Pushes counts the platform's pushes by how they were answered
	// (PushStored, PushDuplicate, PushURLCheck, PushBadSignature, …);
	// LastPush is the time of each shop's last stored push.
	Pushes   *prometheus.CounterVec // shop, result
	LastPush *prometheus.GaugeVec   // shop

	// known tells the shops of the registry, so that a label is never
	// taken from a message's subject unchecked.
	known atomic.Pointer[func(string) bool]

	pushMu  sync.Mutex
	watched map[string]bool // shops whose last-push gauge runs
}

// UnknownShop is the shop label of a series whose shop is not in the
// registry (a poison message's subject, a shop removed meanwhile).
const UnknownShop = "unknown"

// KnowShops sets which shops the shop label may name; until it is called
// any valid shop id may.
func (m *Metrics) KnowShops(known func(string) bool) { m.known.Store(&known) }

// Shop is the shop label of shop: the id itself when it is a shop of the
// registry, else UnknownShop.
func (m *Metrics) Shop(shop string) string {
	if events.ValidateShopID(shop) != nil {
		return UnknownShop
	}
	if k := m.known.Load(); k != nil && !(*k)(shop) {
		return UnknownShop
	}
	return shop
}

// ShopOfSubject is the shop label of the message on subject.
func (m *Metrics) ShopOfSubject(subject string) string {
	_, _, shop, _, err := events.ParseSubject(subject)
	if err != nil {
		return UnknownShop
	}
	return m.Shop(shop)
}

// In counts an event consumed.
func (m *Metrics) In(stage events.Stage, shop string) {
	m.EventsIn.WithLabelValues(string(stage), m.Shop(shop)).Inc()
}

// Redelivered counts a message delivered again.
func (m *Metrics) Redelivered(stage events.Stage, shop string) {
	m.Redelivers.WithLabelValues(string(stage), m.Shop(shop)).Inc()
}

// Retry counts a retry of a platform call, by the errcode that caused it.
func (m *Metrics) Retry(shop, errcode string) {
	m.Retries.WithLabelValues(errcode, m.Shop(shop)).Inc()
}

// Reasons of fulfill_parked_total: why the shipper put a message back for
// later without calling the platform.
const (
	// ParkLeaseTaken: another copy of the order (a replica's, a replay's)
	// holds its lease.
	ParkLeaseTaken = "lease_taken"
	// ParkShopBusy: the order's shop had no call slot free in this replica.
	ParkShopBusy = "shop_busy"
	// ParkShopBackingOff: the order's shop backs off as a whole.
	ParkShopBackingOff = "shop_backing_off"
)

// Park counts a message put back for reason without a platform call.
func (m *Metrics) Park(shop, reason string) {
	m.Parked.WithLabelValues(reason, m.Shop(shop)).Inc()
}

// ExportParked exports every park reason of shop at 0, so that the first
// park is an increase that rate() sees.
func (m *Metrics) ExportParked(shop string) {
	for _, r := range []string{ParkLeaseTaken, ParkShopBusy, ParkShopBackingOff} {
		m.Parked.WithLabelValues(r, m.Shop(shop))
	}
}

// Processed records the time from an event's occurrence to its processing.
func (m *Metrics) Processed(stage, shop string, d time.Duration) {
	m.Latency.WithLabelValues(stage, m.Shop(shop)).Observe(d.Seconds())
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
			Help: "Events consumed, by stage of the event and shop."}, []string{"stage", "shop"}),
		EventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_events_out_total",
			Help: "Events published and acknowledged by JetStream, by stage and shop."}, []string{"stage", "shop"}),
		APICalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_api_calls_total",
			Help: "Platform API calls by endpoint and errcode (-2: transport or decoding failure)."}, []string{"endpoint", "errcode", "shop"}),
		APILatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fulfill_api_call_seconds",
			Help: "Platform API call latency.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"endpoint", "shop"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_retries_total",
			Help: "Retries of platform calls, by the errcode that caused them (-2: transport or decoding failure), and shop."}, []string{"errcode", "shop"}),
		Parked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_parked_total",
			Help: "Messages the shipper put back for later without a platform call, by reason (lease_taken: another replica or copy holds the order; shop_busy: the shop had no call slot free; shop_backing_off: the shop backs off as a whole) and shop."},
			[]string{"reason", "shop"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fulfill_batch_size",
			Help: "Orders per batchGetOrder call.", Buckets: []float64{1, 5, 10, 25, 50, 75, 90, 95, 99, 100}}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fulfill_processing_seconds",
			Help:    "Time from an event's occurred_at to its handling being done, by stage handled.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}, []string{"stage", "shop"}),
		Pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fulfill_consumer_pending",
			Help: "Messages not yet delivered to the consumer (lag)."}, []string{"consumer"}),
		AckPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fulfill_consumer_ack_pending",
			Help: "Messages delivered to the consumer and not yet acknowledged."}, []string{"consumer"}),
		Redelivers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_redeliveries_total",
			Help: "Messages received again after a nak, a timeout or a crash, by stage and shop."}, []string{"stage", "shop"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_failed_total",
			Help: "Terminal failed events stored, by the component that gave up (stage: ingest, enricher, shipper) and the errcode it recorded (0: none from the platform, e.g. a cancelled waybill or an unusable message)."},
			[]string{"stage", "errcode", "shop"}),
		TokenRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_token_refreshes_total",
			Help: "Access-token fetches from stable_token (cold cache, expiry, or after the platform rejected a token), by result: ok, error (the call failed), refused (a rejected token could not be replaced: a fixed token, or force_refresh throttled)."},
			[]string{"result", "shop"}),
		ReceivedToShipped: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fulfill_received_to_shipped_seconds",
			Help:    "Time from an order's received event (its occurred_at, carried in the enriched event) to its shipped event being stored, retries, waits on the merchant and re-drives included.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}}, []string{"shop"}),
		ShopState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fulfill_shop_state",
			Help: "1 for the state each shop is in as this shipper sees it (ok; backing_off: its platform fails, its orders are parked; token_refused: no access token can be had), 0 for the others."},
			[]string{"shop", "state"}),
		Pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fulfill_pushes_total",
			Help: "Order pushes from the platform by result: stored (then answered success), duplicate (stored before), url_check, bad_signature, not_encrypted, bad_ciphertext, wrong_appid, malformed, too_large, unusable (valid, but no order id of the grammar: answered success, not stored), store_failed (answered an error: the platform retries), not_configured."},
			[]string{"shop", "result"}),
		LastPush: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fulfill_push_last_stored_timestamp_seconds",
			Help: "Unix time of the last push stored for each shop: an alert compares it with the orders the shop's polling still finds."},
			[]string{"shop"}),
	}
	r.MustRegister(m.EventsIn, m.EventsOut, m.APICalls, m.APILatency, m.Retries, m.Parked, m.BatchSize, m.Latency,
		m.Pending, m.AckPending, m.Redelivers, m.Failed, m.TokenRefreshes, m.ReceivedToShipped, m.ShopState, m.Pushes, m.LastPush)
	return m
}

// ExportTokenResults exports every token-refresh result of shop at 0, so the
// first failure is an increase an alert sees, not a series appearing at 1.
func (m *Metrics) ExportTokenResults(shop string) {
	for _, r := range []string{TokenOK, TokenError, TokenRefused} {
		m.TokenRefreshes.WithLabelValues(r, m.Shop(shop))
	}
}

// ObserveAPI records one platform call of shop's account.
func (m *Metrics) ObserveAPI(shop, endpoint string, code int, d time.Duration) {
	shop = m.Shop(shop)
	m.APICalls.WithLabelValues(endpoint, strconv.Itoa(code), shop).Inc()
	m.APILatency.WithLabelValues(endpoint, shop).Observe(d.Seconds())
}

// ObserveToken is the stable_token observer (wechat.WithTokenObserver) of
// shop's account: each call counted as a platform call and as a token
// refresh by result.
func (m *Metrics) ObserveToken(shop string) func(ep wechat.Endpoint, code int, d time.Duration) {
	return func(ep wechat.Endpoint, code int, d time.Duration) {
		m.ObserveAPI(shop, string(ep), code, d)
		result := TokenOK
		if code != 0 {
			result = TokenError
		}
		m.TokenRefreshes.WithLabelValues(result, m.Shop(shop)).Inc()
	}
}

// ObservePublished counts an event JetStream stored; it fits
// pipeline.Publisher.OnPublished.
func (m *Metrics) ObservePublished(stage events.Stage, shop string) {
	m.EventsOut.WithLabelValues(string(stage), m.Shop(shop)).Inc()
}

// WatchPushes starts shop's last-push gauge at now, unless a push was
// stored already: the alert on a shop without pushes then counts from the
// moment push was configured, not from the epoch.
func (m *Metrics) WatchPushes(shop string) {
	m.pushMu.Lock()
	defer m.pushMu.Unlock()
	label := m.Shop(shop)
	if m.watched == nil {
		m.watched = map[string]bool{}
	}
	if !m.watched[label] {
		m.watched[label] = true
		m.LastPush.WithLabelValues(label).SetToCurrentTime()
	}
}

// Push counts a push of shop by result.
func (m *Metrics) Push(shop, result string) {
	m.Pushes.WithLabelValues(m.Shop(shop), result).Inc()
}

// SetShopState sets shop's state gauge: 1 for state, 0 for the others.
func (m *Metrics) SetShopState(shop, state string, states []string) {
	shop = m.Shop(shop)
	for _, s := range states {
		v := 0.0
		if s == state {
			v = 1
		}
		m.ShopState.WithLabelValues(shop, s).Set(v)
	}
}

// ObserveStored counts a failed event (or dead letter) JetStream stored, by
// the component that gave up and its errcode; it fits
// pipeline.Publisher.OnStored and ignores every other event.
func (m *Metrics) ObserveStored(msg *nats.Msg) {
	var f events.Failed
	shop := UnknownShop
	switch stage, _, sh, _, err := events.ParseSubject(msg.Subject); {
	case err == nil && stage == events.StageFailed:
		shop = m.Shop(sh)
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
	m.Failed.WithLabelValues(stage, strconv.Itoa(f.Errcode), shop).Inc()
}

// ObserveShipped records an order's time from received to shipped; a zero
// received time (an enriched event written before it was carried) is not
// measured.
func (m *Metrics) ObserveShipped(shop string, received, shipped time.Time) {
	if received.IsZero() {
		return
	}
	m.ReceivedToShipped.WithLabelValues(m.Shop(shop)).Observe(max(shipped.Sub(received), 0).Seconds())
}
