package vvtool

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestIDUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{`"1692089714634374451"`, "1692089714634374451", false},
		{`1692089714634374451`, "1692089714634374451", false},
		{`99999999999999999999999999`, "99999999999999999999999999", false},
		{`0`, "0", false},
		{`" 42 "`, "42", false},
		{`"200101-12345678901234"`, "200101-12345678901234", false},
		{`""`, "", false},
		{`null`, "", false},
		{`1.5`, "", true},
		{`1e18`, "", true},
		{`-1`, "", true},
		{`true`, "", true},
		{`{}`, "", true},
		{`[1]`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got ID
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Unmarshal(%s) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	b, err := json.Marshal(ID("1692089714634374451"))
	if err != nil || string(b) != `"1692089714634374451"` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}

func TestIDListUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    IDList
		wantErr bool
	}{
		{"seed object", `{"number":["1692089714634374451"]}`, IDList{"1692089714634374451"}, false},
		{"object of numbers", `{"number":[1692089714634374451,2]}`, IDList{"1692089714634374451", "2"}, false},
		{"object with one other key", `{"string":["a","b"]}`, IDList{"a", "b"}, false},
		{"object with single value", `{"number":"5"}`, IDList{"5"}, false},
		{"empty object", `{}`, nil, false},
		{"object empty list", `{"number":[]}`, nil, false},
		{"array of numbers", `[1,2,3]`, IDList{"1", "2", "3"}, false},
		{"array of strings", `["1","2"]`, IDList{"1", "2"}, false},
		{"mixed array", `[1,"2"]`, IDList{"1", "2"}, false},
		{"array with null and empty", `[null,"",3]`, IDList{"3"}, false},
		{"empty array", `[]`, nil, false},
		{"comma string", `"1,2,3"`, IDList{"1", "2", "3"}, false},
		{"comma string with spaces", `" 1, 2 ,,3 "`, IDList{"1", "2", "3"}, false},
		{"single string", `"1692089714634374451"`, IDList{"1692089714634374451"}, false},
		{"empty string", `""`, nil, false},
		{"single number", `1692089714634374451`, IDList{"1692089714634374451"}, false},
		{"null", `null`, nil, false},
		{"object with two unknown keys", `{"a":[1],"b":[2]}`, nil, true},
		{"nested object", `{"number":{"number":[1]}}`, nil, true},
		{"array with fraction", `[1.5]`, nil, true},
		{"array of arrays", `[[1]]`, nil, true},
		{"bool", `true`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got IDList
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Unmarshal(%s) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTimeUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    string // RFC3339, "" for the zero Time
		wantErr bool
	}{
		{`"2021-04-01 16:40:47"`, "2021-04-01T16:40:47+08:00", false},
		{`"2000-01-01 00:00:00"`, "2000-01-01T00:00:00+08:00", false},
		{`" 2021-04-01 16:40:47 "`, "2021-04-01T16:40:47+08:00", false},
		{`"2021-04-01 16:40:47.999"`, "2021-04-01T16:40:47+08:00", false},
		{`""`, "", false},
		{`null`, "", false},
		{`"0000-00-00 00:00:00"`, "", false},
		{`"2021-04-01T16:40:47+08:00"`, "", true},
		{`"2021-13-01 00:00:00"`, "", true},
		{`"2021-04-31 00:00:00"`, "", true},
		{`"2021/04/01 16:40:47"`, "", true},
		{`"yesterday"`, "", true},
		{`1617273033`, "", true},
		{`true`, "", true},
		{`{}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Time
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error %v, want error %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if tt.want == "" {
				if !got.IsZero() {
					t.Errorf("Unmarshal(%s) = %v, want zero", tt.in, got)
				}
				return
			}
			if s := got.Format(time.RFC3339); s != tt.want {
				t.Errorf("Unmarshal(%s) = %s, want %s", tt.in, s, tt.want)
			}
		})
	}
}

func TestTimeMarshal(t *testing.T) {
	tests := []struct {
		in   Time
		want string
	}{
		{Time{}, `""`},
		{Time{time.Date(2021, 4, 1, 8, 40, 47, 0, time.UTC)}, `"2021-04-01 16:40:47"`},
		{Time{time.Date(2021, 4, 1, 16, 40, 47, 0, time.FixedZone("CST", 8*3600))}, `"2021-04-01 16:40:47"`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.in)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.in, b, err, tt.want)
		}
	}
}

func TestShippingRoundTrip(t *testing.T) {
	resp, err := decodeDetail(readGolden(t, "detail_response.json"), 200, redactor{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(resp.Data)
	if err != nil {
		t.Fatal(err)
	}
	var again []Shipping
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, resp.Data) {
		t.Errorf("round trip changed the shippings:\n%s", b)
	}
}
