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
		{"push url", sandbox.Config{PushURL: "http://127.0.0.1:8080/v1/wechat/push/default", PushDuplicates: 1, CancelBeforeShipping: 3}, ""},
		{"short key", sandbox.Config{PushAESKey: "abc"}, "PushAESKey"},
		{"key not base64", sandbox.Config{Apps: []sandbox.App{{PushAESKey: strings.Repeat("%", 43)}}}, "PushAESKey"},
		{"not a url", sandbox.Config{PushURL: "127.0.0.1:8080/push"}, "PushURL"},
		{"ftp", sandbox.Config{Apps: []sandbox.App{{}, {PushURL: "ftp://x/y"}}}, "app 1: PushURL"},
		{"apps and PushURL", sandbox.Config{PushURL: "http://x/y", Apps: []sandbox.App{{}}}, "leave Orders"},
		{"apps and PushToken", sandbox.Config{PushToken: "t0ken", Apps: []sandbox.App{{}}}, "PushToken"},
		{"share over 1", sandbox.Config{PushDuplicates: 1.5}, "PushDuplicates"},
		{"negative rate", sandbox.Config{PushRate: -1}, "PushRate"},
		{"negative cancels", sandbox.Config{CancelBeforeShipping: -1}, "must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// Push off (no PushURL), the push options change nothing: the scenario is the
// one without them and nothing is sent.
func TestPushOffChangesNothing(t *testing.T) {
	base := sandbox.Config{Seed: 4, Orders: 40, Faults: sandbox.DefaultFaults(), Now: newClock().Now}
	with := base
	with.PushDuplicates, with.PushReorder, with.CancelBeforeShipping, with.ForgedPushes = .5, .5, 10, 3
	a, b := sandbox.New(base), sandbox.New(with)
	if !reflect.DeepEqual(a.Scenario(), b.Scenario()) {
		t.Fatal("push options changed the scenario of an app without a PushURL")
	}
	if err := b.PushesSettled(t.Context()); err != nil {
		t.Fatalf("PushesSettled without push: %v", err)
	}
	if err := b.StartPushes(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer b.StopPushes()
	if err := b.PushesSettled(t.Context()); err != nil || len(b.Pushes()) != 0 || b.Stats().Pushes != (sandbox.PushStats{}) {
		t.Fatalf("settled %v, pushes %v, stats %+v", err, b.Pushes(), b.Stats().Pushes)
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
		if !p.Settled() || p.Attempts != 1 || p.Answered.IsZero() || p.Status != 200 || p.Answer != "success" || p.Resend || p.Forged != "" {
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
		PushTimeout: time.Second, Now: time.Now})
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

// The scenario's push options, with exact seeded counts: duplicated pay
// pushes, wait_shipping before and after the pay, cancels after the pay
// that make the order 250 and refused by delivery/send.
func TestPushScenarioOptions(t *testing.T) {
	rc := newReceiver(t, map[string]push.Keys{"/push": defaultKeys})
	e := newEnv(t, sandbox.Config{Seed: 11, Orders: 200, Faults: sandbox.DefaultFaults(), PushURL: rc.url("/push"),
		PushDuplicates: .2, PushReorder: .1, CancelBeforeShipping: 10, Now: time.Now})
	sc := e.sb.Scenario()
	var dups, reorders, cancels int
	for _, so := range sc {
		dups += b2i(so.Push.Duplicate)
		reorders += b2i(so.Push.Reorder)
		if so.Push.Cancel {
			cancels++
			if so.Fault != sandbox.FaultBuyerCancelled || so.Expect != sandbox.OutcomeFailed || so.Code != 0 {
				t.Fatalf("cancelled order %+v", so)
			}
		} else if so.Fault == sandbox.FaultBuyerCancelled {
			t.Fatalf("order %+v", so)
		}
	}
	if dups != 40 || reorders != 20 || cancels != 10 {
		t.Fatalf("%d duplicated, %d reordered, %d cancelled; want 40, 20, 10", dups, reorders, cancels)
	}
	// Cancelled orders are drawn among those without a fault class: the
	// scenario's other faults stay.
	plain := sandbox.New(sandbox.Config{Seed: 11, Orders: 200, Faults: sandbox.DefaultFaults()}).Scenario()
	for i, so := range sc {
		if p := plain[i]; so.Push.Cancel && p.Fault != sandbox.FaultNone || !so.Push.Cancel && (so.Fault != p.Fault || so.Expect != p.Expect) {
			t.Fatalf("order %d: %+v, without push %+v", i, so, p)
		}
	}
	startPushes(t, e.sb)

	byOrder := rc.byOrder()
	tok := e.token()
	shipped := 0
	for _, so := range sc {
		msgs := byOrder[so.OrderID]
		var events []string
		for _, m := range msgs {
			events = append(events, m.Event)
		}
		var want []string
		if so.Push.Reorder {
			want = append(want, sandbox.EventOrderWaitShipping)
		}
		want = append(want, sandbox.EventOrderPay)
		if so.Push.Duplicate {
			want = append(want, sandbox.EventOrderPay)
		}
		if so.Push.Reorder {
			want = append(want, sandbox.EventOrderWaitShipping)
		}
		if so.Push.Cancel {
			want = append(want, sandbox.EventOrderCancel)
		}
		if !slices.Equal(events, want) {
			t.Fatalf("order %s (%+v) got %v, want %v", so.OrderID, so.Push, events, want)
		}
		pay := msgs[slices.Index(events, sandbox.EventOrderPay)]
		for _, m := range msgs {
			switch m.Event {
			case sandbox.EventOrderPay:
				if m.DedupKey() != pay.DedupKey() {
					t.Fatalf("a copy of the pay push is another message: %s vs %s", m.Raw, pay.Raw)
				}
			case sandbox.EventOrderWaitShipping, sandbox.EventOrderCancel:
				if m.CreateTime <= pay.CreateTime {
					t.Fatalf("%s dated %d, pay %d", m.Event, m.CreateTime, pay.CreateTime)
				}
			}
		}
		o, _ := e.sb.Order(so.OrderID)
		get := e.call(pathOrderGet, tok, map[string]string{"order_id": so.OrderID})
		status := num(get["order"].(obj), "status")
		if so.Push.Cancel {
			if m := msgs[len(msgs)-1]; m.CancelType != 1 {
				t.Fatalf("cancel push %s", m.Raw)
			}
			if o.Status != 250 || status != 250 {
				t.Fatalf("cancelled order %s: status %d, order/get %d", so.OrderID, o.Status, status)
			}
			if c := errcode(e.call(pathSend, tok, sendBody(t, e.sb, so.OrderID))); c != 101100 {
				t.Fatalf("delivery/send of a cancelled order: errcode %d, want 101100", c)
			}
		} else if o.Status != 20 || status != 20 {
			t.Fatalf("order %s: status %d", so.OrderID, o.Status)
		} else if so.Fault == sandbox.FaultNone && shipped < 3 {
			if c := errcode(e.call(pathSend, tok, sendBody(t, e.sb, so.OrderID))); c != 0 {
				t.Fatalf("delivery/send of a paid order: errcode %d", c)
			}
			shipped++
		}
		// The first push of a reordered order is its wait_shipping.
		first, _ := e.sb.FirstPush(so.OrderID)
		for _, p := range e.sb.Pushes() {
			if p.OrderID == so.OrderID && p.FirstSent.Before(first) {
				t.Fatalf("FirstPush(%s) = %v, but %s was sent at %v", so.OrderID, first, p.Event, p.FirstSent)
			}
		}
	}
	want := sandbox.PushStats{Sent: 200 + 40 + 2*20 + 10, Succeeded: 290, Cancelled: 10}
	if st := e.sb.Stats().Pushes; st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	resends := 0
	for _, p := range e.sb.Pushes() {
		resends += b2i(p.Resend)
	}
	if resends != 40+20 {
		t.Fatalf("%d resent pushes, want 60", resends)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Forged pushes do not open, are refused 401/400, and the sandbox records
// the refusal; a receiver that takes them is caught.
func TestPushForged(t *testing.T) {
	rc := newReceiver(t, map[string]push.Keys{"/push": defaultKeys})
	e := newEnv(t, sandbox.Config{Seed: 5, Orders: 30, Faults: sandbox.DefaultFaults(), PushURL: rc.url("/push"),
		ForgedPushes: 9, CancelBeforeShipping: 2, Now: time.Now})
	startPushes(t, e.sb)

	refused := map[string]int{}
	for _, r := range rc.pushes() {
		switch {
		case r.msg != nil && r.msg.Event != sandbox.EventOrderPay && r.msg.Event != sandbox.EventOrderCancel:
			t.Fatalf("opened %s", r.msg.Raw)
		case r.err != nil:
			refused[r.err.Error()]++
		}
	}
	if len(refused) != 3 {
		t.Fatalf("refusals %v", refused)
	}
	expect := map[string]sandbox.Outcome{}
	for _, so := range e.sb.Scenario() {
		expect[so.OrderID] = so.Expect
	}
	kinds := map[string]int{}
	for _, p := range e.sb.Pushes() {
		if p.Forged == "" {
			continue
		}
		kinds[p.Forged]++
		want := map[string]int{sandbox.ForgedBadSignature: 401, sandbox.ForgedWrongAppID: 401, sandbox.ForgedPlaintext: 400}[p.Forged]
		if p.Status != want || p.Answer == "success" || !p.Settled() || p.Attempts != 1 || p.Event != sandbox.EventOrderCancel {
			t.Fatalf("forged push %+v, want status %d", p, want)
		}
		if expect[p.OrderID] != sandbox.OutcomeShipped {
			t.Fatalf("a forged push names order %s, which is expected %q: it must name one that ships", p.OrderID, expect[p.OrderID])
		}
	}
	if kinds[sandbox.ForgedBadSignature] != 3 || kinds[sandbox.ForgedWrongAppID] != 3 || kinds[sandbox.ForgedPlaintext] != 3 {
		t.Fatalf("forged kinds %v", kinds)
	}
	st := e.sb.Stats().Pushes
	if st.ForgedSent != 9 || st.ForgedRefused != 9 || st.ForgedAccepted != 0 || st.Succeeded != 32 || st.Cancelled != 2 {
		t.Fatalf("stats %+v", st)
	}

	// A receiver that answers success to anything is caught.
	lax := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "success") }))
	defer lax.Close()
	sb := sandbox.New(sandbox.Config{Seed: 5, Orders: 3, PushURL: lax.URL, ForgedPushes: 3})
	startPushes(t, sb)
	if st := sb.Stats().Pushes; st.ForgedAccepted != 3 || st.ForgedRefused != 0 {
		t.Fatalf("lax receiver: stats %+v", st)
	}
}

// One seed, one plan: the same orders duplicated, reordered, cancelled and
// forged, the same pushes per order; another seed draws others.
func TestPushDeterministic(t *testing.T) {
	run := func(seed int64) ([]sandbox.ScenarioOrder, map[string][]string, []string) {
		rc := newReceiver(t, map[string]push.Keys{"/push": defaultKeys})
		sb := sandbox.New(sandbox.Config{Seed: seed, Orders: 60, Faults: sandbox.DefaultFaults(), PushURL: rc.url("/push"),
			PushDuplicates: .25, PushReorder: .25, CancelBeforeShipping: 5, ForgedPushes: 4})
		startPushes(t, sb)
		events := map[string][]string{}
		for id, msgs := range rc.byOrder() {
			for _, m := range msgs {
				events[id] = append(events[id], m.Event)
			}
		}
		var forged []string
		for _, p := range sb.Pushes() {
			if p.Forged != "" {
				forged = append(forged, p.Forged+":"+p.OrderID)
			}
		}
		slices.Sort(forged)
		return sb.Scenario(), events, forged
	}
	sa, ea, fa := run(9)
	sb, eb, fb := run(9)
	sc, _, fc := run(10)
	if !reflect.DeepEqual(sa, sb) || !reflect.DeepEqual(ea, eb) || !slices.Equal(fa, fb) {
		t.Fatal("same seed, different pushes")
	}
	if reflect.DeepEqual(sa, sc) || slices.Equal(fa, fc) {
		t.Fatal("different seeds, same pushes")
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
	sb := sandbox.New(sandbox.Config{Seed: 2, Apps: apps, PushDuplicates: .1, ForgedPushes: 1})
	startPushes(t, sb)

	perPath := map[string]int{}
	for _, r := range rc.pushes() {
		if r.msg == nil {
			if !strings.Contains(r.err.Error(), "signature") {
				t.Fatalf("push to %s refused: %v", r.path, r.err)
			}
			continue
		}
		perPath[r.path]++
		owner, _ := sb.Order(r.msg.OrderID)
		if want := keys[r.path].AppID; owner.AppID != want {
			t.Fatalf("push to %s for order %s of %s", r.path, r.msg.OrderID, owner.AppID)
		}
	}
	if perPath["/v1/wechat/push/shop-1"] != 11 || perPath["/v1/wechat/push/shop-3"] != 11 || len(perPath) != 2 {
		t.Fatalf("pushes per path %v", perPath)
	}
	st := sb.Stats()
	for k, n := range []int{11, 0, 11} {
		if got := st.ByApp[apps[k].AppID].Pushes; got.Succeeded != n || got.ForgedSent != n/11 {
			t.Fatalf("app %d: %+v", k, got)
		}
	}
	if st.Pushes.Succeeded != 22 || st.Pushes.ForgedRefused != 2 {
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
