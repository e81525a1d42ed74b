package sandbox_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

func TestFaultFirstK(t *testing.T) {
	const other = "3704612354559743233"
	get := func(id string) string { return `{"order_id":"` + id + `"}` }
	tests := []struct {
		name   string
		faults []sandbox.Fault
		calls  []string // order ids of successive order/get calls
		want   []int
	}{
		{"first 2", []sandbox.Fault{{Endpoint: sandbox.EndpointOrderGet, Code: -1, Times: 2}},
			[]string{firstOrder, firstOrder, firstOrder, firstOrder}, []int{-1, -1, 0, 0}},
		{"until cleared", []sandbox.Fault{{Endpoint: sandbox.EndpointOrderGet, Code: 45011, Times: -1}},
			[]string{firstOrder, other, firstOrder}, []int{45011, 45011, 45011}},
		{"times 0 means until cleared", []sandbox.Fault{{Endpoint: sandbox.EndpointOrderGet, Code: 45011}},
			[]string{firstOrder, firstOrder}, []int{45011, 45011}},
		{"scoped to an order: others do not count", []sandbox.Fault{{Endpoint: sandbox.EndpointOrderGet, OrderID: firstOrder, Code: -1, Times: 1}},
			[]string{other, other, firstOrder, firstOrder}, []int{0, 0, -1, 0}},
		{"other endpoint does not count", []sandbox.Fault{{Endpoint: sandbox.EndpointDeliverySend, Code: -1, Times: 1}},
			[]string{firstOrder}, []int{0}},
		{"each fault counts its own calls; first in injection order answers", []sandbox.Fault{
			{Endpoint: sandbox.EndpointOrderGet, Code: -1, Times: 1},
			{Endpoint: sandbox.EndpointOrderGet, Code: 45011, Times: 2},
		}, []string{firstOrder, firstOrder, firstOrder}, []int{-1, 45011, 0}},
		{"latency-only fault keeps the normal answer", []sandbox.Fault{{Endpoint: sandbox.EndpointOrderGet, Latency: time.Millisecond, Times: 1}},
			[]string{firstOrder}, []int{0}},
		{"fault answers before the order lookup", []sandbox.Fault{{Endpoint: sandbox.EndpointOrderGet, Code: 48001, Times: 1}},
			[]string{"1", "1"}, []int{48001, 100002}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Orders: 2})
			tok := e.token()
			for _, f := range tt.faults {
				e.sb.Inject(f)
			}
			var got []int
			for _, id := range tt.calls {
				got = append(got, errcode(e.call(pathOrderGet, tok, get(id))))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("errcodes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFaultRawAnswers(t *testing.T) {
	tests := []struct {
		name       string
		fault      sandbox.Fault
		wantStatus int
		wantBody   string
		wantCode   int // recorded
	}{
		{"502 HTML", sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, HTTPStatus: 502, Body: "<html><body>Bad Gateway</body></html>", Times: 1},
			502, "<html><body>Bad Gateway</body></html>", -502},
		{"truncated JSON with 200", sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, Body: `{"errcode":0,"errm`, Times: 1},
			200, `{"errcode":0,"errm`, -200},
		{"429 empty", sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, HTTPStatus: 429, Times: 1}, 429, "", -429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Orders: 1})
			tok := e.token()
			e.sb.Inject(tt.fault)
			st, b := e.post(pathSend, tok, sendBody(t, e.sb, firstOrder))
			if st != tt.wantStatus || string(b) != tt.wantBody {
				t.Fatalf("HTTP %d %q, want %d %q", st, b, tt.wantStatus, tt.wantBody)
			}
			calls := e.sb.Calls()
			if last := calls[len(calls)-1]; last.Code != tt.wantCode || last.Endpoint != sandbox.EndpointDeliverySend || !slices.Equal(last.OrderIDs, []string{firstOrder}) {
				t.Fatalf("recorded %+v", last)
			}
			if got := errcode(e.call(pathSend, tok, sendBody(t, e.sb, firstOrder))); got != 0 {
				t.Fatalf("after the fault: errcode %d", got)
			}
		})
	}
}

func TestFaultOnEveryEndpoint(t *testing.T) {
	tests := []struct {
		ep   string
		send func(e *env) obj
		code func(obj) int
	}{
		{sandbox.EndpointStableToken, func(e *env) obj { return e.call(pathStableToken, "", stableBody(false)) }, tokenCode},
		{sandbox.EndpointToken, func(e *env) obj {
			_, b := e.do(context.Background(), http.MethodGet, pathToken+"?grant_type=client_credential&appid=wxsandboxappid&secret=sandbox-app-secret", "", nil, nil)
			return decodeObj(e.t, b)
		}, tokenCode},
		{sandbox.EndpointOrderList, func(e *env) obj {
			now := e.clock.Now()
			return e.call(pathOrderList, e.sb.IssueToken(), listBody(now.Add(-time.Hour), now, 10, ""))
		}, errcode},
		{sandbox.EndpointBatchGetOrder, func(e *env) obj { return e.call(pathBatchGet, e.sb.IssueToken(), batchBody(firstOrder)) }, errcode},
		{sandbox.EndpointGetOrder, func(e *env) obj {
			return e.call(pathGetOrder, e.sb.IssueToken(), `{"order_id":"`+firstOrder+`","delivery_id":"SF"}`)
		}, errcode},
		{sandbox.EndpointVVToolDetail, func(e *env) obj {
			return e.vv(sandbox.DefaultVVToken, map[string]string{"shop_id": "1001", "fields": "tid"})
		}, func(m obj) int { return num(m, "code") }},
	}
	for _, tt := range tests {
		t.Run(tt.ep, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Orders: 1})
			id := e.sb.Inject(sandbox.Fault{Endpoint: tt.ep, Code: 101, Times: 1})
			if got := tt.code(tt.send(e)); got != 101 {
				t.Fatalf("first call: code %d, want 101", got)
			}
			if got := tt.code(tt.send(e)); got != 0 {
				t.Fatalf("second call: code %d, want 0", got)
			}
			if e.sb.FaultHits(id) != 1 {
				t.Fatalf("FaultHits = %d", e.sb.FaultHits(id))
			}
		})
	}
}

// tokenCode is the errcode of a token answer: a success carries none.
func tokenCode(m obj) int {
	if _, ok := m["access_token"]; ok {
		return 0
	}
	return errcode(m)
}

func TestRemoveAndClearFaults(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 1, Faults: sandbox.FaultMix{Permanent: 1}})
	tok := e.token()
	so := e.sb.Scenario()[0]
	body := sendBody(t, e.sb, firstOrder)
	id := e.sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointOrderGet, Code: -1})
	if !e.sb.RemoveFault(id) || e.sb.RemoveFault(id) {
		t.Fatal("RemoveFault: want true once, then false")
	}
	if got := errcode(e.call(pathOrderGet, tok, `{"order_id":"`+firstOrder+`"}`)); got != 0 {
		t.Fatalf("removed fault still answers: %d", got)
	}
	if got := errcode(e.call(pathSend, tok, body)); got != so.Code {
		t.Fatalf("scenario fault: errcode %d, want %d", got, so.Code)
	}
	e.sb.ClearFaults()
	if got := errcode(e.call(pathSend, tok, body)); got != 0 {
		t.Fatalf("after ClearFaults: errcode %d", got)
	}
}

func TestLatencyHonoursRequestContext(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 1, Latency: time.Hour})
	tok := e.sb.IssueToken()
	body := sendBody(t, e.sb, firstOrder)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() {
		defer wg.Done()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+pathSend+"?access_token="+tok, strings.NewReader(body))
		var resp *http.Response
		if resp, err = e.srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if werr := e.sb.WaitUntil(wctx, func() bool { return e.sb.InFlight(firstOrder) }); werr != nil {
		t.Fatalf("call never arrived: %v", werr)
	}
	cancel()
	wg.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v, want context.Canceled", err)
	}
	if werr := e.sb.WaitUntil(wctx, func() bool { return e.sb.Stats().Calls[sandbox.EndpointDeliverySend] == 1 }); werr != nil {
		t.Fatalf("held call not finished within 10 s of its client leaving (latency 1h): %v", werr)
	}
	calls := e.sb.Calls()
	if last := calls[len(calls)-1]; last.Code != sandbox.CodeClientGone || e.sb.InFlight(firstOrder) || e.sb.Sends(firstOrder) != 0 {
		t.Fatalf("recorded %+v", last)
	}
	start := time.Now()
	e.srv.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("server Close took %v", d)
	}
}
