package vvtool

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"testing"
	"time"
)

func TestDecodeGolden(t *testing.T) {
	resp, err := decodeDetail(readGolden(t, "detail_response.json"), 200, newRedactor(testToken))
	if err != nil {
		t.Fatalf("decode golden: %v", err)
	}
	if resp.Code != 0 || resp.Msg != "操作成功" || resp.Msec != 1460 || resp.Time != 1617273033 {
		t.Errorf("envelope = %d %q %d %d", resp.Code, resp.Msg, resp.Msec, resp.Time)
	}
	wantTids := []ID{"1692089714634374451", "1691874146122374451", "1683977365576810386", "1267251421824702891", "1665594000750374451"}
	if len(resp.Data) != len(wantTids) {
		t.Fatalf("got %d shippings, want %d", len(resp.Data), len(wantTids))
	}
	for i, s := range resp.Data {
		if s.Tid != wantTids[i] {
			t.Errorf("shipping %d: tid %q, want %q", i, s.Tid, wantTids[i])
		}
		if !reflect.DeepEqual(s.SubTids, IDList{wantTids[i]}) {
			t.Errorf("shipping %d: sub_tids %q, want [%q]", i, s.SubTids, wantTids[i])
		}
		for name, tm := range map[string]Time{"created": s.Created, "modified": s.Modified} {
			if tm.IsZero() {
				t.Errorf("shipping %d: %s is zero", i, name)
			}
			if _, off := tm.Zone(); off != 8*3600 {
				t.Errorf("shipping %d: %s offset %d, want +08:00", i, name, off)
			}
		}
		if !s.DeliveryStart.IsZero() || !s.DeliveryEnd.IsZero() {
			t.Errorf("shipping %d: absent delivery dates decoded as %v %v", i, s.DeliveryStart, s.DeliveryEnd)
		}
	}

	cst := time.FixedZone("CST", 8*3600)
	want := Shipping{
		Tid:              "1692089714634374451",
		OrderCode:        "LP00439661727640",
		Status:           "CLOSED",
		SellerNick:       "tb5930250350",
		BuyerNick:        "~yOlO+NauHofT1xEACTmZhA==~Pz1vgPL7Ej0u~1~~",
		ItemTitle:        "婴幼儿童宝贝随身便携小包迷你清洁宝宝消毒湿巾生活多场景使用包",
		ReceiverName:     "~c7taW1ODc8ukQPFVN66n5w==~W+3x~1~~",
		ReceiverMobile:   "$un9BDyLXrNjZ8ki4CNcpNw==$ZFUq+8Ll97SRmROJ7sKQoA==$1$$",
		Location:         &Location{Zip: "000000", Address: "****", City: "杭州市", State: "浙江省", District: "西湖区"},
		Type:             "express",
		Created:          Time{time.Date(2021, 4, 1, 16, 40, 47, 0, cst)},
		Modified:         Time{time.Date(2021, 4, 1, 18, 4, 10, 0, cst)},
		SubTids:          IDList{"1692089714634374451"},
		WithholdingMoney: 1,
	}
	got := resp.Data[0]
	if got.Created.Format(time.RFC3339) != "2021-04-01T16:40:47+08:00" {
		t.Errorf("created = %s, want 2021-04-01T16:40:47+08:00", got.Created.Format(time.RFC3339))
	}
	if !got.Created.Equal(time.Date(2021, 4, 1, 8, 40, 47, 0, time.UTC)) {
		t.Errorf("created instant = %v", got.Created.UTC())
	}
	got.Created, got.Modified = Time{got.Created.In(cst)}, Time{got.Modified.In(cst)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("shipping 0\n got %+v\nwant %+v", got, want)
	}

	// json.Unmarshal into DetailResponse agrees with the client's decoding.
	var viaJSON DetailResponse
	if err := json.Unmarshal(readGolden(t, "detail_response.json"), &viaJSON); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&viaJSON, resp) {
		t.Error("json.Unmarshal and decodeDetail disagree")
	}
}

func TestDetailResponseTolerant(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr error // ErrBadResponse, or nil with want
		code    int   // with wantErr nil and code != 0: an *APIError
		want    []Shipping
	}{
		{name: "empty page", body: `{"code":0,"msg":"ok","data":[]}`},
		{name: "data null", body: `{"code":0,"data":null}`},
		{name: "data absent", body: `{"code":0}`},
		{name: "data empty object", body: `{"code":0,"data":{}}`},
		{name: "code as string", body: `{"code":"0","msg":"ok","msec":"12","time":"1617273033","data":[{"tid":1}]}`,
			want: []Shipping{{Tid: "1"}}},
		{name: "tid number beyond 2^53 kept byte for byte", body: `{"code":0,"data":[{"tid":1692089714634374451}]}`,
			want: []Shipping{{Tid: "1692089714634374451"}}},
		{name: "sub_tids as array of numbers", body: `{"code":0,"data":[{"tid":"1","sub_tids":[1692089714634374451,2]}]}`,
			want: []Shipping{{Tid: "1", SubTids: IDList{"1692089714634374451", "2"}}}},
		{name: "scalars of other types", body: `{"code":0,"data":[{"tid":"7","out_sid":1455858255,"is_quick_cod_order":"true","is_split":"1","withholding_money":"11","location":{"zip":310000}}]}`,
			want: []Shipping{{Tid: "7", OutSid: "1455858255", IsQuickCodOrder: true, IsSplit: 1, WithholdingMoney: 11, Location: &Location{Zip: "310000"}}}},
		{name: "location as empty array", body: `{"code":0,"data":[{"tid":"7","location":[]}]}`,
			want: []Shipping{{Tid: "7"}}},
		{name: "error code ignores data", body: `{"code":302,"msg":"未授权店铺","data":"https://example.invalid/auth?shop=1"}`, code: 302},
		{name: "error code as string", body: `{"code":"401","msg":"身份凭证无效"}`, code: 401},
		{name: "html page", body: `<html><body>502 Bad Gateway</body></html>`, wantErr: ErrBadResponse},
		{name: "truncated", body: `{"code":0,"data":[{"tid":"1"`, wantErr: ErrBadResponse},
		{name: "empty body", body: ``, wantErr: ErrBadResponse},
		{name: "no code", body: `{"msg":"ok","data":[]}`, wantErr: ErrBadResponse},
		{name: "not an object", body: `[1,2]`, wantErr: ErrBadResponse},
		{name: "data not a list", body: `{"code":0,"data":"oops"}`, wantErr: ErrBadResponse},
		{name: "tid as object", body: `{"code":0,"data":[{"tid":{"a":1}}]}`, wantErr: ErrBadResponse},
		{name: "invalid date", body: `{"code":0,"data":[{"tid":"1","created":"yesterday"}]}`, wantErr: ErrBadResponse},
		{name: "code with fraction truncated", body: `{"code":0.0,"data":[]}`},
		{name: "code as object", body: `{"code":{},"data":[]}`, wantErr: ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := decodeDetail([]byte(tt.body), 200, newRedactor(testToken))
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if Classify(err) != ClassTransient {
					t.Errorf("class %v, want transient", Classify(err))
				}
			case tt.code != 0:
				var ae *APIError
				if !errors.As(err, &ae) || ae.Code != tt.code {
					t.Fatalf("err = %v, want *APIError code %d", err, tt.code)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !reflect.DeepEqual(resp.Data, tt.want) {
					t.Errorf("data\n got %+v\nwant %+v", resp.Data, tt.want)
				}
			}
		})
	}
}

func TestAPIErrorKeepsAuthorisationLink(t *testing.T) {
	_, err := decodeDetail([]byte(`{"code":302,"msg":"未授权店铺","data":"https://example.invalid/auth?shop=1"}`), 200, redactor{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Data != "https://example.invalid/auth?shop=1" {
		t.Fatalf("err = %#v", err)
	}
	if ok, _ := regexp.MatchString(`shop not authorised.*https://example.invalid/auth\?shop=1`, err.Error()); !ok {
		t.Errorf("message %q does not give the link", err)
	}
}
