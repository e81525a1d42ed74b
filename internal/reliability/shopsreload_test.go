package reliability

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// reloadEnv starts a stack of three shops whose shops file names the first
// two, and ingest alone reading it.
func reloadEnv(t *testing.T, interval string) (*stack.Stack, *faulttest.SyncBuffer, func(app int) int) {
	t.Helper()
	st := faulttest.StartStack(t, stack.Options{Shops: 3, Sandbox: sandbox.Config{Seed: 7, Orders: 20},
		Env: fastEnv(map[string]string{"SHOPS_RELOAD_INTERVAL": interval})})
	if err := st.WriteShops(0, 1); err != nil {
		t.Fatal(err)
	}
	logs := &faulttest.SyncBuffer{}
	startServices(t, st, logs, nil, "ingest")
	apps := st.Sandbox.Apps()
	lists := func(app int) int {
		return st.Sandbox.Stats().ByApp[apps[app].AppID].Calls[sandbox.EndpointOrderList]
	}
	return st, logs, lists
}

// waitCond polls cond until it holds, or fails the test after a minute.
func waitCond(t *testing.T, what string, logs fmt.Stringer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, faulttest.Tail(logs.String(), 30))
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestShopsReload (issue 16): a shop added to the shops file starts polling
// without a restart, a shop removed stops polling, and a broken file is
// refused with its line and field while the last good registry keeps
// working.
func TestShopsReload(t *testing.T) {
	st, logs, lists := reloadEnv(t, "100ms")
	_, js := faulttest.Connect(t, st.NATSURL)
	received := func(app int) bool {
		tl, err := tally.Read(t.Context(), js)
		if err != nil {
			return false
		}
		for _, o := range st.Sandbox.AppScenario(st.Sandbox.Apps()[app].AppID) {
			if s := tl.Orders[st.Key(o)]; s == nil || s.Received == 0 {
				return false
			}
		}
		return true
	}
	waitCond(t, "shops 1 and 2's orders to be received", logs, func() bool { return received(0) && received(1) })
	if n := lists(2); n != 0 {
		t.Fatalf("shop-3, not in the file, was polled %d times", n)
	}

	// Added: polled, its orders received, no restart.
	if err := st.WriteShops(0, 1, 2); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "shop-3's orders to be received after it was added", logs, func() bool { return received(2) })

	// Removed: no more polls of shop-2 while the others go on.
	if err := st.WriteShops(0, 2); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "shop-2 to stop being polled", logs, func() bool {
		return logLine(logs.String(), `"shop":"shop-2"`, "stopped polling the shop")
	})
	removed, others := lists(1), lists(0)
	waitCond(t, "three more polls of shop-1", logs, func() bool { return lists(0) >= others+3 })
	if n := lists(1); n != removed {
		t.Errorf("shop-2 was polled %d more times after it was removed", n-removed)
	}

	// Broken: refused, saying where; shops 1 and 3 keep being polled.
	broken := "shops:\n  - id: shop-1\n    channels:\n      appid: wxsandboxappid\n      secret: inline-sekrit\n      delivery_id: SF\n"
	if err := os.WriteFile(st.ShopsFile, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "the broken file to be refused", logs, func() bool {
		return logLine(logs.String(), "line 5", "channels.secret")
	})
	if strings.Contains(logs.String(), "inline-sekrit") {
		t.Error("the refusal logged the inline secret")
	}
	one, three := lists(0), lists(2)
	waitCond(t, "shops 1 and 3 to be polled again after the refusal", logs, func() bool {
		return lists(0) >= one+3 && lists(2) >= three+3
	})
	if n := lists(1); n != removed {
		t.Errorf("shop-2 was polled again after a refused file")
	}
}

// TestShopsReloadOnSIGHUP: with file checks far apart, SIGHUP re-reads the
// shops file at once.
func TestShopsReloadOnSIGHUP(t *testing.T) {
	st, logs, lists := reloadEnv(t, "1h")
	waitCond(t, "shop-1 to be polled", logs, func() bool { return lists(0) > 0 })
	if err := st.WriteShops(0, 1, 2); err != nil {
		t.Fatal(err)
	}
	// The service has SIGHUP caught (signal.Notify) while it runs, so the
	// signal reaches it, not the test process's default action.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "shop-3 to be polled after SIGHUP", logs, func() bool { return lists(2) > 0 })
}

// logLine reports whether one line of logs holds every part.
func logLine(logs string, parts ...string) bool {
	for line := range strings.Lines(logs) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
