package sandbox_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

func TestScenarioDeterministic(t *testing.T) {
	cfg := func(seed int64) sandbox.Config {
		c := newClock()
		return sandbox.Config{Seed: seed, Orders: 50, Faults: sandbox.DefaultFaults(), Now: c.Now}
	}
	a, b, c := sandbox.New(cfg(42)), sandbox.New(cfg(42)), sandbox.New(cfg(43))
	if !reflect.DeepEqual(a.Scenario(), b.Scenario()) {
		t.Fatal("same seed, different scenarios")
	}
	if reflect.DeepEqual(a.Scenario(), c.Scenario()) {
		t.Fatal("different seeds, same scenario")
	}
	for _, so := range a.Scenario() {
		oa, _ := a.Order(so.OrderID)
		ob, _ := b.Order(so.OrderID)
		if !reflect.DeepEqual(oa, ob) {
			t.Fatalf("order %s differs: %+v vs %+v", so.OrderID, oa, ob)
		}
	}
	// The vv-tool shippings too (same clock, same answers byte for byte).
	vvPage := func(sb *sandbox.Sandbox) string {
		body, ct := multipartBody(t, map[string]string{"shop_id": "1001", "fields": vvFields, "page_size": "100"})
		req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, pathVVDetail, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+sandbox.DefaultVVToken)
		rec := httptest.NewRecorder()
		sb.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	if pa := vvPage(a); pa != vvPage(b) || len(pa) < 1000 {
		t.Fatal("same seed, different vv-tool shippings")
	}
}

func TestScenarioShares(t *testing.T) {
	clk := newClock()
	sb := sandbox.New(sandbox.Config{Seed: 1, Orders: 200, Faults: sandbox.DefaultFaults(), Now: clk.Now})
	sc := sb.Scenario()
	if len(sc) != 200 {
		t.Fatalf("%d orders", len(sc))
	}
	counts := map[string]int{}
	numeric := 0
	now := clk.Now()
	for i, so := range sc {
		counts[so.Fault]++
		if want := strconv.FormatUint(sandbox.BaseOrderID+uint64(i), 10); so.OrderID != want {
			t.Fatalf("order %d id %s, want %s", i, so.OrderID, want)
		}
		if so.DeliveryID != "SF" || so.WaybillID == "" {
			t.Fatalf("order %+v", so)
		}
		wantExpect := sandbox.OutcomeShipped
		switch so.Fault {
		case sandbox.FaultPermanent, sandbox.FaultCancelled, sandbox.FaultItemError:
			wantExpect = sandbox.OutcomeFailed
		}
		if so.Expect != wantExpect {
			t.Fatalf("order %+v: Expect %s, want %s", so, so.Expect, wantExpect)
		}
		if (so.Code == 0) != (so.Fault == sandbox.FaultNone || so.Fault == sandbox.FaultCancelled) {
			t.Fatalf("order %+v: Code", so)
		}
		o, ok := sb.Order(so.OrderID)
		if !ok || o.Status != 20 || len(o.Products) < 1 || len(o.Products) > 3 {
			t.Fatalf("order %+v", o)
		}
		if o.UpdateTime.After(now) || !o.UpdateTime.After(now.Add(-24*time.Hour)) || !o.CreateTime.Before(o.UpdateTime) {
			t.Fatalf("order %s: create %v update %v, now %v", o.OrderID, o.CreateTime, o.UpdateTime, now)
		}
		if o.NumericIDs {
			numeric++
		}
	}
	want := map[string]int{sandbox.FaultTransient: 10, sandbox.FaultPermanent: 4, sandbox.FaultWait: 2, sandbox.FaultCancelled: 4, sandbox.FaultItemError: 2, sandbox.FaultNone: 178}
	if !reflect.DeepEqual(counts, want) || numeric != 20 {
		t.Fatalf("classes %v numeric %d, want %v and 20", counts, numeric, want)
	}
}

func TestScenarioFaultsBehave(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 8, Orders: 60, Faults: sandbox.FaultMix{Transient: .2, Permanent: .1, Wait: .1, Cancelled: .1, ItemError: .1}})
	tok := e.token()
	for _, so := range e.sb.Scenario() {
		t.Run(so.Fault+"/"+so.OrderID, func(t *testing.T) {
			item := e.call(pathBatchGet, tok, batchBody(so.OrderID))["order_list"].([]any)[0].(obj)
			switch so.Fault {
			case sandbox.FaultCancelled:
				if errcode(item) != 0 || num(item, "order_status") != 1 {
					t.Fatalf("cancelled waybill item %v", item)
				}
				return
			case sandbox.FaultItemError:
				if errcode(item) != so.Code {
					t.Fatalf("item %v, want errcode %d", item, so.Code)
				}
				if got := errcode(e.call(pathGetOrder, tok, `{"order_id":"`+so.OrderID+`","delivery_id":"SF"}`)); got != so.Code {
					t.Fatalf("getOrder errcode %d, want %d", got, so.Code)
				}
				return
			}
			if errcode(item) != 0 || num(item, "order_status") != 0 || item["waybill_id"] != so.WaybillID {
				t.Fatalf("waybill item %v", item)
			}
			body := sendBody(t, e.sb, so.OrderID)
			var codes []int
			for range 5 {
				c := errcode(e.call(pathSend, tok, body))
				codes = append(codes, c)
				if c == 0 {
					break
				}
			}
			switch so.Fault {
			case sandbox.FaultNone:
				if !slices.Equal(codes, []int{0}) {
					t.Fatalf("codes %v", codes)
				}
			case sandbox.FaultWait:
				if !slices.Equal(codes, []int{so.Code, 0}) {
					t.Fatalf("codes %v, want [%d 0]", codes, so.Code)
				}
			case sandbox.FaultTransient:
				n := len(codes) - 1
				if n < 1 || n > 3 || codes[n] != 0 || slices.ContainsFunc(codes[:n], func(c int) bool { return c != so.Code }) {
					t.Fatalf("codes %v, want 1–3 × %d then 0", codes, so.Code)
				}
			case sandbox.FaultPermanent:
				if len(codes) != 5 || slices.ContainsFunc(codes, func(c int) bool { return c != so.Code }) {
					t.Fatalf("codes %v, want %d every time", codes, so.Code)
				}
			}
		})
	}
}

func TestAddOrder(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 2})
	e.clock.Advance(time.Hour)
	e.sb.AddOrder(sandbox.ScenarioOrder{}, 2)
	e.sb.AddOrder(sandbox.ScenarioOrder{OrderID: "42", Fault: sandbox.FaultWait, Code: 606049}, 1)
	sc := e.sb.Scenario()
	if len(sc) != 4 {
		t.Fatalf("%d orders", len(sc))
	}
	added := sc[2]
	if added.OrderID != strconv.FormatUint(sandbox.BaseOrderID+2, 10) || added.Expect != sandbox.OutcomeShipped || added.Fault != sandbox.FaultNone || added.WaybillID == "" {
		t.Fatalf("added %+v", added)
	}
	o, _ := e.sb.Order(added.OrderID)
	if len(o.Products) != 2 || !o.UpdateTime.Equal(e.clock.Now()) {
		t.Fatalf("order %+v", o)
	}
	if sc[3].Code != 606049 || sc[3].Expect != sandbox.OutcomeShipped {
		t.Fatalf("added %+v", sc[3])
	}
	tok := e.token()
	if got := errcode(e.call(pathSend, tok, sendBody(t, e.sb, "42"))); got != 606049 {
		t.Fatalf("wait fault: %d", got)
	}
	now := e.clock.Now()
	ids := e.call(pathOrderList, tok, listBody(now.Add(-time.Minute), now, 10, ""))["order_id_list"].([]any)
	if !slices.Contains(ids, any(added.OrderID)) {
		t.Fatalf("added order not listed: %v", ids)
	}
}
