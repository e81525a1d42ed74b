package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

// listBody is an order/list/get body over the update_time window [from, to].
func listBody(from, to time.Time, pageSize int, nextKey string) string {
	return fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d},"status":20,"page_size":%d,"next_key":%q}`,
		from.Unix(), to.Unix(), pageSize, nextKey)
}

func TestOrderListPaging(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 7, Orders: 25})
	tok := e.token()
	now := e.clock.Now()
	var got []string
	var hasMore []bool
	key := ""
	for range 10 {
		m := e.call(pathOrderList, tok, listBody(now.Add(-24*time.Hour), now, 10, key))
		if errcode(m) != 0 || m["errmsg"] != "ok" {
			t.Fatalf("answer %v", m)
		}
		for _, id := range m["order_id_list"].([]any) {
			got = append(got, id.(string))
		}
		hasMore = append(hasMore, m["has_more"].(bool))
		key = m["next_key"].(string)
		if !m["has_more"].(bool) {
			break
		}
	}
	if !slices.Equal(hasMore, []bool{true, true, false}) {
		t.Fatalf("has_more per page = %v", hasMore)
	}
	var want []string
	for _, o := range e.sb.Scenario() {
		want = append(want, o.OrderID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v\nwant %v", got, want)
	}
}

func TestOrderListErrors(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 3})
	tok := e.token()
	now := e.clock.Now().Unix()
	week := int64(7 * 24 * 3600)
	tests := []struct {
		name          string
		body          string
		want          int
		wantTooLong   int // ListWindowTooLong after the call
		wantNextKeyMM int
	}{
		{"7 days exactly", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d}}`, now-week, now), 0, 0, 0},
		{"update window over 7 days", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d}}`, now-week-1, now), 40097, 1, 0},
		{"create window over 7 days", fmt.Sprintf(`{"create_time_range":{"start_time":%d,"end_time":%d}}`, now-week-1, now), 40097, 2, 0},
		{"no time range", `{"status":20}`, 40097, 2, 0},
		{"start after end", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d}}`, now, now-1), 40097, 2, 0},
		{"page_size 100", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d},"page_size":100}`, now-3600, now), 0, 2, 0},
		{"page_size 101", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d},"page_size":101}`, now-3600, now), 40097, 2, 0},
		{"page_size 0", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d},"page_size":0}`, now-3600, now), 40097, 2, 0},
		{"status as string", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d},"status":"20"}`, now-3600, now), 47001, 2, 0},
		{"not json", `status=20`, 47001, 2, 0},
		{"empty body", ``, 44002, 2, 0},
		{"foreign next_key", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d},"next_key":"THE_NEXT_KEY"}`, now-3600, now), 606006, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := e.call(pathOrderList, tok, tt.body)
			if got := errcode(m); got != tt.want {
				t.Fatalf("errcode = %d, want %d (%v)", got, tt.want, m)
			}
			st := e.sb.Stats()
			if st.ListWindowTooLong != tt.wantTooLong || st.NextKeyMismatch != tt.wantNextKeyMM {
				t.Fatalf("ListWindowTooLong = %d, NextKeyMismatch = %d; want %d, %d",
					st.ListWindowTooLong, st.NextKeyMismatch, tt.wantTooLong, tt.wantNextKeyMM)
			}
		})
	}
}

func TestOrderListNextKeyBoundToParams(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 5})
	tok := e.token()
	now := e.clock.Now()
	from := now.Add(-24 * time.Hour)
	first := e.call(pathOrderList, tok, listBody(from, now, 2, ""))
	key := first["next_key"].(string)
	if errcode(first) != 0 || key == "" || !first["has_more"].(bool) {
		t.Fatalf("first page %v", first)
	}
	tests := []struct {
		name string
		body string
		want int
	}{
		{"same params", listBody(from, now, 2, key), 0},
		{"other page_size", listBody(from, now, 3, key), 606006},
		{"other window end", listBody(from, now.Add(-time.Second), 2, key), 606006},
		{"other status", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d},"status":30,"page_size":2,"next_key":%q}`, from.Unix(), now.Unix(), key), 606006},
		{"status dropped", fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d},"page_size":2,"next_key":%q}`, from.Unix(), now.Unix(), key), 606006},
		{"create range added", fmt.Sprintf(`{"create_time_range":{"start_time":%d,"end_time":%d},"update_time_range":{"start_time":%d,"end_time":%d},"status":20,"page_size":2,"next_key":%q}`, from.Unix(), now.Unix(), from.Unix(), now.Unix(), key), 606006},
	}
	mismatches := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errcode(e.call(pathOrderList, tok, tt.body)); got != tt.want {
				t.Fatalf("errcode = %d, want %d", got, tt.want)
			}
			if tt.want == 606006 {
				mismatches++
			}
			if got := e.sb.Stats().NextKeyMismatch; got != mismatches {
				t.Fatalf("NextKeyMismatch = %d, want %d", got, mismatches)
			}
		})
	}
}

// TestOrderListPagesAlikeCountedOrNot pages through a window with some
// orders shipped (in the window but not of the status asked), once where
// the window could hold more than MaxOrdersPerWindow (every match counted)
// and once where it cannot (a page starts at its cursor and stops past its
// end): the pages must be the same.
func TestOrderListPagesAlikeCountedOrNot(t *testing.T) {
	const orders, shipped = 60, 10
	pages := func(max, size int) []string {
		e := newEnv(t, sandbox.Config{Seed: 9, Orders: orders, MaxOrdersPerWindow: max})
		tok := e.token()
		for _, so := range e.sb.Scenario()[:shipped] {
			if code := errcode(e.call(pathSend, tok, sendBody(t, e.sb, so.OrderID))); code != 0 {
				t.Fatalf("delivery/send %s: errcode %d", so.OrderID, code)
			}
		}
		now := e.clock.Now()
		var got []string
		key := ""
		for range orders + 1 {
			m := e.call(pathOrderList, tok, listBody(now.Add(-24*time.Hour), now, size, key))
			if errcode(m) != 0 {
				t.Fatalf("MaxOrdersPerWindow %d: answer %v", max, m)
			}
			key = m["next_key"].(string)
			got = append(got, fmt.Sprintf("%v has_more=%v next_key=%s", m["order_id_list"], m["has_more"], key))
			if !m["has_more"].(bool) {
				return got
			}
		}
		t.Fatalf("MaxOrdersPerWindow %d: has_more never false", max)
		return nil
	}
	for _, size := range []int{1, 7, 50, 100} {
		counted := pages(orders-shipped, size) // the window holds 60 > 50: counted
		direct := pages(1000, size)
		if !slices.Equal(counted, direct) {
			t.Errorf("page size %d: counted\n%s\nnot counted\n%s", size, strings.Join(counted, "\n"), strings.Join(direct, "\n"))
		}
		if want := (orders - shipped + size - 1) / size; len(direct) != want {
			t.Errorf("page size %d: %d pages, want %d", size, len(direct), want)
		}
	}
}

func TestOrderListTooManyOrders(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 6, MaxOrdersPerWindow: 5})
	tok := e.token()
	now := e.clock.Now()
	if got := errcode(e.call(pathOrderList, tok, listBody(now.Add(-24*time.Hour), now, 100, ""))); got != 31042 {
		t.Fatalf("6 orders in the window, max 5: errcode %d, want 31042", got)
	}
	// A window holding the 5 oldest orders is answered.
	var times []time.Time
	for _, so := range e.sb.Scenario() {
		o, _ := e.sb.Order(so.OrderID)
		times = append(times, o.UpdateTime)
	}
	slices.SortFunc(times, time.Time.Compare)
	m := e.call(pathOrderList, tok, listBody(times[0], times[4], 100, ""))
	if errcode(m) != 0 || len(m["order_id_list"].([]any)) != 5 {
		t.Fatalf("window of 5: %v", m)
	}
	if st := e.sb.Stats(); st.ErrCodes[sandbox.EndpointOrderList][31042] != 1 {
		t.Fatalf("ErrCodes = %v", st.ErrCodes)
	}
}

func TestOrderGet(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 3, Orders: 2})
	tok := e.token()
	tests := []struct {
		name string
		body string
		want int
	}{
		{"string id", `{"order_id":"` + firstOrder + `"}`, 0},
		{"number id", `{"order_id":` + firstOrder + `}`, 0},
		{"unknown", `{"order_id":"1"}`, 100002},
		{"missing", `{}`, 40097},
		{"float id", `{"order_id":3.7e18}`, 47001},
		{"bool id", `{"order_id":true}`, 47001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := e.call(pathOrderGet, tok, tt.body)
			if got := errcode(m); got != tt.want {
				t.Fatalf("errcode = %d, want %d (%v)", got, tt.want, m)
			}
			if tt.want != 0 {
				return
			}
			o := m["order"].(obj)
			if o["order_id"] != firstOrder || num(o, "status") != 20 || o["openid"] == "" {
				t.Fatalf("order %v", o)
			}
			if num(o, "update_time") <= num(o, "create_time") {
				t.Fatalf("update_time %v not after create_time %v", o["update_time"], o["create_time"])
			}
			detail := o["order_detail"].(obj)
			prods := detail["product_infos"].([]any)
			if len(prods) < 1 || len(prods) > 3 {
				t.Fatalf("%d product_infos", len(prods))
			}
			for _, p := range prods {
				p := p.(obj)
				for _, k := range []string{"product_id", "sku_id", "title"} {
					if s, _ := p[k].(string); s == "" {
						t.Fatalf("product %v: %s not a non-empty string", p, k)
					}
				}
				if num(p, "sku_cnt") < 1 || num(p, "on_aftersale_sku_cnt") != 0 {
					t.Fatalf("product %v", p)
				}
			}
			di := detail["delivery_info"].(obj)
			addr := di["address_info"].(obj)
			for _, k := range []string{"user_name", "province_name", "city_name", "county_name", "detail_info", "tel_number"} {
				if s, _ := addr[k].(string); s == "" {
					t.Fatalf("address_info.%s empty: %v", k, addr)
				}
			}
			if dpi, ok := di["delivery_product_info"].([]any); !ok || len(dpi) != 0 {
				t.Fatalf("delivery_product_info before shipment = %v", di["delivery_product_info"])
			}
		})
	}
}

func TestNumericIDsAreExactBareNumbers(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 2, Faults: sandbox.FaultMix{NumericIDs: 1}})
	tok := e.token()
	now := e.clock.Now()
	bare := regexp.MustCompile(`"order_id":(\d{19})[,}]`)

	_, b := e.post(pathOrderGet, tok, `{"order_id":"`+firstOrder+`"}`)
	if m := bare.FindSubmatch(b); m == nil || string(m[1]) != firstOrder {
		t.Fatalf("order/get body has no bare order_id %s: %s", firstOrder, b)
	}
	o, _ := e.sb.Order(firstOrder)
	if !o.NumericIDs {
		t.Fatal("OrderView.NumericIDs false")
	}
	for _, p := range o.Products {
		for _, want := range []string{`"product_id":` + p.ProductID + `,`, `"sku_id":` + p.SkuID + `,`} {
			if !regexp.MustCompile(regexp.QuoteMeta(want)).Match(b) {
				t.Fatalf("order/get body lacks %s: %s", want, b)
			}
		}
	}
	// Decoding with UseNumber keeps the digits.
	m := decodeObj(t, b)
	if n, ok := m["order"].(obj)["order_id"].(json.Number); !ok || n.String() != firstOrder {
		t.Fatalf("order_id decoded as %#v", m["order"].(obj)["order_id"])
	}

	_, b = e.post(pathOrderList, tok, listBody(now.Add(-24*time.Hour), now, 10, ""))
	if !regexp.MustCompile(`"order_id_list":\[\d{19},\d{19}\]`).Match(b) {
		t.Fatalf("order/list/get ids not bare numbers: %s", b)
	}
	if !regexp.MustCompile(`[\[,]` + firstOrder + `[,\]]`).Match(b) {
		t.Fatalf("order/list/get lacks %s exactly: %s", firstOrder, b)
	}
}

func TestDeliverySend(t *testing.T) {
	tests := []struct {
		name string
		body func(t *testing.T, sb *sandbox.Sandbox) string
		want int
	}{
		{"seed shape, string id", func(t *testing.T, sb *sandbox.Sandbox) string { return sendBody(t, sb, firstOrder) }, 0},
		{"number id", func(t *testing.T, sb *sandbox.Sandbox) string {
			b := sendBody(t, sb, firstOrder)
			return `{"order_id":` + firstOrder + b[len(`{"order_id":"`+firstOrder+`"`):]
		}, 0},
		{"unknown order", func(t *testing.T, sb *sandbox.Sandbox) string {
			return `{"order_id":"1","delivery_list":[{"delivery_id":"SF","waybill_id":"1","deliver_type":1,"product_infos":[{"product_cnt":1,"product_id":"1","sku_id":"1"}]}]}`
		}, 100002},
		{"missing order_id", func(*testing.T, *sandbox.Sandbox) string { return `{"delivery_list":[]}` }, 40097},
		{"no delivery_list", func(*testing.T, *sandbox.Sandbox) string { return `{"order_id":"` + firstOrder + `"}` }, 40097},
		{"no waybill_id for express", func(t *testing.T, sb *sandbox.Sandbox) string {
			return replaceOnce(sendBody(t, sb, firstOrder), `"waybill_id":"SF123",`, ``)
		}, 40097},
		{"virtual delivery of an express order", func(t *testing.T, sb *sandbox.Sandbox) string {
			return replaceOnce(sendBody(t, sb, firstOrder), `"deliver_type":1`, `"deliver_type":3`)
		}, 606008},
		{"deliver_type 2", func(t *testing.T, sb *sandbox.Sandbox) string {
			return replaceOnce(sendBody(t, sb, firstOrder), `"deliver_type":1`, `"deliver_type":2`)
		}, 40097},
		{"no products", func(*testing.T, *sandbox.Sandbox) string {
			return `{"order_id":"` + firstOrder + `","delivery_list":[{"delivery_id":"SF","waybill_id":"1","deliver_type":1,"product_infos":[]}]}`
		}, 109002},
		{"foreign product", func(*testing.T, *sandbox.Sandbox) string {
			return `{"order_id":"` + firstOrder + `","delivery_list":[{"delivery_id":"SF","waybill_id":"1","deliver_type":1,"product_infos":[{"product_cnt":1,"product_id":"12345","sku_id":"678910"}]}]}`
		}, 109000},
		{"wrong count", func(t *testing.T, sb *sandbox.Sandbox) string {
			o, _ := sb.Order(firstOrder)
			return replaceOnce(sendBody(t, sb, firstOrder), fmt.Sprintf(`"product_cnt":%d`, o.Products[0].SkuCnt), fmt.Sprintf(`"product_cnt":%d`, o.Products[0].SkuCnt+1))
		}, 109000},
		{"course info on a non-course sku", func(t *testing.T, sb *sandbox.Sandbox) string {
			return replaceOnce(sendBody(t, sb, firstOrder), `"deliver_type":1,`, `"deliver_type":1,"course_info":{"course_path":{"type":0,"wxa_appid":"wx","wxa_path":"p"}},`)
		}, 606037},
		{"deliver_type as string", func(t *testing.T, sb *sandbox.Sandbox) string {
			return replaceOnce(sendBody(t, sb, firstOrder), `"deliver_type":1`, `"deliver_type":"1"`)
		}, 47001},
		{"float order_id", func(*testing.T, *sandbox.Sandbox) string { return `{"order_id":1.5,"delivery_list":[]}` }, 47001},
		{"empty body", func(*testing.T, *sandbox.Sandbox) string { return `` }, 44002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Seed: 11, Orders: 1})
			m := e.call(pathSend, e.token(), tt.body(t, e.sb))
			if got := errcode(m); got != tt.want {
				t.Fatalf("errcode = %d, want %d (%v)", got, tt.want, m)
			}
			wantSends, wantStatus := 0, 20
			if tt.want == 0 {
				wantSends, wantStatus = 1, 30
				if m["errmsg"] != "ok" || len(m) != 2 {
					t.Fatalf("answer %v, want exactly errcode and errmsg ok", m)
				}
			}
			o, _ := e.sb.Order(firstOrder)
			if e.sb.Sends(firstOrder) != wantSends || o.Status != wantStatus || e.sb.Stats().SuccessfulSends != wantSends {
				t.Fatalf("Sends = %d, status = %d; want %d, %d", e.sb.Sends(firstOrder), o.Status, wantSends, wantStatus)
			}
		})
	}
}

func replaceOnce(s, old, repl string) string {
	if !strings.Contains(s, old) {
		panic("replaceOnce: " + old + " not in " + s)
	}
	return strings.Replace(s, old, repl, 1)
}

func TestDeliverySendSecondShipment(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 1})
	tok := e.token()
	body := sendBody(t, e.sb, firstOrder)
	before, _ := e.sb.Order(firstOrder)
	e.clock.Advance(time.Minute)
	if got := errcode(e.call(pathSend, tok, body)); got != 0 {
		t.Fatalf("first send: %d", got)
	}
	if got := errcode(e.call(pathSend, tok, body)); got != 109001 {
		t.Fatalf("second send: errcode %d, want 109001", got)
	}
	st := e.sb.Stats()
	if st.DuplicateSends != 1 || st.SuccessfulSends != 1 || e.sb.Sends(firstOrder) != 1 {
		t.Fatalf("DuplicateSends = %d, SuccessfulSends = %d, Sends = %d", st.DuplicateSends, st.SuccessfulSends, e.sb.Sends(firstOrder))
	}
	if st.ErrCodes[sandbox.EndpointDeliverySend][109001] != 1 || st.Calls[sandbox.EndpointDeliverySend] != 2 {
		t.Fatalf("stats %+v", st)
	}
	// The order is shipped: status 30, update_time now, the package in delivery_product_info,
	// and it left the status-20 list.
	o := e.call(pathOrderGet, tok, `{"order_id":"`+firstOrder+`"}`)["order"].(obj)
	if num(o, "status") != 30 || int64(num(o, "update_time")) != e.clock.Now().Unix() || num(o, "update_time") <= int(before.UpdateTime.Unix()) {
		t.Fatalf("shipped order %v", o)
	}
	dpi := o["order_detail"].(obj)["delivery_info"].(obj)["delivery_product_info"].([]any)
	if len(dpi) != 1 || dpi[0].(obj)["waybill_id"] != "SF123" || dpi[0].(obj)["delivery_id"] != "SF" {
		t.Fatalf("delivery_product_info %v", dpi)
	}
	now := e.clock.Now()
	if ids := e.call(pathOrderList, tok, listBody(now.Add(-24*time.Hour), now, 10, ""))["order_id_list"].([]any); len(ids) != 0 {
		t.Fatalf("shipped order still listed with status 20: %v", ids)
	}
}

func TestDeliverySendConcurrentForOneOrder(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 1})
	tok := e.token()
	body := sendBody(t, e.sb, firstOrder)
	// The first call is held by a long latency until its client gives up.
	e.sb.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, OrderID: firstOrder, Times: 1, Latency: time.Hour})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+pathSend+"?access_token="+tok, strings.NewReader(body))
		if resp, err := e.srv.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Error("held call answered before its client gave up")
		}
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := e.sb.WaitUntil(wctx, func() bool { return e.sb.InFlight(firstOrder) }); err != nil {
		t.Fatalf("first call never in flight: %v", err)
	}

	if got := errcode(e.call(pathSend, tok, body)); got != 100003 {
		t.Fatalf("overlapping call: errcode %d, want 100003", got)
	}
	cancel()
	wg.Wait()
	if err := e.sb.WaitUntil(wctx, func() bool { return !e.sb.InFlight(firstOrder) }); err != nil {
		t.Fatalf("first call still in flight: %v", err)
	}
	st := e.sb.Stats()
	if st.ConcurrentSends != 1 || st.SuccessfulSends != 0 {
		t.Fatalf("ConcurrentSends = %d, SuccessfulSends = %d; want 1, 0", st.ConcurrentSends, st.SuccessfulSends)
	}
	// Sequential calls are fine again.
	if got := errcode(e.call(pathSend, tok, body)); got != 0 {
		t.Fatalf("call after the overlap: errcode %d", got)
	}
	if got := e.sb.Stats().ConcurrentSends; got != 1 {
		t.Fatalf("ConcurrentSends = %d after sequential call", got)
	}
}
