package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

// TestMultiLastAgreesWithLast checks that Stages and Orders, read in one
// multi_last request, answer what a direct get per entry (Last) answers:
// the latest event across sources, none for a prefix of another id, the
// zero Event for an order without one, a key asked for twice.
func TestMultiLastAgreesWithLast(t *testing.T) {
	nc, js, s := startStream(t)
	plain := pipeline.NewOrderRecord(s)
	multi := plain.WithMultiLast(pipeline.NewMultiLast(nc, events.StreamName))
	p := pipeline.NewPublisher(js)

	rcv1 := newEnv(t, events.StageReceived, events.SourceChannels, "1", received(), nil, "")
	shp1 := newEnv(t, events.StageShipped, events.SourceChannels, "1", events.Shipped{DeliveryID: "SF", WaybillID: "W1", Attempts: 1}, rcv1, "")
	later1 := newEnv(t, events.StageShipped, events.SourceVVTool, "1", events.Shipped{DeliveryID: "SF", WaybillID: "W1b", AlreadyShipped: true}, shp1, "replay-1")
	rcv2 := newEnv(t, events.StageReceived, events.SourceAPI, "2", received(), nil, "")
	fld2 := newEnv(t, events.StageFailed, events.SourceAPI, "2", events.Failed{Stage: "shipper"}, rcv2, "")
	rcv10 := newEnv(t, events.StageReceived, events.SourceChannels, "10", received(), nil, "")
	if err := p.Publish(t.Context(), rcv1, shp1, rcv2, fld2, rcv10, later1); err != nil {
		t.Fatal(err)
	}

	ctx := t.Context()
	for _, order := range []string{"1", "2", "10", "4"} {
		stages := []events.Stage{events.StageShipped, events.StageFailed, events.StageReceived}
		got, err := multi.Stages(ctx, events.DefaultShop, order, stages...)
		if err != nil {
			t.Fatalf("Stages(%s): %v", order, err)
		}
		want, err := plain.Stages(ctx, events.DefaultShop, order, stages...)
		if err != nil {
			t.Fatalf("Stages(%s) by direct gets: %v", order, err)
		}
		if d := diffEvents(got, want); d != "" {
			t.Errorf("Stages(%s): %s", order, d)
		}
	}
	if got, _ := multi.Stages(ctx, events.DefaultShop, "1", events.StageShipped); got[0].Env == nil || got[0].Env.ID != later1.ID {
		t.Errorf("order 1's shipped record = %+v, want the later %s", got[0], later1.ID)
	}

	ids := []string{"4", "10", "1", "2", "1", "3"}
	got, err := multi.Orders(ctx, events.StageReceived, events.DefaultShop, ids)
	if err != nil {
		t.Fatal(err)
	}
	want, err := plain.Orders(ctx, events.StageReceived, events.DefaultShop, ids)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffEvents(got, want); d != "" {
		t.Errorf("Orders(%v): %s", ids, d)
	}
	if got[1].Env == nil || got[1].Env.ID != rcv10.ID || got[4].Env == nil || got[4].Env.ID != rcv1.ID || got[0].Env != nil {
		t.Errorf("Orders(%v) = %+v", ids, got)
	}
}

func diffEvents(got, want []pipeline.Event) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if (g.Env == nil) != (w.Env == nil) || g.Seq != w.Seq || (g.Env != nil && g.Env.ID != w.Env.ID) {
			return fmt.Sprintf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	return ""
}

// TestMultiLastManySubjectsPerFilter: a filter spans the sources, so one
// filter may match several subjects, each a reply of its own: more replies
// than filters still make one answer, the latest event.
func TestMultiLastManySubjectsPerFilter(t *testing.T) {
	nc, js, s := startStream(t)
	rec := pipeline.NewOrderRecord(s).WithMultiLast(pipeline.NewMultiLast(nc, events.StreamName))
	rcv := newEnv(t, events.StageReceived, events.SourceChannels, "7", received(), nil, "")
	var last *events.Envelope
	for i, src := range []events.Source{events.SourceChannels, events.SourceAPI, events.SourceVVTool} {
		last = newEnv(t, events.StageShipped, src, "7", events.Shipped{DeliveryID: "SF", WaybillID: "W7", Attempts: 1}, rcv, fmt.Sprint("copy-", i))
		if err := pipeline.NewPublisher(js).Publish(t.Context(), last); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	got, err := rec.Stages(ctx, events.DefaultShop, "7", events.StageShipped)
	if err != nil {
		t.Fatalf("one filter matching 3 subjects: %v", err)
	}
	if got[0].Env == nil || got[0].Env.ID != last.ID {
		t.Errorf("shipped record = %+v, want the latest, %s", got[0], last.ID)
	}

	// One filter, 300 subjects: every reply is kept.
	const orders = 300
	p := pipeline.NewPublisher(js)
	for i := range orders {
		if err := p.Publish(t.Context(), newEnv(t, events.StageReceived, events.SourceAPI, fmt.Sprint("m", i), received(), nil, "")); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := pipeline.NewMultiLast(nc, events.StreamName).Get(ctx, "orders.received.api.>")
	if err != nil || len(msgs) != orders {
		t.Fatalf("one filter matching %d subjects: %d messages, %v", orders, len(msgs), err)
	}
}

// TestMultiLastRoutesConcurrentRequests runs many requests at once over
// the one inbox: each gets its own answer.
func TestMultiLastRoutesConcurrentRequests(t *testing.T) {
	nc, js, s := startStream(t)
	rec := pipeline.NewOrderRecord(s).WithMultiLast(pipeline.NewMultiLast(nc, events.StreamName))
	p := pipeline.NewPublisher(js)
	const orders = 50
	for i := range orders {
		if i%2 == 0 {
			continue // even orders have no record
		}
		if err := p.Publish(t.Context(), newEnv(t, events.StageReceived, events.SourceAPI, strconv.Itoa(i), received(), nil, "")); err != nil {
			t.Fatal(err)
		}
	}
	// Every request is one multi_last direct get: watch them go by.
	watch, err := nc.SubscribeSync("$JS.API.DIRECT.GET." + events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, orders*4)
	for range 4 {
		for i := range orders {
			wg.Go(func() {
				id := strconv.Itoa(i)
				got, err := rec.Stages(t.Context(), events.DefaultShop, id, events.StageShipped, events.StageReceived)
				switch {
				case err != nil:
					errs <- err
				case got[0].Env != nil:
					errs <- fmt.Errorf("order %s has a shipped record %s", id, got[0].Env.ID)
				case (got[1].Env != nil) != (i%2 == 1):
					errs <- fmt.Errorf("order %s: received record %+v", id, got[1])
				case got[1].Env != nil && got[1].Env.OrderID != id:
					errs <- fmt.Errorf("order %s answered with order %s's record", id, got[1].Env.OrderID)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for n := range orders * 4 {
		m, err := watch.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("request %d not seen: %v", n+1, err)
		}
		if !strings.Contains(string(m.Data), `"multi_last":["orders.shipped.*.default.`) {
			t.Fatalf("request %s, want one multi_last", m.Data)
		}
	}
}

// TestMultiLastErrors: a corrupt record and a stream that does not allow
// direct gets are errors, never "no record".
func TestMultiLastErrors(t *testing.T) {
	nc, js, s := startStream(t)
	if _, err := js.Publish(t.Context(), "orders.shipped.api.default.9", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	rec := pipeline.NewOrderRecord(s).WithMultiLast(pipeline.NewMultiLast(nc, events.StreamName))
	if got, err := rec.Stages(t.Context(), events.DefaultShop, "9", events.StageShipped); err == nil {
		t.Errorf("corrupt record: %+v, want an error", got)
	}

	other, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "NODIRECT", Subjects: []string{"nodirect.>"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.NewMultiLast(nc, "NODIRECT").Get(t.Context(), "nodirect.a")
	if !errors.Is(err, pipeline.ErrMultiLastUnavailable) {
		t.Errorf("stream without direct gets: %v, want ErrMultiLastUnavailable", err)
	}
	_ = other
}
