package events_test

import (
	"strings"
	"testing"

	"github.com/fulfill/pipeline/pkg/events"
)

func TestProductValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       events.Product
		wantErr string // substring; "" means valid
	}{
		{"valid", events.Product{ProductID: "p", SkuID: "s", ProductCnt: 1}, ""},
		{"largest count", events.Product{ProductID: "p", SkuID: "s", ProductCnt: events.MaxProductCnt}, ""},
		{"count over the bound", events.Product{ProductID: "p", SkuID: "s", ProductCnt: events.MaxProductCnt + 1}, "product_cnt"},
		{"long product id", events.Product{ProductID: strings.Repeat("1", 65), SkuID: "s", ProductCnt: 1}, "product_id is 65 bytes"},
		{"NUL in sku id", events.Product{ProductID: "p", SkuID: "s\x00", ProductCnt: 1}, "sku_id has a control character"},
		{"invalid UTF-8", events.Product{ProductID: "p\xff", SkuID: "s", ProductCnt: 1}, "product_id is not valid UTF-8"},
		{"no product id", events.Product{SkuID: "s", ProductCnt: 1}, "product_id"},
		{"no sku id", events.Product{ProductID: "p", ProductCnt: 1}, "sku_id"},
		{"zero count", events.Product{ProductID: "p", SkuID: "s"}, "product_cnt"},
		{"negative count", events.Product{ProductID: "p", SkuID: "s", ProductCnt: -3}, "product_cnt"},
		{"zero value", events.Product{}, "product_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestReceivedValidate(t *testing.T) {
	ok := events.Product{ProductID: "p", SkuID: "s", ProductCnt: 1}
	tests := []struct {
		name    string
		r       events.Received
		wantErr string
	}{
		{"valid", events.Received{DeliveryID: "SF", Products: []events.Product{ok}}, ""},
		{"valid with waybill", events.Received{DeliveryID: "SF", WaybillID: "SF123", Products: []events.Product{ok, ok}}, ""},
		{"no delivery id", events.Received{Products: []events.Product{ok}}, "delivery_id"},
		{"nil products", events.Received{DeliveryID: "SF"}, "products missing"},
		{"empty products", events.Received{DeliveryID: "SF", Products: []events.Product{}}, "products missing"},
		{"second product bad", events.Received{DeliveryID: "SF", Products: []events.Product{ok, {ProductID: "p", SkuID: "s"}}}, "products[1]: product_cnt"},
		{"first product bad", events.Received{DeliveryID: "SF", Products: []events.Product{{SkuID: "s", ProductCnt: 1}}}, "products[0]: product_id"},
		{"delivery id of a megabyte", events.Received{DeliveryID: strings.Repeat("S", 1<<20), Products: []events.Product{ok}}, "delivery_id is 1048576 bytes, at most 64"},
		{"NUL in delivery id", events.Received{DeliveryID: "S\x00F", Products: []events.Product{ok}}, "delivery_id has a control character"},
		{"long waybill id", events.Received{DeliveryID: "SF", WaybillID: strings.Repeat("9", 65), Products: []events.Product{ok}}, "waybill_id is 65 bytes"},
		{"too many products", events.Received{DeliveryID: "SF", Products: make([]events.Product, events.MaxProducts+1)}, "products: 201 lines, at most 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestEnrichedValidate(t *testing.T) {
	ok := events.Product{ProductID: "p", SkuID: "s", ProductCnt: 1}
	tests := []struct {
		name    string
		e       events.Enriched
		wantErr string
	}{
		{"valid", events.Enriched{DeliveryID: "SF", WaybillID: "SF1", Products: []events.Product{ok}}, ""},
		{"no delivery id", events.Enriched{WaybillID: "SF1", Products: []events.Product{ok}}, "delivery_id"},
		{"no waybill id", events.Enriched{DeliveryID: "SF", Products: []events.Product{ok}}, "waybill_id"},
		{"no products", events.Enriched{DeliveryID: "SF", WaybillID: "SF1"}, "products missing"},
		{"bad product", events.Enriched{DeliveryID: "SF", WaybillID: "SF1", Products: []events.Product{{ProductID: "p", ProductCnt: 1}}}, "products[0]: sku_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
