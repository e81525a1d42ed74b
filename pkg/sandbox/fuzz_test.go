package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedFile adds a testdata file to the corpus.
func seedFile(f *testing.F, name string) {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

// fuzzServe posts body to path on sb with a valid token and checks the answer is a
// JSON object with an integer errcode (or, for vv-tool, code).
func fuzzServe(t *testing.T, sb *Sandbox, path, contentType string, body []byte) {
	u := path + "?access_token=" + sb.IssueToken()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+DefaultVVToken)
	rec := httptest.NewRecorder()
	sb.ServeHTTP(rec, req)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not a JSON object: %q", rec.Body.Bytes())
	}
	key := "errcode"
	if path == "/tool/erps/detail" {
		key = "code"
	}
	var code int
	if _, isToken := m["access_token"]; !isToken {
		if err := json.Unmarshal(m[key], &code); err != nil {
			t.Fatalf("%s not an integer: %q", key, rec.Body.Bytes())
		}
	}
}

func FuzzWireID(f *testing.F) {
	for _, s := range []string{`"3704612354559743232"`, `3704612354559743232`, `12345678901234567890123`, `null`, `1.5`, `-1`, `1e3`, `true`, `{}`, `[]`, `"a\u0000b"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var id wireID
		if err := json.Unmarshal(b, &id); err != nil {
			return
		}
		if trimmed := bytes.TrimSpace(b); isDigits(trimmed) && string(id) != string(trimmed) {
			t.Fatalf("number %s decoded as %q", trimmed, id)
		}
		// Rendering and decoding again keeps the id.
		for _, numeric := range []bool{false, true} {
			var again wireID
			if err := json.Unmarshal(idJSON(string(id), numeric), &again); err != nil || again != id {
				t.Fatalf("idJSON(%q, %v) = %s: %v", id, numeric, idJSON(string(id), numeric), err)
			}
		}
	})
}

func FuzzDeliverySendRequest(f *testing.F) {
	seedFile(f, "delivery_send_request.json")
	seedFile(f, "delivery_send_course_request.json")
	f.Add([]byte(`{"order_id":3704612354559743232,"delivery_list":[{"delivery_id":"SF","waybill_id":"1","deliver_type":1,"product_infos":[{"product_cnt":1,"product_id":1,"sku_id":"2"}]}]}`))
	f.Add([]byte(`{"order_id":"3704612354559743232","delivery_list":null}`))
	sb := New(Config{Orders: 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := decodeSendRequest(b); err == nil {
			_ = req.orderIDs()
		}
		fuzzServe(t, sb, "/channels/ec/order/delivery/send", "application/json", b)
	})
}

func FuzzOrderListRequest(f *testing.F) {
	seedFile(f, "order_list_request.json")
	f.Add([]byte(`{"update_time_range":{"start_time":0,"end_time":604800},"status":20,"page_size":100}`))
	f.Add([]byte(`{"create_time_range":{"start_time":-5,"end_time":9223372036854775807}}`))
	f.Add([]byte(`{"update_time_range":{"start_time":-9223372036854775808,"end_time":9223372036854775807}}`))
	sb := New(Config{Orders: 20})
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := decodeListRequest(b); err == nil {
			_ = req.windowTooLong()
		}
		fuzzServe(t, sb, "/channels/ec/order/list/get", "application/json", b)
	})
}

func FuzzNextKey(f *testing.F) {
	f.Add("THE_NEXT_KEY")
	f.Add(listCursor{params: "abc", updateTime: 1658505600, orderID: "3704612354559743232"}.encode())
	f.Fuzz(func(t *testing.T, key string) {
		c, ok := parseNextKey(key)
		if !ok {
			return
		}
		if again, ok := parseNextKey(c.encode()); !ok || again != c {
			t.Fatalf("cursor %+v does not round-trip", c)
		}
	})
}

func FuzzOrderGetRequest(f *testing.F) {
	f.Add([]byte(`{"order_id":"3704612354559743232"}`))
	f.Add([]byte(`{"order_id":3704612354559743232}`))
	sb := New(Config{Orders: 2, Faults: FaultMix{NumericIDs: .5}})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeOrderGetRequest(b)
		fuzzServe(t, sb, "/channels/ec/order/get", "application/json", b)
	})
}

func FuzzBatchGetOrderRequest(f *testing.F) {
	seedFile(f, "batchget_request.json")
	f.Add([]byte(`{"order_list":[{"order_id":3704612354559743232,"delivery_id":"SF"}]}`))
	sb := New(Config{Orders: 2, Faults: FaultMix{Cancelled: .5}})
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := decodeBatchRequest(b); err == nil && len(req.orderIDs()) != len(req.OrderList) {
			t.Fatal("orderIDs length")
		}
		fuzzServe(t, sb, "/cgi-bin/express/business/order/batchget", "application/json", b)
	})
}

func FuzzGetOrderRequest(f *testing.F) {
	seedFile(f, "getorder_request.json")
	sb := New(Config{Orders: 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeWaybillQuery(b)
		fuzzServe(t, sb, "/cgi-bin/express/business/order/get", "application/json", b)
	})
}

func FuzzStableTokenRequest(f *testing.F) {
	f.Add([]byte(`{"grant_type":"client_credential","appid":"wxsandboxappid","secret":"sandbox-app-secret","force_refresh":false}`))
	f.Add([]byte(`{"force_refresh":"true"}`))
	sb := New(Config{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeStableTokenRequest(b)
		fuzzServe(t, sb, "/cgi-bin/stable_token", "application/json", b)
	})
}

func FuzzVVToolDetailForm(f *testing.F) {
	f.Add("multipart/form-data; boundary=X", []byte("--X\r\nContent-Disposition: form-data; name=\"shop_id\"\r\n\r\n1001\r\n--X\r\nContent-Disposition: form-data; name=\"fields\"\r\n\r\ntid,sub_tids,created\r\n--X--\r\n"))
	f.Add("application/x-www-form-urlencoded", []byte("shop_id=1001&fields=tid&page_no=2&page_size=100&start_created=2021-04-01+00%3A00%3A00&tid=1692089714634374451"))
	f.Add("text/plain", []byte("fields:tid\nshop_id:123"))
	f.Add("application/x-www-form-urlencoded", []byte("shop_id=1001&fields=tid&page_no=9223372036854775807&page_size=100"))
	sb := New(Config{VVShippingsPerShop: 5})
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		if form, err := parseDetailForm(contentType, body); err == nil {
			if p, code, _ := parseDetailParams(form); code == 0 && (p.pageNo < 1 || p.pageSize < 1 || p.pageSize > vvMaxPageSize) {
				t.Fatalf("accepted paging %d/%d", p.pageNo, p.pageSize)
			}
		}
		if strings.ContainsAny(contentType, "\r\n") {
			return // not a valid header value
		}
		fuzzServe(t, sb, "/tool/erps/detail", contentType, body)
	})
}

// FuzzAppsBatchGetOrderIsolation posts any batchGetOrder body with the second app's
// token to a sandbox of two apps: every item answered 0 is one of its own orders.
func FuzzAppsBatchGetOrderIsolation(f *testing.F) {
	seedFile(f, "batchget_request.json")
	f.Add([]byte(`{"order_list":[{"order_id":"3704612354559743232","delivery_id":"SF"},{"order_id":3704612355559743233,"delivery_id":"SF"}]}`))
	f.Add([]byte(`{"order_list":[{"order_id":"3704612355559743232","delivery_id":"SF"},{"order_id":"3704612355559743232","delivery_id":"SF"}]}`))
	sb := New(Config{Apps: []App{{Orders: 2}, {Orders: 2}}})
	appB := DerivedAppID(1)
	f.Fuzz(func(t *testing.T, b []byte) {
		u := "/cgi-bin/express/business/order/batchget?access_token=" + sb.IssueAppToken(appB)
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, u, bytes.NewReader(b))
		rec := httptest.NewRecorder()
		sb.ServeHTTP(rec, req)
		var resp struct {
			OrderList []struct {
				Errcode int    `json:"errcode"`
				OrderID string `json:"order_id"`
			} `json:"order_list"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer is not a batchGetOrder object: %q", rec.Body.Bytes())
		}
		for _, it := range resp.OrderList {
			if o, _ := sb.Order(it.OrderID); it.Errcode == 0 && o.AppID != appB {
				t.Fatalf("app B got the waybill of order %q of app %q", it.OrderID, o.AppID)
			}
		}
	})
}
