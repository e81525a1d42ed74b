package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/rs/zerolog"
)

func TestDecodeOrderRequest(t *testing.T) {
	const okProducts = `"products":[{"product_id":"p1","sku_id":"s1","product_cnt":1}]`
	tests := []struct {
		name      string
		body      string
		wantField string // field named on error
		wantMsg   string // substring of the error; "" with wantField "" means accepted
	}{
		{"valid", `{"order_id":"3704612354559743232","delivery_id":"SF",` + okProducts + `}`, "", ""},
		{"valid with waybill", `{"order_id":"A-1_b","delivery_id":"SF","waybill_id":"SF123",` + okProducts + `}`, "", ""},
		{"valid with surrounding whitespace", " \n\t{\"order_id\":\"1\",\"delivery_id\":\"SF\"," + okProducts + "}\n ", "", ""},
		{"valid with two products", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":1},{"product_id":"p2","sku_id":"s2","product_cnt":9}]}`, "", ""},

		{"empty body", ``, "", "malformed JSON"},
		{"not JSON", `order_id=1`, "", "malformed JSON"},
		{"truncated", `{"order_id":"1"`, "", "malformed JSON"},
		{"syntax error", `{"order_id":"1",}`, "", "malformed JSON"},
		{"array body", `[]`, "", "object"},
		{"string body", `"x"`, "", "object"},
		{"null body", `null`, "order_id", "empty"},
		{"empty object", `{}`, "order_id", "empty"},
		{"order_id missing", `{"delivery_id":"SF",` + okProducts + `}`, "order_id", "empty"},
		{"order_id empty", `{"order_id":"","delivery_id":"SF",` + okProducts + `}`, "order_id", "empty"},
		{"order_id as number", `{"order_id":3704612354559743232,"delivery_id":"SF",` + okProducts + `}`, "order_id", "string"},
		{"order_id as float", `{"order_id":3.7e18,"delivery_id":"SF",` + okProducts + `}`, "order_id", "string"},
		{"order_id as bool", `{"order_id":true,"delivery_id":"SF",` + okProducts + `}`, "order_id", "string"},
		{"order_id float-looking string", `{"order_id":"3.7e18","delivery_id":"SF",` + okProducts + `}`, "order_id", "[A-Za-z0-9_-]"},
		{"order_id with dot", `{"order_id":"123.456","delivery_id":"SF",` + okProducts + `}`, "order_id", "'.'"},
		{"order_id wildcard", `{"order_id":">","delivery_id":"SF",` + okProducts + `}`, "order_id", "invalid order id"},
		{"order_id star", `{"order_id":"*","delivery_id":"SF",` + okProducts + `}`, "order_id", "invalid order id"},
		{"order_id space", `{"order_id":"1 2","delivery_id":"SF",` + okProducts + `}`, "order_id", "invalid order id"},
		{"order_id unicode", `{"order_id":"订单1","delivery_id":"SF",` + okProducts + `}`, "order_id", "invalid order id"},
		{"order_id too long", `{"order_id":"` + strings.Repeat("1", events.MaxOrderIDLen+1) + `","delivery_id":"SF",` + okProducts + `}`, "order_id", "longer"},
		{"delivery_id missing", `{"order_id":"1",` + okProducts + `}`, "delivery_id", "delivery_id"},
		{"delivery_id number", `{"order_id":"1","delivery_id":5,` + okProducts + `}`, "delivery_id", "string"},
		{"products missing", `{"order_id":"1","delivery_id":"SF"}`, "products", "products"},
		{"products empty", `{"order_id":"1","delivery_id":"SF","products":[]}`, "products", "products"},
		{"products null", `{"order_id":"1","delivery_id":"SF","products":null}`, "products", "products"},
		{"products object", `{"order_id":"1","delivery_id":"SF","products":{"product_id":"p"}}`, "products", "array"},
		{"product_cnt 0", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":0}]}`, "products[0]", "product_cnt"},
		{"product_cnt missing", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1"}]}`, "products[0]", "product_cnt"},
		{"product_cnt negative", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":-1}]}`, "products[0]", "product_cnt"},
		{"product_cnt fraction", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":1.5}]}`, "products.product_cnt", "integer"},
		{"product_cnt string", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":"1"}]}`, "products.product_cnt", "integer"},
		{"second product bad", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":1},{"product_id":"p2","product_cnt":1}]}`, "products[1]", "sku_id"},
		{"product null", `{"order_id":"1","delivery_id":"SF","products":[null]}`, "products[0]", "product_id"},
		{"unknown field", `{"order_id":"1","delivery_id":"SF","priority":"high",` + okProducts + `}`, "priority", "unknown field"},
		{"unknown nested field", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":1,"price":3}]}`, "price", "unknown field"},
		{"trailing object", `{"order_id":"1","delivery_id":"SF",` + okProducts + `} {}`, "", "trailing data"},
		{"trailing garbage", `{"order_id":"1","delivery_id":"SF",` + okProducts + `}x`, "", "malformed JSON"},
		{"trailing number", `{"order_id":"1","delivery_id":"SF",` + okProducts + `} 1`, "", "trailing data"},
		{"key in upper case", `{"ORDER_ID":"1","delivery_id":"SF",` + okProducts + `}`, "ORDER_ID", "case-sensitive"},
		{"nested key in mixed case", `{"order_id":"1","delivery_id":"SF","products":[{"Product_ID":"p1","sku_id":"s1","product_cnt":1}]}`, "Product_ID", "case-sensitive"},
		{"duplicate key", `{"order_id":"1","order_id":"2","delivery_id":"SF",` + okProducts + `}`, "order_id", "twice"},
		{"duplicate nested key", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","sku_id":"s2","product_cnt":1}]}`, "sku_id", "twice"},
		{"NUL in delivery_id", `{"order_id":"1","delivery_id":"S\u0000F",` + okProducts + `}`, "delivery_id", "control character"},
		{"invalid UTF-8 in delivery_id", "{\"order_id\":\"1\",\"delivery_id\":\"S\xffF\"," + okProducts + "}", "", "not valid UTF-8"},
		{"delivery_id of a megabyte", `{"order_id":"1","delivery_id":"` + strings.Repeat("S", 1<<20-200) + `",` + okProducts + `}`, "delivery_id", "at most 64"},
		{"waybill_id too long", `{"order_id":"1","delivery_id":"SF","waybill_id":"` + strings.Repeat("9", 65) + `",` + okProducts + `}`, "waybill_id", "at most 64"},
		{"product_cnt over the bound", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":100001}]}`, "products[0]", "product_cnt"},
		{"201 products", `{"order_id":"1","delivery_id":"SF","products":[` + strings.TrimSuffix(strings.Repeat(`{"product_id":"p1","sku_id":"s1","product_cnt":1},`, 201), ",") + `]}`, "products", "201 lines"},
		{"order_id non-ASCII names the character", `{"order_id":"A订单","delivery_id":"SF",` + okProducts + `}`, "order_id", "'订' at position 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, field, err := ingest.DecodeOrderRequest([]byte(tt.body))
			if tt.wantField == "" && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("DecodeOrderRequest(%s) = %v (field %q)", tt.body, err, field)
				}
				if req == nil || events.ValidateOrderID(req.OrderID) != nil || req.DeliveryID == "" || len(req.Products) == 0 {
					t.Fatalf("accepted request %+v is incomplete", req)
				}
				return
			}
			if err == nil {
				t.Fatalf("DecodeOrderRequest(%s) accepted %+v", tt.body, req)
			}
			if req != nil {
				t.Errorf("request returned with an error")
			}
			if field != tt.wantField {
				t.Errorf("field = %q, want %q (error %v)", field, tt.wantField, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestDecodeOrderRequestKeepsFields(t *testing.T) {
	req, _, err := ingest.DecodeOrderRequest([]byte(`{"order_id":"3704612354559743232","delivery_id":"ZTO","waybill_id":"W1","products":[{"product_id":"p","sku_id":"s","product_cnt":3}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := ingest.OrderRequest{OrderID: "3704612354559743232", DeliveryID: "ZTO", WaybillID: "W1",
		Products: []events.Product{{ProductID: "p", SkuID: "s", ProductCnt: 3}}}
	if req.OrderID != want.OrderID || req.DeliveryID != want.DeliveryID || req.WaybillID != want.WaybillID ||
		len(req.Products) != 1 || req.Products[0] != want.Products[0] {
		t.Errorf("got %+v, want %+v", req, want)
	}
}

// KNOWN BUG A1: dec.More() is false before ']' and '}', so a body with a
// stray closing bracket after the object is accepted.
func TestDecodeOrderRequestRejectsTrailingBrackets(t *testing.T) {
	for _, tail := range []string{"]", "}", " ]]]", "}{"} {
		body := `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p1","sku_id":"s1","product_cnt":1}]}` + tail
		if req, _, err := ingest.DecodeOrderRequest([]byte(body)); err == nil {
			t.Errorf("accepted %q as %+v", body, req)
		}
	}
}

func TestAPIAccepts(t *testing.T) {
	a := startAPI(t)
	const id = "3704612354559743232"
	body := []byte(`{"order_id":"3704612354559743232","delivery_id":"SF","waybill_id":"SF99","products":[{"product_id":"p1","sku_id":"s1","product_cnt":2}]}`)
	r := a.post(t, "Bearer "+testToken, body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var out ingest.OrderResponse
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(out.EventID); err != nil || out.OrderID != id || out.Duplicate {
		t.Fatalf("response %+v", out)
	}
	if n := a.msgs(t, subjectOf(id)); n != 1 {
		t.Fatalf("%d messages on %s, want 1", n, subjectOf(id))
	}
	m, err := a.Stream.GetLastMsgForSubject(t.Context(), subjectOf(id))
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Decode(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if env.ID != out.EventID || env.Source != events.SourceAPI || env.OrderID != id || env.Stage() != events.StageReceived {
		t.Errorf("stored envelope %+v does not match response %+v", env, out)
	}
	if m.Header.Get(jetstream.MsgIDHeader) == "" {
		t.Errorf("stored message has no Nats-Msg-Id")
	}
	var rcv events.Received
	if err := env.DecodeData(&rcv); err != nil {
		t.Fatal(err)
	}
	if rcv.DeliveryID != "SF" || rcv.WaybillID != "SF99" || len(rcv.Products) != 1 || rcv.Products[0].ProductCnt != 2 {
		t.Errorf("stored payload %+v", rcv)
	}
	// The order id travels as a string in the stored bytes.
	if !bytes.Contains(m.Data, []byte(`"order_id":"3704612354559743232"`)) {
		t.Errorf("stored body does not carry the order id as a string: %s", m.Data)
	}
}

func TestAPIIdempotent(t *testing.T) {
	a := startAPI(t)
	first := a.postOK(t, orderBody("A-100"))
	second := a.postOK(t, orderBody("A-100"))
	if first.Duplicate || !second.Duplicate {
		t.Errorf("duplicate flags: first %v, second %v; want false, true", first.Duplicate, second.Duplicate)
	}
	if first.EventID != second.EventID {
		t.Errorf("same order got event ids %s and %s", first.EventID, second.EventID)
	}
	// A different body for the same order is refused with the event
	// that stands: the first one.
	b := bytes.Replace(orderBody("A-100"), []byte(`"SF"`), []byte(`"YTO"`), 1)
	res := a.post(t, "Bearer "+testToken, b)
	var conflict ingest.APIError
	if err := json.Unmarshal(res.Body, &conflict); err != nil || res.Status != http.StatusConflict || conflict.EventID != first.EventID {
		t.Errorf("changed body for the same order: %d %s; want 409 naming event %s", res.Status, res.Body, first.EventID)
	}
	if n := a.msgs(t, subjectOf("A-100")); n != 1 {
		t.Errorf("%d messages on %s after three posts, want 1", n, subjectOf("A-100"))
	}
	// Another order is another event.
	other := a.postOK(t, orderBody("A-101"))
	if other.EventID == first.EventID || other.Duplicate {
		t.Errorf("another order: %+v", other)
	}
	if n := a.msgs(t, ""); n != 2 {
		t.Errorf("%d messages in the stream, want 2", n)
	}
}

// Concurrent posts of one new order race each other; the stream must keep
// exactly one message, every answer name it, and exactly one say it was
// the first.
func TestAPIIdempotentConcurrent(t *testing.T) {
	a := startAPI(t)
	const n = 16
	ids := make([]string, n)
	dups := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, a.URL+"/v1/orders", bytes.NewReader(orderBody("RACE-1")))
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var out ingest.OrderResponse
			if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&out) != nil {
				t.Errorf("status %d", resp.StatusCode)
				return
			}
			ids[i], dups[i] = out.EventID, out.Duplicate
		})
	}
	wg.Wait()
	// Exactly one of them took the order in: the answer is exact.
	if first := slices.Index(dups, false); first < 0 || slices.Index(dups[first+1:], false) >= 0 {
		t.Errorf("duplicate flags %v: want exactly one false", dups)
	}
	for i := 1; i < n; i++ {
		if ids[i] != ids[0] {
			t.Fatalf("concurrent posts got different event ids: %v", ids)
		}
	}
	if got := a.msgs(t, subjectOf("RACE-1")); got != 1 {
		t.Fatalf("%d messages on %s after %d concurrent posts, want 1", got, subjectOf("RACE-1"), n)
	}
}

func TestAPIUnauthorized(t *testing.T) {
	a := startAPI(t)
	for _, auth := range []string{
		"",
		"Bearer",
		"Bearer ",
		"Bearer wrong",
		"Bearer " + testToken + "x",
		"Bearer " + testToken[:len(testToken)-1],
		"Bearer  " + testToken,
		"Basic " + testToken,
		testToken,
		"Token " + testToken,
	} {
		t.Run(fmt.Sprintf("%q", auth), func(t *testing.T) {
			r := a.post(t, auth, orderBody("U-1"))
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.Status, r.Body)
			}
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
			}
			var e ingest.APIError
			if err := json.Unmarshal(r.Body, &e); err != nil || e.Error == "" {
				t.Errorf("401 body %q is not a JSON error", r.Body)
			}
			if bytes.Contains(r.Body, []byte(testToken)) {
				t.Errorf("401 body echoes the token")
			}
		})
	}
	// A huge body without a token is refused for the token, not read.
	r := a.post(t, "", bytes.Repeat([]byte("x"), ingest.MaxBodyBytes+10))
	if r.Status != http.StatusUnauthorized {
		t.Errorf("unauthorised huge body: status %d, want 401", r.Status)
	}
	if n := a.msgs(t, ""); n != 0 {
		t.Errorf("%d messages published for refused requests", n)
	}
}

func TestAPIBadRequest(t *testing.T) {
	a := startAPI(t)
	tests := []struct {
		name, body, field string
	}{
		{"malformed JSON", `{"order_id":`, ""},
		{"missing order_id", `{"delivery_id":"SF","products":[{"product_id":"p","sku_id":"s","product_cnt":1}]}`, "order_id"},
		{"order_id as number", `{"order_id":3704612354559743232,"delivery_id":"SF","products":[{"product_id":"p","sku_id":"s","product_cnt":1}]}`, "order_id"},
		{"order_id with dot", `{"order_id":"1.5","delivery_id":"SF","products":[{"product_id":"p","sku_id":"s","product_cnt":1}]}`, "order_id"},
		{"missing delivery_id", `{"order_id":"1","products":[{"product_id":"p","sku_id":"s","product_cnt":1}]}`, "delivery_id"},
		{"missing products", `{"order_id":"1","delivery_id":"SF"}`, "products"},
		{"product_cnt 0", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p","sku_id":"s","product_cnt":0}]}`, "products[0]"},
		{"unknown field", `{"order_id":"1","delivery_id":"SF","note":"x","products":[{"product_id":"p","sku_id":"s","product_cnt":1}]}`, "note"},
		{"two documents", `{"order_id":"1","delivery_id":"SF","products":[{"product_id":"p","sku_id":"s","product_cnt":1}]}{}`, ""},
		{"empty body", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.post(t, "Bearer "+testToken, []byte(tt.body))
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var raw map[string]any
			if err := json.Unmarshal(r.Body, &raw); err != nil {
				t.Fatalf("400 body %q is not JSON: %v", r.Body, err)
			}
			msg, _ := raw["error"].(string)
			if msg == "" {
				t.Errorf("400 body %s has no error", r.Body)
			}
			field, _ := raw["field"].(string)
			if field != tt.field {
				t.Errorf("field = %q, want %q (body %s)", field, tt.field, r.Body)
			}
			if tt.field != "" && !strings.Contains(msg, strings.TrimSuffix(tt.field, "[0]")) && !strings.Contains(msg, "order id") && !strings.Contains(msg, "product_cnt") {
				t.Errorf("error %q does not name the field %s", msg, tt.field)
			}
		})
	}
	if n := a.msgs(t, ""); n != 0 {
		t.Errorf("%d messages published for refused requests", n)
	}
}

func TestAPIBodyLimit(t *testing.T) {
	a := startAPI(t)
	// A valid order padded with whitespace to exactly the limit is fine.
	body := orderBody("BIG-1")
	exact := append(append([]byte{}, body...), bytes.Repeat([]byte(" "), ingest.MaxBodyBytes-len(body))...)
	if got := a.postOK(t, exact); got.OrderID != "BIG-1" {
		t.Fatalf("body of exactly %d bytes: %+v", ingest.MaxBodyBytes, got)
	}
	// One byte more is 413, whatever it holds.
	for name, b := range map[string][]byte{
		"padded valid order": append(append([]byte{}, body...), bytes.Repeat([]byte(" "), ingest.MaxBodyBytes-len(body)+1)...),
		"2 MiB of products":  []byte(`{"order_id":"BIG-2","delivery_id":"SF","products":[` + strings.Repeat(`{"product_id":"p","sku_id":"s","product_cnt":1},`, (2<<20)/48) + `{"product_id":"p","sku_id":"s","product_cnt":1}]}`),
	} {
		t.Run(name, func(t *testing.T) {
			r := a.post(t, "Bearer "+testToken, b)
			if r.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d-byte body: status %d, want 413: %.200s", len(b), r.Status, r.Body)
			}
			var e ingest.APIError
			if err := json.Unmarshal(r.Body, &e); err != nil || e.Error == "" {
				t.Errorf("413 body %q is not a JSON error", r.Body)
			}
		})
	}
	if n := a.msgs(t, subjectOf("BIG-2")); n != 0 {
		t.Errorf("over-limit order was published")
	}
	if n := a.msgs(t, ""); n != 1 {
		t.Errorf("%d messages, want only the exact-limit order", n)
	}
}

func TestAPIRoutes(t *testing.T) {
	a := startAPI(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/v1/orders", http.StatusMethodNotAllowed},
		{http.MethodPut, "/v1/orders", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/order", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusNotFound},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, a.URL+tc.path, bytes.NewReader(orderBody("R-1")))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	if n := a.msgs(t, ""); n != 0 {
		t.Errorf("%d messages published by wrong routes", n)
	}
}

// KNOWN BUG A2: postOrder publishes with r.Context(), which has no deadline,
// and Publisher retries until its context ends; when JetStream cannot store
// the order (stream deleted, no quorum) the request hangs until the client
// gives up instead of answering 503 "retry".
func TestAPIAnswers503WhenTheStreamIsGone(t *testing.T) {
	a := startAPI(t)
	if err := a.JS.DeleteStream(t.Context(), events.StreamName); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+"/v1/orders", bytes.NewReader(orderBody("G-1")))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
}

// A body that stops arriving is answered 400 without the error's socket
// addresses (this server's and the client's).
func TestAPISlowBodyErrorNamesNoAddresses(t *testing.T) {
	_, js, stream := jstest.StartStream(t)
	in := ingest.NewIngester(stream, pipeline.NewPublisher(js), time.Hour, zerolog.Nop(), service.NewMetrics())
	hs := httptest.NewUnstartedServer((&ingest.API{In: in, Token: testToken}).Handler())
	hs.Config.ReadTimeout = 300 * time.Millisecond
	hs.Start()
	t.Cleanup(hs.Close)
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 500\r\n\r\n{\"order_id\":", testToken)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "127.0.0.1") || !strings.Contains(string(body), "in time") {
		t.Fatalf("answer %d %s; want 400 saying the body did not arrive in time, without addresses", resp.StatusCode, body)
	}
}
