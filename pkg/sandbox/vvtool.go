package sandbox

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// vv-tool limits and formats (seed 003).
const (
	// VVMaxRequestsPerSecond is vv-tool's rate limit per account; the next request in
	// the same sliding second answers code 202.
	VVMaxRequestsPerSecond = 10
	vvDefaultPageSize      = 40
	vvMaxPageSize          = 100
	vvTimeLayout           = "2006-01-02 15:04:05"
)

// vvZone is the time zone of vv-tool's dates (Asia/Shanghai, no DST).
var vvZone = time.FixedZone("CST", 8*3600)

// vvState is one vv-tool account: its token, its app, its shops' shippings and its
// rate window. token, app and shops are fixed after New; window is guarded by
// Sandbox.mu.
type vvState struct {
	token  string
	app    *appState
	window []time.Time              // arrivals within the last second
	shops  map[string][]*vvShipping // per shop, newest created first
}

// vvShipping is one logistics order of a vv-tool shop (seed 003's Shipping).
type vvShipping struct {
	tid, orderCode, status                       string
	sellerNick, buyerNick, itemTitle             string
	receiverName, receiverPhone, receiverMobile  string
	outSid, companyName, typ, freightPayer, conf string
	isQuickCod                                   bool
	created, modified                            time.Time
	subTids                                      []string
	isSplit                                      int
	loc                                          vvLocation
}

// vvLocation is a Shipping's location.
type vvLocation struct {
	Zip      string `json:"zip"`
	Address  string `json:"address"`
	City     string `json:"city"`
	State    string `json:"state"`
	District string `json:"district"`
}

// vvSubTids is sub_tids as the seed's example sends it: {"number":["…"]}.
type vvSubTids struct {
	Number []string `json:"number"`
}

// Values the vv-tool generator draws from.
var (
	vvStatuses  = []string{"CREATED", "ACCEPTED", "PICK_UP", "ACCEPTED_BY_RECEIVER", "CLOSED", "CANCELLED"}
	vvCompanies = []string{"顺丰速运", "中通快递", "圆通速递", "申通快递", "韵达快递"}
	b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// generateVV draws the shippings of every shop of the account. Only New calls it.
func (s *Sandbox) generateVV(vv *vvState, r *rand.Rand, now time.Time) {
	vv.shops = make(map[string][]*vvShipping, len(vv.app.cfg.VVShops))
	for _, shop := range vv.app.cfg.VVShops {
		seller := "tb" + strconv.FormatUint(1_000_000_000+r.Uint64N(9_000_000_000), 10)
		list := make([]*vvShipping, 0, s.cfg.VVShippingsPerShop)
		for range s.cfg.VVShippingsPerShop {
			list = append(list, newVVShipping(r, now, seller))
		}
		slices.SortStableFunc(list, func(a, b *vvShipping) int { return b.created.Compare(a.created) })
		vv.shops[shop] = list
	}
}

// newVVShipping draws one shipping created in the last 7 days.
func newVVShipping(r *rand.Rand, now time.Time, seller string) *vvShipping {
	tid := strconv.FormatUint(1_000_000_000_000_000_000+r.Uint64N(8_000_000_000_000_000_000), 10)
	created := now.Add(-time.Duration(r.Int64N(int64(7 * 24 * time.Hour)))).Truncate(time.Second)
	modified := created.Add(time.Duration(r.Int64N(int64(now.Sub(created)) + 1))).Truncate(time.Second)
	p := places[r.IntN(len(places))]
	sh := &vvShipping{
		tid:            tid,
		orderCode:      "LP00" + randString(r, "0123456789", 12),
		status:         vvStatuses[r.IntN(len(vvStatuses))],
		sellerNick:     seller,
		buyerNick:      "~" + randString(r, b64Alphabet, 22) + "==~" + randString(r, b64Alphabet, 12) + "~1~~",
		itemTitle:      titles[r.IntN(len(titles))],
		receiverName:   "~" + randString(r, b64Alphabet, 22) + "==~" + randString(r, b64Alphabet, 4) + "~1~~",
		receiverMobile: "$" + randString(r, b64Alphabet, 22) + "==$" + randString(r, b64Alphabet, 22) + "==$1$$",
		typ:            "express",
		created:        created,
		modified:       modified,
		subTids:        []string{tid},
		loc:            vvLocation{Zip: p[3], Address: "****", City: p[1], State: p[0], District: p[2]},
	}
	if r.IntN(10) == 0 {
		sh.isSplit = 1
		sh.subTids = append(sh.subTids, strconv.FormatUint(1_000_000_000_000_000_000+r.Uint64N(8_000_000_000_000_000_000), 10))
	}
	switch sh.status {
	case "PICK_UP", "ACCEPTED_BY_RECEIVER", "CLOSED":
		sh.companyName = vvCompanies[r.IntN(len(vvCompanies))]
		sh.outSid = strconv.FormatUint(100_000_000_000+r.Uint64N(900_000_000_000), 10)
	}
	return sh
}

// render is the Shipping as JSON with the requested fields only; empty strings are
// left out, as the seed's example does. location needs "receiver_location".
func (sh *vvShipping) render(fields map[string]bool) map[string]any {
	m := make(map[string]any, len(fields)+1)
	str := func(name, v string) {
		if fields[name] && v != "" {
			m[name] = v
		}
	}
	str("tid", sh.tid)
	str("order_code", sh.orderCode)
	str("status", sh.status)
	str("seller_nick", sh.sellerNick)
	str("buyer_nick", sh.buyerNick)
	str("out_sid", sh.outSid)
	str("item_title", sh.itemTitle)
	str("receiver_name", sh.receiverName)
	str("receiver_phone", sh.receiverPhone)
	str("receiver_mobile", sh.receiverMobile)
	str("type", sh.typ)
	str("freight_payer", sh.freightPayer)
	str("seller_confirm", sh.conf)
	str("company_name", sh.companyName)
	str("created", sh.created.In(vvZone).Format(vvTimeLayout))
	str("modified", sh.modified.In(vvZone).Format(vvTimeLayout))
	if fields["is_quick_cod_order"] {
		m["is_quick_cod_order"] = sh.isQuickCod
	}
	if fields["is_split"] {
		m["is_split"] = sh.isSplit
	}
	if fields["sub_tids"] {
		m["sub_tids"] = vvSubTids{Number: sh.subTids}
	}
	if fields["receiver_location"] || fields["location"] {
		m["location"] = sh.loc
	}
	return m
}

// detailParams are the parsed form fields of /tool/erps/detail.
type detailParams struct {
	shopID                   string
	fields                   map[string]bool
	tid, status              string
	startCreated, endCreated time.Time // zero: unset
	pageNo, pageSize         int
}

// parseDetailParams validates the form fields: the params, or a vv-tool code (100 bad
// parameter, 614 bad tid) with a detail.
func parseDetailParams(v url.Values) (detailParams, int, string) {
	p := detailParams{
		shopID: strings.TrimSpace(v.Get("shop_id")),
		tid:    strings.TrimSpace(v.Get("tid")),
		status: strings.TrimSpace(v.Get("status")),
		fields: make(map[string]bool),
	}
	for f := range strings.SplitSeq(v.Get("fields"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			p.fields[f] = true
		}
	}
	switch {
	case p.shopID == "":
		return p, 100, "shop_id is required"
	case len(p.fields) == 0:
		return p, 100, "fields is required"
	case p.tid != "" && !isDigits(p.tid):
		return p, 614, ""
	}
	var err error
	for _, tf := range []struct {
		name string
		dst  *time.Time
	}{{"start_created", &p.startCreated}, {"end_created", &p.endCreated}} {
		if s := strings.TrimSpace(v.Get(tf.name)); s != "" {
			if *tf.dst, err = time.ParseInLocation(vvTimeLayout, s, vvZone); err != nil {
				return p, 100, tf.name + " must be yyyy-MM-dd HH:mm:ss"
			}
		}
	}
	for _, nf := range []struct {
		name string
		dst  *int
		def  int
	}{{"page_no", &p.pageNo, 1}, {"page_size", &p.pageSize, vvDefaultPageSize}} {
		*nf.dst = nf.def
		s := strings.TrimSpace(v.Get(nf.name))
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, 100, nf.name + " must be a number"
		}
		if n >= 1 {
			*nf.dst = n
		}
	}
	if p.pageSize > vvMaxPageSize {
		return p, 100, fmt.Sprintf("page_size must be at most %d", vvMaxPageSize)
	}
	return p, 0, ""
}

// parseDetailForm reads the form fields of a /tool/erps/detail body: multipart/form-data
// (as the seed sends it) or application/x-www-form-urlencoded.
func parseDetailForm(contentType string, body []byte) (url.Values, error) {
	mt, mp, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("content type: %w", err)
	}
	switch mt {
	case "multipart/form-data":
		form, err := multipart.NewReader(bytes.NewReader(body), mp["boundary"]).ReadForm(maxBody)
		if err != nil {
			return nil, fmt.Errorf("multipart body: %w", err)
		}
		defer form.RemoveAll()
		return url.Values(form.Value), nil
	case "application/x-www-form-urlencoded":
		return url.ParseQuery(string(body))
	}
	return nil, fmt.Errorf("content type %q: want multipart/form-data", mt)
}

// vvResponse is the answer of /tool/erps/detail.
type vvResponse struct {
	Code int              `json:"code"`
	Msg  string           `json:"msg"`
	Msec int64            `json:"msec"`
	Time int64            `json:"time"`
	Data []map[string]any `json:"data"`
}

// vvErrorResponse is an error answer of /tool/erps/detail.
type vvErrorResponse struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Msec int64  `json:"msec"`
	Time int64  `json:"time"`
}

// vvErr is a vv-tool code answer.
func (s *Sandbox) vvErr(x *exchange, code int, detail string) reply {
	now := s.now()
	return jsonReply(code, vvErrorResponse{Code: code, Msg: vvMessage(code, detail), Msec: now.Sub(x.at).Milliseconds(), Time: now.Unix()})
}

// serveVVTool answers POST /tool/erps/detail: rate detection (per account), faults,
// latency, Bearer token, parameters, shop of the account, then one page of shippings.
func (s *Sandbox) serveVVTool(r *http.Request) reply {
	x, err := s.begin(r, EndpointVVToolDetail)
	acct := s.vvAccount(r.Header.Get("Authorization"))
	if acct != nil {
		x.app = acct.app
	}
	if err != nil {
		return s.finish(x, s.vvErr(x, 100, err.Error()))
	}
	if r.Method != http.MethodPost {
		return s.finish(x, s.vvErr(x, 404, ""))
	}
	form, ferr := parseDetailForm(r.Header.Get("Content-Type"), x.body)
	if tid := form.Get("tid"); tid != "" {
		x.ids = []string{tid}
	}
	plan, limited := s.admitVVTool(acct, x.ids)
	if limited {
		return s.finish(x, s.vvErr(x, 202, fmt.Sprintf("more than %d requests in a second", VVMaxRequestsPerSecond)))
	}
	if !delay(r.Context(), s.cfg.Latency+plan.latency) {
		return s.finish(x, reply{code: CodeClientGone, gone: true})
	}
	if f := plan.answer; f != nil {
		if f.raw() {
			return s.finish(x, rawReply(*f))
		}
		return s.finish(x, s.vvErr(x, f.Code, ""))
	}
	if acct == nil {
		return s.finish(x, s.vvErr(x, 401, ""))
	}
	if ferr != nil {
		return s.finish(x, s.vvErr(x, 100, ferr.Error()))
	}
	p, code, detail := parseDetailParams(form)
	if code != 0 {
		return s.finish(x, s.vvErr(x, code, detail))
	}
	list, ok := acct.shops[p.shopID]
	if !ok {
		return s.finish(x, s.vvErr(x, 302, "shop "+p.shopID))
	}
	resp := vvResponse{Msg: vvMessage(0, ""), Data: p.page(p.matching(list))}
	end := s.now()
	resp.Msec, resp.Time = end.Sub(x.at).Milliseconds(), end.Unix()
	return s.finish(x, jsonReply(0, resp))
}

// vvAccount is the account whose token the Authorization header carries (compared
// in constant time), nil for none.
func (s *Sandbox) vvAccount(auth string) *vvState {
	tok, ok := cutPrefixFold(auth, "Bearer ")
	if !ok {
		return nil
	}
	tok = strings.TrimSpace(tok)
	var found *vvState
	for _, a := range s.apps {
		if a.vv != nil && subtle.ConstantTimeCompare([]byte(tok), []byte(a.vv.token)) == 1 {
			found = a.vv
		}
	}
	return found
}

// admitVVTool counts a request in the sliding second of its account (acct; nil:
// the requests with no or an unknown token, which share one window) and, if it is
// within the limit, plans the faults of a call carrying ids; limited says it is
// over the limit (answered 202, as vv-tool does).
func (s *Sandbox) admitVVTool(acct *vvState, ids []string) (plan faultPlan, limited bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	window := &s.vvOthers
	var app *appState
	if acct != nil {
		window, app = &acct.window, acct.app
	}
	w := *window
	cut := now.Add(-time.Second)
	i := 0
	for i < len(w) && !w[i].After(cut) {
		i++
	}
	*window = append(w[i:], now)
	n := len(*window)
	st, ast := &s.rec.stats, s.appStatsLocked(app)
	st.VVMaxPerSecond = max(st.VVMaxPerSecond, n)
	ast.VVMaxPerSecond = max(ast.VVMaxPerSecond, n)
	if n > VVMaxRequestsPerSecond {
		st.VVRateViolations++
		ast.VVRateViolations++
		return faultPlan{}, true
	}
	return s.planFaultsLocked(EndpointVVToolDetail, app.id(), ids), false
}

// matching keeps the shippings the request's filters select; a tid
// selects one.
func (p detailParams) matching(list []*vvShipping) []*vvShipping {
	var match []*vvShipping
	for _, sh := range list {
		switch {
		case p.tid != "" && sh.tid != p.tid,
			p.status != "" && sh.status != p.status,
			!p.startCreated.IsZero() && sh.created.Before(p.startCreated),
			!p.endCreated.IsZero() && sh.created.After(p.endCreated):
			continue
		}
		match = append(match, sh)
	}
	if p.tid != "" && len(match) > 1 {
		match = match[:1]
	}
	return match
}

// page renders the request's page of match with its fields.
func (p detailParams) page(match []*vvShipping) []map[string]any {
	data := []map[string]any{}
	if pages := (len(match) + p.pageSize - 1) / p.pageSize; p.pageNo <= pages {
		from := (p.pageNo - 1) * p.pageSize
		for i, sh := range match[from:min(len(match), from+p.pageSize)] {
			m := sh.render(p.fields)
			if i == 0 {
				m["withholding_money"] = 1 // the call's charge, on the first Shipping as in the seed
			}
			data = append(data, m)
		}
	}
	return data
}

// cutPrefixFold is strings.CutPrefix with a case-insensitive prefix.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
