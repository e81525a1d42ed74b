package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
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
)

// DefaultVVShops is the vv-tool shop list used when Config.VVShops is empty.
var DefaultVVShops = []string{"1001", "1002"}

// maxBody bounds the request bodies the sandbox reads (1 MiB).
const maxBody = 1 << 20

// Config configures a Sandbox. The zero value is usable: no orders, no faults and the
// documented defaults.
type Config struct {
	Seed       int64    // deterministic scenario
	Orders     int      // N Channels orders awaiting shipment (status 20), ids "3704612354559743232"+offset
	DeliveryID string   // carrier of generated waybills; default "SF"
	Faults     FaultMix // share of orders per fault class

	AppID, AppSecret string // default "wxsandboxappid", "sandbox-app-secret"; token endpoints answer 40013/40125 otherwise

	VVToken            string   // default "sandbox-vv-token" (401 otherwise)
	VVShops            []string // default {"1001","1002"} (302 for an unknown shop)
	VVShippingsPerShop int      // default 50

	TokenTTL           time.Duration    // expires_in of issued tokens; default 2h
	RotateTokenEvery   int              // 0 = never; else the current access_token becomes invalid (40001) after every N business calls
	MaxOrdersPerWindow int              // order/list/get answers 31042 when the window holds more orders than this; default 1000
	Latency            time.Duration    // added to every business call; default 0
	Now                func() time.Time // the clock (token expiry, windows, rates, update_time); default time.Now
	// Epoch is the moment the scenario is dated from: orders updated in
	// the 23 h before it, vv-tool shippings created in the 7 days before
	// it. Zero means the sandbox's start. A sandbox restarted with the same
	// Epoch serves the same facts at the same times, so a poller that saw
	// them does not see them as new.
	Epoch time.Time
	// Served is how many of the Orders a sandbox with this Epoch served
	// before (a restart with more orders): the orders beyond it are dated
	// at this sandbox's start, after anything a poller checkpointed, so it
	// finds them.
	Served int
}

// withDefaults returns cfg with the zero fields filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Orders < 0 {
		cfg.Orders = 0
	}
	if cfg.DeliveryID == "" {
		cfg.DeliveryID = DefaultDeliveryID
	}
	if cfg.AppID == "" {
		cfg.AppID = DefaultAppID
	}
	if cfg.AppSecret == "" {
		cfg.AppSecret = DefaultAppSecret
	}
	if cfg.VVToken == "" {
		cfg.VVToken = DefaultVVToken
	}
	if len(cfg.VVShops) == 0 {
		cfg.VVShops = DefaultVVShops
	}
	cfg.VVShops = append([]string(nil), cfg.VVShops...)
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
	return cfg
}

// Sandbox is the fake platform: an http.Handler serving every endpoint listed in the
// package documentation. Create it with New; it is safe for concurrent use.
type Sandbox struct {
	cfg Config

	mu       sync.Mutex
	rng      *rand.Rand // runtime draws (AddOrder); scenario draws use their own streams
	nextSeq  uint64     // offset of the next generated order id
	orders   map[string]*order
	byUpdate []*order // sorted by (update_time, order_id): the order/list/get paging order
	waybills map[string]*waybill
	scenario []ScenarioOrder
	faults   faultSet
	tokens   tokenState
	inflight map[string]int // delivery/send being handled, per order id
	sends    map[string]int // successful delivery/send per order id
	vv       vvState
	rec      recorder
	changed  chan struct{} // closed and replaced on every state change (WaitUntil)
}

// New returns a Sandbox serving the deterministic scenario generated from cfg.Seed.
func New(cfg Config) *Sandbox {
	cfg = cfg.withDefaults()
	s := &Sandbox{
		cfg:      cfg,
		orders:   make(map[string]*order),
		waybills: make(map[string]*waybill),
		inflight: make(map[string]int),
		sends:    make(map[string]int),
		tokens:   newTokenState(),
		rec:      newRecorder(),
		changed:  make(chan struct{}),
	}
	s.generate()
	return s
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
// latency, token check, then the endpoint's own processing.
func (s *Sandbox) serveWeChat(r *http.Request, ep string) reply {
	x, err := s.begin(r, ep)
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
	if sr, ok := req.(*sendRequest); ok && sr.OrderID != "" {
		// In flight from arrival to answer: a second call meanwhile is the caller's bug.
		sendID = string(sr.OrderID)
		if s.inflight[sendID] > 0 {
			s.rec.stats.ConcurrentSends++
			s.mu.Unlock()
			return s.finish(x, wxErr(100003, "another delivery/send for this order is in progress"))
		}
		s.inflight[sendID]++
		s.notifyLocked()
	}
	plan := s.planFaultsLocked(ep, x.ids)
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
	if code := s.checkTokenLocked(r.URL.Query().Get("access_token")); code != 0 {
		return wxErr(code, "")
	}
	switch req := req.(type) {
	case *listRequest:
		return s.listOrdersLocked(req)
	case *orderGetRequest:
		return s.getOrderLocked(req)
	case *sendRequest:
		return s.sendLocked(req)
	case *batchRequest:
		return s.batchGetLocked(req, plan.items)
	case *waybillQuery:
		return s.getWaybillLocked(req)
	}
	return wxErr(-1, "unknown endpoint")
}
