package vvtool

import (
	"context"
	"sync"
	"time"
)

// DefaultLimiterMargin is added to the window of a Limiter made by NewLimiter: a
// grant is only reused window+margin after it was made (or, for Acquire, after the
// request finished).
//
// Why a margin, and why 10ms: the platform counts requests by their arrival time
// on its side, not by when Wait returned on ours. Two requests granted exactly one
// window apart can arrive less than a window apart when the earlier one is delayed
// more on its way (goroutine scheduling between Wait and the write, connection
// setup, network jitter), and a server that stamps arrivals with millisecond (or
// coarser) timestamps rounds a gap of exactly one window down. Client does not
// rely on the margin for correctness: it uses Acquire, which dates a grant at the
// end of its request, and a request always arrives before its response does, so
// the server can never see more than n in a window whatever the latency. For bare
// Wait callers the margin is the whole protection, and 10ms covers timestamp
// rounding and the scheduling delay of a busy process while costing 1% of the
// throughput (10 requests per 1.01s).
const DefaultLimiterMargin = 10 * time.Millisecond

// Limiter is a sliding-window rate limiter: no window-long interval ever holds more
// than n grants. It keeps the times of the last n grants; a new grant waits until
// the oldest of them is a window (plus a margin) old. One Limiter is safe for
// concurrent use and should be shared by every goroutine and every shop of one
// vv-tool account (the platform's limit is per account). The zero Limiter does
// not limit; use NewLimiter.
//
// Why not golang.org/x/time/rate: its Limiter is a token bucket, which bounds the
// average rate, not the count in every sliding window. With burst n it grants n at
// once and then one per window/n, so a window can hold up to 2n-1 grants (the
// server in TestLimiterServerWindow saw 19 in one second); with burst 1 it still
// lets 11 requests arrive within a second, because it dates a grant when it is
// made, while Acquire holds the grant until the response is in. It also fails a
// Wait at once when the deadline is too near instead of waiting until it. Tried
// against this package's tests unchanged: TestLimiterSlidingWindow,
// TestLimiterAcquireHoldsUntilDone, TestLimiterCancel, TestLimiterCancelTakesNoGrant
// and TestLimiterServerWindow fail with burst n and with burst 1.
type Limiter struct {
	n    int
	span time.Duration // window + margin; 0: unlimited

	mu    sync.Mutex
	slots []limiterSlot
	freed chan struct{} // closed and replaced when an in-flight slot is released
}

// limiterSlot is one of the last n grants: when it was made, or, while inFlight,
// a grant made with Acquire whose done function has not been called yet.
type limiterSlot struct {
	at       time.Time
	inFlight bool
}

// NewLimiter returns a Limiter granting at most n Waits per window, with
// DefaultLimiterMargin. n < 1 is taken as 1; a window <= 0 does not limit.
func NewLimiter(n int, window time.Duration) *Limiter {
	return NewLimiterMargin(n, window, DefaultLimiterMargin)
}

// NewLimiterMargin is NewLimiter with an explicit safety margin (negative is 0).
func NewLimiterMargin(n int, window, margin time.Duration) *Limiter {
	if n < 1 {
		n = 1
	}
	if margin < 0 {
		margin = 0
	}
	l := &Limiter{n: n, slots: make([]limiterSlot, n), freed: make(chan struct{})}
	if window > 0 {
		l.span = window + margin
	}
	return l
}

// Wait blocks until a grant is available or ctx is done, and returns ctx.Err() in
// the latter case (a cancelled Wait takes no grant). The grant is dated now.
func (l *Limiter) Wait(ctx context.Context) error {
	_, err := l.acquire(ctx, false)
	return err
}

// Acquire is Wait for a grant that lasts as long as the request it allows: until
// done is called, the grant counts as happening now, and done dates it at that
// moment. Call done once the response has been received (or the request failed);
// with that, a server can never see more than n requests within a window whatever
// the latency. done is idempotent; on error it is a no-op. A done never called
// holds one of the n grants forever.
func (l *Limiter) Acquire(ctx context.Context) (done func(), err error) {
	i, err := l.acquire(ctx, true)
	if err != nil || i < 0 {
		return func() {}, err
	}
	var once sync.Once
	return func() { once.Do(func() { l.release(i) }) }, nil
}

// acquire waits for a free slot and takes it; it returns the slot's index, or -1
// for an unlimited Limiter.
func (l *Limiter) acquire(ctx context.Context, inFlight bool) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return -1, err
		}
		if l.span <= 0 {
			return -1, nil
		}
		l.mu.Lock()
		i, wait := l.take(time.Now(), inFlight)
		freed := l.freed
		l.mu.Unlock()
		if i >= 0 {
			return i, nil
		}
		// wait < 0: every slot is in flight; only a release can free one. Otherwise
		// the earliest expiry comes first: a release dates its slot now, so it
		// cannot expire before the slots already dated.
		var expired <-chan time.Time
		if wait >= 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
			freed = nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-expired:
		case <-freed:
		}
	}
}

// take grants a slot at now if one is free (never used, or dated at least span
// before now) and returns its index; otherwise it returns -1 and how long until the
// earliest dated slot expires (-1 if all are in flight). l.mu must be held.
func (l *Limiter) take(now time.Time, inFlight bool) (int, time.Duration) {
	wait := time.Duration(-1)
	for i := range l.slots {
		s := &l.slots[i]
		if s.inFlight {
			continue
		}
		if s.at.IsZero() || now.Sub(s.at) >= l.span {
			*s = limiterSlot{at: now, inFlight: inFlight}
			return i, 0
		}
		if d := l.span - now.Sub(s.at); wait < 0 || d < wait {
			wait = d
		}
	}
	return -1, wait
}

// release dates the in-flight slot i now and wakes the waiters that wait for one.
func (l *Limiter) release(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slots[i] = limiterSlot{at: time.Now()}
	close(l.freed)
	l.freed = make(chan struct{})
}
