package wechat

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func BenchmarkClassify(b *testing.B) {
	errs := []error{
		nil,
		&APIError{Endpoint: EndpointDeliverySend, Code: 100003, Msg: "busy"},
		&APIError{Endpoint: EndpointDeliverySend, Code: 109001, Msg: "already shipped"},
		fmt.Errorf("send: %w", &APIError{Endpoint: EndpointDeliverySend, Code: 10020115}),
		&APIError{Endpoint: EndpointDeliverySend, Code: 109000},
		fmt.Errorf("decode: %w", ErrBadResponse),
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, err := range errs {
			_ = Classify(err)
		}
	}
}

// BenchmarkDecodeOrderIDs decodes an order/list/get page of 100 ids, the
// ids the ingest decodes most.
func BenchmarkDecodeOrderIDs(b *testing.B) {
	page := []byte(`{"errcode":0,"errmsg":"ok","order_id_list":[` +
		strings.Repeat(`"3704612354559743232",`, 99) + `"3704612354559743232"],"next_key":"k","has_more":true}`)
	b.ReportAllocs()
	for b.Loop() {
		var resp ListOrdersResponse
		if err := json.Unmarshal(page, &resp); err != nil || len(resp.OrderIDList) != 100 {
			b.Fatal(err)
		}
	}
}
