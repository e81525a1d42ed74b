package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

func TestIDUnmarshalJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{in: `"3704612354559743232"`, want: "3704612354559743232"},
		{in: `3704612354559743232`, want: "3704612354559743232"},
		{in: `18446744073709551617`, want: "18446744073709551617"}, // > 2^64
		{in: `9007199254740993`, want: "9007199254740993"},         // 2^53+1: float64 would round it
		{in: `0`, want: "0"},
		{in: `-12`, want: "-12"},
		{in: `"01234567890123456789_2"`, want: "01234567890123456789_2"},
		{in: `"\u0033\u0037"`, want: "37"},
		{in: `""`, want: ""},
		{in: `null`, want: ""},
		{in: `  42  `, want: "42"},
		{in: `1.5`, wantErr: true},
		{in: `1.0`, wantErr: true},
		{in: `1e3`, wantErr: true},
		{in: `01`, wantErr: true},
		{in: `-`, wantErr: true},
		{in: `true`, wantErr: true},
		{in: `false`, wantErr: true},
		{in: `{}`, wantErr: true},
		{in: `[1]`, wantErr: true},
		{in: `"unterminated`, wantErr: true},
		{in: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			id := ID("previous")
			err := id.UnmarshalJSON([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidID) {
					t.Fatalf("UnmarshalJSON(%s) = %v, want ErrInvalidID", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalJSON(%s): %v", tt.in, err)
			}
			if id != tt.want {
				t.Errorf("UnmarshalJSON(%s) = %q, want %q", tt.in, id, tt.want)
			}
		})
	}
}

func TestIDMarshalJSON(t *testing.T) {
	tests := []struct {
		id   ID
		want string
	}{
		{"3704612354559743232", `"3704612354559743232"`},
		{"", `""`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a<b>&c", `"a\u003cb\u003e\u0026c"`},
		{"订单", `"订单"`},
		{"a\nb", `"a\nb"`},
		{"SKU-9_x.y", `"SKU-9_x.y"`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(struct {
			ID ID `json:"id"`
		}{tt.id})
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if want := `{"id":` + tt.want + `}`; string(got) != want {
			t.Errorf("Marshal(%q) = %s, want %s", tt.id, got, want)
		}
	}
	// Every request carries a few ids: quoting one is one allocation.
	id := ID("3704612354559743232")
	if n := testing.AllocsPerRun(100, func() { _, _ = id.MarshalJSON() }); n > 1 {
		t.Errorf("MarshalJSON allocates %v times, want 1", n)
	}
}

// TestLargeNumericIDs checks that 19-digit ids sent as JSON numbers survive byte
// for byte through every decoder of the client, and go out as strings.
func TestLargeNumericIDs(t *testing.T) {
	const (
		orderID = "3704612354559743232"
		other   = "3704849110714209537" // odd: float64 cannot hold it
		product = "10000017557399123"
		sku     = "1234567890123456789"
	)
	answers := map[string]string{
		EndpointOrderList.Path(): `{"errcode":0,"order_id_list":[` + orderID + `,"` + other + `",` + other + `],"next_key":"k","has_more":false}`,
		EndpointOrderGet.Path(): `{"errcode":0,"order":{"order_id":` + orderID + `,"status":20,"order_detail":{"product_infos":[{"product_id":` +
			product + `,"sku_id":` + sku + `,"sku_cnt":1}],"delivery_info":{"delivery_product_info":[{"product_infos":[{"product_id":` +
			product + `,"sku_id":` + sku + `,"product_cnt":1}]}]}}}}`,
		EndpointBatchGetOrder.Path(): `{"errcode":0,"order_list":[{"errcode":0,"order_id":` + orderID + `,"delivery_id":"SF","waybill_id":"w"}]}`,
		EndpointGetOrder.Path():      `{"order_id":` + other + `,"delivery_id":"SF","waybill_id":"w"}`,
		EndpointDeliverySend.Path():  okBody,
	}
	lr := newLeakRecorder(t)
	var cl callLog
	srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, answers[r.URL.Path])
	})
	c := staticClient(srv)
	ctx := context.Background()

	list, err := c.ListOrders(ctx, ListOrdersRequest{UpdateTimeRange: &TimeRange{StartTime: 1, EndTime: 2}})
	lr.record(err)
	if err != nil {
		t.Fatalf("ListOrders: %v", err)
	}
	if want := []ID{orderID, other, other}; len(list.OrderIDList) != 3 || list.OrderIDList[0] != want[0] || list.OrderIDList[1] != want[1] || list.OrderIDList[2] != want[2] {
		t.Errorf("ListOrders ids = %q, want %q", list.OrderIDList, want)
	}

	order, err := c.GetOrder(ctx, orderID)
	lr.record(err)
	if err != nil {
		t.Fatalf("GetOrder: %v", err)
	}
	p := order.OrderDetail.ProductInfos[0]
	dp := order.OrderDetail.DeliveryInfo.DeliveryProductInfo[0].ProductInfos[0]
	for name, got := range map[string]ID{"order_id": order.OrderID, "product_id": p.ProductID, "sku_id": p.SkuID, "delivery product_id": dp.ProductID, "delivery sku_id": dp.SkuID} {
		want := map[string]ID{"order_id": orderID, "product_id": product, "sku_id": sku, "delivery product_id": product, "delivery sku_id": sku}[name]
		if got != want {
			t.Errorf("GetOrder %s = %q, want %q", name, got, want)
		}
	}

	wbs, err := c.BatchGetOrder(ctx, []WaybillQuery{{OrderID: orderID, DeliveryID: "SF"}})
	lr.record(err)
	if err != nil || len(wbs) != 1 || wbs[0].OrderID != orderID {
		t.Errorf("BatchGetOrder = %+v, %v; want order_id %s", wbs, err, orderID)
	}

	wb, err := c.GetWaybill(ctx, WaybillQuery{OrderID: other, DeliveryID: "SF"})
	lr.record(err)
	if err != nil || wb.OrderID != other {
		t.Errorf("GetWaybill = %+v, %v; want order_id %s", wb, err, other)
	}

	err = c.SendDelivery(ctx, SendDeliveryRequest{
		OrderID: order.OrderID,
		DeliveryList: []DeliveryItem{{DeliveryID: "SF", WaybillID: "SF1", DeliverType: DeliverTypeExpress,
			ProductInfos: []DeliveryProduct{{ProductCnt: p.SkuCnt, ProductID: p.ProductID, SkuID: p.SkuID}}}},
	})
	lr.record(err)
	if err != nil {
		t.Fatalf("SendDelivery: %v", err)
	}
	want := `{"order_id":"` + orderID + `","delivery_list":[{"delivery_id":"SF","waybill_id":"SF1","deliver_type":1,"product_infos":[{"product_cnt":1,"product_id":"` +
		product + `","sku_id":"` + sku + `"}]}]}`
	if got := string(cl.of(EndpointDeliverySend.Path())[0].Body); got != want {
		t.Errorf("delivery/send body\n got: %s\nwant: %s", got, want)
	}
}
