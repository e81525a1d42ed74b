package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

// Example serves a sandbox of three orders, lists them the way the ingest does, ships
// one and ships it again.
func Example() {
	sb := sandbox.New(sandbox.Config{Seed: 1, Orders: 3, Faults: sandbox.NoFaults()})
	srv := httptest.NewServer(sb)
	defer srv.Close()

	post := func(path, token, body string) map[string]any {
		resp, err := http.Post(srv.URL+path+"?access_token="+token, "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			panic(err)
		}
		return m
	}

	tok := post("/cgi-bin/stable_token", "",
		`{"grant_type":"client_credential","appid":"wxsandboxappid","secret":"sandbox-app-secret","force_refresh":false}`)
	token := tok["access_token"].(string)
	fmt.Println("expires_in:", tok["expires_in"])

	now := time.Now().Unix()
	list := post("/channels/ec/order/list/get", token, fmt.Sprintf(
		`{"update_time_range":{"start_time":%d,"end_time":%d},"status":20,"page_size":100}`, now-24*3600, now))
	fmt.Println("awaiting shipment:", len(list["order_id_list"].([]any)), "has_more:", list["has_more"])

	so := sb.Scenario()[0]
	o, _ := sb.Order(so.OrderID)
	var products []string
	for _, p := range o.Products {
		products = append(products, fmt.Sprintf(`{"product_cnt":%d,"product_id":%q,"sku_id":%q}`, p.SkuCnt, p.ProductID, p.SkuID))
	}
	send := fmt.Sprintf(`{"order_id":%q,"delivery_list":[{"delivery_id":%q,"waybill_id":%q,"deliver_type":1,"product_infos":[%s]}]}`,
		so.OrderID, so.DeliveryID, so.WaybillID, strings.Join(products, ","))
	fmt.Println("delivery/send:", post("/channels/ec/order/delivery/send", token, send)["errcode"])
	fmt.Println("again:", post("/channels/ec/order/delivery/send", token, send)["errcode"])

	st := sb.Stats()
	fmt.Println("shipped:", st.SuccessfulSends, "duplicates:", st.DuplicateSends)
	// Output:
	// expires_in: 7200
	// awaiting shipment: 3 has_more: false
	// delivery/send: 0
	// again: 109001
	// shipped: 1 duplicates: 1
}
