package ctl

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// publishHistory stores the events of two orders: S shipped at the first
// try; R failed in the shipper, was re-driven by dlq redrive and shipped.
func publishHistory(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ok := func(e *events.Envelope, err error) *events.Envelope {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	at := func(d int) time.Time { return t0.Add(time.Duration(d) * time.Second) }
	products := []events.Product{{ProductID: "10", SkuID: "20", ProductCnt: 1}, {ProductID: "11", SkuID: "21", ProductCnt: 2}}
	var msgs []*events.Envelope
	for _, id := range []string{"S", "R"} {
		rcv := ok(events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: events.SourceChannels, OrderID: id,
			Data: events.Received{DeliveryID: "SF", Products: products}}, at(0)))
		enr := ok(rcv.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF", WaybillID: "SF100" + id, Products: products}, at(1)))
		msgs = append(msgs, rcv, enr)
		if id == "S" {
			msgs = append(msgs, ok(enr.Next(events.StageShipped, events.Shipped{DeliveryID: "SF", WaybillID: "SF100S", Attempts: 1}, at(2))))
			continue
		}
		failed := ok(enr.Next(events.StageFailed, events.Failed{Stage: events.ComponentShipper, Errcode: 109000, Errmsg: "products mismatch",
			Attempts: 1, Reason: "delivery/send refused the order (errcode 109000: products do not match the order); fix the cause, then run fulfillctl dlq redrive --order-id R"}, at(2)))
		msgs = append(msgs, failed)
	}
	p := pipeline.NewPublisher(js)
	if err := p.Publish(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	// The re-drive: a copy of R's enriched event, then the shipper's answer.
	enr := msgs[4]
	cp := ok(enr.Copy("redrive:"+msgs[5].ID, at(60)))
	m, err := cp.Msg()
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(events.HeaderRedriveOf, enr.ID)
	if err := p.PublishMsgs(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), ok(cp.Next(events.StageShipped, events.Shipped{DeliveryID: "SF", WaybillID: "SF100R", Attempts: 1}, at(61)))); err != nil {
		t.Fatal(err)
	}
}

// TestOrderHistory: fulfillctl order ID prints the order's history, state
// and next step (golden files; UPDATE_GOLDEN=1 rewrites them), and exits
// non-zero for an order the stream does not know.
func TestOrderHistory(t *testing.T) {
	_, js, _ := jstest.StartStream(t)
	publishHistory(t, js)
	url := js.Conn().ConnectedUrl()
	for _, tt := range []struct {
		id, golden string
		notFound   bool
	}{
		{"S", "order_shipped.golden", false},
		{"R", "order_failed_then_redriven.golden", false},
		{"NOPE", "order_unknown.golden", true},
	} {
		t.Run(tt.id, func(t *testing.T) {
			var out bytes.Buffer
			env := Env{Getenv: func(k string) string {
				if k == "NATS_URL" {
					return url
				}
				return ""
			}, Stdout: &out, Stderr: &out}
			err := Run(context.Background(), []string{"fulfillctl", "order", tt.id}, env)
			if tt.notFound != errors.Is(err, ErrNotDone) || (!tt.notFound && err != nil) {
				t.Fatalf("fulfillctl order %s: %v", tt.id, err)
			}
			golden := filepath.Join("testdata", tt.golden)
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("fulfillctl order %s:\n%s\nwant (%s):\n%s", tt.id, out.String(), golden, want)
			}
		})
	}
	// --json carries the same history, with > and & as they are.
	var out bytes.Buffer
	env := Env{Getenv: func(k string) string { return map[string]string{"NATS_URL": url}[k] }, Stdout: &out, Stderr: &out}
	if err := Run(context.Background(), []string{"fulfillctl", "order", "R", "--json"}, env); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"state": "shipped"`, `"copy_of": "`, `"errcode": 109000`, `"next": "nothing`} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("--json lacks %s:\n%s", want, out.String())
		}
	}
	if bytes.Contains(out.Bytes(), []byte(`\u003e`)) || bytes.Contains(out.Bytes(), []byte(`\u0026`)) {
		t.Error("--json escapes > or &")
	}
}

// dlq redrive --order-id exits non-zero when a named order was not
// re-driven (not failed, or unknown), after re-driving the others.
func TestDLQRedriveNamedOrderNotInTheList(t *testing.T) {
	_, js, _ := jstest.StartStream(t)
	publishHistory(t, js)
	rcv, err := events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: events.SourceAPI, OrderID: "F",
		Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	failed, err := rcv.Next(events.StageFailed, events.Failed{Stage: events.ComponentEnricher, Errcode: 9300507}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := pipeline.NewPublisher(js).Publish(t.Context(), rcv, failed); err != nil {
		t.Fatal(err)
	}
	url := js.Conn().ConnectedUrl()
	var out bytes.Buffer
	env := Env{Getenv: func(k string) string { return map[string]string{"NATS_URL": url}[k] }, Stdout: &out, Stderr: &out}
	err = Run(context.Background(), []string{"fulfillctl", "dlq", "redrive", "--order-id", "F", "--order-id", "S", "--json"}, env)
	if !errors.Is(err, ErrNotDone) || !strings.Contains(err.Error(), "S") || strings.Contains(err.Error(), "F,") {
		t.Fatalf("dlq redrive of F (failed) and S (shipped): %v; want ErrNotDone naming S", err)
	}
	if !strings.Contains(out.String(), `"order_id": "F"`) || !strings.Contains(out.String(), `"action": "redrive"`) {
		t.Errorf("F was not re-driven:\n%s", out.String())
	}
	out.Reset()
	if err := Run(context.Background(), []string{"fulfillctl", "dlq", "redrive", "--order-id", "NOPE"}, env); !errors.Is(err, ErrNotDone) {
		t.Errorf("dlq redrive of an unknown order: %v, want ErrNotDone", err)
	}
}
