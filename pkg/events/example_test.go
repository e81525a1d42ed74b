package events_test

import (
	"fmt"
	"time"

	"github.com/fulfill/pipeline/pkg/events"
)

func ExampleNew() {
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	rcv, err := events.New(events.Fact{Stage: events.StageReceived, Source: events.SourceChannels, Shop: "acme", OrderID: "3704612354559743232",
		Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "p1", SkuID: "s1", ProductCnt: 1}}}}, at)
	if err != nil {
		panic(err)
	}
	// The enricher's answer names the received event as its cause.
	enr, err := rcv.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF", WaybillID: "SF1234567890123"}, at.Add(time.Second))
	if err != nil {
		panic(err)
	}
	fmt.Println(rcv.Subject())
	fmt.Println(rcv.ID)
	// The Nats-Msg-Id is the event id: the same fact published again is
	// de-duplicated by JetStream.
	fmt.Println(rcv.MsgID() == rcv.ID)
	fmt.Println(enr.Subject())
	fmt.Println(enr.CorrelationID == rcv.ID, enr.CausationID == rcv.ID)
	// Output:
	// orders.received.channels.acme.3704612354559743232
	// ab84413e-1d77-53fd-892a-1cf5b3c26950
	// true
	// orders.enriched.channels.acme.3704612354559743232
	// true true
}

func ExampleEnvelope_Copy() {
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	enr, err := events.New(events.Fact{Stage: events.StageEnriched, Source: events.SourceAPI, Shop: "acme", OrderID: "A-1",
		Data: events.Enriched{DeliveryID: "SF", WaybillID: "SF1"}}, at)
	if err != nil {
		panic(err)
	}
	// A re-drive copy: the same payload on the same subject, caused by the
	// original, with an id of its own that the same re-drive reproduces.
	cp, _ := enr.Copy("replay:"+enr.ID, at.Add(time.Hour))
	again, _ := enr.Copy("replay:"+enr.ID, at.Add(2*time.Hour))
	fmt.Println(cp.Subject() == enr.Subject(), string(cp.Data) == string(enr.Data))
	fmt.Println(cp.ID != enr.ID, cp.ID == again.ID, cp.CausationID == enr.ID)
	// Output:
	// true true
	// true true true
}

func ExampleParseSubject() {
	stage, source, shop, orderID, err := events.ParseSubject("orders.shipped.channels.acme.3704612354559743232")
	fmt.Println(stage, source, shop, orderID, err)

	// A subject of the grammar before shops has four tokens.
	_, _, _, _, err = events.ParseSubject("orders.received.api.3704612354559743232")
	fmt.Println(err)
	// Output:
	// shipped channels acme 3704612354559743232 <nil>
	// invalid subject: "orders.received.api.3704612354559743232" is not orders.<stage>.<source>.<shop>.<order_id>
}

func ExampleValidateOrderID() {
	fmt.Println(events.ValidateOrderID("3704612354559743232"))
	fmt.Println(events.ValidateOrderID("3.7e18"))
	// Output:
	// <nil>
	// invalid order id: "3.7e18" has '.' at position 1; only [A-Za-z0-9_-] are allowed
}

func ExampleDecode() {
	_, err := events.Decode([]byte(`{"version":2}`))
	fmt.Println(err)
	// Output:
	// unsupported event version: version 2, want 1
}
