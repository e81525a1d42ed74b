package tally_test

import (
	"errors"
	"testing"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
)

// TestShopsKeepTheirOrdersApart: two shops use the same order id; the
// tally, the status and an order's history keep them apart, and a history
// asked for without a shop says the id is ambiguous.
func TestShopsKeepTheirOrdersApart(t *testing.T) {
	_, js, _ := jstest.StartStream(t)
	rcv := func(shop, id string) *events.Envelope {
		return mustNew(t, events.Fact{Stage: events.StageReceived, Source: events.SourceAPI, Shop: shop, OrderID: id,
			Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "p", SkuID: "s", ProductCnt: 1}}}})
	}
	a1, b1, b2 := rcv("acme", "1"), rcv("bolt", "1"), rcv("bolt", "2")
	a1s := must(t)(a1.Next(events.StageShipped, events.Shipped{DeliveryID: "SF"}, t0))
	b2f := must(t)(pipeline.Failed(b2, events.Failed{Stage: events.ComponentShipper, Errcode: 109000, Reason: "r"}, t0))
	if err := pipeline.NewPublisher(js).Publish(t.Context(), a1, b1, b2, a1s, b2f); err != nil {
		t.Fatal(err)
	}

	tl, err := tally.Read(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	if o := tl.Order("acme", "1"); o == nil || o.Latest != events.StageShipped || o.Shop != "acme" {
		t.Errorf("acme's order 1: %+v, want shipped", o)
	}
	if o := tl.Order("bolt", "1"); o == nil || o.Received != 1 || o.Latest != "" {
		t.Errorf("bolt's order 1: %+v, want received only", o)
	}

	rep, err := tally.Status(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []tally.ShopStatus{
		{Shop: "acme", Received: 1, Shipped: 1},
		{Shop: "bolt", Received: 2, Failed: 1, InFlight: 1},
	}
	if len(rep.Shops) != len(want) || rep.Shops[0] != want[0] || rep.Shops[1] != want[1] {
		t.Errorf("shops %+v, want %+v", rep.Shops, want)
	}
	rep, err = tally.Status(t.Context(), js, "bolt")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range rep.Stages {
		if st.Stage == "received" && st.Orders != 2 || st.Stage == "shipped" && st.Orders != 0 {
			t.Errorf("status --shop bolt: %+v counts another shop's orders", st)
		}
	}

	var amb *tally.AmbiguousError
	if _, err := tally.ReadHistory(t.Context(), js, "", "1"); !errors.As(err, &amb) || len(amb.Shops) != 2 {
		t.Errorf("history of order 1 without a shop: %v, want an AmbiguousError naming acme and bolt", err)
	}
	h, err := tally.ReadHistory(t.Context(), js, "bolt", "1")
	if err != nil || h.State != tally.StateReceived || len(h.Steps) != 1 {
		t.Errorf("history of bolt's order 1: %+v, %v", h, err)
	}
	h, err = tally.ReadHistory(t.Context(), js, "", "2")
	if err != nil || h.Shop != "bolt" || h.State != tally.StateFailed {
		t.Errorf("history of order 2 without a shop: %+v, %v; want bolt's, failed", h, err)
	}
}
