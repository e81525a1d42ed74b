package ingest_test

import (
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/pkg/events"
)

// FuzzDecodeOrderRequest: never panics; an accepted request always has a
// valid order id, a delivery id and at least one valid product; a refused
// one returns no request.
func FuzzDecodeOrderRequest(f *testing.F) {
	for _, s := range []string{
		`{"order_id":"3704612354559743232","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":1}]}`,
		`{"order_id":"A-1","delivery_id":"SF","waybill_id":"W","products":[{"product_id":"p1","sku_id":"s1","product_cnt":1},{"product_id":"p2","sku_id":"s2","product_cnt":2}]}`,
		`{"order_id":3704612354559743232,"delivery_id":"SF","products":[]}`,
		`{"order_id":"3.7e18"}`, `{"ORDER_ID":"1","Delivery_ID":"SF","PRODUCTS":[{"PRODUCT_ID":"p","SKU_ID":"s","PRODUCT_CNT":1}]}`,
		`{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":1}]}]`,
		`{"products":[null]}`, `{"products":{"a":1}}`, `{"products":[{"product_cnt":1e99}]}`,
		``, `null`, `[]`, `"x"`, `{}`, `{} {}`, `{"x":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, field, err := ingest.DecodeOrderRequest(body)
		if err != nil {
			if req != nil {
				t.Fatalf("request %+v returned with error %v", req, err)
			}
			if err.Error() == "" {
				t.Fatalf("empty error message")
			}
			_ = field
			return
		}
		if field != "" {
			t.Fatalf("accepted request names field %q", field)
		}
		if err := events.ValidateOrderID(req.OrderID); err != nil {
			t.Fatalf("accepted order id %q: %v", req.OrderID, err)
		}
		if req.DeliveryID == "" {
			t.Fatalf("accepted request without delivery_id")
		}
		if len(req.Products) == 0 {
			t.Fatalf("accepted request without products")
		}
		for i, p := range req.Products {
			if err := p.Validate(); err != nil {
				t.Fatalf("accepted products[%d] %+v: %v", i, p, err)
			}
		}
		// What the API accepts, the pipeline can carry.
		r := events.Received{DeliveryID: req.DeliveryID, WaybillID: req.WaybillID, Products: req.Products}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted request does not make a valid received payload: %v", err)
		}
		if _, err := events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: events.SourceAPI, OrderID: req.OrderID, Data: r}, fixedNow); err != nil {
			t.Fatalf("accepted request does not make an event: %v", err)
		}
	})
}

var fixedNow = mustTime("2025-03-14T09:26:53Z")

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
