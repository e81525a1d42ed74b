package enricher

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// fakeWaybills answers batchGetOrder with a fixed answer or error and
// records the queries.
type fakeWaybills struct {
	answer  []wechat.Waybill
	err     error
	queries [][]wechat.WaybillQuery
}

func (f *fakeWaybills) BatchGetOrder(_ context.Context, q []wechat.WaybillQuery) ([]wechat.Waybill, error) {
	f.queries = append(f.queries, q)
	return f.answer, f.err
}

// fakeRecord is the orders' record: the latest event and sequence per
// stage, whatever the order.
type fakeRecord map[events.Stage]struct {
	env *events.Envelope
	seq uint64
}

func (r fakeRecord) Last(_ context.Context, stage events.Stage, _, _ string) (*events.Envelope, uint64, error) {
	return r[stage].env, r[stage].seq, nil
}

// received is a usable received message of order id, delivered n times,
// at stream sequence 100.
func received(t *testing.T, id string, delivered uint64) (item, *jstest.Msg) {
	t.Helper()
	return receivedIn(t, events.DefaultShop, id, delivered)
}

// receivedIn is received for an order of shop.
func receivedIn(t *testing.T, shop, id string, delivered uint64) (item, *jstest.Msg) {
	t.Helper()
	env, err := events.New(events.Fact{Shop: shop, Stage: events.StageReceived, Source: events.SourceChannels, OrderID: id,
		Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := env.Encode()
	m := &jstest.Msg{Subj: env.Subject(), Body: body,
		Meta: jetstream.MsgMetadata{NumDelivered: delivered, Sequence: jetstream.SequencePair{Stream: 100}}}
	it, err := decode(m)
	if err != nil {
		t.Fatal(err)
	}
	it.log = zerolog.Nop()
	return it, m
}

func newTestEnricher(w Waybills, rec Record) *Enricher {
	e := New(Options{BatchSize: 100, MaxWait: time.Millisecond}, func(string) (Waybills, error) { return w, nil }, rec, nil, zerolog.Nop(), service.NewMetrics())
	e.now = func() time.Time { return t0 }
	return e
}

func waybill(id string) wechat.Waybill {
	return wechat.Waybill{OrderID: wechat.ID(id), DeliveryID: "SF", WaybillID: "SF" + id, PrintHTML: "<p>",
		WaybillData: []wechat.WaybillField{{Key: "k", Value: "v"}}, OrderStatus: 0}
}

// TestEnrichPerItem checks how one batchGetOrder answer settles each order
// of the batch on its own: its waybill, its own errcode, or the call's.
func TestEnrichPerItem(t *testing.T) {
	type want struct {
		stage     events.Stage // event made; "" none
		nakDelay  time.Duration
		errcode   int
		reasonHas string
	}
	tests := []struct {
		name      string
		answer    func(w wechat.Waybill) []wechat.Waybill
		callErr   error
		delivered uint64
		want      want
	}{
		{name: "waybill attached", answer: func(w wechat.Waybill) []wechat.Waybill { return []wechat.Waybill{w} },
			want: want{stage: events.StageEnriched}},
		{name: "item transient errcode: only this order retried", answer: func(w wechat.Waybill) []wechat.Waybill {
			w.Errcode = -1
			return []wechat.Waybill{w}
		}, delivered: 2, want: want{nakDelay: 4 * time.Second}},
		{name: "item permanent errcode fails the order", answer: func(w wechat.Waybill) []wechat.Waybill {
			w.Errcode, w.Errmsg = 9300507, "waybill not found"
			return []wechat.Waybill{w}
		}, want: want{stage: events.StageFailed, errcode: 9300507, reasonHas: "errcode 9300507"}},
		{name: "cancelled waybill fails the order", answer: func(w wechat.Waybill) []wechat.Waybill {
			w.OrderStatus = wechat.WaybillStatusCancelled
			return []wechat.Waybill{w}
		}, want: want{stage: events.StageFailed, reasonHas: "cancelled"}},
		{name: "no waybill for the order fails it", answer: func(wechat.Waybill) []wechat.Waybill { return nil },
			want: want{stage: events.StageFailed, reasonHas: "no waybill"}},
		{name: "a waybill without waybill_id fails the order", answer: func(w wechat.Waybill) []wechat.Waybill {
			w.WaybillID = ""
			return []wechat.Waybill{w}
		}, want: want{stage: events.StageFailed, reasonHas: "without a waybill_id"}},
		{name: "whole call transient: retried later", callErr: &wechat.APIError{Endpoint: wechat.EndpointBatchGetOrder, HTTPStatus: 503},
			delivered: 1, want: want{nakDelay: 2 * time.Second}},
		{name: "whole call permanent: the order fails", callErr: &wechat.APIError{Endpoint: wechat.EndpointBatchGetOrder, Code: 48001, Msg: "api unauthorized"},
			want: want{stage: events.StageFailed, errcode: 48001, reasonHas: "refused the call"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, m := received(t, "3704612354559743232", max(tt.delivered, 1))
			fw := &fakeWaybills{err: tt.callErr}
			if tt.answer != nil {
				fw.answer = tt.answer(waybill("3704612354559743232"))
			}
			e := newTestEnricher(fw, fakeRecord{})
			outs := e.enrich(t.Context(), fw, []item{it})
			if len(fw.queries) != 1 || fw.queries[0][0].OrderID != "3704612354559743232" || fw.queries[0][0].DeliveryID != "SF" {
				t.Fatalf("queries %+v", fw.queries)
			}
			how, delay := m.Settled()
			if tt.want.stage == "" {
				if len(outs) != 0 || how != "nak" || delay != tt.want.nakDelay {
					t.Fatalf("outs %d, message %s after %s; want none and a nak after %s", len(outs), how, delay, tt.want.nakDelay)
				}
				return
			}
			if how != "" || len(outs) != 1 || outs[0].out.Stage() != tt.want.stage || outs[0].it.msg != m {
				t.Fatalf("outs %+v, message %s; want one %s event for it, not yet settled", outs, how, tt.want.stage)
			}
			out := outs[0].out
			if out.CausationID != it.env.ID || out.CorrelationID != it.env.CorrelationID {
				t.Errorf("the event does not answer its input")
			}
			switch tt.want.stage {
			case events.StageEnriched:
				var d events.Enriched
				if err := out.DecodeData(&d); err != nil {
					t.Fatal(err)
				}
				if d.WaybillID != "SF3704612354559743232" || d.PrintHTML != "<p>" || len(d.WaybillData) != 1 || len(d.Products) != 1 {
					t.Errorf("enriched %+v", d)
				}
			case events.StageFailed:
				var f events.Failed
				if err := out.DecodeData(&f); err != nil {
					t.Fatal(err)
				}
				if f.Stage != events.ComponentEnricher || f.Errcode != tt.want.errcode || !strings.Contains(f.Reason, tt.want.reasonHas) {
					t.Errorf("failed %+v; want errcode %d and a reason with %q", f, tt.want.errcode, tt.want.reasonHas)
				}
			}
		})
	}
}

// TestEnrichBatchMatchesAnswersByOrder: answers come back in any order, an
// order missing from the answer fails alone, and a repeated id gets the
// same waybill.
func TestEnrichBatchMatchesAnswersByOrder(t *testing.T) {
	a, ma := received(t, "A1", 1)
	b, mb := received(t, "B2", 1)
	c, _ := received(t, "C3", 1)
	a2, _ := received(t, "A1", 1)
	fw := &fakeWaybills{answer: []wechat.Waybill{waybill("B2"), waybill("A1")}}
	outs := newTestEnricher(fw, fakeRecord{}).enrich(t.Context(), fw, []item{a, b, c, a2})
	if len(outs) != 4 {
		t.Fatalf("%d settlements, want 4", len(outs))
	}
	got := map[string]events.Stage{}
	for _, o := range outs {
		got[o.it.env.OrderID+"/"+string(o.out.Stage())] = o.out.Stage()
	}
	for _, k := range []string{"A1/enriched", "B2/enriched", "C3/failed"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %s among %v", k, got)
		}
	}
	if how, _ := ma.Settled(); how != "" {
		t.Errorf("A1's message settled before its event was stored: %s", how)
	}
	if how, _ := mb.Settled(); how != "" {
		t.Errorf("B2's message settled before its event was stored: %s", how)
	}
}

// TestEnrichAsksEachShopsPlatform: a batch of three shops' orders makes
// one call per shop with that shop's client; a shop whose platform fails
// transiently has only its own orders come back, and an order of a shop
// no longer served ends failed with a reason.
func TestEnrichAsksEachShopsPlatform(t *testing.T) {
	a1, _ := receivedIn(t, "acme", "1", 1)
	a2, _ := receivedIn(t, "acme", "2", 1)
	b1, mb1 := receivedIn(t, "bolt", "1", 1)
	z1, _ := receivedIn(t, "gone", "7", 1)
	acme := &fakeWaybills{answer: []wechat.Waybill{waybill("1"), waybill("2")}}
	bolt := &fakeWaybills{err: &wechat.APIError{Code: -1, Msg: "system error"}}
	e := newTestEnricher(nil, fakeRecord{})
	e.clients = func(shop string) (Waybills, error) {
		switch shop {
		case "acme":
			return acme, nil
		case "bolt":
			return bolt, nil
		}
		return nil, errors.New("shop " + shop + " is not in the registry")
	}
	outs := e.enrichByShop(t.Context(), []item{a1, b1, z1, a2})
	if len(acme.queries) != 1 || len(acme.queries[0]) != 2 || len(bolt.queries) != 1 || len(bolt.queries[0]) != 1 {
		t.Fatalf("acme's calls %v, bolt's %v; want one call each with its own orders", acme.queries, bolt.queries)
	}
	got := map[string]events.Stage{}
	for _, o := range outs {
		got[o.it.env.Key()] = o.out.Stage()
	}
	want := map[string]events.Stage{"acme.1": events.StageEnriched, "acme.2": events.StageEnriched, "gone.7": events.StageFailed}
	if !maps.Equal(got, want) {
		t.Errorf("settlements %v, want %v", got, want)
	}
	if how, delay := mb1.Settled(); how != "nak" || delay <= 0 {
		t.Errorf("bolt's order: %s after %s, want a nak with a delay (its platform failed transiently)", how, delay)
	}
}

// TestFailedEventObeysTheRecord: a failure is recorded only when the order
// is not settled already, and only if no other failure is stored meanwhile.
func TestFailedEventObeysTheRecord(t *testing.T) {
	it, _ := received(t, "F1", 1)
	e := newTestEnricher(&fakeWaybills{}, fakeRecord{})
	fail := e.failed(it, 9300507, "x", "r")
	enr, _ := it.env.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF"}, t0)
	cp, _ := it.env.Copy("redrive:1", t0)
	shipped, _ := enr.Next(events.StageShipped, events.Shipped{DeliveryID: "SF"}, t0)
	sameChain, _ := cp.Next(events.StageFailed, events.Failed{Stage: events.ComponentEnricher}, t0)
	other, _ := events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageFailed, Source: events.SourceAPI, OrderID: "F1", Data: events.Failed{}}, t0)
	type rec = struct {
		env *events.Envelope
		seq uint64
	}
	tests := []struct {
		name      string
		record    fakeRecord
		stored    bool
		expectSeq string
	}{
		{"nothing recorded", fakeRecord{}, true, "0"},
		{"shipped already", fakeRecord{events.StageShipped: rec{shipped, 120}}, false, ""},
		{"failed in this chain after this message", fakeRecord{events.StageFailed: rec{sameChain, 150}}, false, ""},
		{"failed in this chain before this message (a re-drive)", fakeRecord{events.StageFailed: rec{sameChain, 50}}, true, "50"},
		{"another chain failed later", fakeRecord{events.StageFailed: rec{other, 150}}, true, "150"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.record = tt.record
			m, err := e.message(t.Context(), settlement{it, fail})
			if err != nil {
				t.Fatal(err)
			}
			if (m != nil) != tt.stored {
				t.Fatalf("message %v, want stored %v", m, tt.stored)
			}
			if m != nil && m.Header.Get(jetstream.ExpectedLastSubjSeqHeader) != tt.expectSeq {
				t.Errorf("expected last sequence %q, want %q", m.Header.Get(jetstream.ExpectedLastSubjSeqHeader), tt.expectSeq)
			}
		})
	}
	// An enriched event is not terminal: stored as it is.
	e.record = fakeRecord{events.StageShipped: rec{shipped, 120}}
	enrOut, _ := it.env.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF"}, t0)
	if m, err := e.message(t.Context(), settlement{it, enrOut}); err != nil || m == nil || m.Header.Get(jetstream.ExpectedLastSubjSeqHeader) != "" {
		t.Errorf("enriched message %v, %v; want it unchecked", m, err)
	}
}

func TestRetryDelayGrowsToAMinute(t *testing.T) {
	for delivered, want := range map[uint64]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 5: 32 * time.Second, 6: time.Minute, 40: time.Minute} {
		if got := retryDelay(delivered); got != want {
			t.Errorf("retryDelay(%d) = %s, want %s", delivered, got, want)
		}
	}
}

// culpritWaybills refuses a whole call (47001, as the platform does for a
// malformed body) whenever it carries the culprit, and answers the others.
type culpritWaybills struct {
	culprit string
	calls   int
}

func (c *culpritWaybills) BatchGetOrder(_ context.Context, q []wechat.WaybillQuery) ([]wechat.Waybill, error) {
	c.calls++
	var out []wechat.Waybill
	for _, w := range q {
		if w.OrderID == c.culprit {
			return nil, &wechat.APIError{Endpoint: wechat.EndpointBatchGetOrder, Code: 47001, Msg: "data format error"}
		}
		out = append(out, waybill(w.OrderID))
	}
	return out, nil
}

// One order that makes the whole batchGetOrder call fail for good fails
// alone: its batch-mates are asked again without it and enriched.
func TestEnrichIsolatesTheOrderThatFailsItsBatch(t *testing.T) {
	var items []item
	for i := range 20 {
		it, _ := received(t, fmt.Sprintf("O%02d", i), 1)
		items = append(items, it)
	}
	fw := &culpritWaybills{culprit: "O13"}
	outs := newTestEnricher(fw, fakeRecord{}).enrich(t.Context(), fw, items)
	failed, enriched := 0, 0
	for _, o := range outs {
		switch o.out.Stage() {
		case events.StageFailed:
			failed++
			if o.it.env.OrderID != "O13" {
				t.Errorf("batch-mate %s failed", o.it.env.OrderID)
			}
		case events.StageEnriched:
			enriched++
		}
	}
	if failed != 1 || enriched != 19 {
		t.Fatalf("%d failed, %d enriched; want 1 and 19", failed, enriched)
	}
	if fw.calls > 12 {
		t.Errorf("%d calls to find one culprit among 20", fw.calls)
	}
}
