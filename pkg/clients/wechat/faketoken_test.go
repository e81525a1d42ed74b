package wechat

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
)

// fakeTokenServer fakes POST /cgi-bin/stable_token. A plain request returns the
// current token (or a new one with rotatePlain); force_refresh=true always issues
// a new one.
type fakeTokenServer struct {
	t           *testing.T
	lr          *leakRecorder
	rotatePlain bool
	expiresIn   int
	// gate, if set, is called before answering the n-th request (1-based); it may
	// block on a test barrier.
	gate func(n int, r *http.Request)

	mu       sync.Mutex
	issued   []string
	current  string
	requests []stableTokenRequest
}

// newFakeTokenServer returns a fake whose tokens are checked by lr for leaks.
func newFakeTokenServer(t *testing.T, lr *leakRecorder) *fakeTokenServer {
	return &fakeTokenServer{t: t, lr: lr, expiresIn: 7200}
}

// issue makes a new token; f.mu must be held.
func (f *fakeTokenServer) issue() string {
	tok := fmt.Sprintf("stable-token-%03d-%s", len(f.issued)+1, "ZmFrZS1zZWNyZXQtdG9rZW4")
	f.issued = append(f.issued, tok)
	f.current = tok
	if f.lr != nil {
		f.lr.addSecret(tok)
	}
	return tok
}

// ServeHTTP answers a stable_token request.
func (f *fakeTokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != EndpointStableToken.Path() {
		writeJSON(w, http.StatusNotFound, `{"errcode":404,"errmsg":"not found"}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req stableTokenRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusOK, `{"errcode":47001,"errmsg":"bad body"}`)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	n := len(f.requests)
	f.mu.Unlock()
	if f.gate != nil {
		f.gate(n, r)
	}
	if req.GrantType != "client_credential" || req.AppID != "wxappid" {
		writeJSON(w, http.StatusOK, `{"errcode":40013,"errmsg":"invalid appid"}`)
		return
	}
	if req.Secret != testSecret {
		writeJSON(w, http.StatusOK, `{"errcode":40125,"errmsg":"invalid appsecret"}`)
		return
	}
	f.mu.Lock()
	tok := f.current
	if tok == "" || req.ForceRefresh || f.rotatePlain {
		tok = f.issue()
	}
	exp := f.expiresIn
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, fmt.Sprintf(`{"access_token":%q,"expires_in":%d}`, tok, exp))
}

// counts returns the number of requests and of force_refresh requests.
func (f *fakeTokenServer) counts() (all, forced int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		if r.ForceRefresh {
			forced++
		}
	}
	return len(f.requests), forced
}

// request returns the i-th request (1-based).
func (f *fakeTokenServer) request(i int) stableTokenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[i-1]
}

// token returns the i-th issued token (1-based).
func (f *fakeTokenServer) token(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i < 1 || i > len(f.issued) {
		f.t.Fatalf("token %d of %d issued", i, len(f.issued))
	}
	return f.issued[i-1]
}
