package events_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/events"
)

func TestValidateOrderID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"channels 19-digit id above 2^53", "3704612354559743232", true},
		{"max uint64", "18446744073709551615", true},
		{"single digit", "7", true},
		{"letters digits underscore dash", "vv_T-123abcXYZ", true},
		{"only dash", "-", true},
		{"only underscore", "_", true},
		{"exactly max length", strings.Repeat("9", events.MaxOrderIDLen), true},
		{"empty", "", false},
		{"one over max length", strings.Repeat("9", events.MaxOrderIDLen+1), false},
		{"far too long", strings.Repeat("a", 10_000), false},
		{"dot", "123.456", false},
		{"leading dot", ".123", false},
		{"trailing dot", "123.", false},
		{"float-looking with exponent", "3.7e18", false},
		{"float-looking with decimal", "3704612354559743232.0", false},
		{"star wildcard", "*", false},
		{"star inside", "12*3", false},
		{"gt wildcard", ">", false},
		{"gt at end", "123>", false},
		{"space inside", "123 456", false},
		{"leading space", " 123", false},
		{"trailing space", "123 ", false},
		{"tab", "123\t", false},
		{"newline", "123\n", false},
		{"carriage return", "123\r", false},
		{"nul byte", "12\x003", false},
		{"unicode letter", "订单123", false},
		{"latin-1 letter", "caf\u00e9", false},
		{"fullwidth digit", "\uff11\uff12\uff13", false},
		{"invalid utf-8", "12\xff", false},
		{"plus sign", "+123", false},
		{"slash", "a/b", false},
		{"colon", "a:b", false},
		{"dollar", "$JS", false},
		{"quote", `a"b`, false},
		{"digits and letters that look like a float but have no dot are a valid token", "-1e5", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := events.ValidateOrderID(tt.id)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateOrderID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateOrderID(%q) = nil, want an error", tt.id)
			}
			if !errors.Is(err, events.ErrInvalidOrderID) {
				t.Fatalf("ValidateOrderID(%q) = %v, want errors.Is ErrInvalidOrderID", tt.id, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") && len(tt.id) < 200 && !strings.ContainsAny(tt.id, "\n\r") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestValidateOrderIDNamesACharacterNotAByte(t *testing.T) {
	err := events.ValidateOrderID("AB订单")
	if err == nil || !strings.Contains(err.Error(), "'订' at position 2") {
		t.Fatalf("ValidateOrderID(AB订单) = %v; want it to name '订' at position 2", err)
	}
}

func TestValidateOrderIDErrorNamesPosition(t *testing.T) {
	err := events.ValidateOrderID("12.34")
	if err == nil || !strings.Contains(err.Error(), "position 2") {
		t.Fatalf("error %v should name position 2 of the bad character", err)
	}
	// A person must be able to read the rejected id from the error.
	if !strings.Contains(err.Error(), `"12.34"`) {
		t.Fatalf("error %v should quote the id", err)
	}
}

// typeSink keeps a Type result alive, as an event does.
var typeSink string

func TestStageAndSourceValid(t *testing.T) {
	for _, s := range events.Stages {
		if !s.Valid() {
			t.Errorf("Stage %q from Stages is not Valid", s)
		}
		if got, want := s.Type(), "order."+string(s); got != want {
			t.Errorf("%q.Type() = %q, want %q", s, got, want)
		}
		// Every event built asks for its type: a constant, not a new string.
		if n := testing.AllocsPerRun(10, func() { typeSink = s.Type() }); n != 0 {
			t.Errorf("%q.Type() allocates %v times", s, n)
		}
	}
	if len(events.Stages) != 6 {
		t.Errorf("Stages = %v, want the 6 stages of the grammar", events.Stages)
	}
	for _, s := range []events.Stage{"", "Received", "deadletter", "received ", "order.received", "*", ">"} {
		if s.Valid() {
			t.Errorf("Stage %q is Valid, want invalid", s)
		}
	}
	for _, s := range []events.Source{events.SourceChannels, events.SourceVVTool, events.SourceAPI} {
		if !s.Valid() {
			t.Errorf("Source %q is not Valid", s)
		}
	}
	for _, s := range []events.Source{"", "API", "wechat", "vv-tool", "*", ">", "api "} {
		if s.Valid() {
			t.Errorf("Source %q is Valid, want invalid", s)
		}
	}
}

func TestValidateShopID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"default", true},
		{"a", true},
		{"0", true},
		{"shop-9_b", true},
		{strings.Repeat("a", events.MaxShopIDLen), true},
		{"", false},
		{strings.Repeat("a", events.MaxShopIDLen+1), false},
		{"Acme", false},
		{"-a", false},
		{"_a", false},
		{"a.b", false},
		{"*", false},
		{">", false},
		{"a b", false},
		{"店铺", false},
	}
	for _, tt := range tests {
		err := events.ValidateShopID(tt.id)
		if tt.ok != (err == nil) {
			t.Errorf("ValidateShopID(%q) = %v, want ok %v", tt.id, err, tt.ok)
		}
		if err != nil && !errors.Is(err, events.ErrInvalidShop) {
			t.Errorf("ValidateShopID(%q) = %v, want errors.Is ErrInvalidShop", tt.id, err)
		}
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		stage   events.Stage
		source  events.Source
		shop    string
		id      string
		want    string
		wantErr error
	}{
		{events.StageReceived, events.SourceChannels, "acme", "3704612354559743232", "orders.received.channels.acme.3704612354559743232", nil},
		{events.StageEnriched, events.SourceAPI, "default", "A-1_b", "orders.enriched.api.default.A-1_b", nil},
		{events.StageShipped, events.SourceChannels, "s-1", "1", "orders.shipped.channels.s-1.1", nil},
		{events.StageFailed, events.SourceVVTool, "acme", "x", "orders.failed.vvtool.acme.x", nil},
		{events.StageLogistics, events.SourceVVTool, "acme", "T1", "orders.logistics.vvtool.acme.T1", nil},
		{"bogus", events.SourceAPI, "acme", "1", "", events.ErrInvalidStage},
		{"", events.SourceAPI, "acme", "1", "", events.ErrInvalidStage},
		{events.StageReceived, "bogus", "acme", "1", "", events.ErrInvalidSource},
		{events.StageReceived, "", "acme", "1", "", events.ErrInvalidSource},
		{events.StageReceived, events.SourceAPI, "", "1", "", events.ErrInvalidShop},
		{events.StageReceived, events.SourceAPI, "a.b", "1", "", events.ErrInvalidShop},
		{events.StageReceived, events.SourceAPI, "*", "1", "", events.ErrInvalidShop},
		{events.StageReceived, events.SourceAPI, "acme", "1.2", "", events.ErrInvalidOrderID},
		{events.StageReceived, events.SourceAPI, "acme", ">", "", events.ErrInvalidOrderID},
		{events.StageReceived, events.SourceAPI, "acme", "", "", events.ErrInvalidOrderID},
	}
	for _, tt := range tests {
		got, err := events.Subject(tt.stage, tt.source, tt.shop, tt.id)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Subject(%q, %q, %q, %q) error = %v, want %v", tt.stage, tt.source, tt.shop, tt.id, err, tt.wantErr)
			}
			if got != "" {
				t.Errorf("Subject(%q, %q, %q, %q) = %q on error, want empty", tt.stage, tt.source, tt.shop, tt.id, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Subject(%q, %q, %q, %q) = %q, %v; want %q", tt.stage, tt.source, tt.shop, tt.id, got, err, tt.want)
		}
	}
}

func TestParseSubject(t *testing.T) {
	tests := []struct {
		subject string
		stage   events.Stage
		source  events.Source
		shop    string
		id      string
		wantErr error // always wrapped in ErrInvalidSubject as well
	}{
		{"orders.received.channels.acme.3704612354559743232", events.StageReceived, events.SourceChannels, "acme", "3704612354559743232", nil},
		{"orders.logistics.vvtool.acme.T-1", events.StageLogistics, events.SourceVVTool, "acme", "T-1", nil},
		{"orders.failed.api.default.x_y", events.StageFailed, events.SourceAPI, "default", "x_y", nil},
		{"", "", "", "", "", events.ErrInvalidSubject},
		{"orders", "", "", "", "", events.ErrInvalidSubject},
		{"orders.received.api", "", "", "", "", events.ErrInvalidSubject},
		// The grammar before shops: four tokens.
		{"orders.received.api.1", "", "", "", "", events.ErrInvalidSubject},
		{"orders.received.api.acme.1.2", "", "", "", "", events.ErrInvalidSubject},
		{"orders.received.api.acme.", "", "", "", "", events.ErrInvalidOrderID},
		{"orders.received.api..1", "", "", "", "", events.ErrInvalidShop},
		{"orders.received.api.Acme.1", "", "", "", "", events.ErrInvalidShop},
		{"orders.received.api.*.1", "", "", "", "", events.ErrInvalidShop},
		{"order.received.api.acme.1", "", "", "", "", events.ErrInvalidSubject},
		{"ORDERS.received.api.acme.1", "", "", "", "", events.ErrInvalidSubject},
		{"x.received.api.acme.1", "", "", "", "", events.ErrInvalidSubject},
		{"orders.deadletter", "", "", "", "", events.ErrInvalidSubject},
		{"orders.received.>", "", "", "", "", events.ErrInvalidSubject},
		{"orders.bogus.api.acme.1", "", "", "", "", events.ErrInvalidStage},
		{"orders.received.bogus.acme.1", "", "", "", "", events.ErrInvalidSource},
		{"orders.received.api.acme.*", "", "", "", "", events.ErrInvalidOrderID},
		{"orders.received.api.acme.>", "", "", "", "", events.ErrInvalidOrderID},
		{"orders.received.api.acme.a b", "", "", "", "", events.ErrInvalidOrderID},
		{"orders.received.api.acme.订单", "", "", "", "", events.ErrInvalidOrderID},
		{"orders.*.api.acme.1", "", "", "", "", events.ErrInvalidStage},
		{"orders.received.*.acme.1", "", "", "", "", events.ErrInvalidSource},
		{" orders.received.api.acme.1", "", "", "", "", events.ErrInvalidSubject},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			stage, source, shop, id, err := events.ParseSubject(tt.subject)
			if tt.wantErr != nil {
				if !errors.Is(err, events.ErrInvalidSubject) || !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseSubject(%q) error = %v, want ErrInvalidSubject and %v", tt.subject, err, tt.wantErr)
				}
				if stage != "" || source != "" || shop != "" || id != "" {
					t.Fatalf("ParseSubject(%q) returned parts %q %q %q %q with an error", tt.subject, stage, source, shop, id)
				}
				return
			}
			if err != nil || stage != tt.stage || source != tt.source || shop != tt.shop || id != tt.id {
				t.Fatalf("ParseSubject(%q) = %q, %q, %q, %q, %v; want %q, %q, %q, %q", tt.subject, stage, source, shop, id, err, tt.stage, tt.source, tt.shop, tt.id)
			}
			// Every service parses a subject or two per order: the
			// parts are the subject's own bytes.
			if n := testing.AllocsPerRun(10, func() { _, _, _, _, _ = events.ParseSubject(tt.subject) }); n != 0 {
				t.Errorf("ParseSubject(%q) allocates %v times", tt.subject, n)
			}
		})
	}
}

func TestSubjectParseSubjectRoundTrip(t *testing.T) {
	ids := []string{"3704612354559743232", "1", "A", "a-b_c", strings.Repeat("z", events.MaxOrderIDLen)}
	shops := []string{"default", "a", "shop-9_b", strings.Repeat("s", events.MaxShopIDLen)}
	sources := []events.Source{events.SourceChannels, events.SourceVVTool, events.SourceAPI}
	for _, stage := range events.Stages {
		for _, source := range sources {
			for _, shop := range shops {
				for _, id := range ids {
					subj, err := events.Subject(stage, source, shop, id)
					if err != nil {
						t.Fatalf("Subject(%q, %q, %q, %q): %v", stage, source, shop, id, err)
					}
					gs, gsrc, gshop, gid, err := events.ParseSubject(subj)
					if err != nil || gs != stage || gsrc != source || gshop != shop || gid != id {
						t.Fatalf("ParseSubject(%q) = %q, %q, %q, %q, %v; want %q, %q, %q, %q", subj, gs, gsrc, gshop, gid, err, stage, source, shop, id)
					}
					// Every subject of the grammar is under its stage's
					// filter, its shop's and its order's.
					if !subjectMatches(events.FilterSubject(stage), subj) {
						t.Fatalf("subject %q is not under %s", subj, events.FilterSubject(stage))
					}
					if f, _ := events.ShopFilter(stage, shop); !subjectMatches(f, subj) {
						t.Fatalf("subject %q is not under %s", subj, f)
					}
					if f, _ := events.OrderFilter(stage, shop, id); !subjectMatches(f, subj) {
						t.Fatalf("subject %q is not under %s", subj, f)
					}
					if f, _ := events.AnyShopFilter(stage, id); !subjectMatches(f, subj) {
						t.Fatalf("subject %q is not under %s", subj, f)
					}
				}
			}
		}
	}
}

func TestFilterSubject(t *testing.T) {
	for stage, want := range map[events.Stage]string{
		events.StageReceived: "orders.received.>",
		events.StageEnriched: "orders.enriched.>",
		events.StageShipped:  "orders.shipped.>",
		events.StageFailed:   "orders.failed.>",
	} {
		if got := events.FilterSubject(stage); got != want {
			t.Errorf("FilterSubject(%q) = %q, want %q", stage, got, want)
		}
	}
}

func TestShopFilter(t *testing.T) {
	tests := []struct {
		stage   events.Stage
		shop    string
		want    string
		wantErr error
	}{
		{events.StageReceived, "acme", "orders.received.*.acme.*", nil},
		{events.StageFailed, "default", "orders.failed.*.default.*", nil},
		{events.StageReceived, "", "", events.ErrInvalidShop},
		{events.StageReceived, "*", "", events.ErrInvalidShop},
		{"packed", "acme", "", events.ErrInvalidStage},
	}
	for _, tt := range tests {
		got, err := events.ShopFilter(tt.stage, tt.shop)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("ShopFilter(%q, %q) = %q, %v; want %q, %v", tt.stage, tt.shop, got, err, tt.want, tt.wantErr)
		}
	}
	// A shop's filter takes none of another shop's events, even a shop
	// whose id extends this one's.
	f, _ := events.ShopFilter(events.StageReceived, "a")
	for _, shop := range []string{"ab", "b", "a-"} {
		s, _ := events.Subject(events.StageReceived, events.SourceAPI, shop, "1")
		if subjectMatches(f, s) {
			t.Errorf("%s matches another shop's %s", f, s)
		}
	}
}

func TestOrderFilter(t *testing.T) {
	tests := []struct {
		stage   events.Stage
		shop    string
		id      string
		want    string
		wantErr error
	}{
		{events.StageShipped, "acme", "3704612354559743232", "orders.shipped.*.acme.3704612354559743232", nil},
		{events.StageFailed, "default", "T-1_a", "orders.failed.*.default.T-1_a", nil},
		{events.StageEnriched, "acme", "a.b", "", events.ErrInvalidOrderID},
		{events.StageShipped, "acme", "*", "", events.ErrInvalidOrderID},
		{events.StageShipped, "acme", ">", "", events.ErrInvalidOrderID},
		{events.StageShipped, "*", "1", "", events.ErrInvalidShop},
		{events.StageShipped, "", "1", "", events.ErrInvalidShop},
		{"packed", "acme", "1", "", events.ErrInvalidStage},
	}
	for _, tt := range tests {
		got, err := events.OrderFilter(tt.stage, tt.shop, tt.id)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("OrderFilter(%q, %q, %q) = %q, %v; want %q, %v", tt.stage, tt.shop, tt.id, got, err, tt.want, tt.wantErr)
		}
	}
	// Every subject an order's events of the stage can have matches it, and
	// another order's (one whose id extends this one, or the same id in
	// another shop) does not.
	f, _ := events.OrderFilter(events.StageShipped, "acme", "1")
	for _, src := range []events.Source{events.SourceChannels, events.SourceVVTool, events.SourceAPI} {
		s, _ := events.Subject(events.StageShipped, src, "acme", "1")
		if !subjectMatches(f, s) {
			t.Errorf("%s does not match %s", f, s)
		}
		for _, other := range []string{mustSubject(t, events.StageShipped, src, "acme", "10"), mustSubject(t, events.StageShipped, src, "acme2", "1")} {
			if subjectMatches(f, other) {
				t.Errorf("%s matches another order's %s", f, other)
			}
		}
	}
}

func TestAnyShopFilter(t *testing.T) {
	got, err := events.AnyShopFilter(events.StageReceived, "42")
	if got != "orders.received.*.*.42" || err != nil {
		t.Errorf("AnyShopFilter(received, 42) = %q, %v", got, err)
	}
	if _, err := events.AnyShopFilter(events.StageReceived, "4.2"); !errors.Is(err, events.ErrInvalidOrderID) {
		t.Errorf("AnyShopFilter(received, 4.2) error = %v, want ErrInvalidOrderID", err)
	}
}

func TestOrderKey(t *testing.T) {
	if got := events.OrderKey("acme", "42"); got != "acme.42" {
		t.Errorf("OrderKey = %q", got)
	}
	e, err := events.New(events.Fact{Stage: events.StageReceived, Source: events.SourceAPI, Shop: "acme", OrderID: "42", Data: events.Received{}}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if e.Key() != "acme.42" {
		t.Errorf("Envelope.Key() = %q", e.Key())
	}
}

func mustSubject(t *testing.T, stage events.Stage, source events.Source, shop, id string) string {
	t.Helper()
	s, err := events.Subject(stage, source, shop, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
