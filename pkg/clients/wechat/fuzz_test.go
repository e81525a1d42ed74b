package wechat

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fuzzStatus maps any int to an HTTP status in 100..599, mostly 200.
func fuzzStatus(s int) int {
	if s >= 0 && s%4 != 0 {
		return 200
	}
	if s < 0 {
		s = -(s + 1)
	}
	return 100 + s%500
}

// addGoldenSeeds adds every testdata JSON file and a few hostile bodies to f.
func addGoldenSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(200, b)
	}
	for _, s := range []string{
		``, `null`, `[]`, `"x"`, `{}`, `{"errcode":0}`, `{"errcode":-1,"errmsg":"system busy"}`,
		`{"errcode":40001,"errmsg":"invalid credential"}`, `{"errcode":"0"}`, `{"errcode":1e3}`,
		`{"errcode":0,"order_id_list":[3704612354559743232,"3704849110714209536",null]}`,
		`{"errcode":0,"order":{"order_id":3704612354559743232}}`, `{"errcode":0,"order":null}`,
		`{"order_list":[{"errcode":9300507,"order_id":1}]}`, `{"access_token":"t","expires_in":9223372036854775807}`,
		`{"access_token":"t","expires_in":-1}`, `<html>502</html>`, `{"errcode":0,"order_id_list":["3704`,
	} {
		f.Add(200, []byte(s))
		f.Add(502, []byte(s))
	}
}

// checkDecodeErr asserts the error contract of every decoder: nil, or an error
// that is ErrBadResponse or an *APIError that really reports a failure.
func checkDecodeErr(t *testing.T, status int, err error) {
	t.Helper()
	if err == nil {
		if !is2xx(status) {
			t.Fatalf("status %d decoded without error", status)
		}
		return
	}
	var ae *APIError
	switch {
	case errors.As(err, &ae):
		if ae.Code == 0 && is2xx(ae.HTTPStatus) {
			t.Fatalf("APIError without code or failing status: %+v", ae)
		}
	case errors.Is(err, ErrBadResponse):
	default:
		t.Fatalf("error %v is neither ErrBadResponse nor *APIError", err)
	}
	if Classify(err) == ClassOK {
		t.Fatalf("error %v classified ok", err)
	}
}

// roundTrip re-encodes v and decodes it into a fresh value of its type, which must
// be equal: ids survive as strings.
func roundTrip(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode %#v: %v", v, err)
	}
	fresh := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if err := json.Unmarshal(b, fresh); err != nil {
		t.Fatalf("decode re-encoded %s: %v", b, err)
	}
	if !reflect.DeepEqual(v, fresh) {
		t.Fatalf("round trip changed\n%#v\n%#v", v, fresh)
	}
}

func FuzzID(f *testing.F) {
	for _, s := range []string{`"3704612354559743232"`, `3704612354559743232`, `null`, `-0`, `1.5`, `1e9`, `"\u00e9"`, `true`, `{}`, `[]`, ` 7 `, `"a\"b"`, `01`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var id ID
		err := id.UnmarshalJSON(data)
		var viaJSON ID
		jsonErr := json.Unmarshal(data, &viaJSON)
		if jsonErr == nil && (err != nil || id != viaJSON) {
			t.Fatalf("json.Unmarshal gives %q, UnmarshalJSON gives %q, %v", viaJSON, id, err)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidID) {
				t.Fatalf("error %v does not wrap ErrInvalidID", err)
			}
			return
		}
		b, err := id.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		if want, _ := json.Marshal(string(id)); !bytes.Equal(b, want) {
			t.Fatalf("MarshalJSON of %q = %s, json.Marshal of the string %s", id, b, want)
		}
		var back ID
		if err := json.Unmarshal(b, &back); err != nil || back != id {
			t.Fatalf("round trip %q -> %s -> %q, %v", id, b, back, err)
		}
	})
}

func FuzzDecodeListOrders(f *testing.F) {
	addGoldenSeeds(f)
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		status = fuzzStatus(status)
		resp, err := decodeListOrders(status, raw)
		checkDecodeErr(t, status, err)
		if err == nil {
			roundTrip(t, resp)
		}
	})
}

func FuzzDecodeOrder(f *testing.F) {
	addGoldenSeeds(f)
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		status = fuzzStatus(status)
		order, err := decodeOrder(status, raw)
		checkDecodeErr(t, status, err)
		if err == nil {
			if order == nil {
				t.Fatal("nil order without error")
			}
			roundTrip(t, order)
		}
	})
}

func FuzzDecodeBatchGet(f *testing.F) {
	addGoldenSeeds(f)
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		status = fuzzStatus(status)
		wbs, err := decodeBatchGet(status, raw)
		checkDecodeErr(t, status, err)
		for i := range wbs {
			if (wbs[i].Err() == nil) != (wbs[i].Errcode == 0) || Code(wbs[i].Err()) != wbs[i].Errcode {
				t.Fatalf("waybill %d: Err %v for errcode %d", i, wbs[i].Err(), wbs[i].Errcode)
			}
			roundTrip(t, &wbs[i])
		}
	})
}

func FuzzDecodeWaybill(f *testing.F) {
	addGoldenSeeds(f)
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		status = fuzzStatus(status)
		w, err := decodeWaybill(status, raw)
		checkDecodeErr(t, status, err)
		if err == nil {
			if w.Errcode != 0 {
				t.Fatalf("waybill with errcode %d decoded without error", w.Errcode)
			}
			roundTrip(t, w)
		}
	})
}

func FuzzDecodeStableToken(f *testing.F) {
	addGoldenSeeds(f)
	f.Add(200, []byte(`{"access_token":"ACCESS_TOKEN","expires_in":7200}`))
	f.Add(200, []byte(`{"errcode":40125,"errmsg":"invalid appsecret"}`))
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		status = fuzzStatus(status)
		tok, ttl, err := decodeStableToken(status, raw)
		checkDecodeErr(t, status, err)
		if err == nil && (tok == "" || ttl <= 0 || ttl > maxTokenLifetime) {
			t.Fatalf("token %q ttl %v accepted", tok, ttl)
		}
		if err != nil && (tok != "" || ttl != 0) {
			t.Fatalf("error %v with token %q ttl %v", err, tok, ttl)
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	addGoldenSeeds(f)
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		status = fuzzStatus(status)
		err := decodeSendDelivery(status, raw)
		checkDecodeErr(t, status, err)
		env, envErr := decodeEnvelope(EndpointDeliverySend, raw)
		if envErr != nil {
			if !errors.Is(envErr, ErrBadResponse) {
				t.Fatalf("envelope error %v is not ErrBadResponse", envErr)
			}
			if is2xx(status) && !errors.Is(err, ErrBadResponse) {
				t.Fatalf("envelope fails (%v) but decode gives %v", envErr, err)
			}
			return
		}
		if got := Code(err); got != env.Errcode {
			t.Fatalf("Code = %d, envelope errcode %d", got, env.Errcode)
		}
	})
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"https://h/x?access_token=ABC&a=1", `Post "https://h/x?access_token=ABC": EOF`, "access_token%3DABC%26x", "access_token="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := Redact(s)
		if twice := Redact(once); twice != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
		if tok := "q7Zt0ken"; !strings.Contains(s, tok) {
			in := s + "?access_token=" + tok
			if out := Redact(in); strings.Contains(out, tok) {
				t.Fatalf("token survived: %q -> %q", in, out)
			}
		}
	})
}
