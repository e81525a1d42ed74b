package pipeline_test

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

func TestOrderRecordLookup(t *testing.T) {
	_, js, s := startStream(t)
	rec := pipeline.NewOrderRecord(s)
	p := pipeline.NewPublisher(js)

	// Nothing yet.
	if e, err := rec.Shipped(t.Context(), events.DefaultShop, "1"); err != nil || e != nil {
		t.Fatalf("empty stream: %v, %v", e, err)
	}

	rcv1 := newEnv(t, events.StageReceived, events.SourceChannels, "1", received(), nil, "")
	shp1 := newEnv(t, events.StageShipped, events.SourceChannels, "1", events.Shipped{DeliveryID: "SF", WaybillID: "W1", Attempts: 1}, rcv1, "")
	rcv2 := newEnv(t, events.StageReceived, events.SourceAPI, "2", received(), nil, "")
	shp2 := newEnv(t, events.StageShipped, events.SourceAPI, "2", events.Shipped{DeliveryID: "SF", WaybillID: "W2", Attempts: 1}, rcv2, "")
	rcv3 := newEnv(t, events.StageReceived, events.SourceChannels, "3", received(), nil, "")
	fld3 := newEnv(t, events.StageFailed, events.SourceChannels, "3", events.Failed{Stage: "shipper"}, rcv3, "")
	// Order 10's id extends order 1's: a prefix must not match.
	rcv10 := newEnv(t, events.StageReceived, events.SourceChannels, "10", received(), nil, "")
	if err := p.Publish(t.Context(), rcv1, shp1, rcv2, shp2, rcv3, fld3, rcv10); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		order  string
		wantID string // "" = no record
	}{
		{"1", shp1.ID},
		{"2", shp2.ID}, // another source: the wildcard finds it
		{"3", ""},      // failed, not shipped
		{"10", ""},     // received only
		{"4", ""},      // unknown
	} {
		e, err := rec.Shipped(t.Context(), events.DefaultShop, tc.order)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", tc.order, err)
		}
		switch {
		case tc.wantID == "" && e != nil:
			t.Errorf("Lookup(%s) = %s, want none", tc.order, e.ID)
		case tc.wantID != "" && (e == nil || e.ID != tc.wantID):
			t.Errorf("Lookup(%s) = %v, want %s", tc.order, e, tc.wantID)
		}
	}
	e, _ := rec.Shipped(t.Context(), events.DefaultShop, "2")
	var sh events.Shipped
	if err := e.DecodeData(&sh); err != nil || sh.WaybillID != "W2" || e.Source != events.SourceAPI {
		t.Errorf("record of 2: %+v %+v %v", e, sh, err)
	}

	// The latest shipped event wins (a replay's record after the first).
	later := newEnv(t, events.StageShipped, events.SourceVVTool, "1", events.Shipped{DeliveryID: "SF", WaybillID: "W1b", AlreadyShipped: true}, shp1, "replay-1")
	if err := p.Publish(t.Context(), later); err != nil {
		t.Fatal(err)
	}
	if e, err := rec.Shipped(t.Context(), events.DefaultShop, "1"); err != nil || e == nil || e.ID != later.ID {
		t.Errorf("Lookup(1) after a later record = %v, %v; want %s", e, err, later.ID)
	}
}

func TestOrderRecordCorruptRecord(t *testing.T) {
	_, js, s := startStream(t)
	if _, err := js.Publish(t.Context(), "orders.shipped.api.default.9", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	e, err := pipeline.NewOrderRecord(s).Shipped(t.Context(), events.DefaultShop, "9")
	if err == nil || e != nil {
		t.Fatalf("corrupt record: %v, %v; want an error", e, err)
	}
}

// Shipped must not put orderID into a subject filter unchecked, so an
// unchecked into a subject filter: an id holding a wildcard or a dot would
// answer with another order's record.
func TestOrderRecordRefusesInvalidOrderID(t *testing.T) {
	_, js, s := startStream(t)
	rcv := newEnv(t, events.StageReceived, events.SourceAPI, "7", received(), nil, "")
	shp := newEnv(t, events.StageShipped, events.SourceAPI, "7", events.Shipped{DeliveryID: "SF"}, rcv, "")
	if err := pipeline.NewPublisher(js).Publish(t.Context(), shp); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{">", "*", "7.x", ""} {
		if e, err := pipeline.NewOrderRecord(s).Shipped(t.Context(), events.DefaultShop, id); e != nil || err == nil {
			t.Errorf("Lookup(%q) = %v, %v; want an invalid order id error", id, e, err)
		}
	}
}

func TestOrderRecordLastGivesTheSequence(t *testing.T) {
	_, js, s := startStream(t)
	rec := pipeline.NewOrderRecord(s)
	rcv := newEnv(t, events.StageReceived, events.SourceChannels, "5", received(), nil, "")
	f1 := newEnv(t, events.StageFailed, events.SourceChannels, "5", events.Failed{Stage: "shipper", Errcode: 1}, rcv, "a")
	f2 := newEnv(t, events.StageFailed, events.SourceAPI, "5", events.Failed{Stage: "shipper", Errcode: 2}, rcv, "b")
	if err := pipeline.NewPublisher(js).Publish(t.Context(), rcv, f1, f2); err != nil {
		t.Fatal(err)
	}
	e, seq, err := rec.Last(t.Context(), events.StageFailed, events.DefaultShop, "5")
	if err != nil || e == nil || e.ID != f2.ID || seq != 3 {
		t.Fatalf("Last(failed, 5) = %v, %d, %v; want %s at seq 3 (the latest, whatever its source)", e, seq, err, f2.ID)
	}
	if e, seq, err := rec.Last(t.Context(), events.StageShipped, events.DefaultShop, "5"); e != nil || seq != 0 || err != nil {
		t.Fatalf("Last(shipped, 5) = %v, %d, %v; want none", e, seq, err)
	}
}

// TestLeaderRecordAgreesWithTheStream reads the same records from the
// leader as the direct gets do (the latest of a stage, any source; none;
// a corrupt one), and asks the stream leader's API, not the direct-get
// subjects any replica answers.
func TestLeaderRecordAgreesWithTheStream(t *testing.T) {
	nc, js, s := startStream(t)
	p := pipeline.NewPublisher(js)
	rcv := newEnv(t, events.StageReceived, events.SourceChannels, "1", received(), nil, "")
	fld := newEnv(t, events.StageFailed, events.SourceChannels, "1", events.Failed{Stage: events.ComponentShipper}, rcv, "")
	shp := newEnv(t, events.StageShipped, events.SourceAPI, "1", events.Shipped{DeliveryID: "SF", WaybillID: "W1"}, rcv, "")
	later := newEnv(t, events.StageShipped, events.SourceVVTool, "1", events.Shipped{DeliveryID: "SF", WaybillID: "W1b"}, shp, "replay-1")
	if err := p.Publish(t.Context(), rcv, fld, shp, later); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "orders.shipped.api.default.9", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	asked := make(chan string, 100)
	spy, err := nc.Subscribe("$JS.API.>", func(m *nats.Msg) { asked <- m.Subject })
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	direct, leader := pipeline.NewOrderRecord(s), pipeline.NewLeaderRecord(nc, events.StreamName)
	for _, tc := range []struct {
		stage   events.Stage
		order   string
		wantErr bool
	}{
		{events.StageShipped, "1", false}, // the later of two, another source
		{events.StageFailed, "1", false},
		{events.StageEnriched, "1", false}, // none
		{events.StageShipped, "2", false},  // unknown order
		{events.StageShipped, "9", true},   // not an envelope
		{events.StageShipped, "1.>", true}, // not an order id
	} {
		de, dseq, derr := direct.Last(t.Context(), tc.stage, events.DefaultShop, tc.order)
		le, lseq, lerr := leader.Last(t.Context(), tc.stage, events.DefaultShop, tc.order)
		if (lerr != nil) != tc.wantErr || (derr != nil) != tc.wantErr {
			t.Errorf("%s of %s: leader %v, direct %v; want an error: %v", tc.stage, tc.order, lerr, derr, tc.wantErr)
			continue
		}
		if (de == nil) != (le == nil) || dseq != lseq || (de != nil && de.ID != le.ID) {
			t.Errorf("%s of %s: leader %v at %d, direct %v at %d", tc.stage, tc.order, le, lseq, de, dseq)
		}
	}
	if e, _, _ := leader.Last(t.Context(), events.StageShipped, events.DefaultShop, "1"); e == nil || e.ID != later.ID {
		t.Errorf("leader's shipped record of 1 = %v, want %s", e, later.ID)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var leaderAsked bool
	for len(asked) > 0 {
		subj := <-asked
		leaderAsked = leaderAsked || subj == "$JS.API.STREAM.MSG.GET."+events.StreamName
	}
	if !leaderAsked {
		t.Error("no request on $JS.API.STREAM.MSG.GET.ORDERS: the leader was not asked")
	}
}
