package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fulfill/pipeline/pkg/events"
)

// addGoldenEnvelopes seeds f with the golden envelopes of testdata.
func addGoldenEnvelopes(f *testing.F) {
	f.Helper()
	golden, _ := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	for _, p := range golden {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecode: Decode never panics, refuses with one of its two errors, and
// whatever it accepts is a valid envelope that re-encodes and re-decodes to
// the same envelope and the same bytes.
func FuzzDecode(f *testing.F) {
	addGoldenEnvelopes(f)
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `1`,
		`{"version":1}`,
		`{"id":"2fe4d3a4-122a-5b26-ba40-c46318b5c974","type":"order.received","version":1,"source":"api","order_id":"1","occurred_at":"2025-03-14T09:26:53+08:00","correlation_id":"x","data":{}}`,
		`{"ID":"{2fe4d3a4-122a-5b26-ba40-c46318b5c974}","TYPE":"order.failed","Version":1,"source":"api","order_id":"1","occurred_at":"2025-03-14T09:26:53.123456789Z","correlation_id":"x","data": {"a":"<&>"},"data":{"b":1}}`,
		`{"id":"2fe4d3a4122a5b26ba40c46318b5c974","type":"order.shipped","version":1,"source":"vvtool","order_id":"a","occurred_at":"0000-01-01T00:00:00-01:00","correlation_id":"x","data":{"\u2028":"\ud800"}}`,
		`{"id":"urn:uuid:2fe4d3a4-122a-5b26-ba40-c46318b5c974","type":"order.logistics","version":1,"source":"channels","order_id":"3704612354559743232","occurred_at":"9999-12-31T23:59:59.999999999-23:59","correlation_id":"x","data":{"x":1e400}}`,
		`{"version":2}`, `{"version":1.0}`, `{"data":{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := events.Decode(b)
		if err != nil {
			if e != nil {
				t.Fatalf("Decode returned an envelope and error %v", err)
			}
			if !errors.Is(err, events.ErrMalformed) && !errors.Is(err, events.ErrUnsupportedVersion) {
				t.Fatalf("Decode error %v is neither ErrMalformed nor ErrUnsupportedVersion", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted envelope does not Validate: %v", err)
		}
		if e.Stage() == "" {
			t.Fatalf("accepted envelope has no stage: %q", e.Type)
		}
		if _, _, _, _, err := events.ParseSubject(e.Subject()); err != nil {
			t.Fatalf("accepted envelope has an unusable subject %q: %v", e.Subject(), err)
		}
		enc1, err := e.Encode()
		if err != nil {
			t.Fatalf("accepted envelope does not encode: %v", err)
		}
		e2, err := events.Decode(enc1)
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v\ninput %q\nencoded %q", err, b, enc1)
		}
		enc2, err := e2.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc1, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc1, enc2)
		}
		if e.ID != e2.ID || e.Type != e2.Type || e.Version != e2.Version || e.Source != e2.Source ||
			e.OrderID != e2.OrderID || !e.OccurredAt.Equal(e2.OccurredAt) ||
			e.CorrelationID != e2.CorrelationID || e.CausationID != e2.CausationID || e.MsgID() != e2.MsgID() {
			t.Fatalf("re-decoded envelope differs:\n%+v\n%+v", e, e2)
		}
		if !sameJSON(t, e.Data, e2.Data) {
			t.Fatalf("data changed across the round trip: %s vs %s", e.Data, e2.Data)
		}
		if _, err := e.Msg(); err != nil {
			t.Fatalf("accepted envelope has no message: %v", err)
		}
	})
}

// FuzzDecodeAgreesWithEncodingJSON: Decode (goccy/go-json, for speed)
// reads every envelope encoding/json reads and validates, as encoding/json
// reads it: the faster decoder changes nothing a producer could rely on.
func FuzzDecodeAgreesWithEncodingJSON(f *testing.F) {
	addGoldenEnvelopes(f)
	f.Add([]byte(`{"ID":"2fe4d3a4-122a-5b26-ba40-c46318b5c974","TYPE":"order.failed","Version":1,"source":"api","order_id":"1","occurred_at":"2025-03-14T09:26:53.123456789Z","correlation_id":"x","data": {"a":"<&>"},"data":{"b":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var want events.Envelope
		if json.Unmarshal(b, &want) != nil || want.Validate() != nil {
			return
		}
		got, err := events.Decode(b)
		if err != nil {
			t.Fatalf("encoding/json reads %q, Decode refuses it: %v", b, err)
		}
		if got.ID != want.ID || got.Type != want.Type || got.Version != want.Version || got.Source != want.Source ||
			got.Shop != want.Shop || got.OrderID != want.OrderID || !got.OccurredAt.Equal(want.OccurredAt) ||
			got.CorrelationID != want.CorrelationID || got.CausationID != want.CausationID || got.MsgID() != want.MsgID() {
			t.Fatalf("Decode and encoding/json differ on %q:\n%+v\n%+v", b, got, &want)
		}
		if !sameJSON(t, got.Data, want.Data) {
			t.Fatalf("data: Decode %s, encoding/json %s", got.Data, want.Data)
		}
	})
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if err := da.Decode(&va); err != nil {
		t.Fatalf("data %q: %v", a, err)
	}
	if err := db.Decode(&vb); err != nil {
		t.Fatalf("data %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// FuzzParseSubject: ParseSubject never panics, and a subject it accepts is
// exactly the one Subject builds from the parts.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{
		"orders.received.channels.acme.3704612354559743232", "orders.logistics.vvtool.acme.T-1",
		"orders.failed.api.acme.x_y", "orders.deadletter", "orders.received.api.>", "orders.*.api.1",
		"orders.received.api.1.2", "orders..api.1", "", ".", "orders.received.api.acme.3.7e18",
		"orders.received.api.acme.订单", "orders.received.api.acme.\x00", "orders.received.api.Acme.1",
		"orders.received.api..1", "orders.received.api.1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		stage, source, shop, id, err := events.ParseSubject(s)
		if err != nil {
			if !errors.Is(err, events.ErrInvalidSubject) {
				t.Fatalf("ParseSubject(%q) error %v is not ErrInvalidSubject", s, err)
			}
			return
		}
		if err := events.ValidateOrderID(id); err != nil {
			t.Fatalf("ParseSubject(%q) accepted order id %q: %v", s, id, err)
		}
		if err := events.ValidateShopID(shop); err != nil {
			t.Fatalf("ParseSubject(%q) accepted shop %q: %v", s, shop, err)
		}
		built, err := events.Subject(stage, source, shop, id)
		if err != nil {
			t.Fatalf("Subject(%q, %q, %q, %q) refused parts ParseSubject accepted: %v", stage, source, shop, id, err)
		}
		if built != s {
			t.Fatalf("round trip %q -> %q", s, built)
		}
	})
}

// FuzzValidateOrderID: an id is accepted exactly when it is 1..MaxOrderIDLen
// bytes of [A-Za-z0-9_-], and every accepted id makes a parseable subject.
func FuzzValidateOrderID(f *testing.F) {
	for _, s := range []string{"3704612354559743232", "3.7e18", "", "*", ">", "a b", "订单", "-_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		want := len(id) >= 1 && len(id) <= events.MaxOrderIDLen
		for _, c := range []byte(id) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				want = false
			}
		}
		err := events.ValidateOrderID(id)
		if (err == nil) != want {
			t.Fatalf("ValidateOrderID(%q) = %v, want ok=%v", id, err, want)
		}
		if err != nil {
			return
		}
		subj, err := events.Subject(events.StageReceived, events.SourceAPI, events.DefaultShop, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, got, err := events.ParseSubject(subj); err != nil || got != id {
			t.Fatalf("ParseSubject(%q) = %q, %v", subj, got, err)
		}
	})
}
