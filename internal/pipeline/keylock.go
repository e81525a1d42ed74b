package pipeline

import (
	"context"
	"sync"
)

// KeyLock serialises work per key (an order id) inside one process: the
// platform answers 100003 when two delivery/send calls for one order overlap.
type KeyLock struct {
	mu    sync.Mutex
	locks map[string]*keyEntry
}

type keyEntry struct {
	ch   chan struct{} // holds one token while the key is free
	refs int
}

// NewKeyLock returns an empty lock table.
func NewKeyLock() *KeyLock { return &KeyLock{locks: map[string]*keyEntry{}} }

// Lock waits for key, or for ctx to end. The returned func unlocks it.
func (k *KeyLock) Lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	e, ok := k.locks[key]
	if !ok {
		e = &keyEntry{ch: make(chan struct{}, 1)}
		e.ch <- struct{}{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()

	select {
	case <-e.ch:
		var once sync.Once
		return func() { once.Do(func() { e.ch <- struct{}{}; k.release(key, e) }) }, nil
	case <-ctx.Done():
		k.release(key, e)
		return nil, ctx.Err()
	}
}

func (k *KeyLock) release(key string, e *keyEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(k.locks, key)
	}
}
