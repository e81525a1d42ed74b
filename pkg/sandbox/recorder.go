package sandbox

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// MaxRecordedCalls bounds the calls Calls keeps (the most recent ones); Stats counts
// every call regardless.
const MaxRecordedCalls = 100_000

// Call is one request the sandbox answered.
type Call struct {
	Endpoint string    // endpoint name, e.g. "delivery/send"
	At       time.Time // arrival (Config.Now)
	Body     []byte    // request body as received (shared: do not modify; a stable_token body holds the app secret)
	OrderIDs []string  // order ids the call carried (vv-tool: the tid)
	// AppID is the app the call was made for: the app its access_token was issued
	// to (business calls), the appid it named (stable_token, token) or the app of
	// its vv-tool token; "" if none.
	AppID string
	// Code is the errcode (vv-tool: code) answered, minus the HTTP status for a
	// fault's raw answer, or CodeClientGone when the client left before the answer.
	Code int
}

// Stats counts what the sandbox saw, over every app; ByApp splits some of it by app.
// Maps are keyed by endpoint name.
type Stats struct {
	Calls    map[string]int         `json:"calls"`    // per endpoint
	ErrCodes map[string]map[int]int `json:"errcodes"` // per endpoint, per answered errcode (0 included)

	SuccessfulSends int `json:"successful_sends"` // delivery/send answered 0
	DuplicateSends  int `json:"second_shipments"` // delivery/send answered 109001 (order already shipped)
	// ConcurrentSends counts delivery/send calls for an order while another call for it
	// was in flight (answered 100003).
	ConcurrentSends int `json:"concurrent_sends"`
	// ForceRefreshTooSoon counts stable_token calls with force_refresh=true within 30 s
	// of the previous one (answered normally).
	ForceRefreshTooSoon int `json:"force_refresh_too_soon"`

	MaxBatchSize int `json:"max_batch_size"`   // largest batchGetOrder order_list seen
	BatchOver100 int `json:"batches_over_100"` // batchGetOrder calls with more than 100 items (answered 40097)

	VVMaxPerSecond   int `json:"vvtool_max_per_second"`  // most vv-tool requests seen in any sliding second of one account (token)
	VVRateViolations int `json:"vvtool_rate_violations"` // vv-tool requests beyond 10 in a sliding second of their account (answered code 202)

	ListWindowTooLong int `json:"list_window_too_long"` // order/list/get with a time range over 7 days (answered 40097)
	NextKeyMismatch   int `json:"next_key_mismatches"`  // order/list/get answered 606006

	// Pushes counts the pushes sent to the apps' PushURLs (StartPushes).
	Pushes PushStats `json:"pushes,omitzero"`

	// ByApp has an entry for every app, keyed by appid: the calls made for it
	// (see Call.AppID) and its share of the counters above.
	ByApp map[string]AppStats `json:"by_app"`
}

// AppStats is one app's share of Stats.
type AppStats struct {
	Calls               map[string]int `json:"calls"` // per endpoint, calls made for the app
	SuccessfulSends     int            `json:"successful_sends"`
	DuplicateSends      int            `json:"second_shipments"`
	ConcurrentSends     int            `json:"concurrent_sends"`
	ForceRefreshTooSoon int            `json:"force_refresh_too_soon"`
	VVMaxPerSecond      int            `json:"vvtool_max_per_second"`  // of the app's vv-tool account
	VVRateViolations    int            `json:"vvtool_rate_violations"` // of the app's vv-tool account
	Pushes              PushStats      `json:"pushes,omitzero"`        // the pushes sent to the app's PushURL
}

// appStatsLocked is the app's counters; for no app (nil), a throwaway. s.mu must be
// held.
func (s *Sandbox) appStatsLocked(a *appState) *AppStats {
	if a == nil {
		return &AppStats{}
	}
	return s.rec.byApp[a.idx]
}

// Mistakes is one line of what the real platform would have punished, for
// a person: concurrent sends, second shipments, batches over 100, windows
// over 7 days, next_key mismatches, force_refresh abuse, vv-tool bursts.
func (st Stats) Mistakes() string {
	return fmt.Sprintf("concurrent sends %d, second shipments (109001) %d, batches over 100 %d, list windows over 7 days %d, next_key mismatches %d, force_refresh within 30 s %d, vv-tool requests over 10/s %d",
		st.ConcurrentSends, st.DuplicateSends, st.BatchOver100, st.ListWindowTooLong, st.NextKeyMismatch, st.ForceRefreshTooSoon, st.VVRateViolations)
}

// recorder keeps the calls and the counters; guarded by Sandbox.mu.
type recorder struct {
	calls []Call
	stats Stats
	byApp []*AppStats // per app index; copied into Stats.ByApp by Stats
}

func newRecorder() recorder {
	return recorder{stats: Stats{Calls: make(map[string]int), ErrCodes: make(map[string]map[int]int)}}
}

// recordLocked records an answered exchange. s.mu must be held.
func (s *Sandbox) recordLocked(x *exchange, code int) {
	st := &s.rec.stats
	st.Calls[x.ep]++
	if st.ErrCodes[x.ep] == nil {
		st.ErrCodes[x.ep] = make(map[int]int)
	}
	st.ErrCodes[x.ep][code]++
	if x.app != nil {
		s.rec.byApp[x.app.idx].Calls[x.ep]++
	}
	s.rec.calls = append(s.rec.calls, Call{Endpoint: x.ep, At: x.at, Body: x.body, OrderIDs: x.ids, AppID: x.app.id(), Code: code})
	if len(s.rec.calls) >= 2*MaxRecordedCalls {
		s.rec.calls = slices.Clone(s.rec.calls[len(s.rec.calls)-MaxRecordedCalls:])
	}
	s.notifyLocked()
}

// notifyLocked wakes every WaitUntil. s.mu must be held.
func (s *Sandbox) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Calls returns the recorded calls (at most MaxRecordedCalls, oldest first).
func (s *Sandbox) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.rec.calls
	if len(c) > MaxRecordedCalls {
		c = c[len(c)-MaxRecordedCalls:]
	}
	return slices.Clone(c)
}

// Stats returns a copy of the counters.
func (s *Sandbox) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.rec.stats
	st.Calls = maps.Clone(st.Calls)
	st.ErrCodes = make(map[string]map[int]int, len(s.rec.stats.ErrCodes))
	for ep, m := range s.rec.stats.ErrCodes {
		st.ErrCodes[ep] = maps.Clone(m)
	}
	st.ByApp = make(map[string]AppStats, len(s.apps))
	for _, a := range s.apps {
		as := *s.rec.byApp[a.idx]
		as.Calls = maps.Clone(as.Calls)
		st.ByApp[a.id()] = as
	}
	return st
}

// WaitUntil blocks until cond returns true or ctx is done (returning ctx.Err()). cond is
// evaluated now and again after every change of the sandbox's state (a call arriving
// in delivery/send, any call answered, a fault injected, an order added); it runs
// without the sandbox's lock, so it may call any Sandbox method. It lets tests wait
// for an effect without sleeping, e.g.
//
//	sb.WaitUntil(ctx, func() bool { return sb.Stats().SuccessfulSends == n })
func (s *Sandbox) WaitUntil(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
