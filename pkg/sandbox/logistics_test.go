package sandbox_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

// batchBody is a batchGetOrder body asking for the given orders with carrier SF.
func batchBody(ids ...string) string {
	items := make([]string, len(ids))
	for i, id := range ids {
		items[i] = fmt.Sprintf(`{"order_id":%q,"delivery_id":"SF"}`, id)
	}
	return `{"order_list":[` + strings.Join(items, ",") + `]}`
}

func TestBatchGetOrder(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 5, Orders: 4, Faults: sandbox.FaultMix{Cancelled: .25, ItemError: .25}})
	tok := e.token()
	byFault := map[string]sandbox.ScenarioOrder{}
	var ids []string
	for _, so := range e.sb.Scenario() {
		byFault[so.Fault] = so
		ids = append(ids, so.OrderID)
	}
	extra := e.sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointBatchGetOrder, OrderID: byFault[sandbox.FaultNone].OrderID, Code: -1, Times: 1})
	ids = append(ids, "9999")

	m := e.call(pathBatchGet, tok, batchBody(ids...))
	if errcode(m) != 0 || m["errmsg"] != "ok" {
		t.Fatalf("answer %v", m)
	}
	items := m["order_list"].([]any)
	if len(items) != len(ids) {
		t.Fatalf("%d items for %d orders", len(items), len(ids))
	}
	scenario := map[string]sandbox.ScenarioOrder{}
	for _, so := range e.sb.Scenario() {
		scenario[so.OrderID] = so
	}
	for i, it := range items {
		it := it.(obj)
		if it["order_id"] != ids[i] {
			t.Fatalf("item %d order_id %v, want %s (order kept)", i, it["order_id"], ids[i])
		}
		o, known := scenario[ids[i]]
		switch {
		case !known:
			if errcode(it) != sandbox.CodeWaybillNotFound {
				t.Fatalf("unknown order: item %v", it)
			}
		case o.Fault == sandbox.FaultItemError:
			if errcode(it) != o.Code || o.Code == 0 {
				t.Fatalf("item_error order: item %v, want errcode %d", it, o.Code)
			}
		case o.OrderID == byFault[sandbox.FaultNone].OrderID:
			if errcode(it) != -1 {
				t.Fatalf("injected per-item fault: item %v", it)
			}
		default:
			wantStatus := 0
			if o.Fault == sandbox.FaultCancelled {
				wantStatus = 1
			}
			if errcode(it) != 0 || it["errmsg"] != "ok" || it["delivery_id"] != "SF" || it["waybill_id"] != o.WaybillID || num(it, "order_status") != wantStatus {
				t.Fatalf("item %v, want waybill %s status %d", it, o.WaybillID, wantStatus)
			}
			html, err := base64.StdEncoding.DecodeString(it["print_html"].(string))
			if err != nil || !strings.Contains(string(html), o.WaybillID) {
				t.Fatalf("print_html %q: %v", html, err)
			}
			data := it["waybill_data"].([]any)
			if len(data) == 0 || data[0].(obj)["key"] != "SF_bagAddr" || data[0].(obj)["value"] == "" {
				t.Fatalf("waybill_data %v", data)
			}
		}
	}
	// The per-item fault was for the first call only.
	if got := e.sb.FaultHits(extra); got != 1 {
		t.Fatalf("FaultHits = %d", got)
	}
	again := e.call(pathBatchGet, tok, batchBody(byFault[sandbox.FaultNone].OrderID))
	if it := again["order_list"].([]any)[0].(obj); errcode(it) != 0 {
		t.Fatalf("second call: item %v", it)
	}
}

func TestBatchGetOrderLimits(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		want     int
		wantOver int
	}{
		{"100 items", 100, 0, 0},
		{"101 items", 101, 40097, 1},
		{"no items", 0, 40097, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Orders: 3})
			ids := make([]string, tt.n)
			for i := range ids {
				ids[i] = firstOrder
			}
			m := e.call(pathBatchGet, e.token(), batchBody(ids...))
			if got := errcode(m); got != tt.want {
				t.Fatalf("errcode = %d, want %d", got, tt.want)
			}
			st := e.sb.Stats()
			if st.BatchOver100 != tt.wantOver || st.MaxBatchSize != tt.n {
				t.Fatalf("BatchOver100 = %d, MaxBatchSize = %d; want %d, %d", st.BatchOver100, st.MaxBatchSize, tt.wantOver, tt.n)
			}
		})
	}
}

func TestGetOrderWaybill(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 9, Orders: 2, Faults: sandbox.FaultMix{Cancelled: .5}})
	tok := e.token()
	tests := []struct {
		name       string
		pick       func(so sandbox.ScenarioOrder) bool
		body       func(so sandbox.ScenarioOrder) string
		want       int
		wantStatus int
	}{
		{"normal", isFault(sandbox.FaultNone), func(so sandbox.ScenarioOrder) string {
			return fmt.Sprintf(`{"order_id":%q,"openid":"oABC","delivery_id":"SF","waybill_id":%q}`, so.OrderID, so.WaybillID)
		}, 0, 0},
		{"number order_id", isFault(sandbox.FaultNone), func(so sandbox.ScenarioOrder) string {
			return fmt.Sprintf(`{"order_id":%s,"delivery_id":"SF"}`, so.OrderID)
		}, 0, 0},
		{"cancelled", isFault(sandbox.FaultCancelled), func(so sandbox.ScenarioOrder) string {
			return fmt.Sprintf(`{"order_id":%q,"delivery_id":"SF"}`, so.OrderID)
		}, 0, 1},
		{"unknown order", isFault(sandbox.FaultNone), func(sandbox.ScenarioOrder) string {
			return `{"order_id":"01234567890123456789","delivery_id":"SF","waybill_id":"123456789"}`
		}, sandbox.CodeWaybillNotFound, 0},
		{"other carrier", isFault(sandbox.FaultNone), func(so sandbox.ScenarioOrder) string {
			return fmt.Sprintf(`{"order_id":%q,"delivery_id":"YD"}`, so.OrderID)
		}, sandbox.CodeWaybillNotFound, 0},
		{"no delivery_id", isFault(sandbox.FaultNone), func(so sandbox.ScenarioOrder) string {
			return fmt.Sprintf(`{"order_id":%q}`, so.OrderID)
		}, 40097, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var so sandbox.ScenarioOrder
			for _, x := range e.sb.Scenario() {
				if tt.pick(x) {
					so = x
				}
			}
			m := e.call(pathGetOrder, tok, tt.body(so))
			if got := errcode(m); got != tt.want {
				t.Fatalf("errcode = %d, want %d (%v)", got, tt.want, m)
			}
			if tt.want != 0 {
				return
			}
			if m["order_id"] != so.OrderID || m["waybill_id"] != so.WaybillID || m["delivery_id"] != "SF" ||
				num(m, "order_status") != tt.wantStatus || m["print_html"] == "" || len(m["waybill_data"].([]any)) == 0 {
				t.Fatalf("answer %v", m)
			}
		})
	}
}

func isFault(f string) func(sandbox.ScenarioOrder) bool {
	return func(so sandbox.ScenarioOrder) bool { return so.Fault == f }
}
