package sandbox_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

// vvFields is the seed's fields list.
const vvFields = "tid,order_code,seller_nick,buyer_nick,item_title,receiver_location,status,type,company_name,created,modified,is_quick_cod_order,sub_tids,is_split,receiver_location,receiver_name,receiver_phone,receiver_mobile,out_sid"

var vvDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)

func TestVVToolDetailPaging(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 2, VVShippingsPerShop: 50})
	seen := map[string]bool{}
	var sizes []int
	for page := 1; page <= 3; page++ {
		m := e.vv(sandbox.DefaultVVToken, map[string]string{
			"shop_id": "1001", "fields": vvFields, "page_no": strconv.Itoa(page), "page_size": "30",
		})
		if num(m, "code") != 0 || m["msg"] != "操作成功" || num(m, "time") != int(e.clock.Now().Unix()) {
			t.Fatalf("answer %v", m)
		}
		data := m["data"].([]any)
		sizes = append(sizes, len(data))
		var prevCreated string
		for i, d := range data {
			d := d.(obj)
			tid, ok := d["tid"].(string)
			if !ok || len(tid) != 19 || seen[tid] {
				t.Fatalf("tid %#v (string of 19 digits, unique)", d["tid"])
			}
			seen[tid] = true
			sub, ok := d["sub_tids"].(obj)
			if !ok {
				t.Fatalf("sub_tids %#v, want {\"number\":[…]}", d["sub_tids"])
			}
			if nums, _ := sub["number"].([]any); len(nums) == 0 || nums[0] != tid {
				t.Fatalf("sub_tids %v", sub)
			}
			for _, k := range []string{"created", "modified"} {
				if s, _ := d[k].(string); !vvDate.MatchString(s) {
					t.Fatalf("%s = %#v", k, d[k])
				}
			}
			if created := d["created"].(string); prevCreated != "" && created > prevCreated {
				t.Fatalf("not newest first: %s after %s", created, prevCreated)
			}
			prevCreated = d["created"].(string)
			if loc, ok := d["location"].(obj); !ok || loc["city"] == "" || loc["zip"] == "" {
				t.Fatalf("location %#v", d["location"])
			}
			if _, ok := d["is_quick_cod_order"].(bool); !ok {
				t.Fatalf("is_quick_cod_order %#v", d["is_quick_cod_order"])
			}
			if _, ok := d["withholding_money"]; ok != (i == 0) {
				t.Fatalf("withholding_money on item %d: %v", i, ok)
			}
		}
	}
	if want := []int{30, 20, 0}; sizes[0] != want[0] || sizes[1] != want[1] || sizes[2] != want[2] {
		t.Fatalf("page sizes %v, want %v", sizes, want)
	}
}

func TestVVToolDetailFilters(t *testing.T) {
	e := newEnv(t, sandbox.Config{Seed: 4, VVShippingsPerShop: 20})
	all := e.vv(sandbox.DefaultVVToken, map[string]string{"shop_id": "1002", "fields": "tid,status,created", "page_size": "100"})["data"].([]any)
	if len(all) != 20 {
		t.Fatalf("%d shippings, want 20", len(all))
	}
	pick := all[7].(obj)
	for _, d := range all {
		if _, ok := d.(obj)["buyer_nick"]; ok {
			t.Fatal("field not asked for was answered")
		}
	}
	tests := []struct {
		name   string
		fields map[string]string
		check  func(data []any) bool
	}{
		{"tid", map[string]string{"tid": pick["tid"].(string)}, func(d []any) bool {
			return len(d) == 1 && d[0].(obj)["tid"] == pick["tid"]
		}},
		{"status", map[string]string{"status": pick["status"].(string)}, func(d []any) bool {
			for _, x := range d {
				if x.(obj)["status"] != pick["status"] {
					return false
				}
			}
			return len(d) >= 1
		}},
		{"created window", map[string]string{"start_created": pick["created"].(string), "end_created": pick["created"].(string)}, func(d []any) bool {
			return len(d) >= 1 && d[0].(obj)["created"] == pick["created"]
		}},
		{"default page size 40", map[string]string{"page_size": "0"}, func(d []any) bool { return len(d) == 20 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := map[string]string{"shop_id": "1002", "fields": "tid,status,created"}
			for k, v := range tt.fields {
				f[k] = v
			}
			m := e.vv(sandbox.DefaultVVToken, f)
			if num(m, "code") != 0 || !tt.check(m["data"].([]any)) {
				t.Fatalf("answer %v", m)
			}
		})
	}
}

func TestVVToolDetailErrors(t *testing.T) {
	ok := map[string]string{"shop_id": "1001", "fields": vvFields}
	with := func(k, v string) map[string]string {
		m := map[string]string{"shop_id": "1001", "fields": vvFields}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		token  string
		fields map[string]string
		want   int
	}{
		{"ok", sandbox.DefaultVVToken, ok, 0},
		{"no token", "", ok, 401},
		{"wrong token", "73a1e6f00198e0c43215505dcf6e31a61be8daad", ok, 401},
		{"unknown shop", sandbox.DefaultVVToken, with("shop_id", "123"), 302},
		{"no shop", sandbox.DefaultVVToken, with("shop_id", ""), 100},
		{"no fields", sandbox.DefaultVVToken, with("fields", ""), 100},
		{"page_size 101", sandbox.DefaultVVToken, with("page_size", "101"), 100},
		{"page_size 100", sandbox.DefaultVVToken, with("page_size", "100"), 0},
		{"page_no text", sandbox.DefaultVVToken, with("page_no", "one"), 100},
		{"bad start_created", sandbox.DefaultVVToken, with("start_created", "2021-04-01T16:40:47Z"), 100},
		{"bad tid", sandbox.DefaultVVToken, with("tid", "P07"), 614},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{})
			m := e.vv(tt.token, tt.fields)
			if got := num(m, "code"); got != tt.want {
				t.Fatalf("code = %d, want %d (%v)", got, tt.want, m)
			}
			if tt.want != 0 && (m["msg"] == "" || m["data"] != nil) {
				t.Fatalf("error answer %v", m)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{})
		_, b := e.do(context.Background(), http.MethodGet, pathVVDetail, "", nil, http.Header{"Authorization": {"Bearer " + sandbox.DefaultVVToken}})
		if got := num(decodeObj(t, b), "code"); got != 404 {
			t.Fatalf("code = %d, want 404", got)
		}
	})
	t.Run("not a form", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{})
		_, b := e.do(context.Background(), http.MethodPost, pathVVDetail, "", []byte(`{"shop_id":"1001"}`),
			http.Header{"Authorization": {"Bearer " + sandbox.DefaultVVToken}, "Content-Type": {"application/json"}})
		if got := num(decodeObj(t, b), "code"); got != 100 {
			t.Fatalf("code = %d, want 100", got)
		}
	})
	t.Run("urlencoded form", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{})
		_, b := e.do(context.Background(), http.MethodPost, pathVVDetail, "", []byte("shop_id=1001&fields=tid"),
			http.Header{"Authorization": {"bearer " + sandbox.DefaultVVToken}, "Content-Type": {"application/x-www-form-urlencoded"}})
		if got := num(decodeObj(t, b), "code"); got != 0 {
			t.Fatalf("code = %d, want 0: %s", got, b)
		}
	})
}

func TestVVToolRateLimit(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	form := map[string]string{"shop_id": "1001", "fields": "tid"}
	var codes []int
	for range 11 { // the clock stands still: all in one second
		codes = append(codes, num(e.vv(sandbox.DefaultVVToken, form), "code"))
	}
	for i, c := range codes[:10] {
		if c != 0 {
			t.Fatalf("request %d: code %d", i+1, c)
		}
	}
	if codes[10] != 202 {
		t.Fatalf("11th request: code %d, want 202", codes[10])
	}
	st := e.sb.Stats()
	if st.VVRateViolations != 1 || st.VVMaxPerSecond != 11 {
		t.Fatalf("VVRateViolations = %d, VVMaxPerSecond = %d; want 1, 11", st.VVRateViolations, st.VVMaxPerSecond)
	}
	e.clock.Advance(time.Second)
	if c := num(e.vv(sandbox.DefaultVVToken, form), "code"); c != 0 {
		t.Fatalf("a second later: code %d", c)
	}
	// Ten per second, spread out, never trip it.
	e2 := newEnv(t, sandbox.Config{})
	for range 30 {
		if c := num(e2.vv(sandbox.DefaultVVToken, form), "code"); c != 0 {
			t.Fatalf("paced request: code %d", c)
		}
		e2.clock.Advance(100 * time.Millisecond)
	}
	if st := e2.sb.Stats(); st.VVRateViolations != 0 || st.VVMaxPerSecond != 10 {
		t.Fatalf("paced: VVRateViolations = %d, VVMaxPerSecond = %d; want 0, 10", st.VVRateViolations, st.VVMaxPerSecond)
	}
}

func TestVVToolTokenNeverEchoed(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	for _, tok := range []string{sandbox.DefaultVVToken, "wrong-token-xyz"} {
		body, ct := multipartBody(t, map[string]string{"shop_id": "1001", "fields": vvFields})
		_, b := e.do(context.Background(), http.MethodPost, pathVVDetail, "", body, http.Header{"Content-Type": {ct}, "Authorization": {"Bearer " + tok}})
		if strings.Contains(string(b), tok) {
			t.Fatalf("answer contains the token %q", tok)
		}
	}
}
