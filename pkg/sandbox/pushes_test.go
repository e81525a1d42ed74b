package sandbox_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/clients/wechat/push"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// received is one push as a receiver saw it.
type received struct {
	path   string
	at     time.Time
	openid string        // the query's openid
	msg    *push.Message // nil when it did not open
	err    error         // why it did not open
	status int           // what the receiver answered
}

// receiver is a shop's push endpoint as ingest serves it: every push is
// opened with the keys of its path (push.Keys.Open) and refused 401/400
// when it does not open; answer decides what an opened push is answered
// (n: how many times its message was received before; nil: success).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	keys   map[string]push.Keys // by path
	answer func(m *push.Message, n int, w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	got  []received
	seen map[string]int // per DedupKey
}

func newReceiver(t *testing.T, keys map[string]push.Keys) *receiver {
	t.Helper()
	rc := &receiver{t: t, keys: keys, seen: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, push.MaxBody+1))
	rec := received{path: r.URL.Path, at: time.Now(), openid: r.URL.Query().Get("openid")}
	keys, ok := rc.keys[r.URL.Path]
	if !ok || r.Method != http.MethodPost {
		rec.status, rec.err = http.StatusNotFound, errors.New("no such shop")
	} else if rec.msg, rec.err = keys.Open(push.ParseQuery(r.URL.Query()), body); rec.err != nil {
		rec.status = http.StatusBadRequest
		if errors.Is(rec.err, push.ErrBadSignature) || errors.Is(rec.err, push.ErrWrongAppID) {
			rec.status = http.StatusUnauthorized
		}
	}
	if rec.err != nil {
		rc.record(rec)
		http.Error(w, rec.err.Error(), rec.status)
		return
	}
	rc.mu.Lock()
	n := rc.seen[rec.msg.DedupKey()]
	rc.seen[rec.msg.DedupKey()]++
	rc.mu.Unlock()
	if rc.answer == nil {
		rec.status = http.StatusOK
		rc.record(rec)
		_, _ = io.WriteString(w, "success")
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	rc.answer(rec.msg, n, sw, r)
	rec.status = sw.status
	rc.record(rec)
}

func (rc *receiver) record(r received) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, r)
}

// pushes is what the receiver got, in arrival order.
func (rc *receiver) pushes() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// byOrder is the opened pushes per order id, in arrival order.
func (rc *receiver) byOrder() map[string][]*push.Message {
	m := map[string][]*push.Message{}
	for _, r := range rc.pushes() {
		if r.msg != nil {
			m[r.msg.OrderID] = append(m[r.msg.OrderID], r.msg)
		}
	}
	return m
}

// url is the receiver's URL for path.
func (rc *receiver) url(path string) string { return rc.srv.URL + path }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// defaultKeys are the keys of a single-app sandbox with the default push settings.
var defaultKeys = push.Keys{Token: sandbox.DefaultPushToken, AESKey: sandbox.DefaultPushAESKey, AppID: sandbox.DefaultAppID}

// startPushes starts sb's pushes and waits until every one is settled.
func startPushes(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := sb.StartPushes(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.StopPushes)
	if err := sb.PushesSettled(ctx); err != nil {
		t.Fatalf("PushesSettled: %v; stats %+v", err, sb.Stats().Pushes)
	}
}

// bareOrderID matches a bare JSON number as order_info.order_id.
var bareOrderID = regexp.MustCompile(`"order_info":\{"order_id":[0-9]{19}[,}]`)

func TestPushDefaultsAndValidate(t *testing.T) {
	if a := sandbox.DerivedApp(0); a.PushToken != sandbox.DefaultPushToken || a.PushAESKey != sandbox.DefaultPushAESKey || a.PushURL != "" {
		t.Fatalf("DerivedApp(0) = %+v", a)
	}
	keys := map[string]bool{}
	for k := range 5 {
		key := sandbox.DerivedPushAESKey(k)
		if !regexp.MustCompile(`^[A-Za-z0-9]{43}$`).MatchString(key) || keys[key] {
			t.Fatalf("DerivedPushAESKey(%d) = %q", k, key)
		}
		keys[key] = true
		if _, err := push.Encrypt(key, []byte("{}"), "wx", strings.NewReader("0123456789abcdef")); err != nil {
			t.Fatalf("DerivedPushAESKey(%d): %v", k, err)
		}
		if tok := sandbox.DerivedPushToken(k); !regexp.MustCompile(`^[A-Za-z0-9]{3,32}$`).MatchString(tok) || sandbox.DerivedApp(k).PushToken != tok {
			t.Fatalf("DerivedPushToken(%d) = %q", k, tok)
		}
	}
	// The single app gets the defaults; an app of Apps its derived ones.
	if a := sandbox.New(sandbox.Config{}).Apps()[0]; a.PushToken != sandbox.DefaultPushToken || a.PushAESKey != sandbox.DefaultPushAESKey {
		t.Fatalf("single app %+v", a)
	}
	if a := sandbox.New(sandbox.Config{Apps: []sandbox.App{{}, {}}}).Apps()[1]; a.PushToken != sandbox.DerivedPushToken(1) || a.PushAESKey != sandbox.DerivedPushAESKey(1) {
		t.Fatalf("app 1 %+v", a)
	}

	for _, tt := range []struct {
		name string
		cfg  sandbox.Config
		want string
	}{
		{"push url", sandbox.Config{PushURL: "http://127.0.0.1:8080/v1/wechat/push/default", PushRate: 100}, ""},
		{"short key", sandbox.Config{PushAESKey: "abc"}, "PushAESKey"},
		{"key not base64", sandbox.Config{Apps: []sandbox.App{{PushAESKey: strings.Repeat("%", 43)}}}, "PushAESKey"},
		{"not a url", sandbox.Config{PushURL: "127.0.0.1:8080/push"}, "PushURL"},
		{"ftp", sandbox.Config{Apps: []sandbox.App{{}, {PushURL: "ftp://x/y"}}}, "app 1: PushURL"},
		{"apps and PushURL", sandbox.Config{PushURL: "http://x/y", Apps: []sandbox.App{{}}}, "leave Orders"},
		{"apps and PushToken", sandbox.Config{PushToken: "t0ken", Apps: []sandbox.App{{}}}, "PushToken"},
		{"negative rate", sandbox.Config{PushRate: -1}, "PushRate"},
		{"negative timeout", sandbox.Config{PushTimeout: -1}, "must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// Every order's pay push is signed and encrypted as WeChat does (it opens
// with the app's keys), carries the buyer's openid and the order id as a
// bare number, and is answered success once; FirstPush and the
// delivery/send call's At give the latency.
func TestPushPayEveryOrder(t *testing.T) {
	rc := newReceiver(t, map[string]push.Keys{"/v1/wechat/push/default": defaultKeys})
	e := newEnv(t, sandbox.Config{Seed: 7, Orders: 30, PushURL: rc.url("/v1/wechat/push/default"), Now: time.Now})
	startPushes(t, e.sb)

	got := rc.pushes()
	if len(got) != 30 {
		t.Fatalf("%d pushes received, want 30", len(got))
	}
	var ids []string
	for _, r := range got {
		m := r.msg
		if m == nil {
			t.Fatalf("a push did not open: %v", r.err)
		}
		if m.Event != sandbox.EventOrderPay || m.MsgType != "event" || !strings.HasPrefix(m.ToUserName, "gh_") ||
			m.FromUserName == "" || r.openid != m.FromUserName || m.CreateTime == 0 {
			t.Fatalf("push %+v (openid %q)", m, r.openid)
		}
		if !bareOrderID.Match(m.Raw) {
			t.Fatalf("order_id is not a bare number: %s", m.Raw)
		}
		ids = append(ids, m.OrderID)
	}
	slices.Sort(ids)
	if want := scenarioIDs(e.sb.Scenario()); !slices.Equal(ids, want) {
		t.Fatalf("pushed %v, want %v", ids, want)
	}
	st := e.sb.Stats()
	want := sandbox.PushStats{Sent: 30, Succeeded: 30}
	if st.Pushes != want || st.ByApp[sandbox.DefaultAppID].Pushes != want {
		t.Fatalf("stats %+v, by app %+v", st.Pushes, st.ByApp[sandbox.DefaultAppID].Pushes)
	}
	for _, p := range e.sb.Pushes() {
		if !p.Settled() || p.Attempts != 1 || p.Answered.IsZero() || p.Status != 200 || p.Answer != "success" {
			t.Fatalf("push %+v", p)
		}
		if first, ok := e.sb.FirstPush(p.OrderID); !ok || !first.Equal(p.FirstSent) {
			t.Fatalf("FirstPush(%s) = %v, %v; sent %v", p.OrderID, first, ok, p.FirstSent)
		}
		if o, _ := e.sb.Order(p.OrderID); o.Status != 20 {
			t.Fatalf("order %s status %d after its pay push", p.OrderID, o.Status)
		}
	}

	// Push to delivery/send: both on the sandbox's clock.
	id := got[0].msg.OrderID
	if m := decodeObj(t, e.mustPost(pathSend, e.token(), sendBody(t, e.sb, id))); errcode(m) != 0 {
		t.Fatalf("delivery/send: %v", m)
	}
	calls := e.sb.Calls()
	send := calls[len(calls)-1]
	first, _ := e.sb.FirstPush(id)
	if send.Endpoint != sandbox.EndpointDeliverySend || send.At.Before(first) {
		t.Fatalf("delivery/send at %v, push at %v", send.At, first)
	}
}

// mustPost posts and returns a 200 answer's body.
func (e *env) mustPost(path, token string, body any) []byte {
	e.t.Helper()
	st, b := e.post(path, token, body)
	if st != http.StatusOK {
		e.t.Fatalf("POST %s: HTTP %d %s", path, st, b)
	}
	return b
}

// Failed answers are retried on WeChat's schedule (scaled): an error status,
// another body, no answer in time; success or an empty 200 ends it; ten
// failed pushes are given up.
func TestPushRetries(t *testing.T) {
	const scale = 0.0001 // the 3.6 h schedule in 1.3 s
	rc := newReceiver(t, map[string]push.Keys{"/push": defaultKeys})
	e := newEnv(t, sandbox.Config{Seed: 3, Orders: 5, PushURL: rc.url("/push"), PushTimeScale: scale,
		PushTimeout: 100 * time.Millisecond, Now: time.Now})
	sc := e.sb.Scenario()
	a, b, c, d, slow := sc[0].OrderID, sc[1].OrderID, sc[2].OrderID, sc[3].OrderID, sc[4].OrderID
	rc.answer = func(m *push.Message, n int, w http.ResponseWriter, r *http.Request) {
		switch {
		case m.OrderID == a && n < 3:
			http.Error(w, "not stored; send it again", http.StatusServiceUnavailable)
		case m.OrderID == b && n < 2:
			_, _ = io.WriteString(w, "fail")
		case m.OrderID == c: // an empty 200 is success
		case m.OrderID == d:
			http.Error(w, "boom", http.StatusInternalServerError)
		case m.OrderID == slow && n == 0:
			<-r.Context().Done() // no answer within PushTimeout
		default:
			_, _ = io.WriteString(w, "success")
		}
	}
	startPushes(t, e.sb)

	attempts := map[string]int{}
	var times []time.Time // order d's pushes
	for _, r := range rc.pushes() {
		attempts[r.msg.OrderID]++
		if r.msg.OrderID == d {
			times = append(times, r.at)
		}
	}
	want := map[string]int{a: 4, b: 3, c: 1, d: sandbox.MaxPushAttempts, slow: 2}
	if !reflect.DeepEqual(attempts, want) {
		t.Fatalf("pushes per order %v, want %v", attempts, want)
	}
	for i, w := range sandbox.PushRetrySchedule() {
		if gap, min := times[i+1].Sub(times[i]), time.Duration(float64(w)*scale); gap < min {
			t.Fatalf("push %d of a failing order came %v after the one before; the scaled schedule waits %v", i+2, gap, min)
		}
	}
	st := e.sb.Stats().Pushes
	if want := (sandbox.PushStats{Sent: 20, Succeeded: 4, Failed: 16, Retried: 15, GivenUp: 1}); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	for _, p := range e.sb.Pushes() {
		switch p.OrderID {
		case d:
			if !p.GaveUp || !p.Answered.IsZero() || p.Status != 500 || !p.Settled() {
				t.Fatalf("given-up push %+v", p)
			}
		case c:
			if p.Answered.IsZero() || p.Answer != "" {
				t.Fatalf("empty-200 push %+v", p)
			}
		default:
			if p.GaveUp || p.Answered.IsZero() || p.Answer != "success" {
				t.Fatalf("push %+v", p)
			}
		}
	}
}

// A callback URL nobody listens on: every push fails, is retried and given up.
func TestPushConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sb := sandbox.New(sandbox.Config{Orders: 2, PushURL: "http://" + addr + "/push", PushTimeScale: 0.0001})
	startPushes(t, sb)
	if st := sb.Stats().Pushes; st.Sent != 2*sandbox.MaxPushAttempts || st.GivenUp != 2 || st.Succeeded != 0 {
		t.Fatalf("stats %+v", st)
	}
	for _, p := range sb.Pushes() {
		if !p.GaveUp || p.Status != 0 || !strings.Contains(p.Answer, "refused") {
			t.Fatalf("push %+v", p)
		}
	}
}

// Each app pushes with its own keys to its own URL; an app without a
// PushURL pushes nothing; Stats.ByApp splits the counts.
func TestPushApps(t *testing.T) {
	apps := make([]sandbox.App, 3)
	for k := range apps {
		apps[k] = sandbox.DerivedApp(k)
		apps[k].Orders = 10
	}
	keys := map[string]push.Keys{}
	for _, k := range []int{0, 2} {
		path := "/v1/wechat/push/shop-" + string(rune('1'+k))
		keys[path] = push.Keys{Token: apps[k].PushToken, AESKey: apps[k].PushAESKey, AppID: apps[k].AppID}
	}
	rc := newReceiver(t, keys)
	apps[0].PushURL = rc.url("/v1/wechat/push/shop-1")
	apps[2].PushURL = rc.url("/v1/wechat/push/shop-3")
	sb := sandbox.New(sandbox.Config{Seed: 2, Apps: apps})
	startPushes(t, sb)

	perPath := map[string]int{}
	for _, r := range rc.pushes() {
		if r.msg == nil {
			t.Fatalf("push to %s refused: %v", r.path, r.err)
		}
		perPath[r.path]++
		owner, _ := sb.Order(r.msg.OrderID)
		if want := keys[r.path].AppID; owner.AppID != want {
			t.Fatalf("push to %s for order %s of %s", r.path, r.msg.OrderID, owner.AppID)
		}
	}
	if perPath["/v1/wechat/push/shop-1"] != 10 || perPath["/v1/wechat/push/shop-3"] != 10 || len(perPath) != 2 {
		t.Fatalf("pushes per path %v", perPath)
	}
	st := sb.Stats()
	for k, n := range []int{10, 0, 10} {
		if got := st.ByApp[apps[k].AppID].Pushes; got.Succeeded != n || got.Sent != n {
			t.Fatalf("app %d: %+v", k, got)
		}
	}
	if st.Pushes.Succeeded != 20 {
		t.Fatalf("stats %+v", st.Pushes)
	}
}

// Orders added before StartPushes are pushed with the others; orders added
// after are pushed at once.
func TestPushAddedOrders(t *testing.T) {
	rc := newReceiver(t, map[string]push.Keys{"/push": defaultKeys})
	sb := sandbox.New(sandbox.Config{Seed: 1, Orders: 2, PushURL: rc.url("/push")})
	sb.AddOrder(sandbox.ScenarioOrder{}, 1)
	startPushes(t, sb)
	if n := len(rc.pushes()); n != 3 {
		t.Fatalf("%d pushes, want 3", n)
	}
	sb.AddOrder(sandbox.ScenarioOrder{}, 2)
	added := sb.Scenario()[3].OrderID
	if err := sb.PushesSettled(t.Context()); err != nil {
		t.Fatal(err)
	}
	if msgs := rc.byOrder()[added]; len(msgs) != 1 || msgs[0].Event != sandbox.EventOrderPay {
		t.Fatalf("added order %s: %v", added, msgs)
	}
}

// PushRate paces the pay pushes from StartPushes.
func TestPushRate(t *testing.T) {
	rc := newReceiver(t, map[string]push.Keys{"/push": defaultKeys})
	sb := sandbox.New(sandbox.Config{Orders: 11, PushURL: rc.url("/push"), PushRate: 100})
	start := time.Now()
	startPushes(t, sb)
	var last time.Time
	for _, p := range sb.Pushes() {
		if p.FirstSent.After(last) {
			last = p.FirstSent
		}
	}
	if d := last.Sub(start); d < 100*time.Millisecond {
		t.Fatalf("11 pushes at 100/s took %v", d)
	}
}

func TestPushesStartAndStop(t *testing.T) {
	sb := sandbox.New(sandbox.Config{Orders: 2, PushURL: "http://127.0.0.1:1/push"})
	if err := sb.PushesSettled(t.Context()); !errors.Is(err, sandbox.ErrPushesNotStarted) {
		t.Fatalf("before start: %v", err)
	}
	sb.StopPushes() // nothing to stop
	if err := sb.StartPushes(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := sb.StartPushes(t.Context()); !errors.Is(err, sandbox.ErrPushesStarted) {
		t.Fatalf("second start: %v", err)
	}
	// Refused, then retried in 10 s (real time): stopped meanwhile.
	if err := sb.WaitUntil(t.Context(), func() bool { return sb.Stats().Pushes.Sent >= 2*3 }); err != nil {
		t.Fatal(err)
	}
	sb.StopPushes()
	sb.StopPushes()
	if err := sb.PushesSettled(t.Context()); !errors.Is(err, sandbox.ErrPushesStopped) {
		t.Fatalf("after stop: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	sb2 := sandbox.New(sandbox.Config{Orders: 1, PushURL: "http://127.0.0.1:1/push"})
	if err := sb2.StartPushes(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := sb2.PushesSettled(t.Context()); !errors.Is(err, sandbox.ErrPushesStopped) {
		t.Fatalf("after the context ended: %v", err)
	}
	sb2.StopPushes()
}
