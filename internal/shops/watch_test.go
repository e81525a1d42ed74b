package shops

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// deadline bounds every wait; the waits themselves are on events, never on
// the clock.
const deadline = 10 * time.Second

// logBuf is a zerolog destination the test reads while the watcher writes.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// probe counts the watcher's checks through its test hook.
type probe struct {
	mu                      sync.Mutex
	checks, reparses, fails int
	notify                  chan struct{}
}

func (p *probe) hook(reparsed bool, err error) {
	p.mu.Lock()
	p.checks++
	if reparsed {
		p.reparses++
	}
	if err != nil {
		p.fails++
	}
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *probe) counts() (checks, reparses, fails int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checks, p.reparses, p.fails
}

// waitFor waits until cond holds for the counts.
func (p *probe) waitFor(t *testing.T, what string, cond func(checks, reparses, fails int) bool) {
	t.Helper()
	timeout := time.NewTimer(deadline)
	defer timeout.Stop()
	for {
		if cond(p.counts()) {
			return
		}
		select {
		case <-p.notify:
		case <-timeout.C:
			c, r, f := p.counts()
			t.Fatalf("timed out waiting for %s (checks %d, reparses %d, failures %d)", what, c, r, f)
		}
	}
}

type harness struct {
	w      *Watcher
	log    *logBuf
	probe  *probe
	reload chan struct{}
}

// start watches path with Run in the background until the test ends; at the
// end no log line may hold a secret.
func start(t *testing.T, path string, interval time.Duration) *harness {
	t.Helper()
	h := &harness{log: &logBuf{}, probe: &probe{notify: make(chan struct{}, 1)}, reload: make(chan struct{})}
	w, err := NewWatcher(path, getenv, zerolog.New(h.log))
	if err != nil {
		t.Fatal(err)
	}
	w.checked = h.probe.hook
	h.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, h.reload, interval)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if strings.Contains(h.log.String(), leak) {
			t.Errorf("the log holds a secret:\n%s", h.log)
		}
	})
	return h
}

func (h *harness) nextChange(t *testing.T) *Registry {
	t.Helper()
	select {
	case r := <-h.w.Changes():
		if h.w.Current() != r {
			t.Fatal("Changes delivered a registry that is not Current")
		}
		return r
	case <-time.After(deadline):
		t.Fatalf("no change within %s; log:\n%s", deadline, h.log)
		return nil
	}
}

func (h *harness) noChange(t *testing.T) {
	t.Helper()
	select {
	case r := <-h.w.Changes():
		t.Fatalf("unexpected change to %v", r.IDs())
	default:
	}
}

func (h *harness) logged(msg string) int { return strings.Count(h.log.String(), msg) }

// shopsYAML is a valid file with vv-tool shops of these ids.
func shopsYAML(ids ...string) string {
	var b strings.Builder
	b.WriteString("shops:\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "  - id: %s\n    vvtool: {token_env: ACME_VV_TOKEN, shop_ids: [1]}\n", id)
	}
	return b.String()
}

// replace writes the file as editors and deploy tools do: a new file renamed
// over the old, so the watcher never reads half of it.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shops.yaml")
	writeFile(t, path, content)
	return path
}

func TestWatcherPicksUpChange(t *testing.T) {
	path := newFile(t, shopsYAML("acme"))
	h := start(t, path, 5*time.Millisecond)
	if got := h.w.Current().IDs(); !reflect.DeepEqual(got, []string{"acme"}) {
		t.Fatalf("first registry %v", got)
	}
	replace(t, path, shopsYAML("acme", "beta"))
	if got := h.nextChange(t).IDs(); !reflect.DeepEqual(got, []string{"acme", "beta"}) {
		t.Fatalf("new registry %v", got)
	}
	if !strings.Contains(h.log.String(), `"added_ids":["beta"]`) {
		t.Fatalf("the reload is not logged with its added shop:\n%s", h.log)
	}
}

func TestWatcherKeepsLastGoodRegistry(t *testing.T) {
	path := newFile(t, shopsYAML("acme"))
	h := start(t, path, 5*time.Millisecond)
	good := h.w.Current()

	replace(t, path, "shops:\n  - id: acme\n    vvtool: {token_env: NOPE, shop_ids: [1]}\n")
	h.probe.waitFor(t, "the broken file to be refused", func(_, _, fails int) bool { return fails >= 1 })
	if h.w.Current() != good {
		t.Fatal("a broken file replaced the registry")
	}
	h.noChange(t)
	const refused = "shops file refused"
	log := h.log.String()
	if !strings.Contains(log, "shops file line 3, column 25: shops[0].vvtool.token_env (shop acme): NOPE is not set") {
		t.Fatalf("the refusal does not name line and field:\n%s", log)
	}

	// Polling the same broken file logs nothing more.
	checks, _, _ := h.probe.counts()
	h.probe.waitFor(t, "three more polls", func(c, _, _ int) bool { return c >= checks+3 })
	if n := h.logged(refused); n != 1 {
		t.Fatalf("the same refusal logged %d times:\n%s", n, h.log)
	}

	// Another error is logged again.
	_, _, fails := h.probe.counts()
	replace(t, path, "shops: [{id: Acme}]\n")
	h.probe.waitFor(t, "the second broken file", func(_, _, f int) bool { return f > fails })
	if n := h.logged(refused); n != 2 || h.w.Current() != good {
		t.Fatalf("second refusal: logged %d times, current kept %v", n, h.w.Current() == good)
	}

	// A fixed file is picked up again.
	replace(t, path, shopsYAML("acme", "beta"))
	if got := h.nextChange(t).IDs(); !reflect.DeepEqual(got, []string{"acme", "beta"}) {
		t.Fatalf("fixed registry %v", got)
	}
}

func TestWatcherReloadSignal(t *testing.T) {
	path := newFile(t, shopsYAML("acme"))
	h := start(t, path, 0) // no polling: only the signal reads the file
	replace(t, path, shopsYAML("beta"))
	h.reload <- struct{}{}
	if got := h.nextChange(t).IDs(); !reflect.DeepEqual(got, []string{"beta"}) {
		t.Fatalf("after the signal %v", got)
	}

	// A signal with nothing changed sends nothing and says so.
	h.reload <- struct{}{}
	h.probe.waitFor(t, "the second reload", func(c, _, _ int) bool { return c >= 2 })
	h.noChange(t)
	if h.logged("the registry is unchanged") != 1 {
		t.Fatalf("an unchanged reload is not logged:\n%s", h.log)
	}

	// Each signal answers for a broken file, even the same one.
	replace(t, path, "shops: []\n")
	h.reload <- struct{}{}
	h.reload <- struct{}{}
	h.probe.waitFor(t, "two refused reloads", func(_, _, f int) bool { return f >= 2 })
	if n := h.logged("shops file refused"); n != 2 {
		t.Fatalf("refused reloads logged %d times:\n%s", n, h.log)
	}
	if got := h.w.Current().IDs(); !reflect.DeepEqual(got, []string{"beta"}) {
		t.Fatalf("current after refusals %v", got)
	}
}

// Kubernetes mounts a ConfigMap as <dir>/shops.yaml -> ..data/shops.yaml,
// ..data -> ..<timestamp>; an update writes a new timestamped folder and
// renames a new ..data link over the old one.
func TestWatcherConfigMapSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	mount := func(version, content string) {
		t.Helper()
		d := filepath.Join(dir, "..2025_01_0"+version)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(d, "shops.yaml"), content)
		// Same size and times as the first version: only the content tells.
		stamp := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(d, "shops.yaml"), stamp, stamp); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Base(d), filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	mount("1", shopsYAML("acme"))
	path := filepath.Join(dir, "shops.yaml")
	if err := os.Symlink(filepath.Join("..data", "shops.yaml"), path); err != nil {
		t.Fatal(err)
	}
	h := start(t, path, 5*time.Millisecond)

	mount("2", shopsYAML("beta"))
	if err := os.RemoveAll(filepath.Join(dir, "..2025_01_01")); err != nil {
		t.Fatal(err)
	}
	if got := h.nextChange(t).IDs(); !reflect.DeepEqual(got, []string{"beta"}) {
		t.Fatalf("after the swap %v", got)
	}
}

// A rotated secret file changes the registry though the shops file did not.
func TestWatcherSecretFileRotation(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "vv-token"), "sekrit-v1\n")
	path := filepath.Join(dir, "shops.yaml")
	writeFile(t, path, "shops: [{id: acme, vvtool: {token_file: vv-token, shop_ids: [1]}}]\n")
	h := start(t, path, 5*time.Millisecond)

	replace(t, filepath.Join(dir, "vv-token"), "sekrit-v2\n")
	r := h.nextChange(t)
	if s, _ := r.Shop("acme"); s.VVTool.Token != "sekrit-v2" {
		t.Fatalf("token after rotation: %q", s.VVTool.Token)
	}
	if !strings.Contains(h.log.String(), `"changed_ids":["acme"]`) {
		t.Fatalf("the rotation is not logged as a changed shop:\n%s", h.log)
	}

	// A secret file that disappears is refused like a broken shops file.
	if err := os.Remove(filepath.Join(dir, "vv-token")); err != nil {
		t.Fatal(err)
	}
	h.probe.waitFor(t, "the missing secret file", func(_, _, f int) bool { return f >= 1 })
	if h.w.Current() != r || !strings.Contains(h.log.String(), `cannot read \"vv-token\"`) {
		t.Fatalf("missing secret file: current kept %v, log:\n%s", h.w.Current() == r, h.log)
	}
}

func TestWatcherClosedReloadKeepsPolling(t *testing.T) {
	path := newFile(t, shopsYAML("acme"))
	h := start(t, path, 5*time.Millisecond)
	close(h.reload)
	replace(t, path, shopsYAML("beta"))
	if got := h.nextChange(t).IDs(); !reflect.DeepEqual(got, []string{"beta"}) {
		t.Fatalf("after a closed reload channel %v", got)
	}
}

func TestNewWatcherRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, path, content, want string }{
		{"bad file", filepath.Join(dir, "bad.yaml"), "shops:\n  - id: acme\n    channels: {secret: sekrit-inline}\n",
			"shops file line 3, column 16: shops[0].channels.secret (shop acme): inline secrets are not allowed"},
		{"missing file", filepath.Join(dir, "nope.yaml"), "", "shops file: cannot read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.content != "" {
				writeFile(t, tc.path, tc.content)
			}
			w, err := NewWatcher(tc.path, getenv, zerolog.Nop())
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || w != nil {
				t.Fatalf("NewWatcher = %v, %v; want %q", w, err, tc.want)
			}
			checkErrorText(t, err.Error())
		})
	}
}

func TestChangesLatestWins(t *testing.T) {
	w := &Watcher{changes: make(chan *Registry, 1)}
	a, _ := Single(Shop{ID: "a", VVTool: &VVTool{Token: "t", ShopIDs: []string{"1"}}})
	b, _ := Single(Shop{ID: "b", VVTool: &VVTool{Token: "t", ShopIDs: []string{"1"}}})
	w.publish(a)
	w.publish(b)
	if got := <-w.Changes(); got != b {
		t.Fatalf("received %v, want the latest", got.IDs())
	}
	select {
	case r := <-w.Changes():
		t.Fatalf("a second registry %v", r.IDs())
	default:
	}
}
