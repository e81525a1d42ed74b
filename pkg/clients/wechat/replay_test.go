package wechat

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTokenReplayExactlyOnce: when the platform rejects the token the client
// refreshes once and replays once, never more.
func TestTokenReplayExactlyOnce(t *testing.T) {
	tests := []struct {
		name      string
		answers   []int // errcode of business call n (last repeats)
		wantCalls int
		wantCode  int
	}{
		{"40001 forever", []int{40001}, 2, 40001},
		{"40014 forever", []int{40014}, 2, 40014},
		{"42001 forever", []int{42001}, 2, 42001},
		{"40001 then 42001", []int{40001, 42001}, 2, 42001},
		{"40001 then ok", []int{40001, 0}, 2, 0},
		{"42001 then 100003", []int{42001, 100003}, 2, 100003},
		{"ok", []int{0}, 1, 0},
		{"non-token error is not replayed", []int{100003, 0}, 1, 100003},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := newLeakRecorder(t)
			fts := newFakeTokenServer(t, lr)
			fts.rotatePlain = true
			var cl callLog
			var n atomic.Int32
			srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == EndpointStableToken.Path() {
					fts.ServeHTTP(w, r)
					return
				}
				i := int(n.Add(1)) - 1
				code := tt.answers[min(i, len(tt.answers)-1)]
				writeJSON(w, http.StatusOK, `{"errcode":`+strconv.Itoa(code)+`,"errmsg":"answer"}`)
			})
			src := NewStableTokenSource("wxappid", testSecret, WithTokenBaseURL(srv.URL))
			var obs observerLog
			c := NewClient(src, WithBaseURL(srv.URL), WithObserver(obs.observe))
			err := c.SendDelivery(context.Background(), SendDeliveryRequest{OrderID: "3704612354559743232"})
			lr.record(err)

			calls := cl.of(EndpointDeliverySend.Path())
			if len(calls) != tt.wantCalls {
				t.Fatalf("%d business calls, want %d", len(calls), tt.wantCalls)
			}
			if Code(err) != tt.wantCode {
				t.Errorf("Code(%v) = %d, want %d", err, Code(err), tt.wantCode)
			}
			if tt.wantCode == 0 && err != nil {
				t.Errorf("got %v, want success", err)
			}
			if tt.wantCode != 0 && Classify(err) != classifyCode(tt.wantCode) {
				t.Errorf("Classify = %v", Classify(err))
			}
			if calls[0].Token != fts.token(1) {
				t.Errorf("first call token %q, want %q", calls[0].Token, fts.token(1))
			}
			if tt.wantCalls == 2 {
				if calls[1].Token != fts.token(2) {
					t.Errorf("replay token %q, want the refreshed %q", calls[1].Token, fts.token(2))
				}
				if string(calls[0].Body) != string(calls[1].Body) {
					t.Errorf("replay body differs:\n%s\n%s", calls[0].Body, calls[1].Body)
				}
			}
			all, forced := fts.counts()
			if all != tt.wantCalls || forced != 0 {
				t.Errorf("stable_token calls %d (forced %d), want %d (0)", all, forced, tt.wantCalls)
			}
			if got := obs.all(); len(got) != tt.wantCalls {
				t.Errorf("observer got %v, want %d reports", got, tt.wantCalls)
			}
		})
	}
}

// TestStaticTokenNoReplay: a StaticToken cannot be refreshed, so a rejected token
// ends the call after one HTTP call with ClassToken.
func TestStaticTokenNoReplay(t *testing.T) {
	lr := newLeakRecorder(t)
	var cl callLog
	srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}`)
	})
	_, err := staticClient(srv).ListOrders(context.Background(), ListOrdersRequest{})
	lr.record(err)
	if n := cl.count(""); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
	if !errors.Is(err, ErrStaticToken) || Code(err) != 40001 || Classify(err) != ClassToken {
		t.Errorf("got %v (code %d, %v), want ErrStaticToken, 40001, token", err, Code(err), Classify(err))
	}
}

func TestStaticToken(t *testing.T) {
	ctx := context.Background()
	src := StaticToken(testToken)
	if tok, err := src.Token(ctx); tok != testToken || err != nil {
		t.Errorf("Token = %q, %v", tok, err)
	}
	if tok, err := src.Refresh(ctx, testToken); tok != "" || !errors.Is(err, ErrStaticToken) {
		t.Errorf("Refresh = %q, %v; want ErrStaticToken", tok, err)
	}
	if _, err := StaticToken("").Token(ctx); err == nil {
		t.Error("empty static token accepted")
	}
}

// TestConcurrentReplaySingleFlight: 50 concurrent calls all rejected with the same
// stale token share ONE refresh, then each replays once.
func TestConcurrentReplaySingleFlight(t *testing.T) {
	const callers = 50
	lr := newLeakRecorder(t)
	fts := newFakeTokenServer(t, lr)
	fts.rotatePlain = true

	// The refresh (second stable_token request) is answered only when the other
	// 49 callers wait for it.
	allJoined := make(chan struct{})
	fts.gate = func(n int, _ *http.Request) {
		if n != 2 {
			return
		}
		select {
		case <-allJoined:
		case <-time.After(failsafe):
			t.Errorf("only some callers joined the refresh")
		}
	}
	// Every business call with the first token waits until all 50 have arrived,
	// so that all of them hold the same stale token.
	var stale atomic.Int32
	allStale := make(chan struct{})
	var cl callLog
	srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == EndpointStableToken.Path() {
			fts.ServeHTTP(w, r)
			return
		}
		if r.URL.Query().Get("access_token") == fts.token(1) {
			if stale.Add(1) == callers {
				close(allStale)
			}
			select {
			case <-allStale:
			case <-time.After(failsafe):
				t.Errorf("only %d callers arrived", stale.Load())
			}
			writeJSON(w, http.StatusOK, `{"errcode":40001,"errmsg":"invalid credential"}`)
			return
		}
		writeJSON(w, http.StatusOK, `{"errcode":0,"errmsg":"ok","order":{"order_id":"1"}}`)
	})
	src := NewStableTokenSource("wxappid", testSecret, WithTokenBaseURL(srv.URL))
	if _, err := src.Token(context.Background()); err != nil { // warm the cache
		t.Fatalf("Token: %v", err)
	}
	var joined atomic.Int32
	src.onJoin = func() {
		if joined.Add(1) == callers-1 {
			close(allJoined)
		}
	}
	c := NewClient(src, WithBaseURL(srv.URL))

	var start, done sync.WaitGroup
	start.Add(1)
	errs := make([]error, callers)
	for i := range callers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			_, errs[i] = c.GetOrder(context.Background(), "1")
		}()
	}
	start.Done()
	done.Wait()

	for i, err := range errs {
		lr.record(err)
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if all, forced := fts.counts(); all != 2 || forced != 0 {
		t.Errorf("stable_token calls %d (forced %d), want 2 (warm-up + one refresh)", all, forced)
	}
	if n := joined.Load(); n != callers-1 {
		t.Errorf("%d callers joined the refresh, want %d", n, callers-1)
	}
	if n := cl.count(EndpointOrderGet.Path()); n != 2*callers {
		t.Errorf("%d business calls, want %d", n, 2*callers)
	}
	for _, call := range cl.of(EndpointOrderGet.Path()) {
		if call.Token != fts.token(1) && call.Token != fts.token(2) {
			t.Errorf("call with unexpected token %q", call.Token)
		}
	}
}
