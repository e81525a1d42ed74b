package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Endpoint names used in Fault.Endpoint, Call.Endpoint and the Stats maps.
const (
	EndpointStableToken   = "stable_token"   // POST /cgi-bin/stable_token
	EndpointToken         = "token"          // GET /cgi-bin/token
	EndpointOrderList     = "order/list/get" // POST /channels/ec/order/list/get
	EndpointOrderGet      = "order/get"      // POST /channels/ec/order/get
	EndpointDeliverySend  = "delivery/send"  // POST /channels/ec/order/delivery/send
	EndpointBatchGetOrder = "batchGetOrder"  // POST /cgi-bin/express/business/order/batchget
	EndpointGetOrder      = "getOrder"       // POST /cgi-bin/express/business/order/get
	EndpointVVToolDetail  = "vvtool/detail"  // POST /tool/erps/detail
)

// paths maps the URL paths the sandbox serves to endpoint names.
var paths = map[string]string{
	"/cgi-bin/stable_token":                    EndpointStableToken,
	"/cgi-bin/token":                           EndpointToken,
	"/channels/ec/order/list/get":              EndpointOrderList,
	"/channels/ec/order/get":                   EndpointOrderGet,
	"/channels/ec/order/delivery/send":         EndpointDeliverySend,
	"/cgi-bin/express/business/order/batchget": EndpointBatchGetOrder,
	"/cgi-bin/express/business/order/get":      EndpointGetOrder,
	"/tool/erps/detail":                        EndpointVVToolDetail,
}

// Defaults applied by New to zero Config fields.
const (
	DefaultDeliveryID         = "SF"
	DefaultAppID              = "wxsandboxappid"
	DefaultAppSecret          = "sandbox-app-secret"
	DefaultVVToken            = "sandbox-vv-token"
	DefaultVVShippingsPerShop = 50
	DefaultTokenTTL           = 2 * time.Hour
	DefaultMaxOrdersPerWindow = 1000

	// DefaultPushToken and DefaultPushAESKey are the first app's push Token
	// and EncodingAESKey (DerivedPushToken(0), DerivedPushAESKey(0)).
	DefaultPushToken  = "sandboxpushtoken"
	DefaultPushAESKey = "8AtvvB6utQDSHi9hCgE94GC8J11D395MNTGJ7Yuqxmk"
)

// DefaultVVShops is the vv-tool shop list used when Config.VVShops is empty.
var DefaultVVShops = []string{"1001", "1002"}

// maxBody bounds the request bodies the sandbox reads (1 MiB).
const maxBody = 1 << 20

// Config configures a Sandbox. The zero value is usable: one app, no orders, no faults
// and the documented defaults.
type Config struct {
	Seed       int64    // deterministic scenario
	Orders     int      // N Channels orders awaiting shipment (status 20), ids "3704612354559743232"+offset
	DeliveryID string   // carrier of generated waybills; default "SF"
	Faults     FaultMix // share of orders per fault class

	AppID, AppSecret string // default "wxsandboxappid", "sandbox-app-secret"; token endpoints answer 40013/40125 otherwise

	// PushToken, PushAESKey and PushURL are the single app's push settings
	// (see App: PushURL empty is push off; the others default to
	// DefaultPushToken and DefaultPushAESKey).
	PushToken, PushAESKey, PushURL string

	VVToken            string   // default "sandbox-vv-token" (401 otherwise)
	VVShops            []string // default {"1001","1002"} (302 for an unknown shop)
	VVShippingsPerShop int      // default 50; for every app's vv-tool account

	// Apps are the shops' Channels apps the sandbox serves, each with its own
	// appid, secret, tokens, orders and vv-tool account (see App). Empty: one
	// app made of the fields above (Orders, DeliveryID, Faults, AppID,
	// AppSecret, VVToken, VVShops, PushToken, PushAESKey, PushURL), exactly as
	// a sandbox without Apps. Set, those fields must be left zero (New panics
	// otherwise: see Validate).
	Apps []App

	// Pushes: what StartPushes sends to the PushURL of every app that has
	// one (the package documentation's "Pushes"). The shares and counts
	// apply to each such app's generated orders, drawn from Seed; they
	// change nothing for an app without a PushURL.
	PushRate        float64       // pay pushes per second per app, from StartPushes, in the order of the orders' update_time; 0: all at once
	PushTimeScale   float64       // multiplies the waits of WeChat's retry schedule (PushRetrySchedule, 3.6 h); 0 means 1; 0.001 makes it 13 s
	PushTimeout     time.Duration // how long a push waits for its answer before it counts as failed; default 5 s (DefaultPushTimeout), not scaled
	PushConcurrency int           // pushes in flight at once, over every app; default 32 (DefaultPushConcurrency)
	// PushDuplicates is the share of the orders (exact: round(share×Orders))
	// whose pay push is delivered twice: the same message (same
	// CreateTime) POSTed again once its first POST was answered.
	PushDuplicates float64
	// PushReorder is the share of the orders (exact) whose
	// channels_ec_order_wait_shipping push, dated a second after the pay,
	// is delivered before the pay push and again after it.
	PushReorder float64
	// CancelBeforeShipping orders of each app (among those without a fault
	// class; fewer if there are not enough) are cancelled by the buyer as
	// soon as their pay push was answered (or given up): the order's status
	// becomes 250, delivery/send then answers 101100, and a
	// channels_ec_order_cancel push (cancel_type 1) follows. Their
	// ScenarioOrder has Fault FaultBuyerCancelled and Expect OutcomeFailed.
	CancelBeforeShipping int
	// ForgedPushes invalid pushes are sent per app, once each, spread among
	// the pay pushes: a bad msg_signature, a wrong appid and a plaintext
	// body in turn (ForgedBadSignature, ForgedWrongAppID, ForgedPlaintext),
	// each a channels_ec_order_cancel of an order that must ship, so a
	// receiver that took one would stop a good order. ForgedPushes records
	// what the receiver answered.
	ForgedPushes int

	TokenTTL           time.Duration    // expires_in of issued tokens; default 2h
	RotateTokenEvery   int              // 0 = never; else an app's current access_token becomes invalid (40001) after every N business calls made with it
	MaxOrdersPerWindow int              // order/list/get answers 31042 when the window holds more of the app's orders than this; default 1000
	Latency            time.Duration    // added to every business call; default 0
	Now                func() time.Time // the clock (token expiry, windows, rates, update_time); default time.Now
	// Epoch is the moment the scenario is dated from: orders updated in
	// the 23 h before it, vv-tool shippings created in the 7 days before
	// it. Zero means the sandbox's start. A sandbox restarted with the same
	// Epoch serves the same facts at the same times, so a poller that saw
	// them does not see them as new. It applies to every app.
	Epoch time.Time
	// Served is how many of the Orders a sandbox with this Epoch served
	// before (a restart with more orders): the orders beyond it are dated
	// at this sandbox's start, after anything a poller checkpointed, so it
	// finds them. It applies to every app (to each app's Orders).
	Served int
}

// App is one shop's WeChat Channels app in Config.Apps: its credentials, its
// orders and their faults, and optionally its vv-tool account.
//
// App k (0-based, in Config.Apps order) is derived where fields are empty:
// AppID and AppSecret default to DerivedAppID(k) and DerivedAppSecret(k)
// (app 0: DefaultAppID, DefaultAppSecret; app k>0: "wxsandboxapp<k+1>",
// "sandbox-app-secret-<k+1>"); DeliveryID defaults to "SF". App 0's vv-tool
// account defaults to DefaultVVToken with DefaultVVShops, as a single-app
// sandbox's; an app after the first has a vv-tool account only when VVToken is
// set (its VVShops then default to DefaultVVShops: shop ids are per account).
//
// App k's generated orders have the ids BaseOrderID + k×AppOrderIDSpan + i
// (i = 0…Orders-1), so app 0's are those of a single-app sandbox and no two
// apps share an id; they are drawn from Config.Seed and k alone, so adding an
// app does not change the others' orders.
type App struct {
	AppID, AppSecret string
	Orders           int      // Channels orders awaiting shipment; at most AppOrderIDSpan
	Faults           FaultMix // share of this app's orders per fault class
	DeliveryID       string   // carrier of this app's generated waybills; default "SF"
	VVToken          string   // this app's vv-tool account (Bearer token); optional after the first app
	VVShops          []string // the account's shops

	// The app's 消息推送 (message push) settings: the Token and the
	// EncodingAESKey (43 letters and digits) its pushes are signed and
	// encrypted with, and the callback URL they are POSTed to, e.g.
	// "http://127.0.0.1:8080/v1/wechat/push/shop-1". Empty PushToken and
	// PushAESKey default to DerivedPushToken(k) and DerivedPushAESKey(k);
	// an empty PushURL is push off for the app.
	PushToken, PushAESKey, PushURL string
}

// AppOrderIDSpan is the width of each app's range of generated order ids: app
// k's orders are BaseOrderID + k×AppOrderIDSpan + i.
const AppOrderIDSpan = 1_000_000_000

// DerivedAppID is the appid app k of Config.Apps gets when its AppID is empty:
// DefaultAppID for app 0, "wxsandboxapp<k+1>" for the others ("wxsandboxapp2"
// for the second app).
func DerivedAppID(k int) string {
	if k == 0 {
		return DefaultAppID
	}
	return "wxsandboxapp" + strconv.Itoa(k+1)
}

// DerivedAppSecret is the secret app k of Config.Apps gets when its AppSecret
// is empty: DefaultAppSecret for app 0, "sandbox-app-secret-<k+1>" for the
// others.
func DerivedAppSecret(k int) string {
	if k == 0 {
		return DefaultAppSecret
	}
	return DefaultAppSecret + "-" + strconv.Itoa(k+1)
}

// DerivedPushToken is the push Token app k gets when its PushToken is empty:
// DefaultPushToken for app 0, "sandboxpushtoken<k+1>" for the others (WeChat
// takes 3 to 32 letters and digits).
func DerivedPushToken(k int) string {
	if k == 0 {
		return DefaultPushToken
	}
	return DefaultPushToken + strconv.Itoa(k+1)
}

// DerivedPushAESKey is the EncodingAESKey app k gets when its PushAESKey is
// empty: 43 letters and digits drawn from k alone (DefaultPushAESKey for app
// 0), a valid key as the 消息推送 page generates them.
func DerivedPushAESKey(k int) string {
	return randString(rand.New(rand.NewPCG(streamPushKey, uint64(k))), alphanumerics, 43)
}

// streamPushKey seeds DerivedPushAESKey ("pushkey").
const streamPushKey = 0x707573686b6579

// alphanumerics are the characters of a push Token and EncodingAESKey.
const alphanumerics = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// DerivedApp is app k with its derived appid and secret, push token and
// EncodingAESKey (no PushURL: push off) and a vv-tool account of its own: app
// 0 is the single-app default (DefaultVVToken, DefaultVVShops); app k>0 has
// the token "sandbox-vv-token-<k+1>" and the shops "<k+1>001" and "<k+1>002".
// Orders, Faults and PushURL are left for the caller (fulfillctl sandbox
// --shops N serves DerivedApp(0…N-1)).
func DerivedApp(k int) App {
	a := App{AppID: DerivedAppID(k), AppSecret: DerivedAppSecret(k), PushToken: DerivedPushToken(k), PushAESKey: DerivedPushAESKey(k)}
	if k == 0 {
		a.VVToken, a.VVShops = DefaultVVToken, slices.Clone(DefaultVVShops)
		return a
	}
	n := strconv.Itoa(k + 1)
	a.VVToken, a.VVShops = DefaultVVToken+"-"+n, []string{n + "001", n + "002"}
	return a
}

// Validate reports what is wrong with the configuration of the apps: Apps set
// together with the single-app fields, two apps with one appid or one vv-tool
// token, VVShops without a VVToken, more orders than AppOrderIDSpan in an app,
// a PushAESKey that is not 43 characters of base64, a PushURL that is not an
// http(s) URL, a push option out of range (a negative rate, scale, timeout or
// count, a share outside 0…1).
// New panics with this error: an invalid configuration is a programming error.
func (cfg Config) Validate() error {
	if err := cfg.validatePushes(); err != nil {
		return err
	}
	if len(cfg.Apps) == 0 {
		return nil
	}
	if cfg.Orders != 0 || cfg.DeliveryID != "" || cfg.Faults != (FaultMix{}) || cfg.AppID != "" ||
		cfg.AppSecret != "" || cfg.VVToken != "" || len(cfg.VVShops) != 0 ||
		cfg.PushToken != "" || cfg.PushAESKey != "" || cfg.PushURL != "" {
		return errors.New("sandbox: Config.Apps is set: leave Orders, DeliveryID, Faults, AppID, AppSecret, VVToken, VVShops, PushToken, PushAESKey and PushURL zero (set them per App)")
	}
	apps := cfg.withDefaults().Apps
	ids := make(map[string]int, len(apps))
	tokens := make(map[string]int, len(apps))
	for k, a := range apps {
		if j, dup := ids[a.AppID]; dup {
			return fmt.Errorf("sandbox: apps %d and %d have the same appid %q", j, k, a.AppID)
		}
		ids[a.AppID] = k
		if in := cfg.Apps[k]; in.VVToken == "" && len(in.VVShops) != 0 && k > 0 {
			return fmt.Errorf("sandbox: app %d (%s) has VVShops but no VVToken", k, a.AppID)
		}
		if a.VVToken != "" {
			if j, dup := tokens[a.VVToken]; dup {
				return fmt.Errorf("sandbox: apps %d and %d have the same vv-tool token", j, k)
			}
			tokens[a.VVToken] = k
		}
		if a.Orders > AppOrderIDSpan {
			return fmt.Errorf("sandbox: app %d (%s) has %d orders, at most %d", k, a.AppID, a.Orders, AppOrderIDSpan)
		}
	}
	return nil
}

// withDefaults returns cfg with the zero fields filled in and Apps holding
// every app (the single-app fields as app 0 when Apps was empty).
func (cfg Config) withDefaults() Config {
	if len(cfg.Apps) == 0 {
		cfg.Apps = []App{{
			AppID: cfg.AppID, AppSecret: cfg.AppSecret, Orders: cfg.Orders, Faults: cfg.Faults,
			DeliveryID: cfg.DeliveryID, VVToken: cfg.VVToken, VVShops: cfg.VVShops,
			PushToken: cfg.PushToken, PushAESKey: cfg.PushAESKey, PushURL: cfg.PushURL,
		}}
	}
	apps := make([]App, len(cfg.Apps))
	for k, a := range cfg.Apps {
		apps[k] = a.withDefaults(k)
	}
	cfg.Apps = apps
	if cfg.VVShippingsPerShop <= 0 {
		cfg.VVShippingsPerShop = DefaultVVShippingsPerShop
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.MaxOrdersPerWindow <= 0 {
		cfg.MaxOrdersPerWindow = DefaultMaxOrdersPerWindow
	}
	if cfg.Latency < 0 {
		cfg.Latency = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PushTimeScale <= 0 {
		cfg.PushTimeScale = 1
	}
	if cfg.PushTimeout <= 0 {
		cfg.PushTimeout = DefaultPushTimeout
	}
	if cfg.PushConcurrency <= 0 {
		cfg.PushConcurrency = DefaultPushConcurrency
	}
	return cfg
}

// withDefaults returns app k with its zero fields filled in.
func (a App) withDefaults(k int) App {
	a.Orders = max(a.Orders, 0)
	if a.DeliveryID == "" {
		a.DeliveryID = DefaultDeliveryID
	}
	if a.AppID == "" {
		a.AppID = DerivedAppID(k)
	}
	if a.AppSecret == "" {
		a.AppSecret = DerivedAppSecret(k)
	}
	if a.VVToken == "" && k == 0 {
		a.VVToken = DefaultVVToken
	}
	if a.VVToken != "" && len(a.VVShops) == 0 {
		a.VVShops = DefaultVVShops
	}
	a.VVShops = slices.Clone(a.VVShops)
	if a.PushToken == "" {
		a.PushToken = DerivedPushToken(k)
	}
	if a.PushAESKey == "" {
		a.PushAESKey = DerivedPushAESKey(k)
	}
	return a
}

// appState is one app's state; guarded by Sandbox.mu.
type appState struct {
	idx      int
	cfg      App
	tokens   tokenState
	byUpdate []*order   // the app's orders sorted by (update_time, order_id): the order/list/get paging order
	rng      *rand.Rand // runtime draws (AddOrder); scenario draws use their own streams
	nextSeq  uint64     // offset of the next generated order id in the app's range
	vv       *vvState   // the app's vv-tool account, nil if none
	push     *appPush   // the app's pushes, nil without a PushURL
}

// id is the app's appid, "" for no app.
func (a *appState) id() string {
	if a == nil {
		return ""
	}
	return a.cfg.AppID
}

// orderID is the id of the app's generated order with offset seq.
func (a *appState) orderID(seq uint64) string {
	return strconv.FormatUint(BaseOrderID+uint64(a.idx)*AppOrderIDSpan+seq, 10)
}

// Sandbox is the fake platform: an http.Handler serving every endpoint listed in the
// package documentation. Create it with New; it is safe for concurrent use.
type Sandbox struct {
	cfg Config

	apps    []*appState          // in Config.Apps order; fixed after New
	appByID map[string]*appState // by appid; fixed after New
	vv      *vvState             // app 0's vv-tool account (always there)

	mu       sync.Mutex
	vvOthers []time.Time       // rate window of vv-tool requests with no or an unknown token
	orders   map[string]*order // every app's, by id (ids are unique across apps)
	waybills map[string]*waybill
	scenario []ScenarioOrder
	faults   faultSet
	tokens   map[string]issuedToken // every access_token ever issued
	issued   []string               // the tokens in issue order
	inflight map[string]int         // delivery/send being handled, per order id
	sends    map[string]int         // successful delivery/send per order id
	rec      recorder
	changed  chan struct{} // closed and replaced on every state change (WaitUntil)

	run       *pushRun             // the pushes being sent; nil before StartPushes
	pushes    []*Push              // every push delivery, in the order they were started
	firstPush map[string]time.Time // per order id, when its first valid push was first sent
}

// New returns a Sandbox serving the deterministic scenario generated from cfg.Seed.
// It panics if cfg.Validate reports an error.
func New(cfg Config) *Sandbox {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	s := &Sandbox{
		cfg:      cfg,
		appByID:  make(map[string]*appState, len(cfg.Apps)),
		orders:   make(map[string]*order),
		waybills: make(map[string]*waybill),
		inflight: make(map[string]int),
		sends:    make(map[string]int),
		tokens:   make(map[string]issuedToken),
		rec:      newRecorder(),
		changed:  make(chan struct{}),

		firstPush: make(map[string]time.Time),
	}
	for k, c := range cfg.Apps {
		a := &appState{idx: k, cfg: c}
		if c.VVToken != "" {
			a.vv = &vvState{token: c.VVToken, app: a}
		}
		if c.PushURL != "" {
			a.push = &appPush{}
		}
		s.apps = append(s.apps, a)
		s.appByID[c.AppID] = a
		s.rec.byApp = append(s.rec.byApp, &AppStats{Calls: make(map[string]int)})
	}
	s.vv = s.apps[0].vv
	s.generate()
	s.planPushes()
	return s
}

// Apps returns the apps the sandbox serves, with their defaults filled in (the
// derived appids and secrets), in Config.Apps order.
func (s *Sandbox) Apps() []App {
	apps := make([]App, len(s.apps))
	for k, a := range s.apps {
		apps[k] = a.cfg
		apps[k].VVShops = slices.Clone(a.cfg.VVShops)
	}
	return apps
}

// now is the sandbox clock (Config.Now).
func (s *Sandbox) now() time.Time { return s.cfg.Now() }

// StatsPath serves Stats as JSON (GET): what the sandbox saw, including the
// caller mistakes the real platform punishes.
const StatsPath = "/sandbox/stats"

// ServeHTTP routes a request to the endpoint its path names; unknown paths answer 404.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == StatsPath && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
		return
	}
	ep, ok := paths[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	var rep reply
	switch ep {
	case EndpointStableToken, EndpointToken:
		rep = s.serveToken(r, ep)
	case EndpointVVToolDetail:
		rep = s.serveVVTool(r)
	default:
		rep = s.serveWeChat(r, ep)
	}
	if rep.gone {
		return
	}
	w.Header().Set("Content-Type", rep.contentType())
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// exchange is one request being answered: what the recorder keeps of it.
type exchange struct {
	ep   string
	at   time.Time
	body []byte
	ids  []string
	app  *appState // the app of the call's token (or appid); nil if none
}

// reply is the answer to one request, recorded before it is written.
type reply struct {
	status int    // HTTP status
	body   []byte // response body
	code   int    // errcode (or vv-tool code) recorded for the call
	raw    bool   // body is a fault's raw body, not JSON
	gone   bool   // the client went away during latency: nothing is written
}

// contentType is the Content-Type header of the reply: JSON unless a raw body does
// not look like JSON.
func (r reply) contentType() string {
	if b := bytes.TrimSpace(r.body); r.raw && (len(b) == 0 || (b[0] != '{' && b[0] != '[')) {
		return "text/html; charset=utf-8"
	}
	return "application/json; charset=utf-8"
}

// Codes recorded for calls that were not answered with an errcode.
const (
	// CodeClientGone is recorded for a call whose client went away before the answer.
	CodeClientGone = -499
)

// begin reads the request body (at most maxBody bytes) and starts an exchange.
func (s *Sandbox) begin(r *http.Request, ep string) (*exchange, error) {
	x := &exchange{ep: ep, at: s.now()}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	x.body = body
	if err != nil {
		return x, errors.Join(errBadBody, err)
	}
	if len(body) > maxBody {
		x.body = body[:maxBody]
		return x, errBodyTooLarge
	}
	return x, nil
}

var (
	errBadBody      = errors.New("unreadable request body")
	errBodyTooLarge = errors.New("request body over 1 MiB")
	errEmptyBody    = errors.New("empty post data")
)

// finish records the exchange with its reply and returns the reply.
func (s *Sandbox) finish(x *exchange, rep reply) reply {
	s.mu.Lock()
	s.recordLocked(x, rep.code)
	s.mu.Unlock()
	return rep
}

// jsonReply marshals v as a 200 answer recorded with code.
func jsonReply(code int, v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the sandbox's own structs are marshalled: a failure is a bug.
		return reply{status: http.StatusInternalServerError, body: []byte(`{"errcode":-1,"errmsg":"sandbox: marshal failed"}`), code: -1}
	}
	return reply{status: http.StatusOK, body: b, code: code}
}

// rawReply is a fault's raw answer, recorded with code minus the HTTP status.
func rawReply(f Fault) reply {
	st := f.HTTPStatus
	if st == 0 {
		st = http.StatusOK
	}
	return reply{status: st, body: []byte(f.Body), code: -st, raw: true}
}

// delay waits d or until ctx is done; it reports whether the wait completed.
func delay(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// decodeJSON decodes a JSON request body into v.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody
	}
	return json.Unmarshal(body, v)
}

// wxRequest is a decoded WeChat business request.
type wxRequest interface {
	orderIDs() []string // the order ids the call carries, for faults and the recorder
}

// decodeWeChat decodes the body of a WeChat business endpoint (a nil request on error).
func decodeWeChat(ep string, body []byte) (wxRequest, error) {
	switch ep {
	case EndpointOrderList:
		return asRequest(decodeListRequest(body))
	case EndpointOrderGet:
		return asRequest(decodeOrderGetRequest(body))
	case EndpointDeliverySend:
		return asRequest(decodeSendRequest(body))
	case EndpointBatchGetOrder:
		return asRequest(decodeBatchRequest(body))
	default:
		return asRequest(decodeWaybillQuery(body))
	}
}

// asRequest turns a decoder's result into a wxRequest that is nil on error.
func asRequest[T wxRequest](req T, err error) (wxRequest, error) {
	if err != nil {
		return nil, err
	}
	return req, nil
}

// serveWeChat answers a WeChat business call: detection of caller mistakes, faults,
// latency, token check, then the endpoint's own processing, in the context of the
// app the access_token was issued to.
func (s *Sandbox) serveWeChat(r *http.Request, ep string) reply {
	x, err := s.begin(r, ep)
	s.mu.Lock()
	x.app = s.tokenAppLocked(r.URL.Query().Get("access_token"))
	s.mu.Unlock()
	if err != nil {
		return s.finish(x, wxErr(47001, err.Error()))
	}
	if r.Method != http.MethodPost {
		return s.finish(x, wxErr(43002, ""))
	}
	req, derr := decodeWeChat(ep, x.body)
	if derr == nil {
		x.ids = req.orderIDs()
	}

	s.mu.Lock()
	if derr == nil {
		s.observeLocked(req)
	}
	var sendID string
	if sr, ok := req.(*sendRequest); ok && sr.OrderID != "" && s.mayShipLocked(x.app, string(sr.OrderID)) {
		// In flight from arrival to answer: a second call meanwhile is the caller's bug.
		sendID = string(sr.OrderID)
		if s.inflight[sendID] > 0 {
			s.rec.stats.ConcurrentSends++
			s.appStatsLocked(x.app).ConcurrentSends++
			s.mu.Unlock()
			return s.finish(x, wxErr(100003, "another delivery/send for this order is in progress"))
		}
		s.inflight[sendID]++
		s.notifyLocked()
	}
	plan := s.planFaultsLocked(ep, x.app.id(), x.ids)
	s.mu.Unlock()

	rep := s.answerWeChat(r, req, derr, plan)
	if sendID != "" {
		s.mu.Lock()
		if s.inflight[sendID]--; s.inflight[sendID] <= 0 {
			delete(s.inflight, sendID)
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
	return s.finish(x, rep)
}

// mayShipLocked reports whether a delivery/send of app for the order is one the
// order's shop sees (and so is in flight for it): always, unless the order is known
// and is another app's (answered 100002, it locks nothing). s.mu must be held.
func (s *Sandbox) mayShipLocked(app *appState, orderID string) bool {
	o, ok := s.orders[orderID]
	return app == nil || !ok || o.app == app
}

// observeLocked counts the caller mistakes visible in a request, whatever it is
// answered. s.mu must be held.
func (s *Sandbox) observeLocked(req wxRequest) {
	st := &s.rec.stats
	switch req := req.(type) {
	case *batchRequest:
		n := len(req.OrderList)
		st.MaxBatchSize = max(st.MaxBatchSize, n)
		if n > MaxBatchGetOrder {
			st.BatchOver100++
		}
	case *listRequest:
		if req.windowTooLong() {
			st.ListWindowTooLong++
		}
	}
}

// answerWeChat waits the latency, then answers with the fault's answer, or the
// decoding error, or the token error, or the endpoint's answer.
func (s *Sandbox) answerWeChat(r *http.Request, req wxRequest, derr error, plan faultPlan) reply {
	if !delay(r.Context(), s.cfg.Latency+plan.latency) {
		return reply{code: CodeClientGone, gone: true}
	}
	if plan.answer != nil {
		return wxFault(*plan.answer)
	}
	if derr != nil {
		if errors.Is(derr, errEmptyBody) {
			return wxErr(44002, "")
		}
		return wxErr(47001, derr.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app, code := s.checkTokenLocked(r.URL.Query().Get("access_token"))
	if code != 0 {
		return wxErr(code, "")
	}
	switch req := req.(type) {
	case *listRequest:
		return s.listOrdersLocked(app, req)
	case *orderGetRequest:
		return s.getOrderLocked(app, req)
	case *sendRequest:
		return s.sendLocked(app, req)
	case *batchRequest:
		return s.batchGetLocked(app, req, plan.items)
	case *waybillQuery:
		return s.getWaybillLocked(app, req)
	}
	return wxErr(-1, "unknown endpoint")
}
