package vvtool

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// The fuzz targets check that no input makes a decoder panic, that what decodes
// re-encodes and decodes to the same value, and that errors are bounded in size.

func FuzzID(f *testing.F) {
	for _, s := range []string{`"1692089714634374451"`, `1692089714634374451`, `null`, `""`, `1.5`, `-1`, `true`, `{}`, `[1]`, `"a\u0000b"`, `" 7 "`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var id ID
		if err := json.Unmarshal(b, &id); err != nil {
			checkErrorSize(t, err)
			return
		}
		enc, err := json.Marshal(id)
		if err != nil {
			t.Fatalf("Marshal(%q): %v", id, err)
		}
		var again ID
		if err := json.Unmarshal(enc, &again); err != nil || again != id {
			t.Fatalf("round trip %q -> %s -> %q, %v", id, enc, again, err)
		}
	})
}

func FuzzIDList(f *testing.F) {
	for _, s := range []string{`{"number":["1692089714634374451"]}`, `[1,"2"]`, `"1,2,3"`, `null`, `[]`, `{}`, `{"x":"1, 2"}`, `7`, `[null]`, `{"number":{"number":[]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var l IDList
		if err := json.Unmarshal(b, &l); err != nil {
			checkErrorSize(t, err)
			return
		}
		for _, id := range l {
			if id == "" {
				t.Fatalf("empty id in %q from %q", l, b)
			}
		}
		enc, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var again IDList
		if err := json.Unmarshal(enc, &again); err != nil || !reflect.DeepEqual(again, l) {
			t.Fatalf("round trip %q -> %s -> %q, %v", l, enc, again, err)
		}
	})
}

func FuzzTime(f *testing.F) {
	for _, s := range []string{`"2021-04-01 16:40:47"`, `""`, `null`, `"0000-00-00 00:00:00"`, `"0001-01-01 08:00:00"`, `"2021-04-01 16:40:47.5"`, `"9999-12-31 23:59:59"`, `"2021-02-29 00:00:00"`, `1617273033`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var tm Time
		if err := json.Unmarshal(b, &tm); err != nil {
			checkErrorSize(t, err)
			return
		}
		if !tm.IsZero() {
			if _, off := tm.Zone(); off != 8*3600 {
				t.Fatalf("%s decoded with offset %d", b, off)
			}
		}
		enc, err := json.Marshal(tm)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", tm.Time, err)
		}
		var again Time
		if err := json.Unmarshal(enc, &again); err != nil || again != tm {
			t.Fatalf("round trip %v -> %s -> %v, %v", tm.Time, enc, again.Time, err)
		}
	})
}

func FuzzDetailResponse(f *testing.F) {
	f.Add(readGoldenF(f, "detail_response.json"))
	for _, s := range []string{
		`{"code":0,"data":[]}`,
		`{"code":"0","msec":"1","time":1.5e9,"data":[{"tid":1,"sub_tids":"1,2","is_split":"1","is_quick_cod_order":1,"location":[],"out_sid":123}]}`,
		`{"code":302,"msg":"未授权店铺","data":"https://x.invalid"}`,
		`{"code":0,"data":[null,{"location":{"zip":310000},"created":"2021-04-01 16:40:47","delivery_start":""}]}`,
		`<html>`, `{"data":[]}`, `{"code":0,"data":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := decodeDetail(b, 200, newRedactor(testToken))
		if err != nil {
			checkErrorSize(t, err)
			var ae *APIError
			if errors.As(err, &ae) {
				if ae.Code == 0 || resp == nil || resp.Code != ae.Code || resp.Data != nil {
					t.Fatalf("APIError %v with response %+v", err, resp)
				}
			} else if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v is neither *APIError nor ErrBadResponse", err)
			}
			return
		}
		if resp.Code != 0 {
			t.Fatalf("code %d without error", resp.Code)
		}
		// json.Unmarshal into DetailResponse agrees with the client's decoder.
		var viaJSON DetailResponse
		if err := json.Unmarshal(b, &viaJSON); err != nil || !reflect.DeepEqual(&viaJSON, resp) {
			t.Fatalf("json.Unmarshal disagrees: %v", err)
		}
		enc, err := json.Marshal(resp)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := decodeDetail(enc, 200, redactor{})
		if err != nil || !reflect.DeepEqual(again, resp) {
			t.Fatalf("round trip:\n%s\n%+v\n%+v\n%v", enc, resp, again, err)
		}
	})
}

// checkErrorSize fails if a decoding error quotes unbounded input.
func checkErrorSize(t *testing.T, err error) {
	t.Helper()
	if n := len(err.Error()); n > 4*maxSnippet+300 {
		t.Fatalf("error of %d bytes: %.200s…", n, err)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Fatal("token in error")
	}
}

func readGoldenF(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
