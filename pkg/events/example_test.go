package events_test

import (
	"fmt"
	"time"

	"github.com/fulfill/pipeline/pkg/events"
)

func ExampleNew() {
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	rcv, err := events.New(events.StageReceived, events.SourceChannels, "3704612354559743232",
		events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "p1", SkuID: "s1", ProductCnt: 1}}},
		nil, "", at)
	if err != nil {
		panic(err)
	}
	// The enricher's answer names the received event as its cause.
	enr, err := events.New(events.StageEnriched, rcv.Source, rcv.OrderID,
		events.Enriched{DeliveryID: "SF", WaybillID: "SF1234567890123"}, rcv, "", at.Add(time.Second))
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
	// orders.received.channels.3704612354559743232
	// 2fe4d3a4-122a-5b26-ba40-c46318b5c974
	// true
	// orders.enriched.channels.3704612354559743232
	// true true
}

func ExampleParseSubject() {
	stage, source, orderID, err := events.ParseSubject("orders.shipped.channels.3704612354559743232")
	fmt.Println(stage, source, orderID, err)

	_, _, _, err = events.ParseSubject("orders.received.api.3.7e18")
	fmt.Println(err)
	// Output:
	// shipped channels 3704612354559743232 <nil>
	// invalid subject: "orders.received.api.3.7e18" is not orders.<stage>.<source>.<order_id>
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
