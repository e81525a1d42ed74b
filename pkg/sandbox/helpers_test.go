package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

// Paths of the endpoints (as the clients call them).
const (
	pathStableToken = "/cgi-bin/stable_token"
	pathToken       = "/cgi-bin/token"
	pathOrderList   = "/channels/ec/order/list/get"
	pathOrderGet    = "/channels/ec/order/get"
	pathSend        = "/channels/ec/order/delivery/send"
	pathBatchGet    = "/cgi-bin/express/business/order/batchget"
	pathGetOrder    = "/cgi-bin/express/business/order/get"
	pathVVDetail    = "/tool/erps/detail"
)

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a sandbox served by an httptest.Server with a settable clock.
type env struct {
	t     *testing.T
	sb    *sandbox.Sandbox
	srv   *httptest.Server
	clock *clock
}

// newEnv serves sandbox.New(cfg); cfg.Now defaults to a settable clock.
func newEnv(t *testing.T, cfg sandbox.Config) *env {
	t.Helper()
	e := &env{t: t, clock: newClock()}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	e.sb = sandbox.New(cfg)
	e.srv = httptest.NewServer(e.sb)
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request and returns the status and body.
func (e *env) do(ctx context.Context, method, path, token string, body []byte, header http.Header) (int, []byte) {
	e.t.Helper()
	u := e.srv.URL + path
	if token != "" {
		u += "?access_token=" + url.QueryEscape(token)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// post sends a JSON body (a string, []byte or a value to marshal) with the token.
func (e *env) post(path, token string, body any) (int, []byte) {
	e.t.Helper()
	return e.do(context.Background(), http.MethodPost, path, token, jsonBody(e.t, body), http.Header{"Content-Type": {"application/json"}})
}

// call posts a JSON body to a WeChat endpoint and decodes the 200 answer.
func (e *env) call(path, token string, body any) obj {
	e.t.Helper()
	st, b := e.post(path, token, body)
	if st != http.StatusOK {
		e.t.Fatalf("POST %s: HTTP %d %s", path, st, b)
	}
	return decodeObj(e.t, b)
}

// token gets an access_token from stable_token.
func (e *env) token() string {
	e.t.Helper()
	m := e.call(pathStableToken, "", stableBody(false))
	tok, _ := m["access_token"].(string)
	if tok == "" {
		e.t.Fatalf("stable_token: %v", m)
	}
	return tok
}

// vv posts a vv-tool detail request with the given form fields.
func (e *env) vv(token string, fields map[string]string) obj {
	e.t.Helper()
	body, ct := multipartBody(e.t, fields)
	h := http.Header{"Content-Type": {ct}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	st, b := e.do(context.Background(), http.MethodPost, pathVVDetail, "", body, h)
	if st != http.StatusOK {
		e.t.Fatalf("vv-tool: HTTP %d %s", st, b)
	}
	return decodeObj(e.t, b)
}

// stableBody is a stable_token body with the default credentials.
func stableBody(force bool) string {
	return fmt.Sprintf(`{"grant_type":"client_credential","appid":%q,"secret":%q,"force_refresh":%t}`,
		sandbox.DefaultAppID, sandbox.DefaultAppSecret, force)
}

// multipartBody encodes fields as multipart/form-data.
func multipartBody(t *testing.T, fields map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// jsonBody turns a string, []byte or value into a body.
func jsonBody(t *testing.T, body any) []byte {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return []byte(b)
	case []byte:
		return b
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// obj is a decoded JSON object; numbers are json.Number.
type obj = map[string]any

func decodeObj(t *testing.T, b []byte) obj {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m obj
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

// num reads an integer field (json.Number); -999999 when absent.
func num(m obj, key string) int {
	n, ok := m[key].(json.Number)
	if !ok {
		return -999999
	}
	i, err := n.Int64()
	if err != nil {
		return -999998
	}
	return int(i)
}

// errcode is the errcode of a WeChat answer.
func errcode(m obj) int { return num(m, "errcode") }

// readTestdata reads a testdata file.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendBody is a delivery/send body shipping every product of the order.
func sendBody(t *testing.T, sb *sandbox.Sandbox, orderID string) string {
	t.Helper()
	o, ok := sb.Order(orderID)
	if !ok {
		t.Fatalf("no order %s", orderID)
	}
	var prods []string
	for _, p := range o.Products {
		prods = append(prods, fmt.Sprintf(`{"product_cnt":%d,"product_id":%q,"sku_id":%q}`, p.SkuCnt, p.ProductID, p.SkuID))
	}
	return fmt.Sprintf(`{"order_id":%q,"delivery_list":[{"delivery_id":"SF","waybill_id":"SF123","deliver_type":1,"product_infos":[%s]}]}`,
		orderID, strings.Join(prods, ","))
}

// firstOrder is the id of the first generated order.
const firstOrder = "3704612354559743232"
