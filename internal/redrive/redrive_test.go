package redrive_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/redrive"
	"github.com/fulfill/pipeline/pkg/events"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// history publishes, for ids, received → enriched and then the given
// outcome: "shipped", "shipper" (failed there), "enricher" (failed there,
// no enriched event), "raw" (an unusable message set aside), "" (in flight).
func history(t *testing.T, js jetstream.JetStream, source events.Source, outcomes map[string]string) {
	t.Helper()
	ok := func(e *events.Envelope, err error) *events.Envelope {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	var all []*events.Envelope
	for id, outcome := range outcomes {
		rcv := ok(events.New(events.Fact{Shop: events.DefaultShop, Stage: events.StageReceived, Source: source, OrderID: id,
			Data: events.Received{DeliveryID: "SF", Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}}, t0))
		all = append(all, rcv)
		switch outcome {
		case "enricher":
			all = append(all, ok(rcv.Next(events.StageFailed, events.Failed{Stage: events.ComponentEnricher, Errcode: 9300507}, t0)))
			continue
		case "raw":
			all = append(all, ok(rcv.Next(events.StageFailed, events.Failed{Stage: events.ComponentShipper, Raw: []byte("x")}, t0)))
			continue
		case "ingest":
			all = append(all, ok(rcv.Next(events.StageFailed, events.Failed{Stage: events.ComponentIngest}, t0)))
			continue
		}
		enr := ok(rcv.Next(events.StageEnriched, events.Enriched{DeliveryID: "SF", WaybillID: "W"}, t0))
		all = append(all, enr)
		switch outcome {
		case "shipped":
			all = append(all, ok(enr.Next(events.StageShipped, events.Shipped{DeliveryID: "SF", WaybillID: "W", Attempts: 1}, t0)))
		case "shipper":
			all = append(all, ok(enr.Next(events.StageFailed, events.Failed{Stage: events.ComponentShipper, Errcode: 109000}, t0)))
		}
	}
	if err := pipeline.NewPublisher(js).Publish(t.Context(), all...); err != nil {
		t.Fatal(err)
	}
}

func byOrder(results []redrive.Result) map[string]redrive.Result {
	m := map[string]redrive.Result{}
	for _, r := range results {
		m[r.OrderID] = r
	}
	return m
}

func TestReplay(t *testing.T) {
	_, js, _ := jstest.StartStream(t)
	history(t, js, events.SourceChannels, map[string]string{"S": "shipped", "F": "shipper", "I": ""})
	history(t, js, events.SourceAPI, map[string]string{"A": ""})
	r, err := redrive.New(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	w := redrive.Window{Stage: events.StageEnriched, Since: t0.Add(-time.Hour), Until: time.Now().Add(time.Hour), DryRun: true}
	dry, err := r.Replay(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	got := byOrder(dry)
	for id, want := range map[string]redrive.Action{"S": redrive.ActionSkipShipped, "F": redrive.ActionWouldDrive, "I": redrive.ActionWouldDrive, "A": redrive.ActionWouldDrive} {
		if got[id].Action != want {
			t.Errorf("dry run: order %s %q, want %q", id, got[id].Action, want)
		}
	}
	w.DryRun, w.Source = false, events.SourceChannels
	res, err := r.Replay(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	got = byOrder(res)
	if len(res) != 3 || got["F"].Action != redrive.ActionRedrive || got["I"].Action != redrive.ActionRedrive || got["F"].NewEventID != byOrder(dry)["F"].NewEventID {
		t.Fatalf("replay of channels: %+v; want F and I re-driven with the ids the dry run showed, S skipped", res)
	}
	copyMsg, err := jstest.LastOn(t, js, "orders.enriched.channels.default.F")
	if err != nil {
		t.Fatal(err)
	}
	if copyMsg.Header.Get(events.HeaderRedriveOf) != got["F"].Original {
		t.Errorf("the copy's %s is %q, want the original %s", events.HeaderRedriveOf, copyMsg.Header.Get(events.HeaderRedriveOf), got["F"].Original)
	}
	// The same replay again changes nothing: copies are not re-driven and
	// the originals' copies exist.
	again, err := r.Replay(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range again {
		if res.Action == redrive.ActionRedrive {
			t.Errorf("second replay re-drove %s", res.OrderID)
		}
	}
	// One order only.
	one, err := r.Replay(t.Context(), redrive.Window{Stage: events.StageEnriched, OrderIDs: []string{"A"}, DryRun: true})
	if err != nil || len(one) != 1 || one[0].OrderID != "A" {
		t.Fatalf("replay of order A: %+v, %v", one, err)
	}
	if _, err := r.Replay(t.Context(), redrive.Window{Stage: events.StageShipped}); err == nil {
		t.Error("a replay of shipped events was accepted")
	}
}

func TestRedriveFailed(t *testing.T) {
	_, js, _ := jstest.StartStream(t)
	history(t, js, events.SourceChannels, map[string]string{"S": "shipped", "FS": "shipper", "FE": "enricher", "FR": "raw", "FI": "ingest"})
	code := 109000
	failed, err := redrive.Failed(t.Context(), js, redrive.Filter{})
	if err != nil || len(failed) != 4 {
		t.Fatalf("failed orders %d, %v; want 4", len(failed), err)
	}
	only, err := redrive.Failed(t.Context(), js, redrive.Filter{Errcode: &code, Source: events.SourceChannels})
	if err != nil || len(only) != 1 || only[0].OrderID != "FS" {
		t.Fatalf("failed with 109000: %v, %v", only, err)
	}
	if none, _ := redrive.Failed(t.Context(), js, redrive.Filter{Source: events.SourceAPI}); len(none) != 0 {
		t.Fatalf("failed api orders: %d, want 0", len(none))
	}
	r, err := redrive.New(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.RedriveFailed(t.Context(), failed, false)
	if err != nil {
		t.Fatal(err)
	}
	got := byOrder(res)
	for id, want := range map[string]struct {
		action redrive.Action
		stage  string
	}{
		"FS": {redrive.ActionRedrive, "enriched"},
		"FE": {redrive.ActionRedrive, "received"},
		"FR": {redrive.ActionSkip, ""},
		"FI": {redrive.ActionSkip, ""},
	} {
		if got[id].Action != want.action || got[id].Stage != want.stage {
			t.Errorf("order %s: %+v, want %s through %q", id, got[id], want.action, want.stage)
		}
	}
	if got["FR"].Reason == "" || got["FI"].Reason == "" {
		t.Errorf("skips without a reason: %+v %+v", got["FR"], got["FI"])
	}
	// Re-driven again for the same failure: the copy exists already.
	again, err := r.RedriveFailed(t.Context(), failed, false)
	if err != nil {
		t.Fatal(err)
	}
	if a := byOrder(again); a["FS"].Action != redrive.ActionSkip || a["FE"].Action != redrive.ActionSkip {
		t.Errorf("second re-drive of the same failures: %+v", again)
	}
}

// A window by stream sequence re-drives the orders whose input event lies
// in it, and only those.
func TestReplayBySequence(t *testing.T) {
	_, js, s := jstest.StartStream(t)
	history(t, js, events.SourceChannels, map[string]string{"A": ""})
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mid := info.State.LastSeq
	history(t, js, events.SourceChannels, map[string]string{"B": ""})
	r, err := redrive.New(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		from, to uint64
		want     []string
	}{
		{1, mid, []string{"A"}},
		{mid + 1, 0, []string{"B"}},
		{1, 0, []string{"A", "B"}},
	} {
		res, err := r.Replay(t.Context(), redrive.Window{Stage: events.StageEnriched, FromSeq: tt.from, ToSeq: tt.to, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range res {
			got = append(got, x.OrderID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("window %d..%d re-drove %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}
