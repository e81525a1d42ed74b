package shipper

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

// heldLease is a lease that is always valid and records its release.
type heldLease struct {
	mu       sync.Mutex
	released bool
}

func (l *heldLease) Valid() bool                 { return true }
func (l *heldLease) Renew(context.Context) error { return nil }
func (l *heldLease) Release(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = true
	return nil
}

func (l *heldLease) wasReleased() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.released
}

// leaseTable hands out lease, or refuses with err.
type leaseTable struct {
	lease *heldLease
	err   error
}

func (t leaseTable) Acquire(context.Context, string) (Lease, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.lease, nil
}

// enrichedMsg is the enriched event env as the shipper's consumer delivers
// it the first time, at stream sequence seq.
func enrichedMsg(t *testing.T, env *events.Envelope, seq uint64) *jstest.Msg {
	t.Helper()
	body, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &jstest.Msg{Subj: env.Subject(), Body: body,
		Meta: jetstream.MsgMetadata{NumDelivered: 1, Sequence: jetstream.SequencePair{Stream: seq}, Timestamp: time.Now()}}
}

// handleOne runs one message through handle and the completer, as Run does,
// and waits until the message's hold and lease are let go.
func handleOne(t *testing.T, s *Shipper, msg *jstest.Msg) {
	t.Helper()
	s.done = make(chan completion, 1)
	completed := make(chan struct{})
	go func() { defer close(completed); s.complete() }()
	s.handle(t.Context(), msg, pipeline.StartHold(time.Hour, msg))
	close(s.done)
	<-completed
	s.release.Wait()
}

// TestLeaseLeftToExpireOnlyOnceShipped: the lease of an order whose shipped
// event is stored is left to expire (a KV write spared per order), and a
// copy of the order finding it taken reads the record and settles at once,
// without a call; a failed order's lease is released, so a re-drive is not
// held up. Real JetStream stores the terminal events.
//
// The record is read both ways: a direct get per stage, and both terminal
// stages in one multi_last request (as cmd/shipper reads it).
func TestLeaseLeftToExpireOnlyOnceShipped(t *testing.T) {
	nc, js, stream := jstest.StartStream(t)
	type test struct {
		name         string
		orderID      string
		script       []error
		stage        events.Stage
		wantReleased bool
		record       *pipeline.OrderRecord
	}
	var tests []test
	for i, rec := range []*pipeline.OrderRecord{
		pipeline.NewOrderRecord(stream),
		pipeline.NewOrderRecord(stream).WithMultiLast(pipeline.NewMultiLast(nc, events.StreamName)),
	} {
		id := func(n int) string { return fmt.Sprintf("37046123545597430%d%d", i, n) }
		tests = append(tests,
			test{fmt.Sprintf("shipped: left to expire/record %d", i), id(1), []error{nil}, events.StageShipped, false, rec},
			test{fmt.Sprintf("failed: released/record %d", i), id(2), []error{apiErr(109000)}, events.StageFailed, true, rec})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := input(t)
			env.OrderID = tt.orderID
			lease := &heldLease{}
			sender := &fakeSender{script: tt.script}
			s := New(Options{Concurrency: 1, BackoffInitial: time.Millisecond, BackoffMax: time.Millisecond, MaxElapsed: time.Minute,
				WaitDelay: time.Minute, WaitMaxAttempts: 2, Heartbeat: time.Hour},
				func(string) (Sender, error) { return sender, nil }, pipeline.NewPublisher(js), tt.record,
				leaseTable{lease: lease}, zerolog.Nop(), service.NewMetrics(), nil)
			msg := enrichedMsg(t, env, 1)
			handleOne(t, s, msg)
			if how, _ := msg.Settled(); how != "ack" {
				t.Fatalf("message settled %q, want ack", how)
			}
			if _, _, err := s.record.Last(t.Context(), tt.stage, env.Shop, env.OrderID); err != nil {
				t.Fatal(err)
			}
			if got := lease.wasReleased(); got != tt.wantReleased {
				t.Errorf("lease released: %v, want %v", got, tt.wantReleased)
			}

			// A copy of the order (a replay) while the lease is still taken.
			cp, err := env.Copy("replay:1", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			s.leases = leaseTable{err: pipeline.ErrLeaseTaken}
			copyMsg := enrichedMsg(t, cp, 1000)
			handleOne(t, s, copyMsg)
			how, delay := copyMsg.Settled()
			wantHow := "ack"
			if tt.stage == events.StageFailed {
				wantHow = "nak" // another chain's failure does not settle a copy: it waits for the lease
			}
			if how != wantHow {
				t.Errorf("copy settled %q (delay %s), want %q", how, delay, wantHow)
			}
			if sender.calls != 1 {
				t.Errorf("%d calls, want 1", sender.calls)
			}
			// A copy put back is a park, not a retry of a platform call.
			wantParked := 0.0
			if wantHow == "nak" {
				wantParked = 1
			}
			if got := testutil.ToFloat64(s.metrics.Parked.WithLabelValues(service.ParkLeaseTaken, env.Shop)); got != wantParked {
				t.Errorf("fulfill_parked_total{reason=lease_taken} = %v, want %v", got, wantParked)
			}
			if n := testutil.CollectAndCount(s.metrics.Retries); n != 0 {
				t.Errorf("%d fulfill_retries_total series, want none: no call was retried", n)
			}
		})
	}
}

// TestLeaderReadWhereAnOutcomeMayBeRecent: a replica answering direct gets
// may not have an order's latest events yet (nats-server lets a follower
// 90% caught up answer them). The record a shipper reads before calling
// comes from the stream's leader for a redelivered message and for a
// re-drive copy, where the order may have been decided moments ago, and
// after the server refused a terminal event; else from the direct gets.
// Here the direct gets lag: they do not have the shipped event yet.
func TestLeaderReadWhereAnOutcomeMayBeRecent(t *testing.T) {
	env, data := input(t)
	shipped, err := env.Next(events.StageShipped, events.Shipped{DeliveryID: "SF", WaybillID: "SF100", Attempts: 1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := env.Copy("replay:run-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		in        *events.Envelope
		delivered uint64
		noLeader  bool
		wantCalls int
	}{
		{"first delivery: direct gets", env, 1, false, 1},
		{"redelivery: the leader", env, 2, false, 0},
		{"a re-drive copy: the leader", cp, 1, false, 0},
		{"no leader record configured: direct gets", env, 2, true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lagging, leader := &fakeRecord{}, &fakeRecord{}
			leader.set(events.StageShipped, shipped, 7)
			sender := &fakeSender{script: []error{nil}}
			s := newTestShipper(sender, lagging)
			if !tt.noLeader {
				s.Leader = leader
			}
			md := &jetstream.MsgMetadata{NumDelivered: tt.delivered, Sequence: jetstream.SequencePair{Stream: 5}, Timestamp: time.Now()}
			out := s.ship(t.Context(), t.Context(), md, tt.in, data, &fakeLease{}, zerolog.Nop())
			if sender.calls != tt.wantCalls {
				t.Errorf("%d delivery/send calls, want %d (outcome %+v)", sender.calls, tt.wantCalls, out)
			}
			if tt.wantCalls == 0 && !strings.Contains(out.settled, "already shipped") {
				t.Errorf("settled = %q, want already shipped", out.settled)
			}
		})
	}

	t.Run("a refused terminal event: the leader", func(t *testing.T) {
		lagging, leader := &fakeRecord{}, &fakeRecord{}
		other, err := cp.Next(events.StageShipped, events.Shipped{DeliveryID: "SF"}, t0)
		if err != nil {
			t.Fatal(err)
		}
		leader.set(events.StageShipped, other, 7)
		s := newTestShipper(&fakeSender{}, lagging)
		s.Leader = leader
		if err := s.decided(t.Context(), completion{event: shipped, input: env, log: zerolog.Nop()}); err != nil {
			t.Errorf("decided = %v, want settled: the leader has the copy's shipped event", err)
		}
	})
}
