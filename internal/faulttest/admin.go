package faulttest

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// Get is a GET with a 5 s deadline that reports errors instead of failing
// the test (for sampling a process that may be going away).
func Get(url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// WaitReady polls a service's /readyz until it answers 200 (or fails the
// test after a minute, or as soon as exited, if not nil, is closed: the
// child process running the service ended).
func WaitReady(t testing.TB, adminAddr string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if code, _, err := Get("http://" + adminAddr + "/readyz"); err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-exited:
			t.Fatalf("the service on %s exited before it was ready", adminAddr)
		case <-deadline.C:
			t.Fatalf("the service on %s was not ready within a minute", adminAddr)
		case <-tick.C:
		}
	}
}
