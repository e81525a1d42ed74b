package shipper

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// fakeSender answers delivery/send from a script, one error per call (nil:
// success), the last one repeated; before each call it runs beforeCall.
type fakeSender struct {
	mu         sync.Mutex
	script     []error
	calls      int
	beforeCall func(call int)
}

func (f *fakeSender) SendDelivery(_ context.Context, req wechat.SendDeliveryRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.beforeCall != nil {
		f.beforeCall(f.calls)
	}
	if len(f.script) == 0 {
		return nil
	}
	return f.script[min(f.calls, len(f.script))-1]
}

// fakeRecord is the order's record: its latest event and sequence per
// stage.
type fakeRecord struct {
	mu   sync.Mutex
	last map[events.Stage]recorded
	err  error
}

type recorded struct {
	env *events.Envelope
	seq uint64
}

func (r *fakeRecord) Last(_ context.Context, stage events.Stage, _, _ string) (*events.Envelope, uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, 0, r.err
	}
	rec := r.last[stage]
	return rec.env, rec.seq, nil
}

func (r *fakeRecord) set(stage events.Stage, env *events.Envelope, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[events.Stage]recorded{}
	}
	r.last[stage] = recorded{env, seq}
}

// fakeLease is valid until invalid is set; Renew fails while renewErr is.
type fakeLease struct {
	invalid  bool
	renewErr error
	renewed  int
}

func (l *fakeLease) Valid() bool { return !l.invalid }
func (l *fakeLease) Renew(context.Context) error {
	l.renewed++
	if l.renewErr != nil {
		return l.renewErr
	}
	l.invalid = false
	return nil
}
func (l *fakeLease) Release(context.Context) error { return nil }

func apiErr(code int) error {
	return &wechat.APIError{Endpoint: wechat.EndpointDeliverySend, Code: code, Msg: "msg " + strconv.Itoa(code), HTTPStatus: http.StatusOK}
}

// input is the enriched event a test ships, at stream sequence 100 of a
// chain whose correlation id is the received event's.
func input(t *testing.T) (*events.Envelope, *events.Enriched) {
	t.Helper()
	rcv, err := events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: events.SourceChannels, OrderID: "3704612354559743232",
		Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	data := events.Enriched{DeliveryID: "SF", WaybillID: "SF100", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}
	enr, err := rcv.Next(events.StageEnriched, data, t0)
	if err != nil {
		t.Fatal(err)
	}
	return enr, &data
}

// fakeWaits dates an order's first waiting answer: at, if set, else the
// first time it is asked; err, if set, is the bucket failing.
type fakeWaits struct {
	at    time.Time
	err   error
	asked int
}

func (w *fakeWaits) FirstWait(_ context.Context, _ uint64, now time.Time) (time.Time, error) {
	w.asked++
	if w.err != nil {
		return time.Time{}, w.err
	}
	if w.at.IsZero() {
		w.at = now
	}
	return w.at, nil
}

func newTestShipper(sender Sender, rec Record) *Shipper {
	return New(Options{Concurrency: 1, BackoffInitial: time.Millisecond, BackoffMax: 2 * time.Millisecond,
		MaxElapsed: time.Minute, WaitDelay: 10 * time.Minute, WaitMaxAttempts: 144, Heartbeat: 100 * time.Millisecond},
		func(string) (Sender, error) { return sender, nil }, nil, rec, nil, zerolog.Nop(), service.NewMetrics(), nil)
}

// TestShipClassification runs ship, the decision a shipper makes for one
// delivery, against every class of platform answer and every state of the
// order's record and lease. No NATS: a fake platform, record and lease.
func TestShipClassification(t *testing.T) {
	env, data := input(t)
	otherChain, err := events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageFailed, Source: events.SourceAPI, OrderID: env.OrderID,
		Data: events.Failed{Stage: events.ComponentEnricher}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	sameChainFailed, err := env.Next(events.StageFailed, events.Failed{Stage: events.ComponentShipper}, t0)
	if err != nil {
		t.Fatal(err)
	}
	shippedElsewhere, err := env.Copy("replay:x", t0)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageFailed, Source: events.SourceChannels, OrderID: env.OrderID,
		Data: events.Failed{Stage: events.ComponentIngest, CancelType: 1, Reason: "cancelled by the buyer (cancel_type 1)"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := shippedElsewhere.Next(events.StageShipped, events.Shipped{DeliveryID: "SF", WaybillID: "SF100", Attempts: 1}, t0)
	if err != nil {
		t.Fatal(err)
	}

	type want struct {
		calls         int          // -1: any number above 1
		stage         events.Stage // terminal event, "" for none
		expectSeq     string       // Nats-Expected-Last-Subject-Sequence of it
		attempts      int
		already       bool
		errcode       int
		reasonHas     string
		retry         time.Duration // exact retry delay, or
		retryAny      bool          // any retry delay
		settledHas    string
		errmsgHas     string
		leaseRenewals int
	}
	tests := []struct {
		name       string
		script     []error
		delivered  uint64
		age        time.Duration // since the message was stored
		waited     time.Duration // since the first waiting answer (0: none yet)
		waitsErr   error         // the wait bucket fails
		maxElapsed time.Duration
		record     func(r *fakeRecord)
		beforeCall func(r *fakeRecord, call int)
		lease      *fakeLease
		want       want
	}{
		{name: "ok", script: []error{nil},
			want: want{calls: 1, stage: events.StageShipped, expectSeq: "0", attempts: 1}},
		{name: "109001 already shipped is success", script: []error{apiErr(109001)},
			want: want{calls: 1, stage: events.StageShipped, expectSeq: "0", attempts: 1, already: true}},
		{name: "transient codes are retried", script: []error{apiErr(-1), apiErr(100003), apiErr(268545009), nil},
			want: want{calls: 4, stage: events.StageShipped, expectSeq: "0", attempts: 1}},
		{name: "HTTP 5xx and timeouts are retried", script: []error{&wechat.APIError{Endpoint: wechat.EndpointDeliverySend, HTTPStatus: 502}, context.DeadlineExceeded, nil},
			want: want{calls: 3, stage: events.StageShipped, attempts: 1, expectSeq: "0"}},
		{name: "a token the client could not renew backs off", script: []error{apiErr(40001), nil},
			want: want{calls: 2, stage: events.StageShipped, attempts: 1, expectSeq: "0"}},
		{name: "attempts count earlier deliveries", script: []error{nil}, delivered: 3,
			want: want{calls: 1, stage: events.StageShipped, attempts: 3, expectSeq: "0"}},
		{name: "transient past SHIP_MAX_ELAPSED fails", script: []error{apiErr(45011)}, maxElapsed: 5 * time.Millisecond,
			want: want{calls: -1, stage: events.StageFailed, expectSeq: "0", errcode: 45011, reasonHas: "SHIP_MAX_ELAPSED"}},
		{name: "waiting on the merchant parks the order", script: []error{apiErr(108009)},
			want: want{calls: 1, retry: 10 * time.Minute}},
		{name: "waiting on the merchant for SHIP_WAIT_MAX_ATTEMPTS waits fails", script: []error{apiErr(10020115)}, delivered: 5, age: 143 * 10 * time.Minute, waited: 143 * 10 * time.Minute,
			want: want{calls: 1, stage: events.StageFailed, expectSeq: "0", errcode: 10020115, reasonHas: "waiting on the merchant"}},
		{name: "many deliveries (parks) are not many waits", script: []error{apiErr(10020115)}, delivered: 500, age: time.Hour, waited: time.Hour,
			want: want{calls: 1, retry: 10 * time.Minute}},
		{name: "a day of waits fails", script: []error{apiErr(10020115)}, delivered: 144, age: 24 * time.Hour, waited: 24 * time.Hour,
			want: want{calls: 1, stage: events.StageFailed, expectSeq: "0", errcode: 10020115, reasonHas: "waiting on the merchant"}},
		{name: "a day in a backlog is not a day of waits: the first wait parks", script: []error{apiErr(108009)}, delivered: 3, age: 48 * time.Hour,
			want: want{calls: 1, retry: 10 * time.Minute}},
		{name: "the first wait cannot be read: parks, never fails early", script: []error{apiErr(108009)}, age: 48 * time.Hour, waitsErr: errors.New("nats down"),
			want: want{calls: 1, retry: 10 * time.Minute}},
		{name: "permanent fails after one call", script: []error{apiErr(109000)},
			want: want{calls: 1, stage: events.StageFailed, expectSeq: "0", errcode: 109000, attempts: 1, reasonHas: "dlq redrive --order-id"}},
		{name: "an answer without errcode fails naming it", script: []error{&wechat.APIError{Endpoint: wechat.EndpointDeliverySend, HTTPStatus: 403}},
			want: want{calls: 1, stage: events.StageFailed, expectSeq: "0", errmsgHas: "403"}},
		{name: "shipped before the first call: no call", script: []error{nil},
			record: func(r *fakeRecord) { r.set(events.StageShipped, shipped, 150) },
			want:   want{calls: 0, settledHas: "already shipped"}},
		{name: "shipped by another copy during a backoff: no further call", script: []error{apiErr(-1), nil},
			beforeCall: func(r *fakeRecord, call int) {
				if call == 1 {
					r.set(events.StageShipped, shipped, 150)
				}
			},
			want: want{calls: 1, settledHas: "already shipped"}},
		{name: "failed in this chain after this copy was stored: no call", script: []error{nil},
			record: func(r *fakeRecord) { r.set(events.StageFailed, sameChainFailed, 150) },
			want:   want{calls: 0, settledHas: "failed after this message"}},
		{name: "a failure this copy re-drives is not a reason to stop", script: []error{apiErr(109000)},
			record: func(r *fakeRecord) { r.set(events.StageFailed, sameChainFailed, 50) },
			want:   want{calls: 1, stage: events.StageFailed, expectSeq: "50", errcode: 109000}},
		{name: "a cancelled order is never sent, even by a later copy", script: []error{nil},
			record: func(r *fakeRecord) { r.set(events.StageFailed, cancelled, 50) },
			want:   want{calls: 0, settledHas: "cancelled on the platform"}},
		{name: "a cancel stored during the backoff stops the next call", script: []error{apiErr(-1), nil},
			beforeCall: func(r *fakeRecord, call int) {
				if call == 1 {
					r.set(events.StageFailed, cancelled, 150)
				}
			},
			want: want{calls: 1, settledHas: "cancelled on the platform"}},
		{name: "another chain's later failure does not settle this one", script: []error{apiErr(109000)},
			record: func(r *fakeRecord) { r.set(events.StageFailed, otherChain, 150) },
			want:   want{calls: 1, stage: events.StageFailed, expectSeq: "150", errcode: 109000}},
		{name: "a stale lease is renewed before calling", script: []error{nil}, lease: &fakeLease{invalid: true},
			want: want{calls: 1, stage: events.StageShipped, expectSeq: "0", attempts: 1, leaseRenewals: 1}},
		{name: "a lease that cannot be renewed: no call", script: []error{nil}, lease: &fakeLease{invalid: true, renewErr: errors.New("nats down")},
			want: want{calls: 0, retryAny: true, leaseRenewals: 1}},
		{name: "the record cannot be read: no call", script: []error{nil},
			record: func(r *fakeRecord) { r.err = errors.New("nats down") },
			want:   want{calls: 0, retry: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRecord{}
			if tt.record != nil {
				tt.record(rec)
			}
			sender := &fakeSender{script: tt.script}
			if tt.beforeCall != nil {
				sender.beforeCall = func(call int) { tt.beforeCall(rec, call) }
			}
			s := newTestShipper(sender, rec)
			waits := &fakeWaits{err: tt.waitsErr}
			if tt.waited > 0 {
				waits.at = time.Now().Add(-tt.waited)
			}
			s.Waits = waits
			if tt.maxElapsed > 0 {
				s.opts.MaxElapsed = tt.maxElapsed
			}
			lease := tt.lease
			if lease == nil {
				lease = &fakeLease{}
			}
			delivered := max(tt.delivered, 1)
			md := &jetstream.MsgMetadata{NumDelivered: delivered, Sequence: jetstream.SequencePair{Stream: 100}, Timestamp: time.Now().Add(-tt.age)}
			out := s.ship(t.Context(), t.Context(), md, env, data, lease, zerolog.Nop())

			w := tt.want
			if w.calls >= 0 && sender.calls != w.calls || w.calls < 0 && sender.calls < 2 {
				t.Errorf("%d delivery/send calls, want %d", sender.calls, w.calls)
			}
			if lease.renewed != w.leaseRenewals {
				t.Errorf("lease renewed %d times, want %d", lease.renewed, w.leaseRenewals)
			}
			switch {
			case w.retryAny && out.retry <= 0, w.retry > 0 && out.retry != w.retry:
				t.Errorf("retry = %s, want %s (any: %v)", out.retry, w.retry, w.retryAny)
			case w.retry == 0 && !w.retryAny && out.retry != 0:
				t.Errorf("retry = %s, want none", out.retry)
			}
			if !strings.Contains(out.settled, w.settledHas) || (w.settledHas == "") != (out.settled == "") {
				t.Errorf("settled = %q, want it to say %q", out.settled, w.settledHas)
			}
			if w.stage == "" {
				if out.event != nil {
					t.Fatalf("terminal event %s, want none", out.event.Type)
				}
				return
			}
			if out.event == nil || out.event.Stage() != w.stage {
				t.Fatalf("outcome %+v, want a %s event", out, w.stage)
			}
			if out.event.CausationID != env.ID || out.event.CorrelationID != env.CorrelationID {
				t.Errorf("the event does not answer its input: %+v", out.event)
			}
			filter, _ := events.OrderFilter(w.stage, events.DefaultShop, env.OrderID)
			if got := out.msg.Header.Get(jetstream.ExpectedLastSubjSeqHeader); got != w.expectSeq {
				t.Errorf("expected last sequence %q, want %q", got, w.expectSeq)
			}
			if got := out.msg.Header.Get(jetstream.ExpectedLastSubjSeqSubjHeader); got != filter {
				t.Errorf("expected-sequence subject %q, want %q", got, filter)
			}
			switch w.stage {
			case events.StageShipped:
				var sh events.Shipped
				if err := out.event.DecodeData(&sh); err != nil {
					t.Fatal(err)
				}
				if sh.Attempts != w.attempts || sh.Calls != sender.calls || sh.AlreadyShipped != w.already || sh.WaybillID != data.WaybillID {
					t.Errorf("shipped %+v, want attempts (deliveries) %d, calls %d, already_shipped %v", sh, w.attempts, sender.calls, w.already)
				}
			case events.StageFailed:
				var f events.Failed
				if err := out.event.DecodeData(&f); err != nil {
					t.Fatal(err)
				}
				if f.Stage != events.ComponentShipper || f.Errcode != w.errcode || !strings.Contains(f.Reason, w.reasonHas) ||
					!strings.Contains(f.Errmsg, w.errmsgHas) || (w.attempts > 0 && f.Attempts != w.attempts) {
					t.Errorf("failed %+v, want errcode %d, reason with %q, errmsg with %q", f, w.errcode, w.reasonHas, w.errmsgHas)
				}
			}
		})
	}
}

// TestDecided covers a terminal event the server refused (ErrDecided): the
// input is settled when the stored event is ours or decides our chain, and
// comes back when another chain's failure got there first.
func TestDecided(t *testing.T) {
	env, _ := input(t)
	ours, _ := env.Next(events.StageShipped, events.Shipped{DeliveryID: "SF"}, t0)
	cp, _ := env.Copy("replay:1", t0)
	copyShipped, _ := cp.Next(events.StageShipped, events.Shipped{DeliveryID: "SF"}, t0)
	ourFailure, _ := env.Next(events.StageFailed, events.Failed{Stage: events.ComponentShipper}, t0)
	copyFailure, _ := cp.Next(events.StageFailed, events.Failed{Stage: events.ComponentShipper}, t0)
	otherChain, _ := events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageFailed, Source: events.SourceAPI, OrderID: env.OrderID,
		Data: events.Failed{Stage: events.ComponentEnricher}}, t0)
	tests := []struct {
		name    string
		event   *events.Envelope
		stored  *events.Envelope
		settled bool
	}{
		{"our shipped event, stored by an earlier send", ours, ours, true},
		{"shipped by a copy", ours, copyShipped, true},
		{"our failure, stored by an earlier send", ourFailure, ourFailure, true},
		{"failed by a copy in this chain", ourFailure, copyFailure, true},
		{"failed by another chain", ourFailure, otherChain, false},
		{"nothing stored (cannot be)", ours, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRecord{}
			if tt.stored != nil {
				rec.set(tt.stored.Stage(), tt.stored, 7)
			}
			s := newTestShipper(&fakeSender{}, rec)
			err := s.decided(t.Context(), completion{event: tt.event, input: env, log: zerolog.Nop()})
			if (err == nil) != tt.settled {
				t.Fatalf("decided = %v, want settled %v", err, tt.settled)
			}
		})
	}
}
