// Package faulttest holds what the end-to-end tests (internal/e2e) and the
// fault suite (internal/reliability) share: starting the stack, watching the
// stream until every order is terminal, checking the pipeline's promises
// order by order, and running a service as a child process (the test binary
// re-executed) so it can be killed with SIGKILL for real.
//
// It is imported only by tests; its helpers take a testing.TB and fail the
// test themselves.
package faulttest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// SyncBuffer is a log sink shared by services running in goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail is the last lines of s, for failure messages.
func Tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// StartStack starts NATS and the sandbox (in a test temp dir unless
// o.DataDir is set) and closes them when the test ends.
func StartStack(t testing.TB, o stack.Options) *stack.Stack {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	st, err := stack.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// Connect opens a NATS connection as the services do (reconnecting
// forever), closed at the end of the test, and its JetStream handle.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js, err := service.Connect(ctx, url, "", "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// Key is the tally key (events.OrderKey) of a scenario order.
func Key(o sandbox.ScenarioOrder) string { return events.OrderKey(events.DefaultShop, o.OrderID) }

// OrderKeys lists the tally keys of orders.
func OrderKeys(orders []sandbox.ScenarioOrder) []string {
	keys := make([]string, len(orders))
	for i, o := range orders {
		keys[i] = Key(o)
	}
	return keys
}

// WaitTerminal watches the stream until every one of want has a terminal
// event, or fails the test at the deadline with the end of logs.
func WaitTerminal(t testing.TB, js jetstream.JetStream, want []sandbox.ScenarioOrder, deadline time.Duration, logs fmt.Stringer) *tally.Tally {
	t.Helper()
	ids := OrderKeys(want)
	return WaitStream(t, js, deadline, logs, fmt.Sprintf("all %d orders to reach a terminal state", len(ids)),
		func(tl *tally.Tally) bool { return tl.AllTerminal(ids) })
}

// WaitStream watches the stream until cond holds for a reading, or fails
// the test at the deadline, saying what it waited for.
func WaitStream(t testing.TB, js jetstream.JetStream, deadline time.Duration, logs fmt.Stringer, what string, cond func(*tally.Tally) bool) *tally.Tally {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	tl, err := tally.Watch(ctx, js, 250*time.Millisecond, cond)
	if err != nil {
		n := 0
		if tl != nil {
			n = tl.Terminal(events.StageShipped) + tl.Terminal(events.StageFailed)
		}
		tailed := ""
		if logs != nil {
			tailed = Tail(logs.String(), 40)
		}
		t.Fatalf("waiting for %s: %v after %s (%d orders terminal)\nlogs:\n%s", what, err, deadline, n, tailed)
	}
	return tl
}

// Result is what became of a set of orders, as read from the stream and the
// sandbox: the figures of a reliability report row.
type Result struct {
	// Orders is how many orders were checked.
	Orders int
	// Shipped and Failed count orders by their latest terminal event.
	Shipped, Failed int
	// Lost counts orders without any terminal event.
	Lost int
	// Duplicates counts orders shipped more than once: more than one
	// successful delivery/send, or more than one order.shipped event.
	Duplicates int
	// Overlaps counts delivery/send calls that arrived while another for
	// the same order was in flight (the sandbox's count; the real platform
	// answers them 100003).
	Overlaps int
}

// Count computes the Result of orders from a stream reading and the
// sandbox's record of successful sends.
func Count(sb *sandbox.Sandbox, tl *tally.Tally, orders []sandbox.ScenarioOrder) Result {
	r := Result{Orders: len(orders), Overlaps: sb.Stats().ConcurrentSends}
	for _, o := range orders {
		s := tl.Orders[Key(o)]
		switch {
		case s == nil || s.Latest == "":
			r.Lost++
		case s.Latest == events.StageShipped:
			r.Shipped++
		case s.Latest == events.StageFailed:
			r.Failed++
		}
		if sb.Sends(o.OrderID) > 1 || (s != nil && s.Shipped > 1) {
			r.Duplicates++
		}
	}
	return r
}

// Option adjusts what CheckOutcomes expects.
type Option func(*checkConfig)

type checkConfig struct {
	repeatedCalls bool
	overlaps      int
}

func newCheckConfig(opts []Option) checkConfig {
	var c checkConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// RepeatedCalls tells CheckOutcomes that processes were killed or NATS was
// away: a permanent order's delivery/send may then have been called more
// than once (the shipper got the answer but could not record it — killed,
// or its failed event not stored — so the redelivered message calls again
// and gets the same answer). It must still end failed once, with no
// successful send.
func RepeatedCalls() Option { return func(c *checkConfig) { c.repeatedCalls = true } }

// AllowOverlaps tolerates up to n delivery/send calls that overlapped an
// earlier call for the same order: after a client-side timeout the
// abandoned call may still be running on the platform when the retry
// arrives (the platform answers 100003, a transient code, and the retry is
// retried). Use it only where timeouts are injected, with n the number of
// timed-out calls.
func AllowOverlaps(n int) Option { return func(c *checkConfig) { c.overlaps = n } }

// CheckOutcomes asserts the pipeline's promises for every order of want:
// exactly one terminal event, the outcome the scenario expects with one
// successful send for a shipped order and none for a failed one, retries
// for transient faults, one call for permanent ones, none for orders that
// failed before the shipper; and, platform-wide, no overlapping sends for
// one order, no batch over 100 and no force_refresh abuse. It returns the
// figures for a report.
func CheckOutcomes(t testing.TB, st *stack.Stack, tl *tally.Tally, want []sandbox.ScenarioOrder, opts ...Option) Result {
	t.Helper()
	cfg := newCheckConfig(opts)
	sendCalls := map[string]int{}
	for _, c := range st.Sandbox.Calls() {
		if c.Endpoint == sandbox.EndpointDeliverySend {
			for _, id := range c.OrderIDs {
				sendCalls[id]++
			}
		}
		if c.Endpoint == sandbox.EndpointBatchGetOrder && len(c.OrderIDs) > 100 {
			t.Errorf("batchGetOrder call with %d orders", len(c.OrderIDs))
		}
	}
	byFault := map[string]int{}
	var problems []string
	for _, o := range want {
		byFault[o.Fault]++
		s := tl.Orders[Key(o)]
		if s == nil {
			problems = append(problems, fmt.Sprintf("%s (%s): no events at all", o.OrderID, o.Fault))
			continue
		}
		if len(s.Terminals) != 1 {
			problems = append(problems, fmt.Sprintf("%s (%s): %d terminal events, want 1", o.OrderID, o.Fault, len(s.Terminals)))
		}
		sends := st.Sandbox.Sends(o.OrderID)
		switch o.Expect {
		case sandbox.OutcomeShipped:
			if s.Latest != events.StageShipped || sends != 1 {
				problems = append(problems, fmt.Sprintf("%s (%s): latest %q, %d successful sends; want shipped once", o.OrderID, o.Fault, s.Latest, sends))
			}
			if o.Fault == sandbox.FaultTransient && sendCalls[o.OrderID] < 2 {
				problems = append(problems, fmt.Sprintf("%s (transient): %d delivery/send calls, want retries", o.OrderID, sendCalls[o.OrderID]))
			}
		case sandbox.OutcomeFailed:
			if s.Latest != events.StageFailed || sends != 0 {
				problems = append(problems, fmt.Sprintf("%s (%s): latest %q, %d successful sends; want failed", o.OrderID, o.Fault, s.Latest, sends))
			}
			switch o.Fault {
			case sandbox.FaultPermanent:
				if n := sendCalls[o.OrderID]; n != 1 && (!cfg.repeatedCalls || n < 1) {
					problems = append(problems, fmt.Sprintf("%s (permanent): %d delivery/send calls, want exactly 1", o.OrderID, sendCalls[o.OrderID]))
				}
			case sandbox.FaultCancelled, sandbox.FaultItemError:
				if sendCalls[o.OrderID] != 0 {
					problems = append(problems, fmt.Sprintf("%s (%s): %d delivery/send calls, want none", o.OrderID, o.Fault, sendCalls[o.OrderID]))
				}
			}
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
		}
		t.Errorf("%d orders broke a promise:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	CheckPlatformRules(t, st.Sandbox, opts...)
	stats := st.Sandbox.Stats()
	t.Logf("orders by fault class: %v; sandbox calls: %v; errcodes: %v", byFault, stats.Calls, stats.ErrCodes)
	return Count(st.Sandbox, tl, want)
}

// CheckPlatformRules asserts the pipeline broke none of the rules the real
// platform punishes: overlapping delivery/send calls for one order, batches
// over 100, force_refresh within 30 s of the previous one (AllowOverlaps
// relaxes the first).
func CheckPlatformRules(t testing.TB, sb *sandbox.Sandbox, opts ...Option) {
	t.Helper()
	cfg := newCheckConfig(opts)
	stats := sb.Stats()
	if stats.ConcurrentSends > cfg.overlaps {
		t.Errorf("%d delivery/send calls overlapped another for the same order", stats.ConcurrentSends)
	} else if stats.ConcurrentSends > 0 {
		t.Logf("%d delivery/send calls overlapped an abandoned (timed-out) call for the same order (tolerated: %d)", stats.ConcurrentSends, cfg.overlaps)
	}
	if stats.MaxBatchSize > 100 || stats.BatchOver100 != 0 {
		t.Errorf("batchGetOrder: max batch %d, %d over 100", stats.MaxBatchSize, stats.BatchOver100)
	}
	if stats.ForceRefreshTooSoon != 0 {
		t.Errorf("%d force_refresh calls within 30 s of the previous", stats.ForceRefreshTooSoon)
	}
}

// FastEnv is the services' environment for a test run, with over on top:
// short polls, waits, backoffs and ack waits, so a fault plays out in
// seconds, not minutes.
func FastEnv(over map[string]string) map[string]string {
	env := map[string]string{
		"INGEST_POLL_INTERVAL": "200ms",
		"ENRICH_MAX_WAIT":      "50ms",
		"ENRICH_ACK_WAIT":      "2s",
		"SHIP_CONCURRENCY":     "16",
		"SHIP_BACKOFF_INITIAL": "20ms",
		"SHIP_BACKOFF_MAX":     "200ms",
		"SHIP_WAIT_DELAY":      "300ms",
		"LOG_LEVEL":            "info",
	}
	maps.Copy(env, over)
	return env
}
