package wechat

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTokenSource returns a source against a fresh fake token server.
func newTokenSource(t *testing.T, lr *leakRecorder, opts ...TokenOption) (*StableTokenSource, *fakeTokenServer) {
	t.Helper()
	fts := newFakeTokenServer(t, lr)
	srv := newServer(t, nil, fts.ServeHTTP)
	return NewStableTokenSource("wxappid", testSecret, append([]TokenOption{WithTokenBaseURL(srv.URL)}, opts...)...), fts
}

func TestStableTokenRequest(t *testing.T) {
	lr := newLeakRecorder(t)
	src, fts := newTokenSource(t, lr)
	tok, err := src.Token(context.Background())
	lr.record(err)
	if err != nil || tok != fts.token(1) {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	want := stableTokenRequest{GrantType: "client_credential", AppID: "wxappid", Secret: testSecret, ForceRefresh: false}
	if got := fts.request(1); got != want {
		t.Errorf("request %+v, want %+v", got, want)
	}
}

// TestStableTokenCache checks caching until expires_in minus the margin.
func TestStableTokenCache(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int
		margin    time.Duration // 0: default
		keep      time.Duration // how long the token is served from the cache
	}{
		{"default margin 5m", 7200, 0, 7200*time.Second - 5*time.Minute},
		{"margin 10m", 7200, 10 * time.Minute, 7200*time.Second - 10*time.Minute},
		{"short lifetime keeps half", 60, 0, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := newLeakRecorder(t)
			clock := newFakeClock()
			opts := []TokenOption{WithTokenClock(clock.Now)}
			if tt.margin != 0 {
				opts = append(opts, WithTokenMargin(tt.margin))
			}
			src, fts := newTokenSource(t, lr, opts...)
			fts.rotatePlain = true
			fts.expiresIn = tt.expiresIn
			ctx := context.Background()
			get := func() string {
				tok, err := src.Token(ctx)
				lr.record(err)
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				return tok
			}
			first := get()
			clock.Advance(tt.keep - time.Second)
			if tok := get(); tok != first {
				t.Errorf("token replaced %v before the margin", time.Second)
			}
			clock.Advance(time.Second)
			if tok := get(); tok == first {
				t.Error("token not replaced at the margin")
			}
			if all, _ := fts.counts(); all != 2 {
				t.Errorf("%d stable_token calls, want 2", all)
			}
		})
	}
}

// TestStableTokenSingleFlight: 50 concurrent callers on a cold cache, and 50
// concurrent Refresh calls with the same stale token, each make ONE request.
func TestStableTokenSingleFlight(t *testing.T) {
	const callers = 50
	tests := []struct {
		name  string
		warm  bool // fetch a token first; the callers then Refresh it
		call  func(ctx context.Context, src *StableTokenSource, stale string) (string, error)
		wantN int // stable_token requests in all
	}{
		{"cold cache Token", false, func(ctx context.Context, src *StableTokenSource, _ string) (string, error) {
			return src.Token(ctx)
		}, 1},
		{"Refresh same stale token", true, func(ctx context.Context, src *StableTokenSource, stale string) (string, error) {
			return src.Refresh(ctx, stale)
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := newLeakRecorder(t)
			src, fts := newTokenSource(t, lr)
			fts.rotatePlain = true
			ctx := context.Background()
			var stale string
			if tt.warm {
				var err error
				if stale, err = src.Token(ctx); err != nil {
					t.Fatalf("Token: %v", err)
				}
			}
			// The request of the flight is answered only once the other 49
			// callers wait for it.
			allJoined := make(chan struct{})
			var joined atomic.Int32
			src.onJoin = func() {
				if joined.Add(1) == callers-1 {
					close(allJoined)
				}
			}
			fts.gate = func(n int, _ *http.Request) {
				if n != tt.wantN {
					return
				}
				select {
				case <-allJoined:
				case <-time.After(failsafe):
					t.Errorf("only %d callers joined", joined.Load())
				}
			}

			var start, done sync.WaitGroup
			start.Add(1)
			toks := make([]string, callers)
			errs := make([]error, callers)
			for i := range callers {
				done.Add(1)
				go func() {
					defer done.Done()
					start.Wait()
					toks[i], errs[i] = tt.call(ctx, src, stale)
				}()
			}
			start.Done()
			done.Wait()

			want := fts.token(tt.wantN)
			for i := range callers {
				lr.record(errs[i])
				if errs[i] != nil || toks[i] != want {
					t.Errorf("caller %d: %q, %v; want %q", i, toks[i], errs[i], want)
				}
			}
			if all, _ := fts.counts(); all != tt.wantN {
				t.Errorf("%d stable_token calls, want %d", all, tt.wantN)
			}
			if n := joined.Load(); n != callers-1 {
				t.Errorf("%d callers joined, want %d", n, callers-1)
			}
		})
	}
}

// TestStableTokenForceRefreshThrottle: when the platform returns the rejected
// token again, Refresh uses force_refresh=true, at most once per 30 s.
func TestStableTokenForceRefreshThrottle(t *testing.T) {
	lr := newLeakRecorder(t)
	clock := newFakeClock()
	src, fts := newTokenSource(t, lr, WithTokenClock(clock.Now))
	ctx := context.Background()

	type step struct {
		advance    time.Duration
		stale      int // index of the stale token (1-based)
		wantTok    int // index of the token returned (0: error)
		wantCalls  int // stable_token requests so far
		wantForced int
	}
	steps := []step{
		{0, 1, 2, 3, 1},                 // plain returns T1 again -> force -> T2
		{0, 2, 0, 4, 1},                 // plain returns T2 again, force used 0 s ago -> throttled
		{29 * time.Second, 2, 0, 5, 1},  // 29 s: still throttled
		{time.Second, 2, 3, 7, 2},       // 30 s: force allowed -> T3
		{0, 1, 3, 7, 2},                 // an older stale token: the cached T3, no call
		{time.Second, 3, 0, 8, 2},       // 1 s after the last force: throttled again
		{30 * time.Second, 3, 4, 10, 3}, // 31 s: allowed
	}
	if tok, err := src.Token(ctx); err != nil || tok != fts.token(1) {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		tok, err := src.Refresh(ctx, fts.token(s.stale))
		lr.record(err)
		if s.wantTok == 0 {
			if !errors.Is(err, ErrRefreshThrottled) {
				t.Errorf("step %d: got %q, %v; want ErrRefreshThrottled", i, tok, err)
			}
		} else if err != nil || tok != fts.token(s.wantTok) {
			t.Errorf("step %d: got %q, %v; want token %d", i, tok, err, s.wantTok)
		}
		if all, forced := fts.counts(); all != s.wantCalls || forced != s.wantForced {
			t.Errorf("step %d: %d calls (%d forced), want %d (%d)", i, all, forced, s.wantCalls, s.wantForced)
		}
	}
}

// TestStableTokenErrors checks the errors of the token endpoint: no secret or
// token in them, and the right class.
func TestStableTokenErrors(t *testing.T) {
	tests := []struct {
		name      string
		appID     string
		handler   http.HandlerFunc // nil: the fake token server
		wantCode  int
		wantClass Class
		wantIs    error
	}{
		{name: "bad secret", appID: "wxappid", wantCode: 40125, wantClass: ClassPermanent},
		{name: "bad appid", appID: "wxother", wantCode: 40013, wantClass: ClassPermanent},
		{name: "busy", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"errcode":-1,"errmsg":"system busy"}`)
		}, wantCode: -1, wantClass: ClassTransient},
		{name: "no access_token", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"expires_in":7200}`)
		}, wantClass: ClassTransient, wantIs: ErrBadResponse},
		{name: "no expires_in", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"access_token":"stable-token-without-expiry"}`)
		}, wantClass: ClassTransient, wantIs: ErrBadResponse},
		{name: "HTML", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `<html>`)
		}, wantClass: ClassTransient, wantIs: ErrBadResponse},
		{name: "HTTP 502", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) },
			wantClass: ClassTransient, wantIs: ErrHTTPStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := newLeakRecorder(t, "stable-token-without-expiry")
			fts := newFakeTokenServer(t, lr)
			h := tt.handler
			if h == nil {
				h = fts.ServeHTTP
			}
			srv := newServer(t, nil, h)
			appID := tt.appID
			if appID == "" {
				appID = "wxappid"
			}
			secret := testSecret
			if tt.wantCode == 40125 {
				secret = testSecret + "-wrong"
			}
			var obs observerLog
			src := NewStableTokenSource(appID, secret, WithTokenBaseURL(srv.URL), WithTokenObserver(obs.observe))
			tok, err := src.Token(context.Background())
			lr.record(err)
			if err == nil || tok != "" {
				t.Fatalf("Token = %q, %v; want an error", tok, err)
			}
			if Code(err) != tt.wantCode || Classify(err) != tt.wantClass {
				t.Errorf("got %v: code %d class %v, want %d %v", err, Code(err), Classify(err), tt.wantCode, tt.wantClass)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			var ae *APIError
			if errors.As(err, &ae) && ae.Endpoint != EndpointStableToken {
				t.Errorf("endpoint %q", ae.Endpoint)
			}
			if got := obs.all(); len(got) != 1 || got[0].ep != EndpointStableToken {
				t.Errorf("observer got %v", got)
			}
		})
	}
}

// TestStableTokenLeaderCancelled: when the caller running the request gives up,
// a waiter with a live context takes over instead of failing.
func TestStableTokenLeaderCancelled(t *testing.T) {
	lr := newLeakRecorder(t)
	fts := newFakeTokenServer(t, lr)
	firstArrived := make(chan struct{})
	waiterJoined := make(chan struct{})
	fts.gate = func(n int, r *http.Request) {
		if n == 1 {
			close(firstArrived)
			<-r.Context().Done() // held until the leader gives up
		}
	}
	srv := newServer(t, nil, fts.ServeHTTP)
	src := NewStableTokenSource("wxappid", testSecret, WithTokenBaseURL(srv.URL))
	var joinOnce sync.Once
	src.onJoin = func() { joinOnce.Do(func() { close(waiterJoined) }) }

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := src.Token(leaderCtx)
		leaderErr <- err
	}()
	<-firstArrived
	waiterTok := make(chan string, 1)
	go func() {
		tok, err := src.Token(context.Background())
		lr.record(err)
		waiterTok <- tok
	}()
	<-waiterJoined
	cancelLeader()
	err := <-leaderErr
	lr.record(err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("leader: %v, want context.Canceled", err)
	}
	if tok := <-waiterTok; tok != fts.token(1) {
		t.Errorf("waiter got %q, want %q", tok, fts.token(1))
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestStableTokenFetchPanics: a panic in the fetch reaches the caller that started
// the request as a panic with the same value, a caller that joined it as an
// error, and the next call starts a new request.
func TestStableTokenFetchPanics(t *testing.T) {
	lr := newLeakRecorder(t)
	fts := newFakeTokenServer(t, lr)
	srv := newServer(t, nil, fts.ServeHTTP)
	started := make(chan struct{})
	joined := make(chan struct{})
	var calls atomic.Int32
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			close(started)
			<-joined
			panic("transport broke")
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	src := NewStableTokenSource("wxappid", testSecret, WithTokenBaseURL(srv.URL), WithTokenHTTPClient(&http.Client{Transport: rt}))
	src.onJoin = func() { close(joined) }

	leader := make(chan any, 1)
	go func() {
		defer func() { leader <- recover() }()
		_, _ = src.Token(context.Background())
	}()
	<-started
	tok, err := src.Token(context.Background())
	lr.record(err)
	if err == nil || tok != "" || !strings.Contains(err.Error(), "token fetch panicked") {
		t.Errorf("joined caller: %q, %v; want the panic as an error", tok, err)
	}
	if p := <-leader; p != "transport broke" {
		t.Errorf("leader recovered %v, want the fetch's panic", p)
	}
	src.onJoin = nil
	tok, err = src.Token(context.Background())
	lr.record(err)
	if err != nil || tok != fts.token(1) {
		t.Errorf("after the panic: %q, %v; want a new request", tok, err)
	}
}

// TestStableTokenWaiterGivesUp: a caller that joined a request stops waiting when
// its own context ends; the request goes on for the caller that started it.
func TestStableTokenWaiterGivesUp(t *testing.T) {
	lr := newLeakRecorder(t)
	fts := newFakeTokenServer(t, lr)
	started := make(chan struct{})
	release := make(chan struct{})
	fts.gate = func(n int, _ *http.Request) {
		if n == 1 {
			close(started)
			<-release
		}
	}
	srv := newServer(t, nil, fts.ServeHTTP)
	src := NewStableTokenSource("wxappid", testSecret, WithTokenBaseURL(srv.URL))

	leader := make(chan string, 1)
	go func() {
		tok, err := src.Token(context.Background())
		lr.record(err)
		leader <- tok
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	src.onJoin = cancel
	tok, err := src.Token(ctx)
	lr.record(err)
	if !errors.Is(err, context.Canceled) || tok != "" || !strings.Contains(err.Error(), "waiting for token") {
		t.Errorf("waiter: %q, %v; want context.Canceled while waiting", tok, err)
	}
	close(release)
	if tok := <-leader; tok != fts.token(1) {
		t.Errorf("leader got %q, want %q", tok, fts.token(1))
	}
	if all, _ := fts.counts(); all != 1 {
		t.Errorf("%d stable_token calls, want 1", all)
	}
}
