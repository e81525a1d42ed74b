package shipper

import (
	"sync"
)

// fairQueue hands the messages a shipper holds to its workers fairly across
// shops: round robin over the shops with a message waiting and a call slot
// free, each shop at most its own number of calls at once. A shop whose
// calls are all under way waits without holding up any other shop.
type fairQueue[T any] struct {
	slots func(shop string) int // calls a shop may have under way

	mu     sync.Mutex
	cond   *sync.Cond
	shops  map[string]*shopLine[T]
	ring   []string // shops with messages waiting, in turn
	held   int      // messages waiting or being handled
	closed bool
}

type shopLine[T any] struct {
	waiting []T
	busy    int
	inRing  bool
}

func newFairQueue[T any](slots func(string) int) *fairQueue[T] {
	q := &fairQueue[T]{slots: slots, shops: map[string]*shopLine[T]{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push adds a message of shop, unless the shop already holds its slots and
// waitingFor them more: then it answers false and the caller parks it.
func (q *fairQueue[T]) push(shop string, v T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.shops[shop]
	if l == nil {
		l = &shopLine[T]{}
		q.shops[shop] = l
	}
	if slots := q.slots(shop); l.busy+len(l.waiting) >= max(slots, 1)+waitingFor(slots) {
		return false
	}
	l.waiting = append(l.waiting, v)
	q.held++
	if !l.inRing {
		l.inRing = true
		q.ring = append(q.ring, shop)
	}
	q.cond.Broadcast()
	return true
}

// pop waits for the next message of a shop with a free slot, in turn, and
// counts it under way until done(shop); ok is false once the queue is
// closed and empty.
func (q *fairQueue[T]) pop() (shop string, v T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for i, s := range q.ring {
			l := q.shops[s]
			if l.busy >= max(q.slots(s), 1) {
				continue
			}
			v, l.waiting = l.waiting[0], l.waiting[1:]
			l.busy++
			// The shop goes to the back of the line, or leaves it when it
			// has nothing more waiting.
			q.ring = append(q.ring[:i], q.ring[i+1:]...)
			if len(l.waiting) > 0 {
				q.ring = append(q.ring, s)
			} else {
				l.inRing = false
			}
			return s, v, true
		}
		if q.closed && q.held == 0 {
			return "", v, false
		}
		if q.closed && len(q.ring) == 0 {
			return "", v, false
		}
		q.cond.Wait()
	}
}

// done ends a message of shop that pop handed out.
func (q *fairQueue[T]) done(shop string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.shops[shop]
	l.busy--
	q.held--
	if l.busy == 0 && len(l.waiting) == 0 {
		delete(q.shops, shop)
	}
	q.cond.Broadcast()
}

// room waits until fewer than limit messages are held, and answers how
// many more may be; 0 once the queue is closed.
func (q *fairQueue[T]) room(limit int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.held >= limit && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return 0
	}
	return limit - q.held
}

// close wakes every waiter: pop hands out what is left, then answers false.
func (q *fairQueue[T]) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// waitingFor is how many messages a shop with slots may have waiting for a
// slot: a few, so a slot freed is taken at once without a fetch, and few
// enough that no message waits long in a shipper while the stream holds
// others (a dead replica's, or another shop's).
func waitingFor(slots int) int { return max(slots/4, 1) }
