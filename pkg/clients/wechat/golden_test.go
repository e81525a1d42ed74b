package wechat

import (
	"context"
	"net/http"
	"reflect"
	"testing"
)

// seedCase is one seed-page example: the call that should produce the example
// request, the example answer, and what the answer must decode to.
type seedCase struct {
	name     string
	endpoint Endpoint
	request  string // golden request file
	response string // golden response file
	call     func(ctx context.Context, c *Client) (any, error)
	want     any
}

// seedCases lists every request/response example of the seed pages.
func seedCases() []seedCase {
	sendReq51 := SendDeliveryRequest{
		OrderID: "123456",
		DeliveryList: []DeliveryItem{{
			DeliveryID:   "YD",
			WaybillID:    "23424324253",
			DeliverType:  DeliverTypeExpress,
			ProductInfos: []DeliveryProduct{{ProductCnt: 1, ProductID: "12345", SkuID: "678910"}},
		}},
	}
	sendReq52 := SendDeliveryRequest{
		OrderID: "123456",
		DeliveryList: []DeliveryItem{{
			DeliverType:  DeliverTypeVirtual,
			ProductInfos: []DeliveryProduct{{ProductCnt: 1, ProductID: "12345", SkuID: "678910"}},
			CourseInfo: &CourseInfo{
				StartTime:  1675180800,
				EndTime:    1675958400,
				CoursePath: CoursePath{Type: 0, WxaAppID: "wxabcdes", WxaPath: "path"},
			},
		}},
	}
	waybillData := []WaybillField{{Key: "SF_bagAddr", Value: "广州"}, {Key: "SF_mark", Value: "101- 07-03 509"}}
	const printHTML = "jh7DjipP4ul4CQYUh69cniskrQZuOPwa1inAbXIqKbU0t71c0s65Au54cdWBZW0QJY4LYeofdM"
	q := WaybillQuery{OrderID: "01234567890123456789", DeliveryID: "SF", WaybillID: "123456789"}

	return []seedCase{
		{
			name:     "000 batchGetOrder",
			endpoint: EndpointBatchGetOrder,
			request:  "batchget_request.json",
			response: "batchget_response.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BatchGetOrder(ctx, []WaybillQuery{q, q})
			},
			want: []Waybill{
				{Errmsg: "ok", OrderID: "01234567890123456789", DeliveryID: "SF", WaybillID: "123456789", PrintHTML: printHTML, WaybillData: waybillData},
				{Errmsg: "ok", OrderID: "01234567890123456789_2", DeliveryID: "SF", WaybillID: "123456789_2", PrintHTML: printHTML, WaybillData: waybillData},
			},
		},
		{
			name:     "001 getOrder",
			endpoint: EndpointGetOrder,
			request:  "getorder_request.json",
			response: "getorder_response.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.GetWaybill(ctx, WaybillQuery{OrderID: "01234567890123456789", OpenID: "oABC123456", DeliveryID: "SF", WaybillID: "123456789"})
			},
			want: &Waybill{OrderID: "123456", DeliveryID: "SF", WaybillID: "123456", PrintHTML: printHTML, WaybillData: waybillData, OrderStatus: WaybillStatusNormal},
		},
		{
			name:     "002 order/list/get",
			endpoint: EndpointOrderList,
			request:  "orderlist_request.json",
			response: "orderlist_response.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListOrders(ctx, ListOrdersRequest{
					CreateTimeRange: &TimeRange{StartTime: 1658505600, EndTime: 1658509200},
					PageSize:        10,
					NextKey:         "THE_NEXT_KEY",
				})
			},
			want: &ListOrdersResponse{
				OrderIDList: []ID{"3704612354559743232", "3704849110714209536"},
				NextKey:     "THE_NEXT_KEY_NEW",
				HasMore:     true,
			},
		},
		{
			name:     "004 delivery/send 5.1 express",
			endpoint: EndpointDeliverySend,
			request:  "delivery_send_request_5_1.json",
			response: "delivery_send_response.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.SendDelivery(ctx, sendReq51)
			},
		},
		{
			name:     "004 delivery/send 5.2 course",
			endpoint: EndpointDeliverySend,
			request:  "delivery_send_request_5_2.json",
			response: "delivery_send_response.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.SendDelivery(ctx, sendReq52)
			},
		},
	}
}

// runSeedCase serves the golden answer and returns the request the client sent
// and what the call returned.
func runSeedCase(t *testing.T, tc seedCase) (recordedCall, any) {
	t.Helper()
	lr := newLeakRecorder(t)
	answer := readGolden(t, tc.response)
	var cl callLog
	srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != tc.endpoint.Path() {
			writeJSON(w, http.StatusNotFound, `{"errcode":404,"errmsg":"wrong method or path"}`)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			writeJSON(w, http.StatusBadRequest, `{"errcode":47001,"errmsg":"content type `+ct+`"}`)
			return
		}
		writeJSON(w, http.StatusOK, string(answer))
	})
	got, err := tc.call(context.Background(), staticClient(srv))
	lr.record(err)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	calls := cl.of(tc.endpoint.Path())
	if len(calls) != 1 {
		t.Fatalf("got %d calls of %s, want 1", len(calls), tc.endpoint.Path())
	}
	if calls[0].Token != testToken {
		t.Errorf("access_token = %q, want the static token", calls[0].Token)
	}
	return calls[0], got
}

// TestSeedRequests checks that the client sends the seed pages' example requests
// (JSON-equal to the golden files).
func TestSeedRequests(t *testing.T) {
	for _, tc := range seedCases() {
		t.Run(tc.name, func(t *testing.T) {
			call, _ := runSeedCase(t, tc)
			assertJSONEqual(t, readGolden(t, tc.request), call.Body)
		})
	}
}

// TestSeedResponses checks that the seed pages' example answers decode.
func TestSeedResponses(t *testing.T) {
	for _, tc := range seedCases() {
		t.Run(tc.name, func(t *testing.T) {
			_, got := runSeedCase(t, tc)
			if tc.want == nil {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decoded\n got: %#v\nwant: %#v", got, tc.want)
			}
		})
	}
}

// TestGetOrderDecodes checks order/get against the API-NOTES shape
// (testdata/channels_order_get_response.json; no seed page has an example).
func TestGetOrderDecodes(t *testing.T) {
	lr := newLeakRecorder(t)
	answer := readGolden(t, "channels_order_get_response.json")
	var cl callLog
	srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, string(answer))
	})
	order, err := staticClient(srv).GetOrder(context.Background(), "3704612354559743232")
	lr.record(err)
	if err != nil {
		t.Fatalf("GetOrder: %v", err)
	}
	assertJSONEqual(t, []byte(`{"order_id":"3704612354559743232"}`), cl.of(EndpointOrderGet.Path())[0].Body)
	want := &Order{
		OrderID: "3704612354559743232", Status: OrderStatusAwaitingShip, CreateTime: 1658505600, UpdateTime: 1658509200, OpenID: "oBuyer0001",
		OrderDetail: OrderDetail{
			ProductInfos: []ProductInfo{{ProductID: "10000017557399", SkuID: "1234567890123456789", SkuCnt: 2, Title: "茶叶礼盒"}},
			DeliveryInfo: DeliveryInfo{
				AddressInfo: AddressInfo{UserName: "张三", PostalCode: "510000", ProvinceName: "广东省", CityName: "广州市", CountyName: "海珠区", DetailInfo: "新港中路397号", TelNumber: "13800000000"},
				DeliveryProductInfo: []DeliveryProductInfo{{
					WaybillID: "SF1234567890", DeliveryID: "SF",
					ProductInfos: []DeliveryProduct{{ProductID: "10000017557399", SkuID: "1234567890123456789", ProductCnt: 2}},
				}},
			},
		},
	}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("decoded\n got: %#v\nwant: %#v", order, want)
	}
}
