package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// entries is the number of keys the table holds, and the refs of key.
func (k *KeyLock) entries(key string) (int, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	refs := 0
	if e, ok := k.locks[key]; ok {
		refs = e.refs
	}
	return len(k.locks), refs
}

// waitRefs spins (yielding, not sleeping) until key has refs holders and
// waiters, or the test's deadline approaches.
func waitRefs(t *testing.T, k *KeyLock, key string, refs int) {
	t.Helper()
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	for {
		if _, r := k.entries(key); r == refs {
			return
		}
		if time.Now().After(deadline.Add(-5 * time.Second)) {
			t.Fatalf("key %q never reached %d refs", key, refs)
		}
		runtime.Gosched()
	}
}

func TestKeyLockSerialisesOneKey(t *testing.T) {
	k := NewKeyLock()
	const goroutines, rounds = 64, 50
	var holders, maxHolders atomic.Int32
	counter := 0 // guarded only by the KeyLock: the race detector checks it
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				unlock, err := k.Lock(context.Background(), "order-1")
				if err != nil {
					t.Error(err)
					return
				}
				n := holders.Add(1)
				for {
					m := maxHolders.Load()
					if n <= m || maxHolders.CompareAndSwap(m, n) {
						break
					}
				}
				counter++
				runtime.Gosched() // invite an overlapping holder, if the lock allowed one
				holders.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if m := maxHolders.Load(); m != 1 {
		t.Fatalf("%d goroutines held the same key at once", m)
	}
	if counter != goroutines*rounds {
		t.Fatalf("counter = %d, want %d", counter, goroutines*rounds)
	}
	if n, _ := k.entries("order-1"); n != 0 {
		t.Fatalf("%d entries left after every holder unlocked", n)
	}
}

func TestKeyLockManyKeysInParallel(t *testing.T) {
	k := NewKeyLock()
	const keys, goroutinesPerKey, rounds = 16, 8, 30
	var holders [keys]atomic.Int32
	var overlap atomic.Bool
	var wg sync.WaitGroup
	for key := range keys {
		for range goroutinesPerKey {
			wg.Go(func() {
				for range rounds {
					unlock, err := k.Lock(context.Background(), fmt.Sprint("order-", key))
					if err != nil {
						t.Error(err)
						return
					}
					if holders[key].Add(1) != 1 {
						overlap.Store(true)
					}
					runtime.Gosched()
					holders[key].Add(-1)
					unlock()
				}
			})
		}
	}
	wg.Wait()
	if overlap.Load() {
		t.Fatal("two goroutines held one key at once")
	}
	if n, _ := k.entries(""); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

func TestKeyLockDifferentKeysDoNotBlock(t *testing.T) {
	k := NewKeyLock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One goroutine holds 100 keys at once: any false sharing would
	// deadlock it until the deadline.
	var unlocks []func()
	for i := range 100 {
		u, err := k.Lock(ctx, fmt.Sprint(i))
		if err != nil {
			t.Fatalf("key %d blocked while other keys were held: %v", i, err)
		}
		unlocks = append(unlocks, u)
	}
	if n, _ := k.entries(""); n != 100 {
		t.Fatalf("%d entries while 100 keys are held", n)
	}
	// Another goroutine gets a fresh key while all of those are held.
	got := make(chan error, 1)
	go func() {
		u, err := k.Lock(ctx, "fresh")
		if err == nil {
			u()
		}
		got <- err
	}()
	if err := <-got; err != nil {
		t.Fatalf("fresh key blocked: %v", err)
	}
	for _, u := range unlocks {
		u()
	}
	if n, _ := k.entries(""); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

func TestKeyLockWaiterGetsKeyAfterUnlock(t *testing.T) {
	k := NewKeyLock()
	unlock, err := k.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		u, err := k.Lock(context.Background(), "k")
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	waitRefs(t, k, "k", 2) // the second caller is waiting
	select {
	case <-got:
		t.Fatal("second caller got a held key")
	default:
	}
	unlock()
	u2 := <-got
	if n, refs := k.entries("k"); n != 1 || refs != 1 {
		t.Fatalf("entries, refs = %d, %d while the second caller holds the key", n, refs)
	}
	u2()
	if n, _ := k.entries("k"); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

func TestKeyLockCancelWhileWaiting(t *testing.T) {
	k := NewKeyLock()
	unlock, err := k.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}

	// Already cancelled while the key is held: an error, deterministically.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if u, err := k.Lock(cancelled, "k"); !errors.Is(err, context.Canceled) || u != nil {
		t.Fatalf("Lock with a cancelled context on a held key = %v, %v; want nil, context.Canceled", u != nil, err)
	}
	if _, refs := k.entries("k"); refs != 1 {
		t.Fatalf("refs = %d after a cancelled waiter, want 1 (the holder)", refs)
	}

	// Cancelled while actually waiting.
	const waiters = 10
	ctx, cancelWait := context.WithCancel(context.Background())
	errs := make(chan error, waiters)
	for range waiters {
		go func() {
			u, err := k.Lock(ctx, "k")
			if u != nil {
				u()
			}
			errs <- err
		}()
	}
	waitRefs(t, k, "k", 1+waiters)
	cancelWait()
	for range waiters {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter returned %v, want context.Canceled", err)
		}
	}
	if n, refs := k.entries("k"); n != 1 || refs != 1 {
		t.Fatalf("entries, refs = %d, %d after cancelled waiters left; want 1, 1", n, refs)
	}

	// Deadline while waiting.
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	if _, err := k.Lock(dctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock past its deadline = %v", err)
	}

	// The key still works, and nothing leaked once it is released.
	unlock()
	u, err := k.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	u()
	if n, _ := k.entries("k"); n != 0 {
		t.Fatalf("%d entries leaked after cancellations", n)
	}
}

// Waiters that give up and holders that finish, all at once, leave an empty
// table and never two holders.
func TestKeyLockCancelStress(t *testing.T) {
	k := NewKeyLock()
	var holders [4]atomic.Int32
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if i%2 == 0 {
				cancel() // half give up at once or while waiting
			}
			u, err := k.Lock(ctx, fmt.Sprint("k", i%4))
			if err != nil {
				return
			}
			if holders[i%4].Add(1) != 1 {
				t.Error("two holders of one key")
			}
			runtime.Gosched()
			holders[i%4].Add(-1)
			u()
		})
	}
	wg.Wait()
	if n, _ := k.entries(""); n != 0 {
		t.Fatalf("%d entries leaked", n)
	}
}
