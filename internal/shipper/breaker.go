package shipper

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
)

// ShopState is a shop's state as a shipper sees it.
type ShopState string

// The states of a shop.
const (
	// ShopOK: the shop's calls go out.
	ShopOK ShopState = "ok"
	// ShopBackingOff: the shop's platform keeps failing (errcode -1, HTTP
	// 5xx, timeouts): its orders are parked, one probe call at a time.
	ShopBackingOff ShopState = "backing_off"
	// ShopTokenRefused: no access token can be had for the shop (a wrong
	// secret, 40001/40013/41002 …): its orders are parked likewise.
	ShopTokenRefused ShopState = "token_refused"
)

// ShopStates lists every state, for the state gauge.
var ShopStates = []string{string(ShopOK), string(ShopBackingOff), string(ShopTokenRefused)}

// breakAfter is how many calls of a shop in a row must fail, with no answer
// from its platform between them, before the whole shop backs off: more
// than one order's bad luck, fewer than its calls in flight. breakSpan is
// how long they must go on: a burst of transient answers at one moment is
// the orders' own, a second of nothing but failures is the shop's.
const (
	breakAfter = 5
	breakSpan  = time.Second
)

// probeTimeout is how long a probe call may take before another is let
// out: longer than the platform client's 10 s timeout.
const probeTimeout = 15 * time.Second

// ShopStatus is a shop's state with what brought it there.
type ShopStatus struct {
	State ShopState
	// Since is when the failures began.
	Since time.Time
	// Errcode is the platform's answer to the last failed call (-2: no
	// answer).
	Errcode int
}

// breaker backs off a shop as a whole while its platform fails: after
// breakAfter failed calls in a row no call of the shop goes out but one
// probe, at growing intervals, until an answer comes back. Orders that may
// not call are parked, each given a time to come back at (a virtual queue
// per shop), so they return spread out instead of all at once.
type breaker struct {
	initial, max time.Duration
	now          func() time.Time
	// changed is told of each change of a shop's state, outside the lock.
	changed func(shop string, st ShopStatus)
	// first, if set, is told of each shop the first time it is seen,
	// under the lock.
	first func(shop string)

	mu    sync.Mutex
	shops map[string]*shopBreaker
}

type shopBreaker struct {
	status  ShopStatus
	fails   int
	delay   time.Duration // until the next probe, doubled after each failed one
	probeAt time.Time
	// probing is when the probe under way was let out (zero: none).
	probing time.Time
	// next is the virtual queue's clock: when the next parked order of the
	// shop is due back.
	next time.Time
	// latency is a moving average of the shop's call time, which spaces
	// parked orders by what a worker takes to call.
	latency time.Duration
	// codes counts the failed calls' errcodes since the failures began:
	// the shop's state names the commonest, the outage's rather than one
	// order's own.
	codes map[int]int
}

func newBreaker(initial, max time.Duration, changed func(string, ShopStatus)) *breaker {
	if initial <= 0 {
		initial = time.Second
	}
	if max < initial {
		max = initial
	}
	return &breaker{initial: initial, max: max, now: time.Now, changed: changed, shops: map[string]*shopBreaker{}}
}

func (b *breaker) shop(id string) *shopBreaker {
	s := b.shops[id]
	if s == nil {
		s = &shopBreaker{status: ShopStatus{State: ShopOK}, latency: 100 * time.Millisecond}
		b.shops[id] = s
		if b.first != nil {
			b.first(id)
		}
	}
	return s
}

// Status is the shop's state.
func (b *breaker) Status(shop string) ShopStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.shop(shop).status
}

// allow says whether a call of shop may go out now. When it may not, wait
// is how long the order is parked: until the shop's next probe at the
// earliest, then in the shop's virtual queue. A call allowed while the
// shop backs off is its probe, and the only one until record hears of it.
func (b *breaker) allow(shop string, slots int) (ok bool, wait time.Duration, st ShopStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.shop(shop)
	now := b.now()
	if s.status.State == ShopOK {
		return true, 0, s.status
	}
	// A probe whose outcome never came (its order was settled before the
	// call) is given up after probeTimeout.
	if (s.probing.IsZero() || now.Sub(s.probing) > probeTimeout) && !now.Before(s.probeAt) {
		s.probing = now
		return true, 0, s.status
	}
	return false, s.park(now, s.probeAt, slots), s.status
}

// parked says whether an order of shop would be parked now (the shop backs
// off and its probe is not due or under way), without taking the probe.
func (b *breaker) parked(shop string, slots int) (bool, time.Duration, ShopStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.shop(shop)
	now := b.now()
	if s.status.State == ShopOK {
		return false, 0, s.status
	}
	if (s.probing.IsZero() || now.Sub(s.probing) > probeTimeout) && !now.Before(s.probeAt) {
		return false, 0, s.status
	}
	return true, s.park(now, s.probeAt, slots), s.status
}

// park gives a parked order its time back: not before from, and after the
// orders parked before it, one worker's call apart among slots workers.
func (s *shopBreaker) park(now, from time.Time, slots int) time.Duration {
	at := now
	for _, t := range []time.Time{from, s.next} {
		if t.After(at) {
			at = t
		}
	}
	step := s.latency / time.Duration(max(slots, 1))
	s.next = at.Add(step)
	// Jitter within a step, so replicas' parked orders interleave.
	return at.Sub(now) + time.Duration(rand.Int64N(int64(step)+1))
}

// Park parks an order of shop that found no room (the shop's calls are all
// under way and its queue is full): it comes back when the shop's earlier
// orders should be done.
func (b *breaker) Park(shop string, slots int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	return b.shop(shop).park(now, now, slots)
}

// record takes the outcome of a call of shop that took d: an answer from
// the platform (any but a transient failure or a refused token) closes the
// breaker; breakAfter failures in a row open it, and a failed probe keeps
// it open for twice as long.
func (b *breaker) record(shop string, class wechat.Class, code int, d time.Duration) {
	b.mu.Lock()
	s := b.shop(shop)
	now := b.now()
	s.latency = (s.latency*7 + d) / 8
	prev := s.status
	switch class {
	case wechat.ClassTransient, wechat.ClassToken:
		s.fails++
		if s.fails == 1 {
			s.status.Since = now
			s.codes = map[int]int{}
		}
		s.codes[code]++
		s.status.Errcode = commonest(s.codes, code)
		state := ShopBackingOff
		if class == wechat.ClassToken {
			state = ShopTokenRefused
		}
		switch {
		case s.status.State != ShopOK && !s.probing.IsZero():
			s.probing = time.Time{}
			s.delay = min(2*s.delay, b.max)
			s.probeAt = now.Add(s.delay)
			s.status.State = state
		case s.status.State == ShopOK && s.fails >= breakAfter && now.Sub(s.status.Since) >= breakSpan:
			s.delay = b.initial
			s.probeAt = now.Add(s.delay)
			s.status.State = state
		}
	default:
		s.fails, s.probing, s.codes = 0, time.Time{}, nil
		s.status = ShopStatus{State: ShopOK}
	}
	cur := s.status
	b.mu.Unlock()
	if cur.State != prev.State && b.changed != nil {
		b.changed(shop, cur)
	}
}

// commonest is the errcode counted most often (the smallest of a tie).
func commonest(codes map[int]int, last int) int {
	best := last
	for c, n := range codes {
		if n > codes[best] || n == codes[best] && c < best {
			best = c
		}
	}
	return best
}

// String says what the state means for a log line or a reason.
func (st ShopStatus) String() string {
	switch st.State {
	case ShopBackingOff:
		return fmt.Sprintf("its platform keeps failing (mostly errcode %d) since %s", st.Errcode, st.Since.UTC().Format(time.RFC3339))
	case ShopTokenRefused:
		return fmt.Sprintf("no access token can be had for it (mostly errcode %d) since %s", st.Errcode, st.Since.UTC().Format(time.RFC3339))
	}
	return "ok"
}
