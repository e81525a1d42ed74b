package events

import (
	"testing"
	"time"
)

func benchEnvelope(b *testing.B) *Envelope {
	b.Helper()
	cause, err := New(Fact{Stage: StageReceived, Source: SourceChannels, Shop: "acme", OrderID: "3704612354559743232", Data: Received{
		DeliveryID: "SF", Products: []Product{{ProductID: "1000001", SkuID: "2000001", ProductCnt: 2}},
	}}, time.Unix(1700000000, 0))
	if err != nil {
		b.Fatal(err)
	}
	e, err := cause.Next(StageEnriched, Enriched{
		DeliveryID: "SF", WaybillID: "SF1234567890", PrintHTML: "jh7DjipP4ul4CQYUh69cniskrQZuOPwa1inAbXIqKbU0t71c0s65Au54cdWBZW0QJY4LYeofdM",
		WaybillData: []WaybillField{{Key: "SF_bagAddr", Value: "广州"}, {Key: "SF_mark", Value: "101- 07-03 509"}},
		Products:    []Product{{ProductID: "1000001", SkuID: "2000001", ProductCnt: 2}},
	}, time.Unix(1700000001, 0))
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkEnvelopeEncode(b *testing.B) {
	e := benchEnvelope(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelopeDecode(b *testing.B) {
	raw, err := benchEnvelope(b).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		var d Enriched
		if err := e.DecodeData(&d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNew(b *testing.B) {
	cause := benchEnvelope(b)
	data := Shipped{DeliveryID: "SF", WaybillID: "SF1234567890", Attempts: 1}
	now := time.Unix(1700000002, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cause.Next(StageShipped, data, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubject(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Subject(StageShipped, SourceChannels, "acme", "3704612354559743232"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSubject(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, _, err := ParseSubject("orders.shipped.channels.acme.3704612354559743232"); err != nil {
			b.Fatal(err)
		}
	}
}
