package sandbox_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

// Appids of the multi-app tests: the derived ones of apps 0, 1 and 2.
var (
	appA = sandbox.DerivedAppID(0)
	appB = sandbox.DerivedAppID(1)
	appC = sandbox.DerivedAppID(2)
)

// threeApps is a config of three apps with n orders each and derived credentials;
// app B and C have vv-tool accounts of their own.
func threeApps(seed int64, n int, mix sandbox.FaultMix) sandbox.Config {
	apps := make([]sandbox.App, 3)
	for k := range apps {
		apps[k] = sandbox.DerivedApp(k)
		apps[k].Orders, apps[k].Faults = n, mix
	}
	return sandbox.Config{Seed: seed, Apps: apps}
}

// stableBodyFor is a stable_token body for the app's derived credentials.
func stableBodyFor(appID, secret string, force bool) string {
	return fmt.Sprintf(`{"grant_type":"client_credential","appid":%q,"secret":%q,"force_refresh":%t}`, appID, secret, force)
}

// appToken gets an access_token for the app (derived secret k) from stable_token.
func (e *env) appToken(k int) string {
	e.t.Helper()
	m := e.call(pathStableToken, "", stableBodyFor(sandbox.DerivedAppID(k), sandbox.DerivedAppSecret(k), false))
	tok, _ := m["access_token"].(string)
	if tok == "" {
		e.t.Fatalf("stable_token of app %d: %v", k, m)
	}
	return tok
}

// listAll lists every order awaiting shipment in the last 24 h with the token.
func (e *env) listAll(tok string) []string {
	e.t.Helper()
	now := e.clock.Now()
	var ids []string
	key := ""
	for {
		m := e.call(pathOrderList, tok, listBody(now.Add(-24*time.Hour), now, 100, key))
		if errcode(m) != 0 {
			e.t.Fatalf("order/list/get: %v", m)
		}
		for _, id := range m["order_id_list"].([]any) {
			ids = append(ids, fmt.Sprint(id))
		}
		if m["has_more"] != true {
			break
		}
		key = m["next_key"].(string)
	}
	slices.Sort(ids)
	return ids
}

// scenarioIDs is the sorted order ids of a scenario.
func scenarioIDs(sc []sandbox.ScenarioOrder) []string {
	ids := make([]string, len(sc))
	for i, so := range sc {
		ids[i] = so.OrderID
	}
	slices.Sort(ids)
	return ids
}

// Each app gets its own tokens from its own credentials, and its token lists
// its own orders, in its own id range.
func TestAppsTokensAndOrdersAreTheirOwn(t *testing.T) {
	e := newEnv(t, threeApps(5, 30, sandbox.NoFaults()))
	toks := map[string]bool{}
	for k, app := range []string{appA, appB, appC} {
		tok := e.appToken(k)
		if toks[tok] {
			t.Fatalf("app %s got another app's token", app)
		}
		toks[tok] = true
		if again := e.appToken(k); again != tok {
			t.Fatalf("app %s: stable_token answered another token while the first is valid", app)
		}
		if got := e.sb.IssueAppToken(app); got != tok {
			t.Fatalf("IssueAppToken(%s) = %q, want its current token", app, got)
		}
		sc := e.sb.AppScenario(app)
		if len(sc) != 30 {
			t.Fatalf("app %s: %d orders in AppScenario, want 30", app, len(sc))
		}
		for i, so := range sc {
			want := strconv.FormatUint(sandbox.BaseOrderID+uint64(k)*sandbox.AppOrderIDSpan+uint64(i), 10)
			if so.AppID != app || so.OrderID != want {
				t.Fatalf("app %s order %d: %+v, want id %s", app, i, so, want)
			}
			if v, _ := e.sb.Order(so.OrderID); v.AppID != app {
				t.Fatalf("Order(%s).AppID = %q, want %q", so.OrderID, v.AppID, app)
			}
		}
		if got, want := e.listAll(tok), scenarioIDs(sc); !slices.Equal(got, want) {
			t.Fatalf("app %s lists %d orders %v…, want its own %d", app, len(got), got[:min(3, len(got))], len(want))
		}
	}
	if got := len(e.sb.Scenario()); got != 90 {
		t.Fatalf("Scenario has %d orders, want 90", got)
	}
	if got := len(e.sb.Tokens()); got != 3 {
		t.Fatalf("Tokens() has %d, want 3", got)
	}
	if e.sb.IssueAppToken("wxnosuchapp") != "" || e.sb.AppScenario("wxnosuchapp") != nil {
		t.Fatal("an unknown app has a token or orders")
	}
	apps := e.sb.Apps()
	if len(apps) != 3 || apps[1].AppID != appB || apps[1].AppSecret != sandbox.DerivedAppSecret(1) || apps[2].Orders != 30 {
		t.Fatalf("Apps() = %+v", apps)
	}
}

func TestAppsCredentials(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int // 0: a token
	}{
		{"A", stableBodyFor(appA, sandbox.DerivedAppSecret(0), false), 0},
		{"B", stableBodyFor(appB, sandbox.DerivedAppSecret(1), false), 0},
		{"B with A's secret", stableBodyFor(appB, sandbox.DerivedAppSecret(0), false), 40125},
		{"A with B's secret", stableBodyFor(appA, sandbox.DerivedAppSecret(1), false), 40125},
		{"an appid not served", stableBodyFor("wxsandboxapp9", sandbox.DerivedAppSecret(8), false), 40013},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, threeApps(1, 1, sandbox.NoFaults()))
			if got := tokenCode(e.call(pathStableToken, "", tt.body)); got != tt.want {
				t.Fatalf("errcode %d, want %d", got, tt.want)
			}
			q := "?grant_type=client_credential&appid=" + appB + "&secret=" + sandbox.DerivedAppSecret(1)
			_, b := e.do(context.Background(), http.MethodGet, pathToken+q, "", nil, nil)
			if got := tokenCode(decodeObj(t, b)); got != 0 {
				t.Fatalf("GET token for B: errcode %d", got)
			}
		})
	}
}

// A token of app A is valid, but answers for A's orders only: another app's order
// is one A does not have.
func TestAppsCrossAppCallsAnswerNotFound(t *testing.T) {
	tests := []struct {
		name string
		call func(e *env, tok, orderID string) int // the errcode (of the item for batchGetOrder)
		want int
	}{
		{"order/get", func(e *env, tok, id string) int {
			return errcode(e.call(pathOrderGet, tok, `{"order_id":"`+id+`"}`))
		}, 100002},
		{"delivery/send", func(e *env, tok, id string) int {
			return errcode(e.call(pathSend, tok, sendBody(e.t, e.sb, id)))
		}, 100002},
		{"batchGetOrder item", func(e *env, tok, id string) int {
			m := e.call(pathBatchGet, tok, batchBody(id))
			if errcode(m) != 0 {
				return -errcode(m)
			}
			return errcode(m["order_list"].([]any)[0].(obj))
		}, sandbox.CodeWaybillNotFound},
		{"getOrder", func(e *env, tok, id string) int {
			return errcode(e.call(pathGetOrder, tok, `{"order_id":"`+id+`","delivery_id":"SF"}`))
		}, sandbox.CodeWaybillNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, threeApps(3, 2, sandbox.NoFaults()))
			tokA, tokB := e.appToken(0), e.appToken(1)
			orderB := e.sb.AppScenario(appB)[0].OrderID
			if got := tt.call(e, tokA, orderB); got != tt.want {
				t.Fatalf("A's token, B's order: errcode %d, want %d", got, tt.want)
			}
			if got := tt.call(e, tokB, orderB); got != 0 {
				t.Fatalf("B's token, B's order: errcode %d, want 0", got)
			}
			if v, _ := e.sb.Order(orderB); tt.name == "delivery/send" && (e.sb.Sends(orderB) != 1 || v.Status != 30) {
				t.Fatalf("B's order after A's and B's sends: %d sends, status %d; want 1, 30", e.sb.Sends(orderB), v.Status)
			}
		})
	}
	t.Run("mixed batch", func(t *testing.T) {
		e := newEnv(t, threeApps(3, 2, sandbox.NoFaults()))
		a, b := e.sb.AppScenario(appA)[0].OrderID, e.sb.AppScenario(appB)[0].OrderID
		items := e.call(pathBatchGet, e.appToken(0), batchBody(a, b))["order_list"].([]any)
		if errcode(items[0].(obj)) != 0 || errcode(items[1].(obj)) != sandbox.CodeWaybillNotFound || items[1].(obj)["order_id"] != b {
			t.Fatalf("items %v: want A's waybill, then B's order not found", items)
		}
	})
	t.Run("next_key of another app", func(t *testing.T) {
		e := newEnv(t, threeApps(3, 5, sandbox.NoFaults()))
		now := e.clock.Now()
		m := e.call(pathOrderList, e.appToken(0), listBody(now.Add(-24*time.Hour), now, 2, ""))
		key, _ := m["next_key"].(string)
		if got := errcode(e.call(pathOrderList, e.appToken(1), listBody(now.Add(-24*time.Hour), now, 2, key))); key == "" || got != 606006 {
			t.Fatalf("A's next_key with B's token: errcode %d, want 606006", got)
		}
	})
}

// Rotation, expiry, RotateTokenEvery and force_refresh spacing are each app's own.
func TestAppsTokenLifecycleIsPerApp(t *testing.T) {
	get := func(e *env, tok, id string) int { return errcode(e.call(pathOrderGet, tok, `{"order_id":"`+id+`"}`)) }
	t.Run("rotation by GET token", func(t *testing.T) {
		e := newEnv(t, threeApps(1, 1, sandbox.NoFaults()))
		tokA, tokB := e.appToken(0), e.appToken(1)
		q := "?grant_type=client_credential&appid=" + appA + "&secret=" + sandbox.DerivedAppSecret(0)
		e.do(context.Background(), http.MethodGet, pathToken+q, "", nil, nil)
		if got := get(e, tokA, e.sb.AppScenario(appA)[0].OrderID); got != 40001 {
			t.Fatalf("A's old token after A's rotation: %d, want 40001", got)
		}
		if got := get(e, tokB, e.sb.AppScenario(appB)[0].OrderID); got != 0 {
			t.Fatalf("B's token after A's rotation: %d, want 0", got)
		}
	})
	t.Run("RotateTokenEvery", func(t *testing.T) {
		cfg := threeApps(1, 1, sandbox.NoFaults())
		cfg.RotateTokenEvery = 2
		e := newEnv(t, cfg)
		tokA, tokB := e.appToken(0), e.appToken(1)
		a, b := e.sb.AppScenario(appA)[0].OrderID, e.sb.AppScenario(appB)[0].OrderID
		codes := []int{get(e, tokA, a), get(e, tokB, b), get(e, tokA, a), get(e, tokB, b), get(e, tokA, a), get(e, tokB, b)}
		if want := []int{0, 0, 0, 0, 40001, 40001}; !slices.Equal(codes, want) {
			t.Fatalf("codes %v, want %v (each app's token rotates after its own 2 calls)", codes, want)
		}
	})
	t.Run("force_refresh spacing", func(t *testing.T) {
		e := newEnv(t, threeApps(1, 1, sandbox.NoFaults()))
		for k := range 3 {
			e.call(pathStableToken, "", stableBodyFor(sandbox.DerivedAppID(k), sandbox.DerivedAppSecret(k), true))
		}
		st := e.sb.Stats()
		if st.ForceRefreshTooSoon != 0 {
			t.Fatalf("one force_refresh per app counted %d too soon", st.ForceRefreshTooSoon)
		}
		e.call(pathStableToken, "", stableBodyFor(appB, sandbox.DerivedAppSecret(1), true))
		st = e.sb.Stats()
		if st.ForceRefreshTooSoon != 1 || st.ByApp[appB].ForceRefreshTooSoon != 1 || st.ByApp[appA].ForceRefreshTooSoon != 0 {
			t.Fatalf("B twice at once: %d too soon (by app %+v)", st.ForceRefreshTooSoon, st.ByApp)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		cfg := threeApps(1, 1, sandbox.NoFaults())
		cfg.TokenTTL = time.Hour
		e := newEnv(t, cfg)
		tokA := e.appToken(0)
		e.clock.Advance(30 * time.Minute)
		tokB := e.appToken(1)
		e.clock.Advance(30 * time.Minute)
		if a, b := get(e, tokA, e.sb.AppScenario(appA)[0].OrderID), get(e, tokB, e.sb.AppScenario(appB)[0].OrderID); a != 42001 || b != 0 {
			t.Fatalf("after 1 h: A %d, B %d; want 42001, 0", a, b)
		}
	})
}

// A fault with AppID touches only that app's calls: "app B's platform answers -1
// to everything" leaves A and C alone, and ends when removed.
func TestAppsFaultIsolation(t *testing.T) {
	e := newEnv(t, threeApps(9, 3, sandbox.NoFaults()))
	toks := []string{e.appToken(0), e.appToken(1), e.appToken(2)}
	type call struct {
		ep   string
		send func(k int) int // app k's call; its errcode
	}
	order := func(k int) string { return e.sb.AppScenario(sandbox.DerivedAppID(k))[0].OrderID }
	calls := []call{
		{sandbox.EndpointOrderList, func(k int) int {
			now := e.clock.Now()
			return errcode(e.call(pathOrderList, toks[k], listBody(now.Add(-time.Hour*24), now, 10, "")))
		}},
		{sandbox.EndpointOrderGet, func(k int) int { return errcode(e.call(pathOrderGet, toks[k], `{"order_id":"`+order(k)+`"}`)) }},
		{sandbox.EndpointBatchGetOrder, func(k int) int { return errcode(e.call(pathBatchGet, toks[k], batchBody(order(k)))) }},
		{sandbox.EndpointGetOrder, func(k int) int {
			return errcode(e.call(pathGetOrder, toks[k], `{"order_id":"`+order(k)+`","delivery_id":"SF"}`))
		}},
		{sandbox.EndpointStableToken, func(k int) int {
			return tokenCode(e.call(pathStableToken, "", stableBodyFor(sandbox.DerivedAppID(k), sandbox.DerivedAppSecret(k), false)))
		}},
		{sandbox.EndpointVVToolDetail, func(k int) int {
			a := sandbox.DerivedApp(k)
			return num(e.vv(a.VVToken, map[string]string{"shop_id": a.VVShops[0], "fields": "tid"}), "code")
		}},
		{sandbox.EndpointDeliverySend, func(k int) int { return errcode(e.call(pathSend, toks[k], sendBody(t, e.sb, order(k)))) }},
	}
	var ids []int
	for _, c := range calls {
		ids = append(ids, e.sb.Inject(sandbox.Fault{Endpoint: c.ep, AppID: appB, Code: -1}))
	}
	for _, c := range calls {
		t.Run(c.ep, func(t *testing.T) {
			if got := [3]int{c.send(0), c.send(1), c.send(2)}; got != [3]int{0, -1, 0} {
				t.Fatalf("A, B, C answered %v; want [0 -1 0]", got)
			}
		})
	}
	for i, id := range ids {
		if hits := e.sb.FaultHits(id); hits != 1 {
			t.Errorf("fault on %s matched %d calls, want B's 1", calls[i].ep, hits)
		}
		e.sb.RemoveFault(id)
	}
	// B recovers: its order ships now.
	if got := calls[len(calls)-1].send(1); got != 0 {
		t.Fatalf("B's delivery/send after the outage: %d", got)
	}
	if st := e.sb.Stats(); st.SuccessfulSends != 3 || st.ByApp[appA].SuccessfulSends != 1 || st.ByApp[appB].SuccessfulSends != 1 {
		t.Fatalf("sends %d, by app %+v", st.SuccessfulSends, st.ByApp)
	}
}

// A fault with AppID and OrderID matches only that app's calls for the order; the
// scenario's faults of an order are its app's: another app's call for the order
// neither sees nor uses them.
func TestAppsFaultScopedToAppAndOrder(t *testing.T) {
	tests := []struct {
		name  string
		fault func(orderB string) sandbox.Fault
		want  [3]int // order/get of B's order by A, by B, by B again
		hits  int
	}{
		{"app and order", func(id string) sandbox.Fault {
			return sandbox.Fault{Endpoint: sandbox.EndpointOrderGet, AppID: appB, OrderID: id, Code: -1, Times: 1}
		}, [3]int{100002, -1, 0}, 1},
		{"order of any app", func(id string) sandbox.Fault {
			return sandbox.Fault{Endpoint: sandbox.EndpointOrderGet, OrderID: id, Code: -1, Times: 1}
		}, [3]int{-1, 0, 0}, 1},
		{"another app's order", func(id string) sandbox.Fault {
			return sandbox.Fault{Endpoint: sandbox.EndpointOrderGet, AppID: appA, OrderID: id, Code: -1}
		}, [3]int{-1, 0, 0}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, threeApps(2, 2, sandbox.NoFaults()))
			tokA, tokB := e.appToken(0), e.appToken(1)
			orderB := e.sb.AppScenario(appB)[0].OrderID
			id := e.sb.Inject(tt.fault(orderB))
			get := func(tok string) int { return errcode(e.call(pathOrderGet, tok, `{"order_id":"`+orderB+`"}`)) }
			if got := [3]int{get(tokA), get(tokB), get(tokB)}; got != tt.want {
				t.Fatalf("A, B, B answered %v, want %v", got, tt.want)
			}
			if got := e.sb.FaultHits(id); got != tt.hits {
				t.Fatalf("FaultHits %d, want %d", got, tt.hits)
			}
		})
	}
	t.Run("scenario fault", func(t *testing.T) {
		e := newEnv(t, threeApps(2, 1, sandbox.FaultMix{Wait: 1}))
		tokA, tokB := e.appToken(0), e.appToken(1)
		so := e.sb.AppScenario(appB)[0]
		send := func(tok string) int { return errcode(e.call(pathSend, tok, sendBody(t, e.sb, so.OrderID))) }
		if got := [3]int{send(tokA), send(tokB), send(tokB)}; got != [3]int{100002, so.Code, 0} {
			t.Fatalf("A, B, B answered %v, want [100002 %d 0]", got, so.Code)
		}
	})
}

// A delivery/send of another app's order does not hold the order: it is answered
// 100002, not 100003, while the owner's send is in flight.
func TestAppsCrossAppSendDoesNotLockTheOrder(t *testing.T) {
	e := newEnv(t, threeApps(4, 1, sandbox.NoFaults()))
	tokA, tokB := e.appToken(0), e.appToken(1)
	orderB := e.sb.AppScenario(appB)[0].OrderID
	body := sendBody(t, e.sb, orderB)
	e.sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, AppID: appB, Latency: time.Hour, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // a failure below must not leave the held call keeping the server open
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+pathSend+"?access_token="+tokB, strings.NewReader(body))
		if resp, err := e.srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := e.sb.WaitUntil(wctx, func() bool { return e.sb.InFlight(orderB) }); err != nil {
		t.Fatalf("B's send never arrived: %v", err)
	}
	if got := errcode(e.call(pathSend, tokA, body)); got != 100002 {
		t.Fatalf("A's send of B's order while B's is in flight: %d, want 100002", got)
	}
	cancel()
	<-done
	if st := e.sb.Stats(); st.ConcurrentSends != 0 {
		t.Fatalf("ConcurrentSends %d, want 0", st.ConcurrentSends)
	}
	if err := e.sb.WaitUntil(wctx, func() bool { return !e.sb.InFlight(orderB) }); err != nil {
		t.Fatal(err)
	}
	if got := errcode(e.call(pathSend, tokB, body)); got != 0 {
		t.Fatalf("B's send afterwards: %d", got)
	}
}

// The vv-tool limit is per account: two accounts at 10 requests a second each are
// both fine; an 11th on one account is refused there only.
func TestAppsVVToolPerAccount(t *testing.T) {
	e := newEnv(t, threeApps(6, 0, sandbox.NoFaults()))
	a, b := sandbox.DerivedApp(0), sandbox.DerivedApp(1)
	form := func(app sandbox.App) map[string]string {
		return map[string]string{"shop_id": app.VVShops[0], "fields": "tid"}
	}
	for i := range 10 { // the clock stands still: all in one second
		for _, app := range []sandbox.App{a, b} {
			if c := num(e.vv(app.VVToken, form(app)), "code"); c != 0 {
				t.Fatalf("request %d of %s: code %d", i+1, app.AppID, c)
			}
		}
	}
	if st := e.sb.Stats(); st.VVRateViolations != 0 || st.VVMaxPerSecond != 10 {
		t.Fatalf("20 requests over two accounts: %d violations, max %d a second; want 0, 10", st.VVRateViolations, st.VVMaxPerSecond)
	}
	for range 10 { // requests of no account do not use the accounts' second
		if c := num(e.vv("not-a-token", form(a)), "code"); c != 401 {
			t.Fatalf("unknown token: code %d, want 401", c)
		}
	}
	if c := num(e.vv(a.VVToken, form(a)), "code"); c != 202 {
		t.Fatalf("11th request of A: code %d, want 202", c)
	}
	if c := num(e.vv(sandbox.DerivedApp(2).VVToken, form(sandbox.DerivedApp(2))), "code"); c != 0 {
		t.Fatalf("C's first request: code %d", c)
	}
	st := e.sb.Stats()
	if st.VVRateViolations != 1 || st.ByApp[appA].VVRateViolations != 1 || st.ByApp[appB].VVRateViolations != 0 || st.ByApp[appB].VVMaxPerSecond != 10 {
		t.Fatalf("violations %d, by app %+v", st.VVRateViolations, st.ByApp)
	}
	e.clock.Advance(time.Second)
	tests := []struct {
		name  string
		token string
		shop  string
		want  int
	}{
		{"A's shop", a.VVToken, a.VVShops[1], 0},
		{"B's shop", b.VVToken, b.VVShops[1], 0},
		{"B's shop with A's token", a.VVToken, b.VVShops[0], 302},
		{"A's shop with B's token", b.VVToken, a.VVShops[0], 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := num(e.vv(tt.token, map[string]string{"shop_id": tt.shop, "fields": "tid"}), "code"); c != tt.want {
				t.Fatalf("code %d, want %d", c, tt.want)
			}
		})
	}
}

// An app after the first without a vv-tool account has none: no token of its own.
func TestAppsWithoutVVToolAccount(t *testing.T) {
	e := newEnv(t, sandbox.Config{Apps: []sandbox.App{{Orders: 1}, {Orders: 1}}})
	apps := e.sb.Apps()
	if apps[0].VVToken != sandbox.DefaultVVToken || !slices.Equal(apps[0].VVShops, sandbox.DefaultVVShops) || apps[1].VVToken != "" || apps[1].VVShops != nil {
		t.Fatalf("Apps() = %+v", apps)
	}
	if c := num(e.vv(sandbox.DefaultVVToken, map[string]string{"shop_id": "1001", "fields": "tid"}), "code"); c != 0 {
		t.Fatalf("app 0's default account: code %d", c)
	}
}

// Scenarios are deterministic per app; app 0 is the single-app sandbox of the seed;
// an app's orders do not depend on the other apps.
func TestAppsScenarioDeterministic(t *testing.T) {
	clk := newClock()
	multi := func(seed int64, apps int) *sandbox.Sandbox {
		cfg := threeApps(seed, 40, sandbox.DefaultFaults())
		cfg.Apps, cfg.Now = cfg.Apps[:apps], clk.Now
		return sandbox.New(cfg)
	}
	single := sandbox.New(sandbox.Config{Seed: 42, Orders: 40, Faults: sandbox.DefaultFaults(), Now: clk.Now})
	three, again, two, other := multi(42, 3), multi(42, 3), multi(42, 2), multi(43, 3)
	if !reflect.DeepEqual(three.Scenario(), again.Scenario()) {
		t.Fatal("same seed, different scenarios")
	}
	if reflect.DeepEqual(three.AppScenario(appB), other.AppScenario(appB)) {
		t.Fatal("different seeds, same scenario for app B")
	}
	if !reflect.DeepEqual(single.Scenario(), three.AppScenario(appA)) {
		t.Fatal("app 0 differs from the single-app sandbox of the same seed")
	}
	if !reflect.DeepEqual(two.AppScenario(appB), three.AppScenario(appB)) {
		t.Fatal("app B's orders changed with a third app")
	}
	for _, so := range single.Scenario() {
		a, _ := single.Order(so.OrderID)
		b, _ := three.Order(so.OrderID)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("order %s: %+v single, %+v in app 0", so.OrderID, a, b)
		}
	}
	// Apps are not copies of each other: their orders' contents differ.
	same := 0
	for i, so := range three.AppScenario(appB) {
		a, _ := three.Order(three.AppScenario(appA)[i].OrderID)
		b, _ := three.Order(so.OrderID)
		if reflect.DeepEqual(a.Products, b.Products) {
			same++
		}
	}
	if same > 2 {
		t.Fatalf("%d of 40 orders of B have the products of A's", same)
	}
	// The shares are exact per app.
	for _, app := range []string{appA, appB, appC} {
		n := 0
		for _, so := range three.AppScenario(app) {
			if so.Fault == sandbox.FaultTransient {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("app %s: %d transient orders of 40 at 5 %%, want 2", app, n)
		}
	}
}

func TestAppsAddOrder(t *testing.T) {
	e := newEnv(t, threeApps(1, 2, sandbox.NoFaults()))
	e.clock.Advance(time.Hour)
	e.sb.AddOrder(sandbox.ScenarioOrder{AppID: appB}, 1)
	e.sb.AddOrder(sandbox.ScenarioOrder{}, 1)
	sc := e.sb.Scenario()
	b, a := sc[len(sc)-2], sc[len(sc)-1]
	if want := strconv.FormatUint(sandbox.BaseOrderID+sandbox.AppOrderIDSpan+2, 10); b.OrderID != want || b.AppID != appB {
		t.Fatalf("added to B: %+v, want id %s", b, want)
	}
	if want := strconv.FormatUint(sandbox.BaseOrderID+2, 10); a.OrderID != want || a.AppID != appA {
		t.Fatalf("added without app: %+v, want app 0's id %s", a, want)
	}
	if ids := e.listAll(e.appToken(1)); !slices.Contains(ids, b.OrderID) || slices.Contains(ids, a.OrderID) {
		t.Fatalf("B lists %v", ids)
	}
	if ids := e.listAll(e.appToken(0)); slices.Contains(ids, b.OrderID) || !slices.Contains(ids, a.OrderID) {
		t.Fatalf("A lists %v", ids)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("AddOrder for an unknown app did not panic")
		}
	}()
	e.sb.AddOrder(sandbox.ScenarioOrder{AppID: "wxnosuchapp"}, 1)
}

// Every app ships all its orders at once: each order once, counted for its app;
// the calls are recorded with their app.
func TestAppsConcurrentShipping(t *testing.T) {
	const n = 20
	e := newEnv(t, threeApps(12, n, sandbox.NoFaults()))
	var wg sync.WaitGroup
	for k := range 3 {
		tok := e.appToken(k)
		for _, so := range e.sb.AppScenario(sandbox.DerivedAppID(k)) {
			body := sendBody(t, e.sb, so.OrderID)
			wg.Go(func() {
				resp, err := e.srv.Client().Post(e.srv.URL+pathSend+"?access_token="+tok, "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("send %s: %v", so.OrderID, err)
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"errcode":0`) {
					t.Errorf("send %s: %d %s", so.OrderID, resp.StatusCode, b)
				}
			})
		}
	}
	wg.Wait()
	st := e.sb.Stats()
	if st.SuccessfulSends != 3*n || st.ConcurrentSends != 0 {
		t.Fatalf("sends %d, concurrent %d", st.SuccessfulSends, st.ConcurrentSends)
	}
	for k := range 3 {
		app := sandbox.DerivedAppID(k)
		if as := st.ByApp[app]; as.SuccessfulSends != n || as.Calls[sandbox.EndpointDeliverySend] != n || as.Calls[sandbox.EndpointStableToken] != 1 {
			t.Fatalf("app %s: %+v", app, as)
		}
		for _, so := range e.sb.AppScenario(app) {
			if e.sb.Sends(so.OrderID) != 1 {
				t.Fatalf("order %s shipped %d times", so.OrderID, e.sb.Sends(so.OrderID))
			}
		}
	}
	perApp := map[string]int{}
	for _, c := range e.sb.Calls() {
		perApp[c.AppID]++
	}
	if want := map[string]int{appA: n + 1, appB: n + 1, appC: n + 1}; !reflect.DeepEqual(perApp, want) {
		t.Fatalf("calls by app %v, want %v", perApp, want)
	}
}

func TestAppsCallAppID(t *testing.T) {
	e := newEnv(t, threeApps(1, 1, sandbox.NoFaults()))
	tokB := e.appToken(1)
	e.call(pathOrderGet, tokB, `{"order_id":"1"}`)
	e.call(pathOrderGet, "SBX_forged", `{"order_id":"1"}`)
	e.call(pathStableToken, "", stableBodyFor(appC, "wrong", false))
	e.call(pathStableToken, "", stableBodyFor("wxnosuchapp", "x", false))
	e.vv(sandbox.DerivedApp(2).VVToken, map[string]string{"shop_id": "3001", "fields": "tid"})
	var got []string
	for _, c := range e.sb.Calls() {
		got = append(got, c.Endpoint+"="+c.AppID)
	}
	want := []string{"stable_token=" + appB, "order/get=" + appB, "order/get=", "stable_token=" + appC, "stable_token=", "vvtool/detail=" + appC}
	if !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  sandbox.Config
		want string // part of the error; "" for none
	}{
		{"single app", sandbox.Config{Orders: 3, AppID: "wxmine"}, ""},
		{"apps", sandbox.Config{Apps: []sandbox.App{{}, {AppID: "wxother"}, {}}}, ""},
		{"apps and Orders", sandbox.Config{Orders: 3, Apps: []sandbox.App{{}}}, "leave Orders"},
		{"apps and AppID", sandbox.Config{AppID: "wxa", Apps: []sandbox.App{{}}}, "leave Orders"},
		{"same appid", sandbox.Config{Apps: []sandbox.App{{AppID: "wxa"}, {AppID: "wxa"}}}, "same appid"},
		{"derived appid taken", sandbox.Config{Apps: []sandbox.App{{AppID: sandbox.DerivedAppID(1)}, {}}}, "same appid"},
		{"same vv token", sandbox.Config{Apps: []sandbox.App{{}, {VVToken: sandbox.DefaultVVToken}}}, "same vv-tool token"},
		{"shops without a token", sandbox.Config{Apps: []sandbox.App{{}, {VVShops: []string{"9"}}}}, "no VVToken"},
		{"too many orders", sandbox.Config{Apps: []sandbox.App{{Orders: sandbox.AppOrderIDSpan + 1}}}, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			if err != nil {
				defer func() {
					if recover() == nil {
						t.Fatal("New did not panic")
					}
				}()
				sandbox.New(tt.cfg)
			}
		})
	}
}

// Each app's order/list/get counts only its own orders against MaxOrdersPerWindow.
func TestAppsMaxOrdersPerWindow(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 1, MaxOrdersPerWindow: 10, Apps: []sandbox.App{{Orders: 11}, {Orders: 10}}})
	now := e.clock.Now()
	body := listBody(now.Add(-24*time.Hour), now, 100, "")
	if a, b := errcode(e.call(pathOrderList, e.appToken(0), body)), errcode(e.call(pathOrderList, e.appToken(1), body)); a != 31042 || b != 0 {
		t.Fatalf("A (11 orders) %d, B (10 orders) %d; want 31042, 0", a, b)
	}
}
