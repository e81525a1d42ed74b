package sandbox

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func benchHandler(b *testing.B, path, body string) {
	b.Helper()
	s := New(Config{Seed: 1, Orders: 1000})
	url := path + "?access_token=" + s.IssueToken()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, url, strings.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"errcode":0`)) {
			b.Fatalf("answer %d: %s", w.Code, w.Body.String())
		}
	}
}

func BenchmarkHandlerOrderGet(b *testing.B) {
	benchHandler(b, "/channels/ec/order/get", fmt.Sprintf(`{"order_id":"%d"}`, BaseOrderID))
}

func BenchmarkHandlerBatchGetOrder100(b *testing.B) {
	s := New(Config{Seed: 1, Orders: 100})
	var items []string
	for _, o := range s.Scenario() {
		items = append(items, fmt.Sprintf(`{"order_id":"%s","delivery_id":"%s"}`, o.OrderID, o.DeliveryID))
	}
	benchHandler(b, "/cgi-bin/express/business/order/batchget", `{"order_list":[`+strings.Join(items, ",")+`]}`)
}
