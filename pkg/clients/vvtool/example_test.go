package vvtool_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/fulfill/pipeline/pkg/clients/vvtool"
)

// A stand-in for vv-tool answering the shape of the documentation's example.
func newFakeVVTool() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer my-token" {
			fmt.Fprint(w, `{"code":401,"msg":"身份凭证无效"}`)
			return
		}
		if r.FormValue("shop_id") != "123" {
			fmt.Fprint(w, `{"code":302,"msg":"未授权店铺"}`)
			return
		}
		fmt.Fprint(w, `{"code":0,"msg":"操作成功","msec":1460,"time":1617273033,"data":[
			{"tid":"1692089714634374451","status":"CLOSED","created":"2021-04-01 16:40:47",
			 "sub_tids":{"number":["1692089714634374451"]},"location":{"city":"杭州市"}},
			{"tid":1691874146122374451,"status":"CLOSED","created":"2021-04-01 15:02:07",
			 "sub_tids":[1691874146122374451,1691874146122374452]}]}`)
	}))
}

func ExampleClient_Detail() {
	srv := newFakeVVTool()
	defer srv.Close()

	// One Limiter per vv-tool account, shared by the clients of all its shops.
	limiter := vvtool.NewLimiter(vvtool.MaxRequestsPerSecond, time.Second)
	c := vvtool.NewClient("my-token", vvtool.WithBaseURL(srv.URL), vvtool.WithLimiter(limiter))

	resp, err := c.Detail(context.Background(), vvtool.DetailRequest{ShopID: "123", PageNo: 1, PageSize: 40})
	if err != nil {
		fmt.Println(vvtool.Classify(err), err)
		return
	}
	for _, s := range resp.Data {
		fmt.Println(s.Tid, s.Status, s.Created.Format(time.RFC3339), s.SubTids)
	}

	_, err = c.Detail(context.Background(), vvtool.DetailRequest{ShopID: "999"})
	fmt.Println(vvtool.Classify(err), vvtool.Code(err))
	fmt.Println(err)
	// Output:
	// 1692089714634374451 CLOSED 2021-04-01T16:40:47+08:00 [1692089714634374451]
	// 1691874146122374451 CLOSED 2021-04-01T15:02:07+08:00 [1691874146122374451 1691874146122374452]
	// permanent 302
	// vvtool: detail shop 999 page 1: vvtool: code 302: shop not authorised: have the shop owner (re)authorise the shop in vv-tool using the returned link, or remove it from VVTOOL_SHOP_IDS (server: 未授权店铺)
}

func ExampleClient_DetailAll() {
	srv := newFakeVVTool()
	defer srv.Close()
	c := vvtool.NewClient("my-token", vvtool.WithBaseURL(srv.URL))

	n := 0
	err := c.DetailAll(context.Background(), vvtool.DetailRequest{ShopID: "123"}, func(s vvtool.Shipping) error {
		n++
		return nil
	})
	fmt.Println(n, err)
	// Output:
	// 2 <nil>
}
