package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// DefaultTokenMargin is how long before its expiry a cached token is replaced.
const DefaultTokenMargin = 5 * time.Minute

// ForceRefreshInterval is the shortest time between two force_refresh requests of
// one StableTokenSource (the platform allows about 20 a day, 30 s apart).
const ForceRefreshInterval = 30 * time.Second

// StableTokenSource is a TokenSource backed by POST /cgi-bin/stable_token. It
// caches the token until expires_in minus the margin, and concurrent callers share
// one request (single flight) both on a cold cache and on Refresh. It is safe for
// concurrent use and keeps no goroutines between calls.
type StableTokenSource struct {
	appID   string
	secret  string
	baseURL string
	hc      *http.Client
	margin  time.Duration
	now     func() time.Time
	observe Observer

	// flights holds the one stable_token request in flight under flightKey. Token
	// and Refresh share it: the platform has one current token per account.
	flights singleflight.Group

	mu         sync.Mutex
	tok        string
	validUntil time.Time
	// flying is true from the start of a request until its result is cached; it
	// tells a caller whether DoChan starts a request or joins one.
	flying    bool
	forced    bool      // force_refresh was used at least once
	lastForce time.Time // when force_refresh was last used

	// onJoin, if set (by tests), is called each time a caller starts waiting for a
	// request already in flight.
	onJoin func()
}

// flightKey is the singleflight key of the stable_token request.
const flightKey = "stable_token"

// flight is one caller's share of a stable_token request.
type flight struct {
	result <-chan singleflight.Result
	// joined is true when another caller started the request: it runs with that
	// caller's context, so this one may give up waiting on its own.
	joined bool
}

// TokenOption configures a StableTokenSource.
type TokenOption func(*StableTokenSource)

// WithTokenBaseURL sets the API origin of the token endpoint; default
// DefaultBaseURL.
func WithTokenBaseURL(u string) TokenOption {
	return func(s *StableTokenSource) { s.baseURL = strings.TrimRight(u, "/") }
}

// WithTokenHTTPClient sets the HTTP client; default as for Client.
func WithTokenHTTPClient(hc *http.Client) TokenOption {
	return func(s *StableTokenSource) {
		if hc != nil {
			s.hc = hc
		}
	}
}

// WithTokenMargin sets how long before expiry a cached token is replaced; default
// DefaultTokenMargin. The margin never eats more than half of a token's lifetime.
func WithTokenMargin(d time.Duration) TokenOption {
	return func(s *StableTokenSource) { s.margin = max(d, 0) }
}

// WithTokenClock sets the clock used for the cache and the force_refresh throttle;
// default time.Now.
func WithTokenClock(now func() time.Time) TokenOption {
	return func(s *StableTokenSource) {
		if now != nil {
			s.now = now
		}
	}
}

// WithTokenObserver sets an Observer told of every stable_token call (endpoint
// EndpointStableToken).
func WithTokenObserver(o Observer) TokenOption {
	return func(s *StableTokenSource) { s.observe = o }
}

// NewStableTokenSource returns a token source for the account appID/secret.
func NewStableTokenSource(appID, secret string, opts ...TokenOption) *StableTokenSource {
	s := &StableTokenSource{
		appID:   appID,
		secret:  secret,
		baseURL: DefaultBaseURL,
		hc:      defaultHTTPClient(),
		margin:  DefaultTokenMargin,
		now:     time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Token returns the cached token, or fetches one (force_refresh=false) when the
// cache is empty or within the margin of expiry.
func (s *StableTokenSource) Token(ctx context.Context) (string, error) {
	for {
		s.mu.Lock()
		if s.tok != "" && s.now().Before(s.validUntil) {
			tok := s.tok
			s.mu.Unlock()
			return tok, nil
		}
		f := s.do(ctx, "", false)
		tok, err, again := s.wait(ctx, f)
		if again {
			continue
		}
		if err != nil && f.joined {
			// A failed refresh may still have left a usable token cached.
			if cached, ok := s.cached(); ok {
				return cached, nil
			}
		}
		return tok, err
	}
}

// Refresh returns a token other than stale. If the cache already holds another
// valid token (somebody refreshed), that one is returned. Otherwise it asks the
// platform with force_refresh=false; if the platform returns stale again, it asks
// once with force_refresh=true, unless force_refresh was used less than
// ForceRefreshInterval ago: then it returns an error wrapping ErrRefreshThrottled.
// Concurrent callers share one refresh.
func (s *StableTokenSource) Refresh(ctx context.Context, stale string) (string, error) {
	for {
		s.mu.Lock()
		if s.tok != "" && s.tok != stale && s.now().Before(s.validUntil) {
			tok := s.tok
			s.mu.Unlock()
			return tok, nil
		}
		if !s.flying && s.tok == stale {
			// Make Token callers wait for the refresh instead of taking the rejected
			// token from the cache.
			s.tok = ""
		}
		f := s.do(ctx, stale, true)
		tok, err, again := s.wait(ctx, f)
		if again || (f.joined && err == nil && tok == stale) {
			// The flight was a plain Token fetch that returned the stale token
			// again: refresh on our own.
			continue
		}
		return tok, err
	}
}

// cached returns the cached token if it is still within its validity.
func (s *StableTokenSource) cached() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != "" && s.now().Before(s.validUntil) {
		return s.tok, true
	}
	return "", false
}

// do starts the stable_token request with the caller's ctx, stale and refresh, or
// joins the one in flight. s.mu must be held; do releases it. Holding s.mu across
// DoChan makes flying tell the truth: the request ends (finish) under s.mu too.
func (s *StableTokenSource) do(ctx context.Context, stale string, refresh bool) flight {
	f := flight{joined: s.flying}
	s.flying = true
	f.result = s.flights.DoChan(flightKey, func() (any, error) {
		return s.run(ctx, stale, refresh)
	})
	s.mu.Unlock()
	if f.joined && s.onJoin != nil {
		s.onJoin()
	}
	return f
}

// wait waits for flight f. again is true when a joined f failed only because the
// context of the caller that ran it ended while ctx is still live: the caller
// should retry. The caller that started f waits for its end, as f runs with its
// context.
func (s *StableTokenSource) wait(ctx context.Context, f flight) (tok string, err error, again bool) {
	if !f.joined {
		r := <-f.result
		if p, ok := r.Err.(*fetchPanic); ok {
			panic(p.value)
		}
		return r.Val.(string), r.Err, false
	}
	select {
	case r := <-f.result:
		if r.Err != nil && isContextError(r.Err) && ctx.Err() == nil {
			return "", nil, true
		}
		return r.Val.(string), r.Err, false
	case <-ctx.Done():
		return "", fmt.Errorf("wechat %s: waiting for token: %w", EndpointStableToken, ctx.Err()), false
	}
}

// isContextError reports whether err came from an ended context.
func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fetchPanic carries a panic of the token fetch out of the singleflight goroutine
// (where it would kill the process) to the caller that started the request, which
// panics again; the callers that joined get it as an error.
type fetchPanic struct{ value any }

// Error says that the fetch panicked, without the panic value.
func (p *fetchPanic) Error() string {
	return fmt.Sprintf("wechat %s: token fetch panicked", EndpointStableToken)
}

// run performs one flight: one fetch and, when refreshing and the platform returns
// stale again, at most one force_refresh fetch. It caches the result and ends the
// flight (finish) before the callers get it.
func (s *StableTokenSource) run(ctx context.Context, stale string, refresh bool) (tok string, err error) {
	var ttl time.Duration
	keep := false // cache tok for ttl
	defer func() {
		if r := recover(); r != nil {
			tok, err, keep = "", &fetchPanic{r}, false
		}
		s.finish(tok, ttl, keep)
	}()
	tok, ttl, err = s.fetch(ctx, false)
	if err == nil && refresh && tok == stale {
		s.mu.Lock()
		now := s.now()
		allowed := !s.forced || now.Sub(s.lastForce) >= ForceRefreshInterval
		if allowed {
			s.forced, s.lastForce = true, now
		}
		s.mu.Unlock()
		if allowed {
			tok, ttl, err = s.fetch(ctx, true)
		} else {
			// Keep what the platform calls current; the caller gets the error.
			s.store(tok, ttl)
			tok, err = "", fmt.Errorf("wechat %s: the platform returned the rejected token again: %w", EndpointStableToken, ErrRefreshThrottled)
		}
	}
	err = scrub(err, s.secret)
	keep = err == nil
	return tok, err
}

// finish caches tok (if keep) and ends the flight in one step, so that a caller
// either finds the new token in the cache or starts a new request.
func (s *StableTokenSource) finish(tok string, ttl time.Duration, keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if keep {
		s.storeLocked(tok, ttl)
	}
	s.flying = false
	s.flights.Forget(flightKey)
}

// store caches tok for ttl less the margin (the margin takes at most half of ttl).
func (s *StableTokenSource) store(tok string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeLocked(tok, ttl)
}

// storeLocked is store with s.mu held.
func (s *StableTokenSource) storeLocked(tok string, ttl time.Duration) {
	keep := ttl - s.margin
	if keep < ttl/2 {
		keep = ttl / 2
	}
	s.tok = tok
	s.validUntil = s.now().Add(keep)
}

// stableTokenRequest is the body of stable_token.
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// fetch asks the platform for a token.
func (s *StableTokenSource) fetch(ctx context.Context, force bool) (string, time.Duration, error) {
	body, err := json.Marshal(stableTokenRequest{
		GrantType:    "client_credential",
		AppID:        s.appID,
		Secret:       s.secret,
		ForceRefresh: force,
	})
	if err != nil {
		return "", 0, fmt.Errorf("wechat %s: encode request: %w", EndpointStableToken, err)
	}
	start := time.Now()
	status, raw, err := exchange(ctx, s.hc, s.baseURL+EndpointStableToken.Path(), body)
	if err != nil {
		s.report(ObservedFailure, time.Since(start))
		return "", 0, fmt.Errorf("wechat %s: %w", EndpointStableToken, err)
	}
	d := time.Since(start)
	tok, ttl, err := decodeStableToken(status, raw)
	s.report(observedCode(err), d)
	return tok, ttl, err
}

// report tells the observer, if any, of one stable_token call.
func (s *StableTokenSource) report(code int, d time.Duration) {
	if s.observe != nil {
		s.observe(EndpointStableToken, code, d)
	}
}

// stableTokenResponse is the answer of stable_token.
type stableTokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// maxTokenLifetime bounds expires_in (the platform says 7200 s) so that a wild
// value cannot overflow time.Duration.
const maxTokenLifetime = 30 * 24 * time.Hour

// decodeStableToken decodes a stable_token answer into the token and its lifetime.
func decodeStableToken(status int, raw []byte) (string, time.Duration, error) {
	var resp stableTokenResponse
	if err := decodeResponse(EndpointStableToken, status, raw, &resp); err != nil {
		return "", 0, err
	}
	if resp.AccessToken == "" {
		return "", 0, fmt.Errorf("wechat %s: %w: no access_token", EndpointStableToken, ErrBadResponse)
	}
	if resp.ExpiresIn <= 0 {
		return "", 0, fmt.Errorf("wechat %s: %w: expires_in %d", EndpointStableToken, ErrBadResponse, resp.ExpiresIn)
	}
	ttl := maxTokenLifetime
	if resp.ExpiresIn < int64(maxTokenLifetime/time.Second) {
		ttl = time.Duration(resp.ExpiresIn) * time.Second
	}
	return resp.AccessToken, ttl, nil
}
