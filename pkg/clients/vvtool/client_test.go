package vvtool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pagingServer serves total shippings of one shop, tids "1".."total", honouring
// page_no and page_size (default 40) like the platform, and records the pages asked.
func pagingServer(t *testing.T, total int) (*Client, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var asked []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		no, _ := strconv.Atoi(r.FormValue("page_no"))
		size, _ := strconv.Atoi(r.FormValue("page_size"))
		no, size = max(no, 1), orDefault(size, 40)
		mu.Lock()
		asked = append(asked, fmt.Sprintf("%s/%d/%d", r.FormValue("shop_id"), no, size))
		mu.Unlock()
		data := []map[string]any{}
		for i := (no-1)*size + 1; i <= min(no*size, total); i++ {
			data = append(data, map[string]any{"tid": strconv.Itoa(i), "sub_tids": map[string]any{"number": []string{strconv.Itoa(i)}}, "status": "CLOSED"})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"code": 0, "msg": "操作成功", "data": data})
	})
	return newTestClient(srv), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), asked...)
	}
}

func orDefault(v, def int) int {
	if v < 1 {
		return def
	}
	return v
}

func TestDetailAll(t *testing.T) {
	tests := []struct {
		name      string
		total     int
		req       DetailRequest
		wantPages []string
	}{
		{"three pages, last short", 95, DetailRequest{ShopID: "1001"}, []string{"1001/1/40", "1001/2/40", "1001/3/40"}},
		{"exact multiple ends on an empty page", 80, DetailRequest{ShopID: "1001"}, []string{"1001/1/40", "1001/2/40", "1001/3/40"}},
		{"page size 100", 150, DetailRequest{ShopID: "1002", PageSize: 100}, []string{"1002/1/100", "1002/2/100"}},
		{"from page 2", 95, DetailRequest{ShopID: "1001", PageNo: 2}, []string{"1001/2/40", "1001/3/40"}},
		{"empty shop", 0, DetailRequest{ShopID: "1001"}, []string{"1001/1/40"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, asked := pagingServer(t, tt.total)
			var tids []ID
			err := c.DetailAll(context.Background(), tt.req, func(s Shipping) error {
				tids = append(tids, s.Tid)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			first := max(tt.req.PageNo, 1)
			size := orDefault(tt.req.PageSize, 40)
			wantN := max(tt.total-(first-1)*size, 0)
			if len(tids) != wantN {
				t.Fatalf("got %d shippings, want %d", len(tids), wantN)
			}
			for i, tid := range tids {
				if want := ID(strconv.Itoa((first-1)*size + i + 1)); tid != want {
					t.Fatalf("shipping %d: tid %s, want %s", i, tid, want)
				}
			}
			if got := asked(); fmt.Sprint(got) != fmt.Sprint(tt.wantPages) {
				t.Errorf("pages asked %v, want %v", got, tt.wantPages)
			}
		})
	}
}

func TestDetailAllStops(t *testing.T) {
	stop := errors.New("stop")
	c, asked := pagingServer(t, 95)
	n := 0
	err := c.DetailAll(context.Background(), DetailRequest{ShopID: "1001"}, func(s Shipping) error {
		if n++; n == 50 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || len(asked()) != 2 {
		t.Errorf("err %v after %d pages, want stop after 2", err, len(asked()))
	}

	// An error page stops the walk with the platform's error.
	var calls atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, `{"code":302,"msg":"未授权店铺"}`)
	})
	err = newTestClient(srv).DetailAll(context.Background(), DetailRequest{ShopID: "9"}, func(Shipping) error { return nil })
	if Code(err) != CodeShopNotAuthorised || calls.Load() != 1 {
		t.Errorf("err %v after %d calls", err, calls.Load())
	}

	// A server that ignores page_no would make the walk loop on paid calls.
	calls.Store(0)
	page := `{"code":0,"data":[` + `{"tid":"1"},{"tid":"2"}` + `]}`
	srv = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, page)
	})
	err = newTestClient(srv).DetailAll(context.Background(), DetailRequest{ShopID: "9", PageSize: 2}, func(Shipping) error { return nil })
	if !errors.Is(err, ErrBadResponse) || calls.Load() != 2 {
		t.Errorf("repeated page: err %v after %d calls", err, calls.Load())
	}
}

func TestObserver(t *testing.T) {
	bodies := []struct {
		status int
		body   string
		code   int
	}{
		{200, `{"code":0,"data":[]}`, 0},
		{200, `{"code":401,"msg":"身份凭证无效"}`, 401},
		{200, `<html>`, CodeFailure},
		{503, `busy`, CodeFailure},
		{503, `{"code":202}`, 202},
	}
	var next atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b := bodies[next.Load()]
		w.WriteHeader(b.status)
		_, _ = w.Write([]byte(b.body))
	})
	var got []int
	c := newTestClient(srv, WithObserver(func(code int, d time.Duration) {
		if d <= 0 {
			t.Errorf("duration %v", d)
		}
		got = append(got, code)
	}))
	for i := range bodies {
		next.Store(int32(i))
		_, _ = c.Detail(context.Background(), DetailRequest{ShopID: "1"})
	}
	closed := newServer(t, func(http.ResponseWriter, *http.Request) {})
	closed.Close()
	c = NewClient(testToken, WithBaseURL(closed.URL), WithObserver(func(code int, _ time.Duration) { got = append(got, code) }))
	_, _ = c.Detail(context.Background(), DetailRequest{ShopID: "1"})
	want := []int{0, 401, CodeFailure, CodeFailure, 202, CodeFailure}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", got, want)
	}
}

// TestFailedCallsReleaseTheLimiter: every call, failed or not, gives its grant back.
func TestFailedCallsReleaseTheLimiter(t *testing.T) {
	closed := newServer(t, func(http.ResponseWriter, *http.Request) {})
	closed.Close()
	bad := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, `{"code":202}`) })
	l := NewLimiterMargin(1, time.Millisecond, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, base := range []string{closed.URL, bad.URL, closed.URL, bad.URL} {
		_, err := NewClient(testToken, WithBaseURL(base), WithLimiter(l)).Detail(ctx, DetailRequest{ShopID: "1"})
		if Classify(err) != ClassTransient || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v: a grant was not released", err)
		}
	}
}
