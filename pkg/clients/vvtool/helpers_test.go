package vvtool

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// testToken is the Bearer token of the tests; no error string may contain it.
const testToken = "tok-5ecr3t-73a1e6f00198e0c43215505dcf6e31a6"

// newServer starts an httptest.Server closed at the end of the test.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newTestClient returns a Client for srv whose limiter does not slow the test.
func newTestClient(srv *httptest.Server, opts ...Option) *Client {
	opts = append([]Option{WithBaseURL(srv.URL), WithLimiter(NewLimiter(10000, time.Second))}, opts...)
	return NewClient(testToken, opts...)
}

// readGolden returns a testdata file.
func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seedRequestForm returns the seed's request example as form values.
func seedRequestForm(t *testing.T) map[string][]string {
	t.Helper()
	form := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(string(readGolden(t, "detail_request.txt"))))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			t.Fatalf("bad line %q in detail_request.txt", sc.Text())
		}
		form[name] = append(form[name], value)
	}
	return form
}

// writeJSON answers body with HTTP 200.
func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(body))
}
