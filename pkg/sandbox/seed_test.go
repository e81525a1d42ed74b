package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestSeedRequestsDecode posts the seed pages' request examples verbatim: each is
// decoded (no 47001) and answered on its merits.
func TestSeedRequestsDecode(t *testing.T) {
	tests := []struct {
		file string
		path string
		want int
	}{
		{"delivery_send_request.json", pathSend, 100002},        // order 123456 is not the sandbox's
		{"delivery_send_course_request.json", pathSend, 100002}, // idem
		{"batchget_request.json", pathBatchGet, 0},              // items answer 9300507
		{"getorder_request.json", pathGetOrder, sandbox.CodeWaybillNotFound},
		{"order_list_request.json", pathOrderList, 606006}, // THE_NEXT_KEY is not a sandbox next_key
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Orders: 1})
			m := e.call(tt.path, e.token(), readTestdata(t, tt.file))
			if got := errcode(m); got != tt.want {
				t.Fatalf("errcode = %d, want %d (%v)", got, tt.want, m)
			}
			if tt.path == pathBatchGet {
				items := m["order_list"].([]any)
				if len(items) != 2 || errcode(items[0].(obj)) != sandbox.CodeWaybillNotFound || items[0].(obj)["order_id"] != "01234567890123456789" {
					t.Fatalf("items %v", items)
				}
			}
		})
	}
}

// TestSeedResponseShapes compares the sandbox's answers with the seed pages' response
// examples: every field of the example is there with the same JSON type (recursively,
// first array element); exact means no field beyond the example's.
func TestSeedResponseShapes(t *testing.T) {
	e := newEnv(t, sandbox.Config{Orders: 1})
	tok := e.token()
	now := e.clock.Now().Unix()
	so := e.sb.Scenario()[0]
	if got := errcode(e.call(pathSend, tok, sendBody(t, e.sb, firstOrder))); got != 0 {
		t.Fatalf("send: %d", got) // shipped, so order/get has a delivery_product_info element to compare
	}
	vvBody, vvCT := multipartBody(t, map[string]string{"shop_id": "1001", "fields": strings.Join(seedVVFields(t), ",")})
	tests := []struct {
		file  string
		get   func() []byte
		exact bool
	}{
		{"order_list_response.json", func() []byte {
			e.sb.AddOrder(sandbox.ScenarioOrder{}, 1)
			e.sb.AddOrder(sandbox.ScenarioOrder{}, 1)
			_, b := e.post(pathOrderList, tok, fmt.Sprintf(`{"update_time_range":{"start_time":%d,"end_time":%d},"page_size":1}`, now-60, now))
			return b
		}, true},
		{"order_get_response.json", func() []byte {
			_, b := e.post(pathOrderGet, tok, `{"order_id":"`+firstOrder+`"}`)
			return b
		}, false}, // + postal_code
		{"delivery_send_response.json", func() []byte {
			e.sb.AddOrder(sandbox.ScenarioOrder{OrderID: "77"}, 1)
			_, b := e.post(pathSend, tok, sendBody(t, e.sb, "77"))
			return b
		}, true},
		{"batchget_response.json", func() []byte {
			_, b := e.post(pathBatchGet, tok, batchBody(firstOrder, firstOrder))
			return b
		}, false}, // + errcode, errmsg at the top
		{"getorder_response.json", func() []byte {
			_, b := e.post(pathGetOrder, tok, fmt.Sprintf(`{"order_id":%q,"delivery_id":"SF","waybill_id":%q}`, so.OrderID, so.WaybillID))
			return b
		}, false}, // + errcode, errmsg
		{"vvtool_detail_response.json", func() []byte {
			_, b := e.do(t.Context(), http.MethodPost, pathVVDetail, "", vvBody, http.Header{"Content-Type": {vvCT}, "Authorization": {"Bearer " + sandbox.DefaultVVToken}})
			return b
		}, false}, // + fields asked for that the example leaves out
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var seed, ours any
			decodeAny(t, readTestdata(t, tt.file), &seed)
			decodeAny(t, tt.get(), &ours)
			for _, problem := range compareShape("", seed, ours, tt.exact) {
				t.Error(problem)
			}
		})
	}
	// The batchGetOrder item itself has exactly the example's fields.
	var seed, ours any
	decodeAny(t, readTestdata(t, "batchget_response.json"), &seed)
	_, b := e.post(pathBatchGet, tok, batchBody(firstOrder))
	decodeAny(t, b, &ours)
	for _, problem := range compareShape("order_list", seed.(obj)["order_list"], ours.(obj)["order_list"], true) {
		t.Error(problem)
	}
}

// seedVVFields is the fields list of the seed's vv-tool request example.
func seedVVFields(t *testing.T) []string {
	for line := range strings.SplitSeq(string(readTestdata(t, "vvtool_detail_request.txt")), "\n") {
		if v, ok := strings.CutPrefix(line, "fields:"); ok {
			return strings.Split(v, ",")
		}
	}
	t.Fatal("no fields line")
	return nil
}

func decodeAny(t *testing.T, b []byte, v *any) {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// compareShape lists how ours differs from seed in field names and JSON types.
func compareShape(path string, seed, ours any, exact bool) []string {
	kind := func(v any) string { return fmt.Sprintf("%T", v) }
	if kind(seed) != kind(ours) {
		return []string{fmt.Sprintf("%s: %s in the seed, %s here (%v)", path, kind(seed), kind(ours), ours)}
	}
	var problems []string
	switch sv := seed.(type) {
	case map[string]any:
		ov := ours.(map[string]any)
		keys := make([]string, 0, len(sv))
		for k := range sv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, ok := ov[k]; !ok {
				problems = append(problems, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			problems = append(problems, compareShape(path+"."+k, sv[k], ov[k], exact)...)
		}
		if exact {
			for k := range ov {
				if _, ok := sv[k]; !ok {
					problems = append(problems, fmt.Sprintf("%s.%s: not in the seed", path, k))
				}
			}
		}
	case []any:
		ov := ours.([]any)
		if len(sv) > 0 {
			if len(ov) == 0 {
				return []string{path + ": empty here, the seed has elements"}
			}
			problems = append(problems, compareShape(path+"[0]", sv[0], ov[0], exact)...)
		}
	}
	return problems
}
