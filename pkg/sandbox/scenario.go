package sandbox

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// FaultMix gives the share of generated orders (0..1) per fault class. Shares are
// exact: round(share×Orders) orders get the class, chosen by the seed. The fault
// classes are exclusive (a class is assigned once per order, in field order, until
// the orders run out); NumericIDs is independent of them.
type FaultMix struct {
	Transient  float64 // delivery/send answers a transient code for the first 1–3 calls
	Permanent  float64 // delivery/send always answers a permanent code
	Wait       float64 // delivery/send answers a wait code for the first call
	Cancelled  float64 // the order's waybill is cancelled (order_status 1)
	ItemError  float64 // batchGetOrder/getOrder answer the order's item with an errcode
	NumericIDs float64 // order/list/get and order/get emit the ids as bare JSON numbers
}

// DefaultFaults is a realistic mix for demos and soak tests.
func DefaultFaults() FaultMix {
	return FaultMix{Transient: .05, Permanent: .02, Wait: .01, Cancelled: .02, ItemError: .01, NumericIDs: .10}
}

// NoFaults is the zero mix: every order ships on the first try.
func NoFaults() FaultMix { return FaultMix{} }

// Outcome is the terminal state the pipeline must reach for an order.
type Outcome string

// The outcomes: OutcomeShipped (a successful delivery/send) and OutcomeFailed (a
// terminal failed event).
const (
	OutcomeShipped Outcome = "shipped"
	OutcomeFailed  Outcome = "failed"
)

// Fault classes of ScenarioOrder.Fault.
const (
	FaultNone      = "none"
	FaultTransient = "transient"
	FaultPermanent = "permanent"
	FaultWait      = "wait"
	FaultCancelled = "cancelled"
	FaultItemError = "item_error"
	// FaultBuyerCancelled: the buyer cancels the paid order before it is
	// shipped (Config.CancelBeforeShipping, apps with a PushURL): it must
	// never be sent once cancelled. Only the scenario assigns it.
	FaultBuyerCancelled = "buyer_cancelled"
)

// ScenarioOrder is one generated (or added) Channels order and what must become of it.
type ScenarioOrder struct {
	AppID      string // the app (shop) the order belongs to; AddOrder: "" is the first app
	OrderID    string
	DeliveryID string // carrier of its waybill
	WaybillID  string
	Expect     Outcome
	Fault      string // FaultNone, FaultTransient, FaultPermanent, FaultWait, FaultCancelled, FaultItemError, FaultBuyerCancelled
	Code       int    // the errcode the fault answers (0 for none, cancelled and buyer_cancelled)
	// Push is what the order's pushes do when its app has a PushURL (zero
	// otherwise, and for orders added with AddOrder: one pay push).
	Push PushPlan
}

// PushPlan is what an order's pushes do, drawn from Config.Seed by the
// push options of the Config.
type PushPlan struct {
	Duplicate bool // its pay push is delivered twice (PushDuplicates)
	Reorder   bool // its wait_shipping push is delivered before the pay push and again after it (PushReorder)
	Cancel    bool // the buyer cancels it once its pay push was answered (CancelBeforeShipping; Fault FaultBuyerCancelled)
}

// BaseOrderID is the id of the first generated order; the others follow it. App k of
// Config.Apps starts at BaseOrderID + k×AppOrderIDSpan.
const BaseOrderID uint64 = 3704612354559743232

// Codes the scenario draws from, per fault class.
var (
	transientCodes = []int{-1, 45011, 100003, 268545009}
	permanentCodes = []int{606003, 109205, 606046, 606005, 268545001}
	waitCodes      = []int{108009, 10020115, 10020276, 606049}
)

// The values of OrderView.Status, as the platform's order status.
const (
	OrderStatusAwaitingShipment = 20
	OrderStatusShipped          = 30
	OrderStatusCancelled        = 250 // by the buyer (CancelBeforeShipping)
)

// waybill status values of batchGetOrder's order_status.
const (
	waybillNormal    = 0
	waybillCancelled = 1
)

// order is a Channels order's state.
type order struct {
	app        *appState // the shop it belongs to
	id         string
	numeric    bool // emit ids as bare JSON numbers
	status     int
	createTime int64
	updateTime int64
	openid     string
	products   []product
	address    address
	shipped    []shipment // packages of successful delivery/send calls
}

// product is one product line of an order.
type product struct {
	productID, skuID string
	cnt              int
	title            string
}

// address is the receiver of an order.
type address struct {
	userName, postalCode, province, city, county, detail, tel string
}

// shipment is a package of a successful delivery/send.
type shipment struct {
	deliveryID, waybillID string
	products              []product // productID, skuID, cnt
}

// waybill is the logistics side of an order.
type waybill struct {
	orderID, deliveryID, waybillID string
	status                         int
	printHTML                      string
	data                           [][2]string // waybill_data key/value pairs
}

// Places and titles the generator draws from.
var (
	places = [][4]string{ // province, city, county, postal code
		{"广东省", "广州市", "天河区", "510000"},
		{"浙江省", "杭州市", "西湖区", "310000"},
		{"上海市", "上海市", "浦东新区", "200120"},
		{"北京市", "北京市", "朝阳区", "100020"},
		{"四川省", "成都市", "武侯区", "610041"},
		{"江苏省", "南京市", "鼓楼区", "210008"},
	}
	surnames = []string{"张", "王", "李", "赵", "陈", "刘", "周", "吴"}
	given    = []string{"伟", "芳", "娜", "敏", "静", "磊", "洋", "婷"}
	streets  = []string{"华星路", "中山路", "人民路", "解放路", "建设路", "科技园路"}
	titles   = []string{
		"婴幼儿童宝贝随身便携小包迷你清洁湿巾", "纯棉短袖T恤", "不锈钢保温杯 500ml",
		"无线蓝牙耳机", "陶瓷马克杯", "帆布双肩包", "有机绿茶 250g", "手工香皂礼盒",
	}
)

// Streams of the scenario's random draws (PCG's second word); app k uses
// appStream(base, k), so app 0 draws as a single-app sandbox does.
const (
	streamOrders = 0x6f72646572   // "order"
	streamNew    = 0x6e6577       // "new"
	streamVV     = 0x7676746f6f6c // "vvtool"
	streamPush   = 0x70757368     // "push"
)

// appStream is app k's variant of a stream: the base for app 0, then bases
// tagged with k above their 48 bits.
func appStream(base uint64, k int) uint64 { return base ^ uint64(k)<<48 }

// generate builds the scenario from the seed: every app's orders, waybills, faults
// and vv-tool shippings. Only New calls it, before the Sandbox is shared.
func (s *Sandbox) generate() {
	now := s.now()
	epoch := s.cfg.Epoch
	if epoch.IsZero() {
		epoch = now
	}
	for _, a := range s.apps {
		s.generateApp(a, now, epoch)
	}
}

// generateApp builds app a's part of the scenario from the seed and its index.
func (s *Sandbox) generateApp(a *appState, now, epoch time.Time) {
	seed := uint64(s.cfg.Seed)
	r := rand.New(rand.NewPCG(seed, appStream(streamOrders, a.idx)))
	n := a.cfg.Orders
	from := len(s.scenario)
	// A restart with more orders than were served draws the earlier ones
	// exactly as before, and the new ones from a stream of their own.
	first := n
	if s.cfg.Served > 0 && s.cfg.Served < n {
		first = s.cfg.Served
	}
	s.drawOrders(a, r, 0, first, func() int64 {
		const span = 23 * time.Hour // update_time in (epoch-23h-1m, epoch-1m]: a 24 h lookback sees all
		return epoch.Add(-time.Minute - time.Duration(r.Int64N(int64(span)))).Unix()
	})
	if first < n {
		// New since the earlier sandbox: dated at this one's start, after
		// what its pollers checkpointed.
		rn := rand.New(rand.NewPCG(seed, appStream(streamNew, a.idx)))
		s.drawOrders(a, rn, first, n, func() int64 { return now.Unix() })
	}
	// Indexed once, sorted, rather than by n insertions.
	a.byUpdate = make([]*order, 0, n)
	for _, so := range s.scenario[from:] {
		a.byUpdate = append(a.byUpdate, s.orders[so.OrderID])
	}
	slices.SortFunc(a.byUpdate, cmpOrders)
	a.nextSeq = uint64(n)
	a.rng = r
	if a.vv != nil {
		s.generateVV(a.vv, rand.New(rand.NewPCG(seed, appStream(streamVV, a.idx))), epoch)
	}
}

// drawOrders adds app a's orders with index from to to-1, with r's fault classes
// and id kinds (exact shares of the range) and update times from upd.
func (s *Sandbox) drawOrders(a *appState, r *rand.Rand, from, to int, upd func() int64) {
	classes := assignClasses(r, to-from, a.cfg.Faults)
	numeric := assignShare(r, to-from, a.cfg.Faults.NumericIDs)
	for i := from; i < to; i++ {
		t := upd()
		o := ScenarioOrder{
			OrderID:    a.orderID(uint64(i)),
			DeliveryID: a.cfg.DeliveryID,
			Fault:      classes[i-from],
		}
		s.addLocked(a, r, o, 1+r.IntN(3), t, numeric[i-from], false)
	}
}

// assignClasses gives each of n orders a fault class with the exact shares of mix.
func assignClasses(r *rand.Rand, n int, mix FaultMix) []string {
	classes := make([]string, n)
	for i := range classes {
		classes[i] = FaultNone
	}
	perm := r.Perm(n)
	next := 0
	for _, c := range []struct {
		name  string
		share float64
	}{
		{FaultTransient, mix.Transient},
		{FaultPermanent, mix.Permanent},
		{FaultWait, mix.Wait},
		{FaultCancelled, mix.Cancelled},
		{FaultItemError, mix.ItemError},
	} {
		for range shareCount(n, c.share) {
			if next == n {
				return classes
			}
			classes[perm[next]] = c.name
			next++
		}
	}
	return classes
}

// assignShare marks exactly round(share×n) of n orders.
func assignShare(r *rand.Rand, n int, share float64) []bool {
	marked := make([]bool, n)
	for _, i := range r.Perm(n)[:shareCount(n, share)] {
		marked[i] = true
	}
	return marked
}

// shareCount is round(share×n) clamped to [0, n].
func shareCount(n int, share float64) int {
	if share <= 0 || math.IsNaN(share) {
		return 0
	}
	return min(n, int(math.Round(share*float64(n))))
}

// addLocked creates an order of app a, its waybill and its faults, and appends it to
// the scenario; index adds it to the app's byUpdate too. An existing order with the
// same id (of any app) is replaced (faults injected for it stay). With several apps,
// the order's faults are restricted to its app (Fault.AppID): another app's call for
// it is answered as for an order that app does not have. s.mu must be held (or the
// Sandbox not yet shared).
func (s *Sandbox) addLocked(a *appState, r *rand.Rand, so ScenarioOrder, products int, updateTime int64, numeric, index bool) ScenarioOrder {
	so.AppID = a.id()
	if so.DeliveryID == "" {
		so.DeliveryID = a.cfg.DeliveryID
	}
	if so.WaybillID == "" {
		so.WaybillID = strconv.FormatUint(100_000_000_000+r.Uint64N(900_000_000_000), 10)
	}
	if !slices.Contains([]string{FaultTransient, FaultPermanent, FaultWait, FaultCancelled, FaultItemError}, so.Fault) {
		so.Fault = FaultNone
	}
	times := -1
	switch so.Fault {
	case FaultTransient:
		if so.Code == 0 {
			so.Code = transientCodes[r.IntN(len(transientCodes))]
		}
		times = 1 + r.IntN(3)
	case FaultPermanent:
		if so.Code == 0 {
			so.Code = permanentCodes[r.IntN(len(permanentCodes))]
		}
	case FaultWait:
		if so.Code == 0 {
			so.Code = waitCodes[r.IntN(len(waitCodes))]
		}
		times = 1
	case FaultItemError:
		if so.Code == 0 {
			so.Code = CodeWaybillNotFound
		}
	default:
		so.Code = 0
	}
	if so.Expect == "" {
		so.Expect = OutcomeShipped
		if so.Fault == FaultPermanent || so.Fault == FaultCancelled || so.Fault == FaultItemError {
			so.Expect = OutcomeFailed
		}
	}

	o := newOrder(r, so.OrderID, products, updateTime, numeric)
	o.app = a
	if old, ok := s.orders[o.id]; ok {
		old.app.removeByUpdate(old)
		s.scenario = slices.DeleteFunc(s.scenario, func(x ScenarioOrder) bool { return x.OrderID == o.id })
		delete(s.sends, o.id)
	}
	s.orders[o.id] = o
	if index {
		a.insertByUpdate(o)
	}
	s.waybills[o.id] = newWaybill(o, so.DeliveryID, so.WaybillID, so.Fault == FaultCancelled)
	scope := ""
	if len(s.apps) > 1 {
		scope = a.id()
	}
	switch so.Fault {
	case FaultTransient, FaultPermanent, FaultWait:
		s.injectLocked(Fault{Endpoint: EndpointDeliverySend, AppID: scope, OrderID: o.id, Code: so.Code, Times: times})
	case FaultItemError:
		s.injectLocked(Fault{Endpoint: EndpointBatchGetOrder, AppID: scope, OrderID: o.id, Code: so.Code, Times: -1})
		s.injectLocked(Fault{Endpoint: EndpointGetOrder, AppID: scope, OrderID: o.id, Code: so.Code, Times: -1})
	}
	s.scenario = append(s.scenario, so)
	return so
}

// newOrder draws an order awaiting shipment with 1..products product lines.
func newOrder(r *rand.Rand, id string, products int, updateTime int64, numeric bool) *order {
	o := &order{
		id:         id,
		numeric:    numeric,
		status:     OrderStatusAwaitingShipment,
		updateTime: updateTime,
		createTime: updateTime - 60 - r.Int64N(3600),
		openid:     "o" + randString(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 27),
	}
	for range max(products, 1) {
		o.products = append(o.products, product{
			productID: strconv.FormatUint(10_000_000_000_000+r.Uint64N(90_000_000_000_000), 10),
			skuID:     strconv.FormatUint(1_000_000_000_000_000+r.Uint64N(8_000_000_000_000_000), 10),
			cnt:       1 + r.IntN(3),
			title:     titles[r.IntN(len(titles))],
		})
	}
	p := places[r.IntN(len(places))]
	o.address = address{
		userName:   surnames[r.IntN(len(surnames))] + given[r.IntN(len(given))],
		postalCode: p[3],
		province:   p[0],
		city:       p[1],
		county:     p[2],
		detail:     fmt.Sprintf("%s%d号", streets[r.IntN(len(streets))], 1+r.IntN(999)),
		tel:        "1" + strconv.Itoa(3+r.IntN(7)) + randString(r, "0123456789", 9),
	}
	return o
}

// newWaybill is the logistics waybill of o.
func newWaybill(o *order, deliveryID, waybillID string, cancelled bool) *waybill {
	w := &waybill{orderID: o.id, deliveryID: deliveryID, waybillID: waybillID, status: waybillNormal}
	if cancelled {
		w.status = waybillCancelled
	}
	w.data = [][2]string{
		{deliveryID + "_bagAddr", o.address.city},
		{deliveryID + "_mark", fmt.Sprintf("%s %s", o.address.province, o.address.county)},
	}
	html := fmt.Sprintf("<html><body><h1>%s %s</h1><p>order %s</p><p>%s %s</p></body></html>",
		deliveryID, waybillID, o.id, o.address.userName, o.address.city)
	w.printHTML = base64.StdEncoding.EncodeToString([]byte(html))
	return w
}

// randString draws n characters of alphabet.
func randString(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// SetWaybillPrintHTML makes batchGetOrder and getOrder answer html as the
// print_html of the order's waybill (a platform answering a huge one, say);
// it reports whether the order has a waybill.
func (s *Sandbox) SetWaybillPrintHTML(orderID, html string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.waybills[orderID]
	if ok {
		w.printHTML = html
	}
	return ok
}

// Scenario returns every app's generated and added orders with their expected
// outcomes, in the order they were created (app by app for the generated ones).
func (s *Sandbox) Scenario() []ScenarioOrder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.scenario)
}

// AppScenario is Scenario for the app with the given appid only (nil for an unknown
// app).
func (s *Sandbox) AppScenario(appID string) []ScenarioOrder {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sc []ScenarioOrder
	for _, so := range s.scenario {
		if so.AppID == appID {
			sc = append(sc, so)
		}
	}
	return sc
}

// AddOrder adds one more order awaiting shipment at run time, with update_time now and
// the given number of product lines (at least 1), to the app o.AppID names (the first
// app when empty; AddOrder panics for an appid the sandbox does not serve). Empty
// fields of o are filled in: the app's next generated OrderID, the app's DeliveryID,
// a drawn WaybillID, the fault class's code, and Expect from the class (an unknown
// Fault counts as "none"). An order with an existing id is replaced, in whichever app
// it was (faults injected for the old one stay). The filled-in order is the last
// element of Scenario. When the app has a PushURL and pushes are running
// (StartPushes), the order's pay push is sent at once (one push: no duplicate,
// reordering or cancel); added before StartPushes, it is pushed with the others.
func (s *Sandbox) AddOrder(o ScenarioOrder, products int) {
	a := s.apps[0]
	if o.AppID != "" {
		var ok bool
		if a, ok = s.appByID[o.AppID]; !ok {
			panic("sandbox: AddOrder for an app the sandbox does not serve: " + o.AppID)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.OrderID == "" {
		for {
			o.OrderID = a.orderID(a.nextSeq)
			a.nextSeq++
			if _, taken := s.orders[o.OrderID]; !taken {
				break
			}
		}
	}
	so := s.addLocked(a, a.rng, o, products, s.now().Unix(), false, true)
	s.pushAddedLocked(a, so.OrderID)
	s.notifyLocked()
}
