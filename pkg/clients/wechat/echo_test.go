package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEchoedTokenNeverDecoded: a platform or proxy that echoes the URL in
// an errmsg or a per-item errmsg must not hand the token to the caller in
// any decoded field (the pipeline stores errmsg in failed events).
func TestEchoedTokenNeverDecoded(t *testing.T) {
	const tok = "ECHOED_token_0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.RawQuery
		if strings.Contains(r.URL.Path, "batchget") {
			fmt.Fprintf(w, `{"errcode":0,"order_list":[{"errcode":9300507,"errmsg":"no waybill for %s","order_id":"1"}]}`, q)
			return
		}
		fmt.Fprintf(w, `{"errcode":40097,"errmsg":"bad request %s token %s"}`, q, tok)
	}))
	defer srv.Close()
	c := NewClient(StaticToken(tok), WithBaseURL(srv.URL))

	err := c.SendDelivery(context.Background(), SendDeliveryRequest{OrderID: "1"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 40097 {
		t.Fatalf("got %v, want errcode 40097", err)
	}
	if strings.Contains(ae.Msg, tok) || strings.Contains(err.Error(), tok) {
		t.Errorf("APIError carries the token: %q", ae.Msg)
	}
	ws, err := c.BatchGetOrder(context.Background(), []WaybillQuery{{OrderID: "1", DeliveryID: "SF"}})
	if err != nil || len(ws) != 1 {
		t.Fatalf("got %v, %v", ws, err)
	}
	if strings.Contains(ws[0].Errmsg, tok) {
		t.Errorf("per-item errmsg carries the token: %q", ws[0].Errmsg)
	}
}
