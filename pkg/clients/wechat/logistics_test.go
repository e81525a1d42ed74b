package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestBatchGetOrderSize(t *testing.T) {
	queries := func(n int) []WaybillQuery {
		q := make([]WaybillQuery, n)
		for i := range q {
			q[i] = WaybillQuery{OrderID: fmt.Sprint(3704612354559743232 + i), DeliveryID: "SF"}
		}
		return q
	}
	tests := []struct {
		n         int
		wantErr   error
		wantCalls int // HTTP calls of any kind, token included
	}{
		{n: 101, wantErr: ErrBatchTooLarge, wantCalls: 0},
		{n: 1000, wantErr: ErrBatchTooLarge, wantCalls: 0},
		{n: 0, wantCalls: 0},
		{n: 100, wantCalls: 2}, // stable_token + batchget
		{n: 1, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			lr := newLeakRecorder(t)
			fts := newFakeTokenServer(t, lr)
			var cl callLog
			srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == EndpointStableToken.Path() {
					fts.ServeHTTP(w, r)
					return
				}
				writeJSON(w, 200, `{"errcode":0,"errmsg":"ok","order_list":[]}`)
			})
			src := NewStableTokenSource("wxappid", testSecret, WithTokenBaseURL(srv.URL))
			c := NewClient(src, WithBaseURL(srv.URL))
			_, err := c.BatchGetOrder(context.Background(), queries(tt.n))
			lr.record(err)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || Classify(err) != ClassPermanent {
					t.Errorf("got %v, want %v (permanent)", err, tt.wantErr)
				}
			} else if err != nil {
				t.Errorf("got %v", err)
			}
			if n := cl.count(""); n != tt.wantCalls {
				t.Errorf("%d HTTP calls, want %d", n, tt.wantCalls)
			}
		})
	}
}

// TestBatchGetOrderItems: per-item errcodes and cancelled waybills stay in the
// waybills; a whole-call errcode is an error.
func TestBatchGetOrderItems(t *testing.T) {
	lr := newLeakRecorder(t)
	answer := `{"errcode":0,"errmsg":"ok","order_list":[
		{"errcode":0,"errmsg":"ok","order_id":"A1","delivery_id":"SF","waybill_id":"W1","order_status":0},
		{"errcode":9300507,"errmsg":"waybill not found","order_id":"A2","delivery_id":"SF"},
		{"errcode":0,"errmsg":"ok","order_id":"A3","delivery_id":"SF","waybill_id":"W3","order_status":1}]}`
	srv := newServer(t, nil, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, answer) })
	wbs, err := staticClient(srv).BatchGetOrder(context.Background(), []WaybillQuery{{OrderID: "A1"}, {OrderID: "A2"}, {OrderID: "A3"}})
	lr.record(err)
	if err != nil || len(wbs) != 3 {
		t.Fatalf("got %d waybills, %v", len(wbs), err)
	}
	tests := []struct {
		i         int
		wantCode  int
		cancelled bool
	}{{0, 0, false}, {1, 9300507, false}, {2, 0, true}}
	for _, tt := range tests {
		w := wbs[tt.i]
		err := w.Err()
		lr.record(err)
		if Code(err) != tt.wantCode || w.Cancelled() != tt.cancelled {
			t.Errorf("waybill %s: Err %v, cancelled %v", w.OrderID, err, w.Cancelled())
		}
	}
	if Classify(wbs[1].Err()) != ClassPermanent {
		t.Errorf("item error class %v", Classify(wbs[1].Err()))
	}

	srv2 := newServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"errcode":-1,"errmsg":"system busy"}`)
	})
	_, err = staticClient(srv2).BatchGetOrder(context.Background(), []WaybillQuery{{OrderID: "A1"}})
	lr.record(err)
	if Code(err) != -1 || Classify(err) != ClassTransient {
		t.Errorf("whole-call error %v", err)
	}
}
