package tally_test

import (
	"errors"
	"testing"
	"time"

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
	// bolt takes pushes (one, of an order not received yet): its last
	// one dates the shop's LAST_PUSH.
	b1p := mustNew(t, events.Fact{Stage: events.StagePush, Source: events.SourceChannels, Shop: "bolt", OrderID: "9",
		Data: events.Push{Event: "channels_ec_order_pay", CreateTime: t0.Unix(), Message: []byte(`{}`)}})
	if err := pipeline.NewPublisher(js).Publish(t.Context(), a1, b1, b2, a1s, b2f, b1p); err != nil {
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

	// Two shipper replicas see bolt in trouble, one with a worse state;
	// corp is backing off before any order of it is in the stream.
	since := t0.Add(time.Minute)
	for _, st := range []pipeline.ShopState{
		{Shop: "bolt", State: "backing_off", Since: since, Errcode: -1},
		{Shop: "bolt", State: "token_refused", Since: since, Errcode: 40001},
		{Shop: "corp", State: "backing_off", Since: since, Errcode: -1},
	} {
		states, err := pipeline.OpenShopStates(t.Context(), js, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := states.Put(t.Context(), st); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := tally.Status(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []tally.ShopStatus{
		{Shop: "acme", Received: 1, Shipped: 1, State: "ok"},
		{Shop: "bolt", Received: 2, Failed: 1, InFlight: 1, State: "token_refused", Since: since, Errcode: 40001, Replicas: 2},
		{Shop: "corp", State: "backing_off", Since: since, Errcode: -1, Replicas: 1},
	}
	if len(rep.Shops) != len(want) {
		t.Fatalf("shops %+v, want %+v", rep.Shops, want)
	}
	for i := range want {
		if g := rep.Shops[i]; g.Shop != want[i].Shop || g.Received != want[i].Received || g.Failed != want[i].Failed ||
			g.InFlight != want[i].InFlight || g.State != want[i].State || !g.Since.Equal(want[i].Since) || g.Errcode != want[i].Errcode || g.Replicas != want[i].Replicas {
			t.Errorf("shop %d: %+v, want %+v", i, g, want[i])
		}
	}
	if lp := rep.Shops[1].LastPush; lp.IsZero() || time.Since(lp) > time.Minute {
		t.Errorf("bolt's last push %v, want the moment its push was stored", lp)
	}
	if lp := rep.Shops[0].LastPush; !lp.IsZero() {
		t.Errorf("acme's last push %v, want none", lp)
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
