package vvtool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// maxInWindow returns the largest number of times inside any half-open interval
// [t, t+window).
func maxInWindow(times []time.Time, window time.Duration) int {
	times = slices.Clone(times)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= window {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// TestLimiterSlidingWindow checks the exact schedule on synctest's fake clock.
func TestLimiterSlidingWindow(t *testing.T) {
	tests := []struct {
		n, callers     int
		window, margin time.Duration
	}{
		{n: 10, callers: 35, window: time.Second, margin: DefaultLimiterMargin},
		{n: 3, callers: 10, window: 200 * time.Millisecond, margin: 0},
		{n: 1, callers: 4, window: time.Minute, margin: time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d per %v+%v", tt.n, tt.window, tt.margin), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := NewLimiterMargin(tt.n, tt.window, tt.margin)
				start := time.Now()
				var mu sync.Mutex
				var grants []time.Time
				var wg sync.WaitGroup
				for range tt.callers {
					wg.Go(func() {
						if err := l.Wait(context.Background()); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						grants = append(grants, time.Now())
						mu.Unlock()
					})
				}
				wg.Wait()
				if got := maxInWindow(grants, tt.window+tt.margin); got != tt.n {
					t.Errorf("max %d grants in a window+margin, want %d", got, tt.n)
				}
				// Batches of n at 0, span, 2·span…: as fast as allowed, no faster.
				span := tt.window + tt.margin
				slices.SortFunc(grants, func(a, b time.Time) int { return a.Compare(b) })
				for i, g := range grants {
					if want := time.Duration(i/tt.n) * span; g.Sub(start) != want {
						t.Errorf("grant %d at %v, want %v", i, g.Sub(start), want)
					}
				}
			})
		})
	}
}

// TestLimiterAcquireHoldsUntilDone checks that an Acquire grant counts from its
// done, not from its start.
func TestLimiterAcquireHoldsUntilDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiterMargin(2, time.Second, 0)
		start := time.Now()
		done1, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		done2, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		granted := make(chan time.Duration, 1)
		go func() {
			if err := l.Wait(context.Background()); err != nil {
				t.Error(err)
			}
			granted <- time.Since(start)
		}()
		synctest.Wait()
		select {
		case d := <-granted:
			t.Fatalf("third grant at %v while both slots are in flight", d)
		default:
		}
		time.Sleep(3 * time.Second) // the fake clock: a request in flight for 3 s
		done1()
		done1() // idempotent
		if d := <-granted; d != 4*time.Second {
			t.Errorf("third grant at %v, want 4s (done at 3s + window)", d)
		}
		done2()
	})
}

func TestLimiterCancel(t *testing.T) {
	l := NewLimiter(1, time.Hour)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Wait(ctx) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel = %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	done, err := l.Acquire(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire past deadline = %v, want context.DeadlineExceeded", err)
	}
	done() // a no-op, must not panic

	// A cancelled context is refused even when a grant is free.
	free := NewLimiter(5, time.Second)
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := free.Wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait(cancelled) = %v", err)
	}
}

// TestLimiterCancelTakesNoGrant checks on the fake clock that a cancelled Wait does
// not use up a grant.
func TestLimiterCancelTakesNoGrant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiterMargin(1, time.Second, 0)
		start := time.Now()
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want deadline", err)
		}
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("next grant at %v, want 1s", d)
		}
	})
}

func TestLimiterUnlimited(t *testing.T) {
	l := NewLimiter(0, 0) // n<1 is 1, window 0 does not limit
	for range 100 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLimiterServerWindow sends 60 requests from 50 goroutines through Clients of
// two shops sharing one Limiter and checks the arrival times the server records.
// It takes about 5 s of real time.
func TestLimiterServerWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~5 s")
	}
	const requests, goroutines = 60, 50
	var mu sync.Mutex
	var arrivals []time.Time
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		mu.Lock()
		arrivals = append(arrivals, now)
		mu.Unlock()
		writeJSON(w, `{"code":0,"msg":"ok","data":[]}`)
	})
	shared := NewLimiter(MaxRequestsPerSecond, time.Second)
	clients := []*Client{
		NewClient(testToken, WithBaseURL(srv.URL), WithLimiter(shared)),
		NewClient(testToken, WithBaseURL(srv.URL), WithLimiter(shared)),
	}
	jobs := make(chan int, requests)
	for i := range requests {
		jobs <- i
	}
	close(jobs)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range jobs {
				shop := fmt.Sprint(1001 + i%2)
				if _, err := clients[g%2].Detail(context.Background(), DetailRequest{ShopID: shop}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(arrivals) != requests {
		t.Fatalf("server saw %d requests, want %d", len(arrivals), requests)
	}
	if got := maxInWindow(arrivals, time.Second); got > MaxRequestsPerSecond {
		t.Errorf("server saw %d requests within one second, want at most %d", got, MaxRequestsPerSecond)
	}
	// 60 requests, 10 per second: the last batch cannot start before 5 s.
	if elapsed < 5*time.Second {
		t.Errorf("60 requests took %v, want >= 5s", elapsed)
	}
	t.Logf("60 requests in %v, max %d in any 1 s", elapsed, maxInWindow(arrivals, time.Second))
}
