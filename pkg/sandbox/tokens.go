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

// tokenState holds the access tokens; guarded by Sandbox.mu. At most one token is
// valid at a time: the current one, until it expires or is rotated.
type tokenState struct {
	expiry    map[string]time.Time // every token ever issued → its expiry
	issued    []string             // in issue order
	current   string               // the valid token, "" when none
	calls     int                  // business calls accepted with current (RotateTokenEvery)
	lastForce time.Time            // last force_refresh=true, zero if none
}

func newTokenState() tokenState {
	return tokenState{expiry: make(map[string]time.Time)}
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

// IssueToken returns a valid access_token: the current one, or a new one when there
// is none (for tests and deployments using a fixed token).
func (s *Sandbox) IssueToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.currentValidLocked(now) {
		s.rotateLocked(now)
	}
	return s.tokens.current
}

// Tokens returns every access_token ever issued, oldest first (for leak checks).
func (s *Sandbox) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tokens.issued)
}

// currentValidLocked reports whether there is a current token not yet expired.
func (s *Sandbox) currentValidLocked(now time.Time) bool {
	t := &s.tokens
	return t.current != "" && now.Before(t.expiry[t.current])
}

// rotateLocked issues a new token; every older token becomes invalid.
func (s *Sandbox) rotateLocked(now time.Time) {
	t := &s.tokens
	tok := newToken()
	t.expiry[tok] = now.Add(s.cfg.TokenTTL)
	t.issued = append(t.issued, tok)
	t.current = tok
	t.calls = 0
}

// newToken returns a fresh random token (URL-safe, unique enough to grep logs for).
func newToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "SBX_" + hex.EncodeToString(b[:])
}

// checkTokenLocked validates the access_token of a business call: 0 when valid,
// 40001 when missing, unknown or rotated, 42001 when expired. A valid call counts
// towards RotateTokenEvery.
func (s *Sandbox) checkTokenLocked(tok string) int {
	t := &s.tokens
	exp, ok := t.expiry[tok]
	switch {
	case tok == "" || !ok:
		return 40001
	case !s.now().Before(exp):
		return 42001
	case tok != t.current:
		return 40001
	}
	t.calls++
	if n := s.cfg.RotateTokenEvery; n > 0 && t.calls >= n {
		t.current = "" // rotated elsewhere: the next call with it answers 40001
	}
	return 0
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

	s.mu.Lock()
	plan := s.planFaultsLocked(ep, nil)
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
	if code := s.checkCredentials(req); code != 0 {
		return s.finish(x, wxErr(code, ""))
	}

	s.mu.Lock()
	now := s.now()
	switch {
	case ep == EndpointToken:
		s.rotateLocked(now)
	case req.ForceRefresh:
		if last := s.tokens.lastForce; !last.IsZero() && now.Sub(last) < forceRefreshMinInterval {
			s.rec.stats.ForceRefreshTooSoon++
		}
		s.tokens.lastForce = now
		s.rotateLocked(now)
	case !s.currentValidLocked(now):
		s.rotateLocked(now)
	}
	tok := s.tokens.current
	left := s.tokens.expiry[tok].Sub(now)
	s.mu.Unlock()
	return s.finish(x, jsonReply(0, tokenResponse{AccessToken: tok, ExpiresIn: int64(left / time.Second)}))
}

// checkCredentials validates grant_type, appid and secret: 0 or the errcode.
func (s *Sandbox) checkCredentials(req stableTokenRequest) int {
	switch {
	case req.GrantType != "client_credential":
		return 40002
	case req.AppID == "":
		return 41002
	case req.AppID != s.cfg.AppID:
		return 40013
	case req.Secret == "":
		return 41004
	case req.Secret != s.cfg.AppSecret:
		return 40125
	}
	return 0
}
