package wechat

import (
	"fmt"
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
