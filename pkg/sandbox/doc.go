// Package sandbox is an HTTP fake of every platform endpoint the pipeline calls:
// the WeChat token endpoints, the WeChat Channels shop order endpoints, the WeChat
// logistics waybill endpoints and the vv-tool ERP endpoint. It is product code: the
// pipeline's tests use it and `fulfillctl up` serves it for demos and first runs.
//
// It is the independent other side of pkg/clients/wechat and pkg/clients/vvtool and
// deliberately does not import them: it defines its own wire structs, written from the
// platform pages in shared/seeds (field names, JSON types, error codes, limits).
//
// Served paths (a *Sandbox is an http.Handler; serve it with httptest.NewServer or an
// http.Server):
//
//	POST /cgi-bin/stable_token                       stable_token
//	GET  /cgi-bin/token?grant_type=&appid=&secret=    token (rotates: older tokens die)
//	POST /channels/ec/order/list/get                 order/list/get
//	POST /channels/ec/order/get                      order/get
//	POST /channels/ec/order/delivery/send            delivery/send
//	POST /cgi-bin/express/business/order/batchget    batchGetOrder
//	POST /cgi-bin/express/business/order/get         getOrder
//	POST /tool/erps/detail                           vvtool/detail (multipart, Bearer token)
//
// A Sandbox generates a deterministic scenario from Config.Seed: Config.Orders
// Channels orders awaiting shipment (status 20), each with a logistics waybill, and a
// share of them assigned a fault class by Config.Faults. Scenario tells the outcome
// the pipeline must reach for each order. Further faults can be injected at run time
// with Inject; they apply before normal processing and count only the calls they
// match.
//
// The sandbox also watches its callers: Stats counts the mistakes a client of the real
// platform must not make (concurrent delivery/send for one order, a second shipment,
// force_refresh more often than every 30 s, batches over 100, windows over 7 days,
// next_key reused with other parameters, more than 10 vv-tool requests in a second),
// and Calls keeps what each call carried and was answered.
//
// All state is guarded by one mutex; latency waits honour the request context, so a
// server serving a Sandbox shuts down promptly.
package sandbox
