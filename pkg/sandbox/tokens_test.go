package sandbox_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

func TestTokenEndpoints(t *testing.T) {
	getQuery := func(grant, appid, secret string) string {
		return "?" + url.Values{"grant_type": {grant}, "appid": {appid}, "secret": {secret}}.Encode()
	}
	ok := getQuery("client_credential", sandbox.DefaultAppID, sandbox.DefaultAppSecret)
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		wantCode  int // 0: a token is answered
		wantExpIn int
	}{
		{"stable_token", http.MethodPost, pathStableToken, stableBody(false), 0, 7200},
		{"stable_token force", http.MethodPost, pathStableToken, stableBody(true), 0, 7200},
		{"stable_token bad appid", http.MethodPost, pathStableToken, `{"grant_type":"client_credential","appid":"wxother","secret":"sandbox-app-secret"}`, 40013, 0},
		{"stable_token bad secret", http.MethodPost, pathStableToken, `{"grant_type":"client_credential","appid":"wxsandboxappid","secret":"nope"}`, 40125, 0},
		{"stable_token bad grant", http.MethodPost, pathStableToken, `{"grant_type":"password","appid":"wxsandboxappid","secret":"sandbox-app-secret"}`, 40002, 0},
		{"stable_token missing appid", http.MethodPost, pathStableToken, `{"grant_type":"client_credential","secret":"sandbox-app-secret"}`, 41002, 0},
		{"stable_token bad json", http.MethodPost, pathStableToken, `{"grant_type":`, 47001, 0},
		{"stable_token wrong type", http.MethodPost, pathStableToken, `{"grant_type":"client_credential","appid":"wxsandboxappid","secret":"sandbox-app-secret","force_refresh":"yes"}`, 47001, 0},
		{"stable_token empty", http.MethodPost, pathStableToken, ``, 44002, 0},
		{"stable_token GET", http.MethodGet, pathStableToken, ``, 43002, 0},
		{"token", http.MethodGet, pathToken + ok, ``, 0, 7200},
		{"token bad secret", http.MethodGet, pathToken + getQuery("client_credential", sandbox.DefaultAppID, "x"), ``, 40125, 0},
		{"token POST", http.MethodPost, pathToken + ok, ``, 43001, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{})
			st, b := e.do(context.Background(), tt.method, tt.path, "", []byte(tt.body), nil)
			if st != http.StatusOK {
				t.Fatalf("HTTP %d", st)
			}
			m := decodeObj(t, b)
			if tt.wantCode != 0 {
				if got := errcode(m); got != tt.wantCode {
					t.Fatalf("errcode = %d, want %d (%s)", got, tt.wantCode, b)
				}
				if _, ok := m["access_token"]; ok {
					t.Fatalf("error answer carries a token: %s", b)
				}
				return
			}
			tok, _ := m["access_token"].(string)
			if tok == "" || num(m, "expires_in") != tt.wantExpIn {
				t.Fatalf("answer %s", b)
			}
			if !slices.Contains(e.sb.Tokens(), tok) {
				t.Fatalf("token %q not in Tokens()", tok)
			}
			if got := errcode(e.call(pathOrderGet, tok, `{"order_id":"1"}`)); got != 100002 {
				t.Fatalf("business call with the new token: errcode %d, want 100002 (token accepted)", got)
			}
		})
	}
}

func TestBusinessCallTokenChecks(t *testing.T) {
	tests := []struct {
		name  string
		token func(e *env) string
		want  int
	}{
		{"valid", func(e *env) string { return e.token() }, 0},
		{"missing", func(*env) string { return "" }, 40001},
		{"never issued", func(*env) string { return "SBX_forged" }, 40001},
		{"expired", func(e *env) string {
			tok := e.token()
			e.clock.Advance(2 * time.Hour)
			return tok
		}, 42001},
		{"rotated by GET token", func(e *env) string {
			tok := e.token()
			e.do(context.Background(), http.MethodGet, pathToken+"?grant_type=client_credential&appid=wxsandboxappid&secret=sandbox-app-secret", "", nil, nil)
			return tok
		}, 40001},
		{"rotated by force_refresh", func(e *env) string {
			tok := e.token()
			e.call(pathStableToken, "", stableBody(true))
			return tok
		}, 40001},
		{"IssueToken", func(e *env) string { return e.sb.IssueToken() }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Orders: 1})
			tok := tt.token(e)
			if got := errcode(e.call(pathOrderGet, tok, `{"order_id":"`+firstOrder+`"}`)); got != tt.want {
				t.Fatalf("errcode = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStableTokenReusesValidToken(t *testing.T) {
	e := newEnv(t, sandbox.Config{TokenTTL: time.Hour})
	first := e.token()
	e.clock.Advance(10 * time.Minute)
	m := e.call(pathStableToken, "", stableBody(false))
	if m["access_token"] != first || num(m, "expires_in") != 3000 {
		t.Fatalf("second stable_token = %v, want the same token with 3000 s left", m)
	}
	e.clock.Advance(time.Hour)
	if again := e.token(); again == first {
		t.Fatal("expired token handed out again")
	}
	if got := len(e.sb.Tokens()); got != 2 {
		t.Fatalf("Tokens() has %d, want 2", got)
	}
}

func TestRotateTokenEvery(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 1, RotateTokenEvery: 2})
	get := func(tok string) int { return errcode(e.call(pathOrderGet, tok, `{"order_id":"`+firstOrder+`"}`)) }
	old := e.token()
	if a, b := get(old), get(old); a != 0 || b != 0 {
		t.Fatalf("first two calls: %d %d", a, b)
	}
	if got := get(old); got != 40001 {
		t.Fatalf("third call: errcode %d, want 40001", got)
	}
	fresh := e.token() // force_refresh false
	if fresh == old {
		t.Fatal("stable_token answered the rotated token again")
	}
	if got := get(fresh); got != 0 {
		t.Fatalf("new token: errcode %d", got)
	}
	if got := get(old); got != 40001 {
		t.Fatalf("old token after rotation: errcode %d, want 40001", got)
	}
}

func TestForceRefreshTooSoon(t *testing.T) {
	tests := []struct {
		name  string
		steps []time.Duration // clock advance before each force_refresh call
		want  int
	}{
		{"once", []time.Duration{0}, 0},
		{"twice at once", []time.Duration{0, 0}, 1},
		{"29s apart", []time.Duration{0, 29 * time.Second}, 1},
		{"30s apart", []time.Duration{0, 30 * time.Second}, 0},
		{"three within 30s", []time.Duration{0, 10 * time.Second, 10 * time.Second}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{})
			seen := map[any]bool{}
			for _, d := range tt.steps {
				e.clock.Advance(d)
				m := e.call(pathStableToken, "", stableBody(true))
				if seen[m["access_token"]] {
					t.Fatal("force_refresh answered an old token")
				}
				seen[m["access_token"]] = true
			}
			if got := e.sb.Stats().ForceRefreshTooSoon; got != tt.want {
				t.Fatalf("ForceRefreshTooSoon = %d, want %d", got, tt.want)
			}
		})
	}
}
