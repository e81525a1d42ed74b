package ingest

import "sync"

// recent remembers the ledger keys this process published or found, so
// repeated polls of the same window skip the KV round trip. It holds at most
// about 2×size keys: when the current generation fills, it becomes the
// previous one and the oldest is dropped. A miss only costs a KV lookup.
type recent struct {
	mu        sync.Mutex
	size      int
	cur, prev map[string]string
}

func newRecent(size int) *recent {
	return &recent{size: size, cur: make(map[string]string, size)}
}

func (r *recent) get(key string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.cur[key]; ok {
		return v
	}
	return r.prev[key]
}

func (r *recent) put(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cur) >= r.size {
		r.prev, r.cur = r.cur, make(map[string]string, r.size)
	}
	r.cur[key] = value
}
