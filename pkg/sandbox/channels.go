package sandbox

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits of order/list/get (seed 002).
const (
	maxListWindow       = 7 * 24 * 60 * 60 // seconds between start_time and end_time
	maxListPageSize     = 100
	defaultListPageSize = 10
)

// Product is one product line of a sandbox order.
type Product struct {
	ProductID string
	SkuID     string
	SkuCnt    int
	Title     string
}

// OrderView is a snapshot of a sandbox Channels order.
type OrderView struct {
	AppID      string // the app (shop) it belongs to
	OrderID    string
	Status     int // OrderStatusAwaitingShipment, OrderStatusShipped or OrderStatusCancelled
	CreateTime time.Time
	UpdateTime time.Time
	NumericIDs bool // order/list/get and order/get emit its ids as bare JSON numbers
	Products   []Product
}

// Order returns a snapshot of the order with the given id.
func (s *Sandbox) Order(orderID string) (OrderView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return OrderView{}, false
	}
	v := OrderView{
		AppID:      o.app.id(),
		OrderID:    o.id,
		Status:     o.status,
		CreateTime: time.Unix(o.createTime, 0),
		UpdateTime: time.Unix(o.updateTime, 0),
		NumericIDs: o.numeric,
	}
	for _, p := range o.products {
		v.Products = append(v.Products, Product{ProductID: p.productID, SkuID: p.skuID, SkuCnt: p.cnt, Title: p.title})
	}
	return v, true
}

// Sends returns the number of successful delivery/send calls for the order (order ids
// are unique across apps).
func (s *Sandbox) Sends(orderID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sends[orderID]
}

// appOrderLocked is the order with the given id if it is the app's: the platform
// answers an app's call for another app's order as for one that does not exist.
// s.mu must be held.
func (s *Sandbox) appOrderLocked(app *appState, id string) (*order, bool) {
	o, ok := s.orders[id]
	if !ok || o.app != app {
		return nil, false
	}
	return o, true
}

// InFlight reports whether a delivery/send for the order is being handled right now
// (useful with WaitUntil to overlap calls in tests).
func (s *Sandbox) InFlight(orderID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[orderID] > 0
}

// InFlightSends is the number of orders whose delivery/send is being
// handled right now (with WaitUntil: to act while calls are under way).
func (s *Sandbox) InFlightSends() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight)
}

// cmpUpdate orders by (update_time, order_id): the paging order of order/list/get.
// Ids compare numerically when numeric (shorter first), else lexically.
func cmpUpdate(aTime int64, aID string, bTime int64, bID string) int {
	if c := cmp.Compare(aTime, bTime); c != 0 {
		return c
	}
	if c := cmp.Compare(len(aID), len(bID)); c != 0 {
		return c
	}
	return strings.Compare(aID, bID)
}

// cmpOrders is cmpUpdate of two orders.
func cmpOrders(a, b *order) int { return cmpUpdate(a.updateTime, a.id, b.updateTime, b.id) }

// insertByUpdate adds o to a.byUpdate at its place.
func (a *appState) insertByUpdate(o *order) {
	i, _ := slices.BinarySearchFunc(a.byUpdate, o, cmpOrders)
	a.byUpdate = slices.Insert(a.byUpdate, i, o)
}

// removeByUpdate removes o from a.byUpdate.
func (a *appState) removeByUpdate(o *order) {
	if i, found := slices.BinarySearchFunc(a.byUpdate, o, cmpOrders); found && a.byUpdate[i] == o {
		a.byUpdate = slices.Delete(a.byUpdate, i, i+1)
	}
}

// timeRange is a create_time_range or update_time_range (seconds).
type timeRange struct {
	StartTime int64 `json:"start_time"`
	EndTime   int64 `json:"end_time"`
}

// contains reports whether t is inside the range (both ends included).
func (tr *timeRange) contains(t int64) bool { return tr.StartTime <= t && t <= tr.EndTime }

// listRequest is the body of order/list/get.
type listRequest struct {
	CreateTimeRange *timeRange `json:"create_time_range"`
	UpdateTimeRange *timeRange `json:"update_time_range"`
	Status          *int       `json:"status"`
	OpenID          string     `json:"openid"`
	PageSize        *int       `json:"page_size"`
	NextKey         string     `json:"next_key"`
}

func (r *listRequest) orderIDs() []string { return nil }

// windowTooLong reports whether a time range spans more than 7 days.
func (r *listRequest) windowTooLong() bool {
	for _, tr := range []*timeRange{r.CreateTimeRange, r.UpdateTimeRange} {
		if tr != nil && tr.EndTime > tr.StartTime && uint64(tr.EndTime)-uint64(tr.StartTime) > maxListWindow {
			return true
		}
	}
	return false
}

// decodeListRequest decodes an order/list/get body.
func decodeListRequest(body []byte) (*listRequest, error) {
	var req listRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// listResponse is the answer of order/list/get.
type listResponse struct {
	wxStatus
	OrderIDList []json.RawMessage `json:"order_id_list"`
	NextKey     string            `json:"next_key"`
	HasMore     bool              `json:"has_more"`
}

// listCursor is what a next_key carries: the request parameters' hash and the last
// order of the previous page.
type listCursor struct {
	params     string
	updateTime int64
	orderID    string
}

// encode renders the cursor as an opaque next_key.
func (c listCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s:%d:%s", c.params, c.updateTime, c.orderID))
}

// parseNextKey decodes a next_key.
func parseNextKey(key string) (listCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return listCursor{}, false
	}
	parts := strings.SplitN(string(b), ":", 3)
	if len(parts) != 3 {
		return listCursor{}, false
	}
	t, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return listCursor{}, false
	}
	return listCursor{params: parts[0], updateTime: t, orderID: parts[2]}, true
}

// paramsHash identifies every parameter of a list request except next_key, and the
// app after the first (so another app's next_key answers 606006; app 0's next_keys
// are those of a single-app sandbox).
func paramsHash(app *appState, r *listRequest, pageSize int) string {
	h := fnv.New64a()
	rng := func(tr *timeRange) string {
		if tr == nil {
			return "-"
		}
		return fmt.Sprintf("%d-%d", tr.StartTime, tr.EndTime)
	}
	status := "-"
	if r.Status != nil {
		status = strconv.Itoa(*r.Status)
	}
	fmt.Fprintf(h, "c=%s u=%s s=%s o=%q p=%d", rng(r.CreateTimeRange), rng(r.UpdateTimeRange), status, r.OpenID, pageSize)
	if app.idx > 0 {
		fmt.Fprintf(h, " a=%d", app.idx)
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// listOrdersLocked answers order/list/get with the app's orders. s.mu must be held.
func (s *Sandbox) listOrdersLocked(app *appState, req *listRequest) reply {
	if req.CreateTimeRange == nil && req.UpdateTimeRange == nil {
		return wxErr(40097, "create_time_range or update_time_range is required")
	}
	for _, tr := range []*timeRange{req.CreateTimeRange, req.UpdateTimeRange} {
		switch {
		case tr == nil:
		case tr.StartTime < 0 || tr.StartTime > tr.EndTime:
			return wxErr(40097, "start_time must not be after end_time")
		case tr.EndTime-tr.StartTime > maxListWindow:
			return wxErr(40097, "time range must not exceed 7 days")
		}
	}
	size := defaultListPageSize
	if req.PageSize != nil {
		size = *req.PageSize
		if size < 1 || size > maxListPageSize {
			return wxErr(40097, "page_size must be 1..100")
		}
	}
	params := paramsHash(app, req, size)
	var after *listCursor
	if req.NextKey != "" {
		c, ok := parseNextKey(req.NextKey)
		if !ok || c.params != params {
			s.rec.stats.NextKeyMismatch++
			return wxErr(606006, "")
		}
		after = &c
	}

	candidates := app.byUpdate
	if u := req.UpdateTimeRange; u != nil {
		lo := sort.Search(len(candidates), func(i int) bool { return candidates[i].updateTime >= u.StartTime })
		hi := sort.Search(len(candidates), func(i int) bool { return candidates[i].updateTime > u.EndTime })
		candidates = candidates[lo:max(lo, hi)]
	}
	// The window's matches are counted (31042) only when it could hold
	// more than the limit; otherwise a page starts at its cursor and ends
	// at its first match past the page, rather than going through the
	// whole window for every page.
	counting := len(candidates) > s.cfg.MaxOrdersPerWindow
	if !counting && after != nil {
		candidates = candidates[sort.Search(len(candidates), func(i int) bool {
			return cmpUpdate(candidates[i].updateTime, candidates[i].id, after.updateTime, after.orderID) > 0
		}):]
	}
	resp := listResponse{wxStatus: wxStatus{Errmsg: "ok"}, OrderIDList: []json.RawMessage{}, NextKey: req.NextKey}
	count := 0
	var last *order
	for _, o := range candidates {
		if !req.matches(o) {
			continue
		}
		count++
		if count > s.cfg.MaxOrdersPerWindow {
			return wxErr(31042, "")
		}
		if after != nil && cmpUpdate(o.updateTime, o.id, after.updateTime, after.orderID) <= 0 {
			continue
		}
		if len(resp.OrderIDList) == size {
			resp.HasMore = true
			if !counting {
				break
			}
			continue
		}
		resp.OrderIDList = append(resp.OrderIDList, idJSON(o.id, o.numeric))
		last = o
	}
	if last != nil {
		resp.NextKey = listCursor{params: params, updateTime: last.updateTime, orderID: last.id}.encode()
	}
	return jsonReply(0, resp)
}

// matches reports whether o passes the request's filters.
func (r *listRequest) matches(o *order) bool {
	switch {
	case r.UpdateTimeRange != nil && !r.UpdateTimeRange.contains(o.updateTime):
		return false
	case r.CreateTimeRange != nil && !r.CreateTimeRange.contains(o.createTime):
		return false
	case r.Status != nil && *r.Status != o.status:
		return false
	case r.OpenID != "" && r.OpenID != o.openid:
		return false
	}
	return true
}

// orderGetRequest is the body of order/get.
type orderGetRequest struct {
	OrderID wireID `json:"order_id"`
}

func (r *orderGetRequest) orderIDs() []string { return []string{string(r.OrderID)} }

// decodeOrderGetRequest decodes an order/get body.
func decodeOrderGetRequest(body []byte) (*orderGetRequest, error) {
	var req orderGetRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// Wire shapes of the order/get answer (API-NOTES). Ids are raw JSON: strings, or bare
// numbers for NumericIDs orders.
type (
	orderGetResponse struct {
		wxStatus
		Order orderJSON `json:"order"`
	}
	orderJSON struct {
		OrderID     json.RawMessage `json:"order_id"`
		Status      int             `json:"status"`
		CreateTime  int64           `json:"create_time"`
		UpdateTime  int64           `json:"update_time"`
		OpenID      string          `json:"openid"`
		OrderDetail orderDetailJSON `json:"order_detail"`
	}
	orderDetailJSON struct {
		ProductInfos []productInfoJSON `json:"product_infos"`
		DeliveryInfo deliveryInfoJSON  `json:"delivery_info"`
	}
	productInfoJSON struct {
		ProductID         json.RawMessage `json:"product_id"`
		SkuID             json.RawMessage `json:"sku_id"`
		SkuCnt            int             `json:"sku_cnt"`
		Title             string          `json:"title"`
		OnAftersaleSkuCnt int             `json:"on_aftersale_sku_cnt"`
	}
	deliveryInfoJSON struct {
		DeliverMethod       int                       `json:"deliver_method"`
		AddressInfo         addressJSON               `json:"address_info"`
		DeliveryProductInfo []deliveryProductInfoJSON `json:"delivery_product_info"`
	}
	addressJSON struct {
		UserName     string `json:"user_name"`
		PostalCode   string `json:"postal_code"`
		ProvinceName string `json:"province_name"`
		CityName     string `json:"city_name"`
		CountyName   string `json:"county_name"`
		DetailInfo   string `json:"detail_info"`
		TelNumber    string `json:"tel_number"`
	}
	deliveryProductInfoJSON struct {
		WaybillID    string                `json:"waybill_id"`
		DeliveryID   string                `json:"delivery_id"`
		ProductInfos []deliveryProductJSON `json:"product_infos"`
	}
	deliveryProductJSON struct {
		ProductID  json.RawMessage `json:"product_id"`
		SkuID      json.RawMessage `json:"sku_id"`
		ProductCnt int             `json:"product_cnt"`
	}
)

// getOrderLocked answers order/get; another app's order is one the app does not
// have (100002). s.mu must be held.
func (s *Sandbox) getOrderLocked(app *appState, req *orderGetRequest) reply {
	if req.OrderID == "" {
		return wxErr(40097, "order_id is required")
	}
	o, ok := s.appOrderLocked(app, string(req.OrderID))
	if !ok {
		return wxErr(100002, "")
	}
	a := o.address
	j := orderJSON{
		OrderID:    idJSON(o.id, o.numeric),
		Status:     o.status,
		CreateTime: o.createTime,
		UpdateTime: o.updateTime,
		OpenID:     o.openid,
		OrderDetail: orderDetailJSON{
			ProductInfos: []productInfoJSON{},
			DeliveryInfo: deliveryInfoJSON{
				AddressInfo: addressJSON{
					UserName: a.userName, PostalCode: a.postalCode, ProvinceName: a.province,
					CityName: a.city, CountyName: a.county, DetailInfo: a.detail, TelNumber: a.tel,
				},
				DeliveryProductInfo: []deliveryProductInfoJSON{},
			},
		},
	}
	for _, p := range o.products {
		j.OrderDetail.ProductInfos = append(j.OrderDetail.ProductInfos, productInfoJSON{
			ProductID: idJSON(p.productID, o.numeric), SkuID: idJSON(p.skuID, o.numeric), SkuCnt: p.cnt, Title: p.title,
		})
	}
	for _, sh := range o.shipped {
		d := deliveryProductInfoJSON{WaybillID: sh.waybillID, DeliveryID: sh.deliveryID, ProductInfos: []deliveryProductJSON{}}
		for _, p := range sh.products {
			d.ProductInfos = append(d.ProductInfos, deliveryProductJSON{
				ProductID: idJSON(p.productID, o.numeric), SkuID: idJSON(p.skuID, o.numeric), ProductCnt: p.cnt,
			})
		}
		j.OrderDetail.DeliveryInfo.DeliveryProductInfo = append(j.OrderDetail.DeliveryInfo.DeliveryProductInfo, d)
	}
	return jsonReply(0, orderGetResponse{wxStatus: wxStatus{Errmsg: "ok"}, Order: j})
}

// Deliver types of delivery/send (seed 004).
const (
	deliverTypeExpress = 1
	deliverTypeVirtual = 3
)

// sendRequest is the body of delivery/send (seed 004). order_id and the product ids
// are accepted as JSON strings or numbers: the seed's table says number, its example
// sends a string.
type sendRequest struct {
	OrderID      wireID        `json:"order_id"`
	DeliveryList []sendPackage `json:"delivery_list"`
}

// sendPackage is one element of delivery_list.
type sendPackage struct {
	DeliveryID   string        `json:"delivery_id"`
	WaybillID    string        `json:"waybill_id"`
	DeliverType  int           `json:"deliver_type"`
	ProductInfos []sendProduct `json:"product_infos"`
	CourseInfo   *courseInfo   `json:"course_info"`
	SnInfo       *snInfo       `json:"sn_info"`
}

// sendProduct is one element of a package's product_infos.
type sendProduct struct {
	ProductCnt int    `json:"product_cnt"`
	ProductID  wireID `json:"product_id"`
	SkuID      wireID `json:"sku_id"`
}

// courseInfo is a package's course_info (decoded to check its types).
type courseInfo struct {
	StartTime  int64 `json:"start_time"`
	EndTime    int64 `json:"end_time"`
	CoursePath *struct {
		Type     int    `json:"type"`
		WxaAppID string `json:"wxa_appid"`
		WxaPath  string `json:"wxa_path"`
	} `json:"course_path"`
}

// snInfo is a package's sn_info (decoded to check its types).
type snInfo struct {
	SnCode string `json:"sn_code"`
	Imei1  string `json:"imei1"`
	Imei2  string `json:"imei2"`
}

func (r *sendRequest) orderIDs() []string { return []string{string(r.OrderID)} }

// decodeSendRequest decodes a delivery/send body.
func decodeSendRequest(body []byte) (*sendRequest, error) {
	var req sendRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// sendLocked answers delivery/send; another app's order is one the app does not
// have (100002). s.mu must be held.
func (s *Sandbox) sendLocked(app *appState, req *sendRequest) reply {
	id := string(req.OrderID)
	if id == "" {
		return wxErr(40097, "order_id is required")
	}
	o, ok := s.appOrderLocked(app, id)
	switch {
	case !ok:
		return wxErr(100002, "")
	case o.status == OrderStatusShipped:
		s.rec.stats.DuplicateSends++
		s.appStatsLocked(app).DuplicateSends++
		return wxErr(109001, "")
	case o.status != OrderStatusAwaitingShipment:
		return wxErr(101100, "")
	case len(req.DeliveryList) == 0:
		return wxErr(40097, "delivery_list is required")
	}

	type key struct{ product, sku string }
	want := make(map[key]int, len(o.products))
	for _, p := range o.products {
		want[key{p.productID, p.skuID}] += p.cnt
	}
	got := make(map[key]int, len(want))
	packages := make([]shipment, 0, len(req.DeliveryList))
	for i, pkg := range req.DeliveryList {
		switch {
		case len(pkg.ProductInfos) == 0:
			return wxErr(109002, "")
		case pkg.DeliverType == deliverTypeVirtual:
			return wxErr(606008, "order deliver_method is 0 (express)")
		case pkg.DeliverType != deliverTypeExpress:
			return wxErr(40097, fmt.Sprintf("delivery_list[%d].deliver_type must be 1 or 3", i))
		case pkg.DeliveryID == "" || pkg.WaybillID == "":
			return wxErr(40097, fmt.Sprintf("delivery_list[%d]: delivery_id and waybill_id are required for deliver_type 1", i))
		case pkg.CourseInfo != nil:
			return wxErr(606037, "")
		}
		sh := shipment{deliveryID: pkg.DeliveryID, waybillID: pkg.WaybillID}
		for _, p := range pkg.ProductInfos {
			k := key{string(p.ProductID), string(p.SkuID)}
			if k.product == "" || k.sku == "" {
				return wxErr(40097, "product_id and sku_id are required")
			}
			if _, ok := want[k]; !ok || p.ProductCnt <= 0 {
				return wxErr(109000, fmt.Sprintf("product_id %s sku_id %s product_cnt %d", k.product, k.sku, p.ProductCnt))
			}
			got[k] += p.ProductCnt
			sh.products = append(sh.products, product{productID: k.product, skuID: k.sku, cnt: p.ProductCnt})
		}
		packages = append(packages, sh)
	}
	for _, p := range o.products {
		k := key{p.productID, p.skuID}
		if got[k] != want[k] {
			return wxErr(109000, fmt.Sprintf("product_id %s sku_id %s: product_cnt %d, order has %d", k.product, k.sku, got[k], want[k]))
		}
	}

	app.removeByUpdate(o)
	o.status = OrderStatusShipped
	o.updateTime = max(s.now().Unix(), o.updateTime)
	o.shipped = packages
	app.insertByUpdate(o)
	s.sends[id]++
	s.rec.stats.SuccessfulSends++
	s.appStatsLocked(app).SuccessfulSends++
	return wxErr(0, "")
}
