package ingest

import (
	"sync"
	"time"
)

// recent remembers orders known to be received (id → event id), so
// repeated polls of the same window skip the stream lookup. An entry is
// only as good as the stream's memory: one older than the stream's
// retention is forgotten, since the stream may have dropped its event. It
// holds at most about 2×size orders: when the current generation fills, it
// becomes the previous one and the oldest is dropped. A miss costs a
// lookup.
type recent struct {
	mu        sync.Mutex
	size      int
	ttl       time.Duration
	cur, prev map[string]entry
}

type entry struct {
	eventID string
	at      time.Time // when the event was stored (about)
}

func newRecent(size int, ttl time.Duration) *recent {
	return &recent{size: size, ttl: ttl, cur: make(map[string]entry, size)}
}

// get is the event id remembered for key, or "" if none or too old at now.
func (r *recent) get(key string, now time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cur[key]
	if !ok {
		e = r.prev[key]
	}
	if e.eventID == "" || (r.ttl > 0 && now.Sub(e.at) >= r.ttl) {
		return ""
	}
	return e.eventID
}

func (r *recent) put(key, eventID string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cur) >= r.size {
		r.prev, r.cur = r.cur, make(map[string]entry, r.size)
	}
	r.cur[key] = entry{eventID, at}
}
