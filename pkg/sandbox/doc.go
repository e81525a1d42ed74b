// Package sandbox is an HTTP fake of every platform endpoint the pipeline calls:
// the WeChat token endpoints, the WeChat Channels shop order endpoints, the WeChat
// logistics waybill endpoints and the vv-tool ERP endpoint. It is product code: the
// pipeline's tests use it and `fulfillctl up` serves it for demos and first runs.
//
// It is the independent other side of pkg/clients/wechat and pkg/clients/vvtool and
// deliberately does not import them: it defines its own wire structs, written from the
// platform pages in shared/seeds (field names, JSON types, error codes, limits). The
// one exception is pkg/clients/wechat/push, whose Seal encrypts and signs the pushes
// the sandbox sends: that is WeChat's algorithm, checked there against WeChat's own
// sample vectors, not a reading of the wire structs.
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
// share of them assigned a fault class by Config.Faults (per app with Config.Apps).
// Scenario tells the outcome the pipeline must reach for each order. Further faults
// can be injected at run time with Inject; they apply before normal processing and
// count only the calls they match.
//
// The sandbox also watches its callers: Stats counts the mistakes a client of the real
// platform must not make (concurrent delivery/send for one order, a second shipment,
// force_refresh more often than every 30 s, batches over 100, windows over 7 days,
// next_key reused with other parameters, more than 10 vv-tool requests in a second
// on one account), and Calls keeps what each call carried and was answered.
//
// # Several shops
//
// A sandbox serves one shop (one WeChat Channels app) by default, made of the
// single-app Config fields. Config.Apps makes it serve several, as a platform serving
// an ERP or service provider with many shops does: each App has its own appid and
// secret, its own tokens (current token, rotation, expiry and force_refresh spacing
// per app), its own orders and faults and optionally its own vv-tool account (token,
// shops and its own 10 requests per second). App k's generated order ids are
// BaseOrderID + k×AppOrderIDSpan + i, drawn from the seed and k alone; unset appids
// and secrets are derived (DerivedAppID, DerivedAppSecret: "wxsandboxapp2",
// "sandbox-app-secret-2" for the second app). App 0 of a sandbox is exactly the
// single-app sandbox of the same seed: the same orders, ids, times, faults, waybills
// and vv-tool shippings. With several apps, the faults the scenario installs for an
// order are restricted to the order's app (Fault.AppID).
//
// A business call is answered in the context of the app its access_token was issued
// to, and a token of one app never reaches another's orders: order/list/get lists
// only the app's orders; order/get and delivery/send of another app's order answer
// 100002 (订单不存在, seed 004), as for an order that does not exist; batchGetOrder
// answers that item, and getOrder the call, with CodeWaybillNotFound; a vv-tool
// shop of another account answers 302 (未授权店铺, seed 003). Fault.AppID restricts
// a fault to one app's calls ("shop B's platform answers -1 for a while"), Call.AppID
// tells which app a call was made for and Stats.ByApp splits the counters by app.
//
// # Pushes
//
// An app with a PushURL (its 消息推送 callback, e.g.
// http://127.0.0.1:8080/v1/wechat/push/shop-1) also gets the order messages WeChat
// pushes, once StartPushes is called: for each of its orders, in the order of their
// update_time and at Config.PushRate per second (all at once if 0), a
// channels_ec_order_pay push, JSON {"ToUserName":"gh_…","FromUserName":<openid>,
// "CreateTime":…,"MsgType":"event","Event":…,"order_info":{"order_id":<bare number>}},
// encrypted and signed with the app's PushToken and PushAESKey (security mode:
// body {"ToUserName","Encrypt"}, query signature, timestamp, nonce, openid,
// encrypt_type=aes, msg_signature). A push is done when answered HTTP 200 with the
// body "success" or an empty body; any other answer, no answer within
// Config.PushTimeout (5 s) or no connection is pushed again on WeChat's schedule,
// 0s/0s/10s/1min/5min/30min/60min/60min/60min (PushRetrySchedule: 10 pushes in
// about 3.6 h, as the WeChat Shop order callback pages state it), times
// Config.PushTimeScale, then given up. (A WeChat engineer said in the developer
// community that the platform retries only failed and timed-out requests, not
// other bodies; the sandbox is stricter and retries those too.)
//
// The Config's push options make it adversarial, drawn from the seed with exact
// counts per app: PushDuplicates (the pay push delivered twice, the same message),
// PushReorder (a channels_ec_order_wait_shipping dated after the pay delivered
// before it and again after it), CancelBeforeShipping (the buyer cancels the order
// as soon as its pay push was answered: status 250, delivery/send answers 101100
// 当前订单状态不允许发货, then a channels_ec_order_cancel push with cancel_type 1;
// ScenarioOrder.Fault FaultBuyerCancelled) and ForgedPushes (a bad msg_signature,
// another appid, a plaintext body: a receiver must refuse them). ScenarioOrder.Push
// tells each order's plan; Pushes, FirstPush and Stats.Pushes (and ByApp) tell what
// was sent and answered; PushesSettled waits until every push was answered success
// or given up. An app without a PushURL is exactly as without pushes.
//
// All state is guarded by one mutex; latency waits honour the request context, so a
// server serving a Sandbox shuts down promptly.
package sandbox
