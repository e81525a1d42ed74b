package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"time"
)

// forceRefreshMinInterval is the spacing the platform asks between two
// force_refresh=true calls of stable_token.
const forceRefreshMinInterval = 30 * time.Second

// tokenState is one app's token state; guarded by Sandbox.mu. At most one token of
// the app is valid at a time: its current one, until it expires or is rotated.
type tokenState struct {
	current   string    // the valid token, "" when none
	calls     int       // business calls accepted with current (RotateTokenEvery)
	lastForce time.Time // last force_refresh=true, zero if none
}

// issuedToken is what the sandbox knows of an access_token it issued.
type issuedToken struct {
	app    *appState
	expiry time.Time
}

// stableTokenRequest is the body of POST /cgi-bin/stable_token (and the query of
// GET /cgi-bin/token).
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// decodeStableTokenRequest decodes a stable_token body.
func decodeStableTokenRequest(body []byte) (stableTokenRequest, error) {
	var req stableTokenRequest
	err := decodeJSON(body, &req)
	return req, err
}

// tokenResponse is the success answer of both token endpoints.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// IssueToken returns a valid access_token of the first app: its current one, or a
// new one when there is none (for tests and deployments using a fixed token).
func (s *Sandbox) IssueToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked(s.apps[0])
}

// IssueAppToken is IssueToken for the app with the given appid; "" when the
// sandbox has no such app.
func (s *Sandbox) IssueAppToken(appID string) string {
	a, ok := s.appByID[appID]
	if !ok {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked(a)
}

// issueLocked returns the app's valid token, issuing one if needed. s.mu must be held.
func (s *Sandbox) issueLocked(a *appState) string {
	now := s.now()
	if !s.currentValidLocked(a, now) {
		s.rotateLocked(a, now)
	}
	return a.tokens.current
}

// Tokens returns every access_token ever issued, of every app, oldest first (for
// leak checks).
func (s *Sandbox) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// currentValidLocked reports whether the app has a current token not yet expired.
func (s *Sandbox) currentValidLocked(a *appState, now time.Time) bool {
	cur := a.tokens.current
	return cur != "" && now.Before(s.tokens[cur].expiry)
}

// rotateLocked issues a new token to the app; every older token of the app becomes
// invalid.
func (s *Sandbox) rotateLocked(a *appState, now time.Time) {
	tok := newToken()
	s.tokens[tok] = issuedToken{app: a, expiry: now.Add(s.cfg.TokenTTL)}
	s.issued = append(s.issued, tok)
	a.tokens.current = tok
	a.tokens.calls = 0
}

// newToken returns a fresh random token (URL-safe, unique enough to grep logs for).
func newToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "SBX_" + hex.EncodeToString(b[:])
}

// tokenAppLocked is the app the token was issued to (valid or not), nil for a
// token the sandbox never issued. s.mu must be held.
func (s *Sandbox) tokenAppLocked(tok string) *appState {
	return s.tokens[tok].app
}

// checkTokenLocked validates the access_token of a business call: its app and 0 when
// valid, 40001 when missing, unknown or rotated, 42001 when expired. A valid call
// counts towards its app's RotateTokenEvery.
func (s *Sandbox) checkTokenLocked(tok string) (*appState, int) {
	it, ok := s.tokens[tok]
	switch {
	case tok == "" || !ok:
		return nil, 40001
	case !s.now().Before(it.expiry):
		return nil, 42001
	case tok != it.app.tokens.current:
		return nil, 40001
	}
	t := &it.app.tokens
	t.calls++
	if n := s.cfg.RotateTokenEvery; n > 0 && t.calls >= n {
		t.current = "" // rotated elsewhere: the next call with it answers 40001
	}
	return it.app, 0
}

// serveToken answers POST /cgi-bin/stable_token and GET /cgi-bin/token.
func (s *Sandbox) serveToken(r *http.Request, ep string) reply {
	x, err := s.begin(r, ep)
	if err != nil {
		return s.finish(x, wxErr(47001, err.Error()))
	}
	wantMethod, methodCode := http.MethodPost, 43002
	if ep == EndpointToken {
		wantMethod, methodCode = http.MethodGet, 43001
	}
	if r.Method != wantMethod {
		return s.finish(x, wxErr(methodCode, ""))
	}

	var req stableTokenRequest
	var derr error
	if ep == EndpointStableToken {
		req, derr = decodeStableTokenRequest(x.body)
	} else {
		q := r.URL.Query()
		req = stableTokenRequest{GrantType: q.Get("grant_type"), AppID: q.Get("appid"), Secret: q.Get("secret")}
	}

	x.app = s.appByID[req.AppID] // the app the call names, whatever its secret

	s.mu.Lock()
	plan := s.planFaultsLocked(ep, x.app.id(), nil)
	s.mu.Unlock()
	if !delay(r.Context(), plan.latency) {
		return s.finish(x, reply{code: CodeClientGone, gone: true})
	}
	if plan.answer != nil {
		return s.finish(x, wxFault(*plan.answer))
	}
	if derr != nil {
		if errors.Is(derr, errEmptyBody) {
			return s.finish(x, wxErr(44002, ""))
		}
		return s.finish(x, wxErr(47001, derr.Error()))
	}
	app, code := s.checkCredentials(req)
	if code != 0 {
		return s.finish(x, wxErr(code, ""))
	}

	s.mu.Lock()
	now := s.now()
	switch {
	case ep == EndpointToken:
		s.rotateLocked(app, now)
	case req.ForceRefresh:
		if last := app.tokens.lastForce; !last.IsZero() && now.Sub(last) < forceRefreshMinInterval {
			s.rec.stats.ForceRefreshTooSoon++
			s.appStatsLocked(app).ForceRefreshTooSoon++
		}
		app.tokens.lastForce = now
		s.rotateLocked(app, now)
	case !s.currentValidLocked(app, now):
		s.rotateLocked(app, now)
	}
	tok := app.tokens.current
	left := s.tokens[tok].expiry.Sub(now)
	s.mu.Unlock()
	return s.finish(x, jsonReply(0, tokenResponse{AccessToken: tok, ExpiresIn: int64(left / time.Second)}))
}

// checkCredentials validates grant_type, appid and secret: the app, or the errcode.
func (s *Sandbox) checkCredentials(req stableTokenRequest) (*appState, int) {
	app, known := s.appByID[req.AppID]
	switch {
	case req.GrantType != "client_credential":
		return nil, 40002
	case req.AppID == "":
		return nil, 41002
	case !known:
		return nil, 40013
	case req.Secret == "":
		return nil, 41004
	case req.Secret != app.cfg.AppSecret:
		return nil, 40125
	}
	return app, 0
}
