package wechat

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"no token here", "no token here"},
		{"https://api.weixin.qq.com/x?access_token=ABC", "https://api.weixin.qq.com/x?access_token=REDACTED"},
		{"https://h/x?access_token=ABC&a=1", "https://h/x?access_token=REDACTED&a=1"},
		{"https://h/x?a=1&access_token=ABC&b=2&access_token=DEF", "https://h/x?a=1&access_token=REDACTED&b=2&access_token=REDACTED"},
		{`Post "https://h/x?access_token=ABC": EOF`, `Post "https://h/x?access_token=REDACTED": EOF`},
		{"access_token=", "access_token="},
		{"access_token=&x=1", "access_token=&x=1"},
		{"https://h/x?access_token=REDACTED", "https://h/x?access_token=REDACTED"},
		{"u=https%3A%2F%2Fh%2Fx%3Faccess_token%3DABC%26y%3D1", "u=https%3A%2F%2Fh%2Fx%3Faccess_token%3DREDACTED%26y%3D1"},
		{"access_token=a b", "access_token=REDACTED b"},
		{"access_token=访问令牌", "access_token=REDACTED"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTokenNeverInErrors drives the paths where the URL (and so the token) could
// reach an error: *url.Error from a closed connection, a refused dial, a redirect
// loop, a bad base URL, a timeout, and a platform errmsg echoing the token. Every
// error is recorded and logged with zerolog; the recorder fails the test if the
// token appears in any of them.
func TestTokenNeverInErrors(t *testing.T) {
	lr := newLeakRecorder(t)
	release := make(chan struct{})
	tests := []struct {
		name    string
		handler http.HandlerFunc
		dead    bool
		base    string
		check   func(t *testing.T, err error)
	}{
		{name: "server closes connection", handler: hijackClose(t), check: func(t *testing.T, err error) {
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Fatalf("got %T %v, want a *url.Error in the chain", err, err)
			}
			if !strings.Contains(ue.URL, "access_token=REDACTED") {
				t.Errorf("url.Error URL %q not redacted", ue.URL)
			}
			if Classify(err) != ClassTransient {
				t.Errorf("class %v", Classify(err))
			}
		}},
		{name: "connection refused", dead: true},
		{name: "redirect loop keeps the token in the URL", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		}},
		{name: "bad base URL", base: "http://bad host"},
		{name: "timeout", handler: blockUntilGone(release)},
		{name: "errmsg echoes the token", handler: func(w http.ResponseWriter, r *http.Request) {
			tok := r.URL.Query().Get("access_token")
			writeJSON(w, 200, `{"errcode":40001,"errmsg":"invalid credential, access_token=`+tok+` rid: 1; token `+tok+`"}`)
		}},
		{name: "HTML page echoing the URL", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, "<html>"+r.URL.String()+"</html>")
		}},
		{name: "HTTP 500 echoing the URL", handler: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 500, `{"errcode":-1,"errmsg":"`+r.URL.String()+`"}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.handler
			if h == nil {
				h = func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, okBody) }
			}
			srv := newServer(t, nil, h)
			t.Cleanup(srv.CloseClientConnections)
			base := srv.URL
			if tt.base != "" {
				base = tt.base
			}
			if tt.dead {
				srv.Close()
			}
			c := NewClient(StaticToken(testToken), WithBaseURL(base), WithHTTPClient(&http.Client{Timeout: timeoutFor(tt.name)}))
			err := c.SendDelivery(context.Background(), SendDeliveryRequest{OrderID: "1"})
			lr.record(err)
			if err == nil {
				t.Fatal("got nil error")
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
	close(release)
}

// timeoutFor gives the timeout case a short client timeout and the others the
// default.
func timeoutFor(name string) time.Duration {
	if name == "timeout" {
		return 100 * time.Millisecond
	}
	return DefaultTimeout
}

func TestScrubBody(t *testing.T) {
	const tok = "ACCESS_TOKEN+a/b==" // escapes to ACCESS_TOKEN%2Ba%2Fb%3D%3D
	escaped := url.QueryEscape(tok)
	tests := []struct{ in, want string }{
		{`{"errcode":0}`, `{"errcode":0}`},
		{`{"errmsg":"bad token ` + tok + `"}`, `{"errmsg":"bad token ` + redacted + `"}`},
		{`{"errmsg":"url ?access_token=` + escaped + `&x=1"}`, `{"errmsg":"url ?access_token=` + redacted + `&x=1"}`},
		{tok + tok, redacted + redacted},
		{`ends with ` + tok, `ends with ` + redacted},
		{`a prefix only ` + tok[:len(tok)-1], `a prefix only ` + tok[:len(tok)-1]},
		{`AACCESS_TOKEN+a/b==`, `A` + redacted},
	}
	for _, tt := range tests {
		if got := string(scrubBody([]byte(tt.in), tok)); got != tt.want {
			t.Errorf("scrubBody(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := string(scrubBody([]byte("short"), "short")); got != "short" {
		t.Errorf("a token shorter than minScrubLen is left: got %q", got)
	}
	// Every answer is scrubbed: one without the token costs nothing (for
	// a token that needs no escaping, as the platform's are).
	body := []byte(`{"errcode":0,"errmsg":"ok","order":{"order_id":"3704612354559743232","status":20}}`)
	plain := "86_" + strings.Repeat("Ab9_-", 30)
	if n := testing.AllocsPerRun(100, func() { _ = scrubBody(body, plain) }); n != 0 {
		t.Errorf("scrubBody of an answer without the token allocates %v times", n)
	}
}

func FuzzContainsString(f *testing.F) {
	f.Add([]byte("hello world"), "world")
	f.Add([]byte("aaab"), "aab")
	f.Add([]byte("ab"), "abc")
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		if s == "" {
			return
		}
		if got, want := containsString(b, s), bytes.Contains(b, []byte(s)); got != want {
			t.Fatalf("containsString(%q, %q) = %v, bytes.Contains %v", b, s, got, want)
		}
	})
}
