package vvtool

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// capture is what the test server saw of one request.
type capture struct {
	method, path, auth, mediaType, cookie string
	form                                  map[string][]string
	files                                 int
	err                                   error
}

// captureServer answers the golden response and sends what it saw on the channel.
func captureServer(t *testing.T, seen chan<- capture) *Client {
	t.Helper()
	golden := readGolden(t, "detail_response.json")
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		c := capture{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), cookie: r.Header.Get("Cookie")}
		c.mediaType, _, c.err = mime.ParseMediaType(r.Header.Get("Content-Type"))
		if c.err == nil {
			c.err = r.ParseMultipartForm(1 << 20)
		}
		if c.err == nil {
			c.form = r.MultipartForm.Value
			c.files = len(r.MultipartForm.File)
		}
		seen <- c
		_, _ = w.Write(golden)
	})
	return newTestClient(srv)
}

func TestDetailSendsSeedRequest(t *testing.T) {
	seen := make(chan capture, 1)
	c := captureServer(t, seen)
	want := seedRequestForm(t)

	resp, err := c.Detail(context.Background(), DetailRequest{
		ShopID: want["shop_id"][0],
		Fields: strings.Split(want["fields"][0], ","),
	})
	if err != nil {
		t.Fatalf("Detail: %v", err)
	}
	if len(resp.Data) != 5 {
		t.Errorf("got %d shippings, want 5", len(resp.Data))
	}
	got := <-seen
	if got.err != nil {
		t.Fatalf("server could not parse the request: %v", got.err)
	}
	if got.method != http.MethodPost || got.path != DetailPath {
		t.Errorf("request %s %s, want POST %s", got.method, got.path, DetailPath)
	}
	if got.auth != "Bearer "+testToken {
		t.Errorf("Authorization %q, want Bearer <token>", got.auth)
	}
	if got.mediaType != "multipart/form-data" {
		t.Errorf("Content-Type %q, want multipart/form-data", got.mediaType)
	}
	if got.cookie != "" || got.files != 0 {
		t.Errorf("unexpected cookie %q or %d file parts", got.cookie, got.files)
	}
	if !reflect.DeepEqual(got.form, want) {
		t.Errorf("form fields\n got %q\nwant %q", got.form, want)
	}
}

func TestDetailRequestForm(t *testing.T) {
	utc := time.Date(2021, 3, 31, 16, 0, 0, 0, time.UTC) // 2021-04-01 00:00:00 in Shanghai
	tests := []struct {
		name string
		req  DetailRequest
		want map[string][]string
	}{
		{
			name: "nil fields are the defaults",
			req:  DetailRequest{ShopID: "1001"},
			want: map[string][]string{"shop_id": {"1001"}, "fields": {strings.Join(DefaultFields, ",")}},
		},
		{
			name: "empty fields are the defaults",
			req:  DetailRequest{ShopID: "1001", Fields: []string{}},
			want: map[string][]string{"shop_id": {"1001"}, "fields": {strings.Join(DefaultFields, ",")}},
		},
		{
			name: "paging",
			req:  DetailRequest{ShopID: "1001", Fields: []string{"tid"}, PageNo: 3, PageSize: 100},
			want: map[string][]string{"shop_id": {"1001"}, "fields": {"tid"}, "page_no": {"3"}, "page_size": {"100"}},
		},
		{
			name: "dates are sent in Asia/Shanghai",
			req: DetailRequest{ShopID: "1001", Fields: []string{"tid", "status"},
				StartCreated: utc, EndCreated: utc.Add(36*time.Hour + 30*time.Minute + 5*time.Second)},
			want: map[string][]string{"shop_id": {"1001"}, "fields": {"tid,status"},
				"start_created": {"2021-04-01 00:00:00"}, "end_created": {"2021-04-02 12:30:05"}},
		},
		{
			name: "a date already in Shanghai is unchanged",
			req: DetailRequest{ShopID: "1001", Fields: []string{"tid"},
				StartCreated: time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))},
			want: map[string][]string{"shop_id": {"1001"}, "fields": {"tid"}, "start_created": {"2000-01-01 00:00:00"}},
		},
		{
			name: "tid and status",
			req:  DetailRequest{ShopID: "1002", Fields: []string{"tid"}, Tid: "1692089714634374451", Status: "CLOSED"},
			want: map[string][]string{"shop_id": {"1002"}, "fields": {"tid"}, "tid": {"1692089714634374451"}, "status": {"CLOSED"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := make(chan capture, 1)
			c := captureServer(t, seen)
			if _, err := c.Detail(context.Background(), tt.req); err != nil {
				t.Fatalf("Detail: %v", err)
			}
			got := <-seen
			if got.err != nil {
				t.Fatal(got.err)
			}
			if !reflect.DeepEqual(got.form, tt.want) {
				t.Errorf("form\n got %q\nwant %q", got.form, tt.want)
			}
		})
	}
}

func TestDetailRefusesInvalidRequest(t *testing.T) {
	var calls atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	c := newTestClient(srv)
	day := time.Date(2021, 4, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		req  DetailRequest
	}{
		{"no shop", DetailRequest{}},
		{"blank shop", DetailRequest{ShopID: "  "}},
		{"negative page", DetailRequest{ShopID: "1", PageNo: -1}},
		{"negative page size", DetailRequest{ShopID: "1", PageSize: -1}},
		{"end before start", DetailRequest{ShopID: "1", StartCreated: day, EndCreated: day.Add(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Detail(context.Background(), tt.req)
			if !errors.Is(err, ErrInvalidRequest) || Classify(err) != ClassPermanent {
				t.Errorf("err %v (class %v), want ErrInvalidRequest, permanent", err, Classify(err))
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d HTTP calls for invalid requests", n)
	}
}
