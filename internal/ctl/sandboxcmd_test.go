package ctl

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fulfill/pipeline/pkg/clients/wechat/push"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// fulfillctl sandbox --push-url pushes each shop's orders to its own URL
// ({shop} replaced), sealed with the shop's keys, with the cancels,
// duplicates and forged pushes asked for.
func TestSandboxPushFlags(t *testing.T) {
	const orders, shops = 5, 2
	var mu sync.Mutex
	opened := map[string]map[string]int{} // per path, per event
	distinct := map[string]bool{}         // path and de-duplication key
	refused := 0
	all, closed := make(chan struct{}), false
	// Every message: a pay per order and a cancel per shop (a retry under
	// load would only repeat one), two duplicates and two forged per shop.
	complete := func() bool {
		pays := 0
		for _, ev := range opened {
			pays += ev[sandbox.EventOrderPay]
		}
		return len(distinct) == shops*(orders+1) && pays >= shops*(orders+2) && refused == shops*2
	}
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a := sandbox.DerivedApp(map[string]int{"/push/shop-1": 0, "/push/shop-2": 1}[r.URL.Path])
		keys := push.Keys{Token: a.PushToken, AESKey: a.PushAESKey, AppID: a.AppID}
		m, err := keys.Open(push.ParseQuery(r.URL.Query()), body)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			refused++
			http.Error(w, "refused", http.StatusUnauthorized)
		} else {
			if opened[r.URL.Path] == nil {
				opened[r.URL.Path] = map[string]int{}
			}
			opened[r.URL.Path][m.Event]++
			distinct[r.URL.Path+" "+m.DedupKey()] = true
			_, _ = io.WriteString(w, "success")
		}
		if !closed && complete() {
			close(all)
			closed = true
		}
	}))
	defer rc.Close()

	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"fulfillctl", "sandbox", "--addr", "127.0.0.1:0", "--orders", "5", "--shops", "2", "--faults", "none",
			"--push-url", rc.URL + "/push/{shop}", "--push-rate", "0", "--push-duplicates", "0.4", "--cancel", "1", "--forged", "2"}, env)
	}()
	select {
	case <-all:
	case err := <-done:
		t.Fatalf("sandbox ended: %v\n%s", err, out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sandbox: %v\n%s", err, out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, path := range []string{"/push/shop-1", "/push/shop-2"} {
		if got := opened[path]; got[sandbox.EventOrderPay] < orders+2 || got[sandbox.EventOrderCancel] < 1 || len(got) != 2 {
			t.Fatalf("%s got %v", path, got)
		}
	}
	if refused != shops*2 {
		t.Fatalf("%d refused, want %d", refused, shops*2)
	}
	for _, s := range []string{"shop 2 pushes to " + rc.URL + "/push/shop-2: push token " + sandbox.DerivedPushToken(1), "sandbox: pushes: "} {
		if !strings.Contains(out.String(), s) {
			t.Fatalf("output lacks %q:\n%s", s, out.String())
		}
	}
}

func TestSandboxPushFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--cancel", "3"},
		{"--push-duplicates", "0.2"},
		{"--shops", "2", "--push-url", "http://127.0.0.1:1/push/default"},
		{"--push-url", "http://127.0.0.1:1/push", "--push-reorder", "2"},
		{"--push-url", "http://127.0.0.1:1/push", "--push-time-scale", "0"},
		{"--push-url", "127.0.0.1:1/push"},
	} {
		var out bytes.Buffer
		env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
		err := Run(t.Context(), append([]string{"fulfillctl", "sandbox", "--addr", "127.0.0.1:0"}, args...), env)
		if err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
