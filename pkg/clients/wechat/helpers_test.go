package wechat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testToken is the access token of StaticToken tests: distinctive, so a leak is
// easy to spot.
const testToken = "SECRET-ACCESS-TOKEN-9f8e7d6c5b4a-do-not-leak"

// testSecret is the app secret of StableTokenSource tests.
const testSecret = "APP-SECRET-0123456789abcdef-do-not-leak"

// failsafe bounds every wait on a test barrier, so that a bug fails the test
// instead of hanging it; it is never used to order events.
const failsafe = 10 * time.Second

// leakRecorder collects every error a test got and logs it with zerolog into a
// buffer; at the end of the test it asserts that no secret appears in any error
// string, %+v rendering or log line.
type leakRecorder struct {
	t       *testing.T
	mu      sync.Mutex
	buf     bytes.Buffer
	log     zerolog.Logger
	texts   []string
	secrets []string
	count   int
}

// newLeakRecorder returns a recorder checking for testToken, testSecret and the
// given secrets when the test ends.
func newLeakRecorder(t *testing.T, secrets ...string) *leakRecorder {
	t.Helper()
	lr := &leakRecorder{t: t, secrets: append([]string{testToken, testSecret}, secrets...)}
	lr.log = zerolog.New(lockedWriter{lr}).With().Timestamp().Logger()
	t.Cleanup(lr.check)
	return lr
}

// lockedWriter serialises zerolog writes into the recorder's buffer.
type lockedWriter struct{ lr *leakRecorder }

func (w lockedWriter) Write(p []byte) (int, error) { return w.lr.buf.Write(p) }

// addSecret adds a secret (for example a token the fake platform issued).
func (lr *leakRecorder) addSecret(s string) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.secrets = append(lr.secrets, s)
}

// record captures err (nil is ignored).
func (lr *leakRecorder) record(err error) {
	if err == nil {
		return
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.count++
	lr.texts = append(lr.texts, err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%q", err))
	lr.log.Error().Err(err).Str("class", Classify(err).String()).Int("code", Code(err)).Msg("wechat call failed")
}

// check asserts that no secret leaked.
func (lr *leakRecorder) check() {
	lr.t.Helper()
	lr.mu.Lock()
	defer lr.mu.Unlock()
	logged := lr.buf.String()
	if lr.count > 0 && strings.Count(logged, "\n") != lr.count {
		lr.t.Errorf("leak check: %d errors recorded but %d log lines", lr.count, strings.Count(logged, "\n"))
	}
	for _, s := range lr.secrets {
		if s == "" {
			continue
		}
		for _, text := range lr.texts {
			if strings.Contains(text, s) {
				lr.t.Errorf("secret %q leaked in error %q", s, text)
			}
		}
		if strings.Contains(logged, s) {
			lr.t.Errorf("secret %q leaked in log output %q", s, logged)
		}
	}
}

// recordedCall is one request the fake platform received.
type recordedCall struct {
	Path  string
	Token string
	Body  []byte
}

// callLog records the requests a fake platform received.
type callLog struct {
	mu    sync.Mutex
	calls []recordedCall
}

// wrap returns h recording each request first.
func (cl *callLog) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		cl.mu.Lock()
		cl.calls = append(cl.calls, recordedCall{Path: r.URL.Path, Token: r.URL.Query().Get("access_token"), Body: body})
		cl.mu.Unlock()
		h(w, r)
	}
}

// count returns how many requests hit path ("" for all).
func (cl *callLog) count(path string) int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	n := 0
	for _, c := range cl.calls {
		if path == "" || c.Path == path {
			n++
		}
	}
	return n
}

// of returns the requests that hit path.
func (cl *callLog) of(path string) []recordedCall {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var out []recordedCall
	for _, c := range cl.calls {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// newServer starts an httptest server recording its requests into cl (if not
// nil) and closes it when the test ends.
func newServer(t *testing.T, cl *callLog, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	if cl != nil {
		h = cl.wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// writeJSON answers status with body.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// readGolden returns testdata/name.
func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read golden: %v", err)
	}
	return b
}

// assertJSONEqual compares two JSON documents after unmarshalling both into
// interface{}.
func assertJSONEqual(t *testing.T, want, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("unmarshal want: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("unmarshal got %s: %v", got, err)
	}
	if !reflect.DeepEqual(w, g) {
		t.Errorf("JSON differs\nwant: %s\n got: %s", want, got)
	}
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// staticClient returns a client with StaticToken(testToken) against srv.
func staticClient(srv *httptest.Server, opts ...Option) *Client {
	return NewClient(StaticToken(testToken), append([]Option{WithBaseURL(srv.URL)}, opts...)...)
}

// okBody is the answer of a successful call without payload.
const okBody = `{"errcode":0,"errmsg":"ok"}`
