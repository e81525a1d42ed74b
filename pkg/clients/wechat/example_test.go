package wechat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
)

// ExampleClient_SendDelivery ships an order against a stand-in for the platform
// that, like the real one, answers 109001 (already shipped) to a second send of
// the same order. Classify turns that into ClassAlreadyDone, which a shipper
// treats as success.
func ExampleClient_SendDelivery() {
	var mu sync.Mutex
	shipped := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			OrderID string `json:"order_id"`
		}
		if r.URL.Path != wechat.EndpointDeliverySend.Path() || json.NewDecoder(r.Body).Decode(&req) != nil {
			fmt.Fprint(w, `{"errcode":40097,"errmsg":"invalid args"}`)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if shipped[req.OrderID] {
			fmt.Fprint(w, `{"errcode":109001,"errmsg":"order already shipped"}`)
			return
		}
		shipped[req.OrderID] = true
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	defer srv.Close()

	client := wechat.NewClient(wechat.StaticToken("ACCESS_TOKEN"), wechat.WithBaseURL(srv.URL))
	req := wechat.SendDeliveryRequest{
		OrderID: "3704612354559743232",
		DeliveryList: []wechat.DeliveryItem{{
			DeliveryID:  "SF",
			WaybillID:   "SF1234567890",
			DeliverType: wechat.DeliverTypeExpress,
			ProductInfos: []wechat.DeliveryProduct{
				{ProductCnt: 1, ProductID: "10000017557399", SkuID: "1234567890123456789"},
			},
		}},
	}
	ctx := context.Background()
	for attempt := 1; attempt <= 2; attempt++ {
		err := client.SendDelivery(ctx, req)
		fmt.Printf("send %d: class=%s code=%d err=%v\n", attempt, wechat.Classify(err), wechat.Code(err), err)
	}
	// Output:
	// send 1: class=ok code=0 err=<nil>
	// send 2: class=already_done code=109001 err=wechat delivery/send: errcode 109001: order already shipped
}

// ExampleClassify shows what a caller does with each class.
func ExampleClassify() {
	for _, err := range []error{
		nil,
		&wechat.APIError{Endpoint: wechat.EndpointDeliverySend, Code: 100003},
		&wechat.APIError{Endpoint: wechat.EndpointDeliverySend, Code: 108009},
		&wechat.APIError{Endpoint: wechat.EndpointDeliverySend, HTTPStatus: 502},
		&wechat.APIError{Endpoint: wechat.EndpointDeliverySend, Code: 101100},
	} {
		fmt.Println(wechat.Classify(err))
	}
	// Output:
	// ok
	// transient
	// wait
	// transient
	// permanent
}

// ExampleHint puts the platform's errcode and what it means side by side, as a
// failed event's reason does.
func ExampleHint() {
	err := error(&wechat.APIError{Endpoint: wechat.EndpointDeliverySend, Code: 108009})
	fmt.Printf("errcode %d: %s\n", wechat.Code(err), wechat.Hint(wechat.Code(err)))
	fmt.Printf("errcode %d: %s\n", 45009, wechat.Hint(45009))
	fmt.Printf("errcode %d: %s\n", 999999, wechat.Hint(999999))
	// Output:
	// errcode 108009: an after-sale request is open
	// errcode 45009: daily API quota used up
	// errcode 999999: see the platform's error table
}
