package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fulfill/pipeline/pkg/clients/wechat/push"
)

// Push events the sandbox sends (order_info.order_id a bare JSON number).
const (
	EventOrderPay          = "channels_ec_order_pay"
	EventOrderWaitShipping = "channels_ec_order_wait_shipping"
	EventOrderCancel       = "channels_ec_order_cancel"
)

// Kinds of forged pushes (Config.ForgedPushes), sent in this order.
const (
	// ForgedBadSignature is sealed with another Token: its msg_signature
	// is not the shop's (a receiver answers 401).
	ForgedBadSignature = "bad_signature"
	// ForgedWrongAppID is signed and encrypted with the shop's Token and
	// EncodingAESKey, for another appid (ForgedAppID; 401).
	ForgedWrongAppID = "wrong_appid"
	// ForgedPlaintext is the message in clear, with no Encrypt and no
	// msg_signature, only the plain signature that does not cover the body
	// (400).
	ForgedPlaintext = "plaintext"
)

// ForgedAppID is the appid of ForgedWrongAppID pushes.
const ForgedAppID = "wxforgedappid0000"

// forgedKinds are the kinds in the order forged pushes take them.
var forgedKinds = []string{ForgedBadSignature, ForgedWrongAppID, ForgedPlaintext}

// WeChat's push delivery (the order callbacks' 重试规则, e.g. the
// channels_ec_order_new page of the WeChat Shop documentation): a push not
// answered within 5 s counts as failed and is pushed again after
// 0s/0s/10s/1min/5min/30min/60min/60min/60min, at most 10 pushes in all,
// about 3.6 h.
const (
	MaxPushAttempts        = 10
	DefaultPushTimeout     = 5 * time.Second
	DefaultPushConcurrency = 32
)

// pushRetrySchedule is the wait before each push after the first.
var pushRetrySchedule = []time.Duration{0, 0, 10 * time.Second, time.Minute, 5 * time.Minute,
	30 * time.Minute, time.Hour, time.Hour, time.Hour}

// PushRetrySchedule returns WeChat's waits before the second to the tenth
// push of a message not answered success (Config.PushTimeScale multiplies
// them): 0s, 0s, 10s, 1min, 5min, 30min, 60min, 60min, 60min (3 h 36 min 10 s
// in all).
func PushRetrySchedule() []time.Duration { return slices.Clone(pushRetrySchedule) }

// Push is one push delivery: a message POSTed to an app's PushURL, and POSTed
// again on WeChat's schedule until it is answered success (HTTP 200 with the
// body "success" or an empty body) or MaxPushAttempts POSTs were not.
// Forged pushes are POSTed once.
type Push struct {
	AppID      string
	OrderID    string
	Event      string // EventOrderPay, EventOrderWaitShipping or EventOrderCancel
	CreateTime int64  // the message's CreateTime: the same in every POST and every copy
	// Resend: the message was delivered before (a PushDuplicates copy, or
	// the wait_shipping sent again after the pay by PushReorder).
	Resend bool
	// Forged is the kind of a forged push (ForgedBadSignature…), "" for a
	// valid one.
	Forged    string
	FirstSent time.Time // when its first POST was sent (Config.Now, like Call.At); zero before
	Attempts  int       // POSTs answered or failed so far
	Answered  time.Time // when it was answered success; zero if it was not (yet)
	GaveUp    bool      // MaxPushAttempts POSTs were not answered success
	// Status is the HTTP status of the last POST's answer, 0 if there was
	// none (connection refused, timeout); Answer is its body (at most 64
	// bytes) or what went wrong.
	Status int
	Answer string
	done   bool
}

// Settled reports whether the delivery is over: answered success, given up,
// or (a forged push) POSTed.
func (p Push) Settled() bool { return p.done }

// PushStats counts an app's pushes (Stats.Pushes sums every app's).
type PushStats struct {
	Sent      int `json:"sent"`      // POSTs of valid pushes, every attempt and copy
	Succeeded int `json:"succeeded"` // deliveries answered success
	Failed    int `json:"failed"`    // POSTs not answered success (another status or body, timeout, no connection)
	Retried   int `json:"retried"`   // POSTs after a failed one of the same delivery
	GivenUp   int `json:"given_up"`  // deliveries abandoned after MaxPushAttempts POSTs
	// Cancelled counts the orders the buyer cancelled (status 250) before
	// their cancel push; CancelsTooLate the cancels not made because the
	// order was shipped already (then no cancel push is sent).
	Cancelled      int `json:"cancelled"`
	CancelsTooLate int `json:"cancels_too_late"`
	ForgedSent     int `json:"forged_sent"`
	ForgedRefused  int `json:"forged_refused"`  // answered, but not success: refused
	ForgedAccepted int `json:"forged_accepted"` // answered success: the receiver took a forged push
}

// Errors of StartPushes and PushesSettled.
var (
	ErrPushesStarted    = errors.New("sandbox: pushes already started")
	ErrPushesNotStarted = errors.New("sandbox: pushes not started (StartPushes)")
	ErrPushesStopped    = errors.New("sandbox: pushes stopped before every push was settled")
)

// appPush is an app's push plan; set by New, then read only.
type appPush struct {
	forged []forgedPlan
}

// forgedPlan is one forged push of an app.
type forgedPlan struct {
	kind, orderID string
}

// pushRun is the pushes being sent (StartPushes); its counters are guarded
// by Sandbox.mu.
type pushRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	client *http.Client
	sem    chan struct{} // a slot per POST in flight
	// starting has a slot per order whose pay push was not POSTed yet:
	// orders are started no faster than they are pushed, so all at once
	// does not mean a goroutine per order at once.
	starting chan struct{}
	pending  int  // deliveries planned and not settled
	stopped  bool // no new delivery starts
}

// validatePushes checks every app's push settings and the push options.
func (cfg Config) validatePushes() error {
	for _, c := range []struct {
		name string
		v    float64
		max  float64
	}{
		{"PushRate", cfg.PushRate, math.Inf(1)},
		{"PushTimeScale", cfg.PushTimeScale, math.Inf(1)},
		{"PushDuplicates", cfg.PushDuplicates, 1},
		{"PushReorder", cfg.PushReorder, 1},
	} {
		if !(c.v >= 0 && c.v <= c.max) {
			return fmt.Errorf("sandbox: %s %v out of range", c.name, c.v)
		}
	}
	if cfg.PushTimeout < 0 || cfg.PushConcurrency < 0 || cfg.CancelBeforeShipping < 0 || cfg.ForgedPushes < 0 {
		return errors.New("sandbox: PushTimeout, PushConcurrency, CancelBeforeShipping and ForgedPushes must not be negative")
	}
	apps := cfg.Apps
	if len(apps) == 0 {
		apps = []App{{PushAESKey: cfg.PushAESKey, PushURL: cfg.PushURL}}
	}
	for k, a := range apps {
		if a.PushAESKey != "" {
			if _, err := push.Encrypt(a.PushAESKey, nil, "", bytes.NewReader(make([]byte, 16))); err != nil {
				return fmt.Errorf("sandbox: app %d: PushAESKey: %w", k, err)
			}
		}
		if a.PushURL != "" {
			u, err := url.Parse(a.PushURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("sandbox: app %d: PushURL %q is not an http(s) URL", k, a.PushURL)
			}
		}
	}
	return nil
}

// planPushes draws each push app's plan from the seed: which orders'
// pushes are duplicated or reordered, which orders the buyer cancels, and
// the forged pushes. Only New calls it, before the Sandbox is shared; apps
// without a PushURL are left as they are.
func (s *Sandbox) planPushes() {
	for _, a := range s.apps {
		if a.push == nil {
			continue
		}
		r := mrand.New(mrand.NewPCG(uint64(s.cfg.Seed), appStream(streamPush, a.idx)))
		var idx []int // the app's orders in s.scenario
		for i, so := range s.scenario {
			if so.AppID == a.id() {
				idx = append(idx, i)
			}
		}
		n := len(idx)
		dup := assignShare(r, n, s.cfg.PushDuplicates)
		reorder := assignShare(r, n, s.cfg.PushReorder)
		var plain []int
		for j, i := range idx {
			so := &s.scenario[i]
			so.Push.Duplicate, so.Push.Reorder = dup[j], reorder[j]
			if so.Fault == FaultNone {
				plain = append(plain, i)
			}
		}
		for _, p := range r.Perm(len(plain))[:min(len(plain), s.cfg.CancelBeforeShipping)] {
			so := &s.scenario[plain[p]]
			so.Push.Cancel, so.Fault, so.Expect = true, FaultBuyerCancelled, OutcomeFailed
		}
		var ship []string // forged pushes cancel orders that must ship
		for _, i := range idx {
			if s.scenario[i].Expect == OutcomeShipped {
				ship = append(ship, s.scenario[i].OrderID)
			}
		}
		if len(ship) == 0 {
			ship = []string{a.orderID(AppOrderIDSpan - 1)} // no such order
		}
		for j := range s.cfg.ForgedPushes {
			a.push.forged = append(a.push.forged, forgedPlan{kind: forgedKinds[j%len(forgedKinds)], orderID: ship[r.IntN(len(ship))]})
		}
	}
}

// pushOrder is what the pushes of one order need.
type pushOrder struct {
	id, openid string
	plan       PushPlan
}

// StartPushes starts sending the pushes of every app with a PushURL and
// returns: the pay push of each of the app's orders, at Config.PushRate in
// the order of their update_time (all at once if 0), with the duplicates,
// reorderings, cancels and forged pushes of the Config, each retried on
// WeChat's schedule (PushRetrySchedule, scaled by PushTimeScale) until it is
// answered success. Orders added later with AddOrder are pushed at once.
// Sending stops when ctx is done or at StopPushes. Pushes, FirstPush and
// Stats tell what was sent and answered; PushesSettled waits for the end.
// Without an app with a PushURL it does nothing. It can be called once.
func (s *Sandbox) StartPushes(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return ErrPushesStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = s.cfg.PushConcurrency
	run := &pushRun{
		ctx:    ctx,
		cancel: cancel,
		client: &http.Client{Transport: tr, Timeout: s.cfg.PushTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		sem:      make(chan struct{}, s.cfg.PushConcurrency),
		starting: make(chan struct{}, s.cfg.PushConcurrency),
	}
	s.run = run
	plans := make(map[string]PushPlan, len(s.scenario))
	for _, so := range s.scenario {
		plans[so.OrderID] = so.Push
	}
	for _, a := range s.apps {
		if a.push == nil {
			continue
		}
		orders := make([]pushOrder, 0, len(a.byUpdate))
		for _, o := range a.byUpdate {
			p := pushOrder{id: o.id, openid: o.openid, plan: plans[o.id]}
			orders = append(orders, p)
			run.pending += 1 + b2i(p.plan.Duplicate) + 2*b2i(p.plan.Reorder) + b2i(p.plan.Cancel)
		}
		run.pending += len(a.push.forged)
		run.wg.Add(1)
		go s.paceApp(run, a, orders)
	}
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		run.stopped = true
		s.notifyLocked()
		s.mu.Unlock()
	})
	s.notifyLocked()
	return nil
}

// b2i is 1 for true.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// StopPushes stops sending pushes and returns once nothing is being sent;
// deliveries not settled are abandoned (PushesSettled then answers
// ErrPushesStopped). It may be called at any time, more than once.
func (s *Sandbox) StopPushes() {
	s.mu.Lock()
	run := s.run
	if run != nil {
		run.stopped = true
		s.notifyLocked()
	}
	s.mu.Unlock()
	if run == nil {
		return
	}
	run.cancel()
	run.wg.Wait()
	run.client.CloseIdleConnections()
}

// PushesSettled waits until every push planned so far was answered success
// or given up (and every forged push was sent), or ctx is done (ctx.Err()).
// It answers nil at once when no app has a PushURL, ErrPushesNotStarted
// before StartPushes and ErrPushesStopped when the pushes were stopped first.
// An order added later makes the pushes unsettled again until it is pushed.
func (s *Sandbox) PushesSettled(ctx context.Context) error {
	var err error
	werr := s.WaitUntil(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case !slices.ContainsFunc(s.apps, func(a *appState) bool { return a.push != nil }):
			err = nil
		case s.run == nil:
			err = ErrPushesNotStarted
		case s.run.pending == 0:
			err = nil
		case s.run.stopped:
			err = ErrPushesStopped
		default:
			return false
		}
		return true
	})
	if werr != nil {
		return werr
	}
	return err
}

// Pushes returns every push delivery started so far, in the order they were
// started: per order its pay push (and its copies, reordered and cancel
// pushes), and the forged pushes.
func (s *Sandbox) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Push, len(s.pushes))
	for i, p := range s.pushes {
		out[i] = *p
	}
	return out
}

// FirstPush returns when the first valid push of the order (its pay push,
// or the wait_shipping sent before it by PushReorder) was first POSTed
// (Config.Now, the clock of Call.At): with the At of its delivery/send call,
// the time from push to shipment. ok is false while no push of the order
// was sent.
func (s *Sandbox) FirstPush(orderID string) (t time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok = s.firstPush[orderID]
	return t, ok
}

// pushStatsLocked returns the app's and the total push counters. s.mu must
// be held.
func (s *Sandbox) pushStatsLocked(a *appState) [2]*PushStats {
	return [2]*PushStats{&s.rec.stats.Pushes, &s.rec.byApp[a.idx].Pushes}
}

// paceApp starts the pay pushes of an app's orders at the configured rate
// (from now), with its forged pushes spread among them.
func (s *Sandbox) paceApp(run *pushRun, a *appState, orders []pushOrder) {
	defer run.wg.Done()
	start := time.Now()
	forged := a.push.forged
	n := len(orders)
	next := 0 // forged push j goes before the order at (j+1)·n/(F+1)
	sendForged := func(upTo int) {
		for ; next < len(forged) && (next+1)*n/(len(forged)+1) <= upTo; next++ {
			run.wg.Add(1)
			go s.sendForged(run, a, forged[next])
		}
	}
	for i, o := range orders {
		if s.cfg.PushRate > 0 {
			due := start.Add(time.Duration(float64(i) / s.cfg.PushRate * float64(time.Second)))
			if !delay(run.ctx, time.Until(due)) {
				return
			}
		} else if run.ctx.Err() != nil {
			return
		}
		sendForged(i)
		select {
		case run.starting <- struct{}{}:
		case <-run.ctx.Done():
			return
		}
		run.wg.Add(1)
		go s.pushOrderEvents(run, a, o, true)
	}
	sendForged(n)
}

// pushAddedLocked sends the pay push of an order AddOrder added, when
// pushes are running for its app. s.mu must be held.
func (s *Sandbox) pushAddedLocked(a *appState, orderID string) {
	run := s.run
	o, ok := s.orders[orderID]
	if run == nil || run.stopped || a.push == nil || !ok {
		return
	}
	run.pending++
	run.wg.Add(1)
	go s.pushOrderEvents(run, a, pushOrder{id: o.id, openid: o.openid}, false)
}

// pushOrderEvents sends an order's pushes in their order: the early
// wait_shipping (PushReorder), the pay, its copy (PushDuplicates), the
// wait_shipping again; each next one once the previous one's first POST
// was answered. A cancelled order's cancel follows once the pay push is
// settled. slot: it holds a run.starting slot, given back once the pay
// push was POSTed.
func (s *Sandbox) pushOrderEvents(run *pushRun, a *appState, o pushOrder, slot bool) {
	defer run.wg.Done()
	release := func() {
		if slot {
			<-run.starting
			slot = false
		}
	}
	defer release()
	pay := s.now().Unix()
	later := pay + 1 // the events after the payment are dated after it
	steps := []struct {
		event  string
		ct     int64
		resend bool
		on     bool
	}{
		{EventOrderWaitShipping, later, false, o.plan.Reorder},
		{EventOrderPay, pay, false, true},
		{EventOrderPay, pay, true, o.plan.Duplicate},
		{EventOrderWaitShipping, later, true, o.plan.Reorder},
	}
	var payDone <-chan struct{}
	for _, st := range steps {
		if !st.on {
			continue
		}
		d := s.startDelivery(run, a, o, st.event, st.ct, 0, st.resend)
		if st.event == EventOrderPay && !st.resend {
			payDone = d.done
		}
		if !wait(run.ctx, d.first) {
			return
		}
		if st.event == EventOrderPay {
			release()
		}
	}
	if !o.plan.Cancel || !wait(run.ctx, payDone) {
		return
	}
	s.mu.Lock()
	ord, ok := s.orders[o.id]
	cancel := ok && ord.app == a && ord.status == OrderStatusAwaitingShipment
	for _, ps := range s.pushStatsLocked(a) {
		if cancel {
			ps.Cancelled++
		} else {
			ps.CancelsTooLate++
		}
	}
	if cancel {
		a.removeByUpdate(ord)
		ord.status = OrderStatusCancelled
		ord.updateTime = max(s.now().Unix(), ord.updateTime)
		a.insertByUpdate(ord)
	} else {
		run.pending--
	}
	ct := max(s.now().Unix(), later)
	s.notifyLocked()
	s.mu.Unlock()
	if cancel {
		s.startDelivery(run, a, o, EventOrderCancel, ct, 1, false)
	}
}

// delivery is a push being delivered.
type delivery struct {
	rec   *Push         // guarded by s.mu
	first chan struct{} // closed once its first POST was answered (or failed)
	done  chan struct{} // closed once it is settled (or abandoned)
}

// startDelivery starts delivering one valid push of an order.
func (s *Sandbox) startDelivery(run *pushRun, a *appState, o pushOrder, event string, ct int64, cancelType int, resend bool) *delivery {
	d := &delivery{
		rec:   &Push{AppID: a.id(), OrderID: o.id, Event: event, CreateTime: ct, Resend: resend},
		first: make(chan struct{}),
		done:  make(chan struct{}),
	}
	msg := s.pushMessage(a, o, event, ct, cancelType)
	s.mu.Lock()
	s.pushes = append(s.pushes, d.rec)
	s.mu.Unlock()
	run.wg.Add(1)
	go s.deliver(run, a, d, msg, o.openid)
	return d
}

// deliver POSTs a push until it is answered success, on WeChat's schedule.
func (s *Sandbox) deliver(run *pushRun, a *appState, d *delivery, msg []byte, openid string) {
	defer run.wg.Done()
	defer close(d.done)
	first := d.first
	defer func() {
		if first != nil {
			close(first)
		}
	}()
	keys := s.pushKeys(a)
	for attempt := 1; attempt <= MaxPushAttempts; attempt++ {
		if attempt > 1 && !delay(run.ctx, time.Duration(float64(pushRetrySchedule[attempt-2])*s.cfg.PushTimeScale)) {
			return
		}
		if !acquire(run) {
			return
		}
		s.mu.Lock()
		if attempt == 1 {
			d.rec.FirstSent = s.now()
			if t, seen := s.firstPush[d.rec.OrderID]; !seen || d.rec.FirstSent.Before(t) {
				s.firstPush[d.rec.OrderID] = d.rec.FirstSent
			}
		}
		s.mu.Unlock()
		q, body, err := keys.Seal(msg, s.pushTimestamp(), pushNonce(), rand.Reader)
		ans, stopped := s.postPush(run, a, q, body, openid, err)
		if stopped {
			return // this POST counts for nothing
		}
		ok := ans.success
		s.mu.Lock()
		rec := d.rec
		rec.Attempts++
		rec.Status, rec.Answer = ans.status, ans.body
		settled := ok || attempt == MaxPushAttempts
		for _, ps := range s.pushStatsLocked(a) {
			ps.Sent++
			if attempt > 1 {
				ps.Retried++
			}
			switch {
			case ok:
				ps.Succeeded++
			case settled:
				ps.Failed++
				ps.GivenUp++
			default:
				ps.Failed++
			}
		}
		if ok {
			rec.Answered = s.now()
		}
		if settled {
			rec.GaveUp, rec.done = !ok, true
			run.pending--
		}
		s.notifyLocked()
		s.mu.Unlock()
		if first != nil {
			close(first)
			first = nil
		}
		if settled {
			return
		}
	}
}

// sendForged POSTs one forged push, once, and records the answer.
func (s *Sandbox) sendForged(run *pushRun, a *appState, f forgedPlan) {
	defer run.wg.Done()
	s.mu.Lock()
	openid := ""
	if o, ok := s.orders[f.orderID]; ok {
		openid = o.openid
	}
	rec := &Push{AppID: a.id(), OrderID: f.orderID, Event: EventOrderCancel, CreateTime: s.now().Unix(), Forged: f.kind}
	s.pushes = append(s.pushes, rec)
	s.mu.Unlock()
	o := pushOrder{id: f.orderID, openid: openid}
	msg := s.pushMessage(a, o, EventOrderCancel, rec.CreateTime, 1)
	ts, nonce := s.pushTimestamp(), pushNonce()
	keys := s.pushKeys(a)
	var q url.Values
	var body []byte
	var err error
	switch f.kind {
	case ForgedBadSignature:
		keys.Token += "forged"
		q, body, err = keys.Seal(msg, ts, nonce, rand.Reader)
	case ForgedWrongAppID:
		keys.AppID = ForgedAppID
		q, body, err = keys.Seal(msg, ts, nonce, rand.Reader)
	default: // ForgedPlaintext
		q = url.Values{"signature": {push.Sign(keys.Token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
		body = msg
	}
	if !acquire(run) {
		return
	}
	s.mu.Lock()
	rec.FirstSent = s.now()
	s.mu.Unlock()
	ans, stopped := s.postPush(run, a, q, body, openid, err)
	if stopped {
		return
	}
	s.mu.Lock()
	rec.Attempts, rec.Status, rec.Answer, rec.done = 1, ans.status, ans.body, true
	if ans.success {
		rec.Answered = s.now()
	}
	for _, ps := range s.pushStatsLocked(a) {
		ps.ForgedSent++
		switch {
		case ans.success:
			ps.ForgedAccepted++
		case ans.answered:
			ps.ForgedRefused++
		}
	}
	run.pending--
	s.notifyLocked()
	s.mu.Unlock()
}

// pushAnswer is what a POST of a push got.
type pushAnswer struct {
	status   int    // HTTP status, 0 without an answer
	body     string // the answer's body (at most 64 bytes) or what went wrong
	answered bool   // an HTTP answer came
	success  bool   // HTTP 200 with "success" or an empty body
}

// postPush POSTs a sealed push (unless sealing failed: err) with the
// buyer's openid and gives back the run.sem slot taken for it; stopped
// says the run ended meanwhile.
func (s *Sandbox) postPush(run *pushRun, a *appState, q url.Values, body []byte, openid string, err error) (ans pushAnswer, stopped bool) {
	if err == nil {
		q.Set("openid", openid)
		ans.status, ans.body, err = s.post(run, a, q, body)
	}
	<-run.sem
	if run.ctx.Err() != nil {
		return pushAnswer{}, true
	}
	ans.answered = err == nil
	ans.success = ans.answered && ans.status == http.StatusOK && (ans.body == "success" || ans.body == "")
	if err != nil {
		ans.body = err.Error()
	}
	ans.body = limit(ans.body, 64)
	return ans, false
}

// pushTimestamp is the timestamp of a push's query: the sandbox clock's
// Unix seconds.
func (s *Sandbox) pushTimestamp() string { return strconv.FormatInt(s.now().Unix(), 10) }

// pushNonce is the nonce of a push's query: up to ten digits, as WeChat's.
func pushNonce() string { return strconv.FormatUint(mrand.Uint64N(1e10), 10) }

// pushKeys are the app's push keys, as WeChat holds them.
func (s *Sandbox) pushKeys(a *appState) push.Keys {
	return push.Keys{Token: a.cfg.PushToken, AESKey: a.cfg.PushAESKey, AppID: a.cfg.AppID}
}

// post POSTs a push to the app's PushURL (its own query kept) and returns
// the answer's status and trimmed body.
func (s *Sandbox) post(run *pushRun, a *appState, q url.Values, body []byte) (int, string, error) {
	u, err := url.Parse(a.cfg.PushURL)
	if err != nil {
		return 0, "", err
	}
	all := u.Query()
	for k, v := range q {
		all[k] = v
	}
	u.RawQuery = all.Encode()
	req, err := http.NewRequestWithContext(run.ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := run.client.Do(req)
	if err != nil {
		return 0, "", pushError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return 0, "", pushError(err)
	}
	return resp.StatusCode, string(bytes.TrimSpace(b)), nil
}

// pushError names a failed POST without its URL (which carries the
// signatures).
func pushError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("timeout: no answer in time")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// pushMessage is the JSON of an order message as WeChat pushes it (the
// order id a bare number when it is all digits).
func (s *Sandbox) pushMessage(a *appState, o pushOrder, event string, ct int64, cancelType int) []byte {
	type orderInfo struct {
		OrderID    json.RawMessage `json:"order_id"`
		CancelType int             `json:"cancel_type,omitempty"`
	}
	b, _ := json.Marshal(struct { // only strings, numbers and raw ids: never fails
		ToUserName   string    `json:"ToUserName"`
		FromUserName string    `json:"FromUserName"`
		CreateTime   int64     `json:"CreateTime"`
		MsgType      string    `json:"MsgType"`
		Event        string    `json:"Event"`
		OrderInfo    orderInfo `json:"order_info"`
	}{pushUserName(a.id()), o.openid, ct, "event", event, orderInfo{idJSON(o.id, true), cancelType}})
	return b
}

// pushUserName is the shop's ToUserName: "gh_" and 12 hex digits of its
// appid's sha1.
func pushUserName(appID string) string {
	sum := sha1.Sum([]byte(appID))
	return "gh_" + hex.EncodeToString(sum[:6])
}

// wait waits for ch or ctx; it reports whether ch was closed.
func wait(ctx context.Context, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// acquire takes a slot of run's concurrency, unless the run stops first.
func acquire(run *pushRun) bool {
	select {
	case run.sem <- struct{}{}:
		return true
	case <-run.ctx.Done():
		return false
	}
}

// limit cuts s to n bytes at most.
func limit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
