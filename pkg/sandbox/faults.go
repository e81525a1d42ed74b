package sandbox

import (
	"slices"
	"time"
)

// Fault makes the sandbox misbehave for the calls it matches. Faults apply before
// normal processing (token check, validation, state), so a fault answers even a call
// that would otherwise fail. Every matching fault counts the call (Times is per
// fault); the latencies of all matching faults add up, and the first matching fault
// (in injection order) that has an answer (HTTPStatus, Body or Code) answers.
type Fault struct {
	// Endpoint is the endpoint name: "delivery/send", "batchGetOrder", "getOrder",
	// "order/get", "order/list/get", "stable_token", "token", "vvtool/detail".
	Endpoint string
	// OrderID restricts the fault to calls carrying this order id (delivery/send,
	// order/get, getOrder, an item of batchGetOrder, the tid of vvtool/detail);
	// "" matches every call of the endpoint.
	OrderID string
	// AppID restricts the fault to calls made for this app: with an access_token
	// issued to it (business calls, valid or not), with its appid (stable_token,
	// token) or with its vv-tool token (vvtool/detail); "" matches every app's
	// calls and calls of no app. With OrderID, both must match. An AppID with no
	// OrderID is "this shop's platform answers Code to every call of Endpoint"
	// (one fault per endpoint for a whole outage).
	AppID string
	// Code is the errcode (vv-tool: code) to answer. For batchGetOrder with OrderID it
	// is that item's errcode, the other items are answered normally; without OrderID
	// the whole call answers it. 0 with no HTTPStatus and no Body: latency only.
	Code int
	// Times limits the fault to the first Times matching calls; 0 or <0: until
	// removed or cleared.
	Times int
	// Latency is extra latency for matching calls (on top of Config.Latency).
	Latency time.Duration
	// HTTPStatus, if non-zero, answers this HTTP status with Body as is.
	HTTPStatus int
	// Body is a raw body to answer instead of JSON (truncated JSON, an HTML page…);
	// with HTTPStatus 0 it is answered with status 200.
	Body string
}

// raw reports whether the fault answers a raw body instead of JSON.
func (f Fault) raw() bool { return f.HTTPStatus != 0 || f.Body != "" }

// answers reports whether the fault answers the call (rather than only delaying it).
func (f Fault) answers() bool { return f.raw() || f.Code != 0 }

// perItem reports whether the fault sets one batchGetOrder item's errcode.
func (f Fault) perItem() bool {
	return f.Endpoint == EndpointBatchGetOrder && f.OrderID != "" && !f.raw()
}

// activeFault is an injected fault and the number of calls it has matched.
type activeFault struct {
	id   int
	f    Fault
	hits int
}

// live reports whether the fault still applies to calls.
func (a *activeFault) live() bool { return a.f.Times <= 0 || a.hits < a.f.Times }

// faultKey indexes faults by what they match, so a call looks only at its own.
type faultKey struct{ ep, appID, orderID string }

// key is the index key of the fault.
func (f Fault) key() faultKey { return faultKey{f.Endpoint, f.AppID, f.OrderID} }

// faultSet holds the injected faults; guarded by Sandbox.mu. Exhausted faults stay (inert)
// so FaultHits keeps answering for them.
type faultSet struct {
	seq  int
	byID map[int]*activeFault
	idx  map[faultKey][]*activeFault
}

// Inject adds a fault and returns its id (for RemoveFault and FaultHits).
func (s *Sandbox) Inject(f Fault) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.injectLocked(f)
	s.notifyLocked()
	return id
}

// injectLocked adds a fault. s.mu must be held.
func (s *Sandbox) injectLocked(f Fault) int {
	fs := &s.faults
	if fs.byID == nil {
		fs.byID = make(map[int]*activeFault)
		fs.idx = make(map[faultKey][]*activeFault)
	}
	fs.seq++
	a := &activeFault{id: fs.seq, f: f}
	fs.byID[a.id] = a
	k := f.key()
	fs.idx[k] = append(fs.idx[k], a)
	return a.id
}

// RemoveFault removes the fault with the id Inject returned; it reports whether the
// fault was there.
func (s *Sandbox) RemoveFault(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.faults.byID[id]
	if !ok {
		return false
	}
	delete(s.faults.byID, id)
	k := a.f.key()
	s.faults.idx[k] = slices.DeleteFunc(s.faults.idx[k], func(b *activeFault) bool { return b == a })
	if len(s.faults.idx[k]) == 0 {
		delete(s.faults.idx, k)
	}
	return true
}

// ClearFaults removes every fault, including those the scenario installed (the
// scenario's cancelled waybills stay cancelled: that is state, not a fault).
func (s *Sandbox) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.byID = nil
	s.faults.idx = nil
}

// FaultHits returns how many calls the fault with the given id has matched so far
// (0 once it was removed or cleared).
func (s *Sandbox) FaultHits(id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.faults.byID[id]; ok {
		return a.hits
	}
	return 0
}

// faultPlan is what the matching faults do to one call.
type faultPlan struct {
	latency time.Duration
	answer  *Fault         // the whole call's answer, nil: normal processing
	items   map[string]int // batchGetOrder: per-item errcodes by order id
}

// planFaultsLocked matches the live faults against a call of endpoint ep made for
// app appID ("" for none) carrying order ids ids, counts the call on each match and
// returns the plan. s.mu must be held.
func (s *Sandbox) planFaultsLocked(ep, appID string, ids []string) faultPlan {
	var p faultPlan
	if len(s.faults.idx) == 0 {
		return p
	}
	apps := []string{""}
	if appID != "" {
		apps = append(apps, appID)
	}
	var matched []*activeFault
	for _, app := range apps {
		matched = append(matched, s.faults.idx[faultKey{ep, app, ""}]...)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		for _, app := range apps {
			matched = append(matched, s.faults.idx[faultKey{ep, app, id}]...)
		}
	}
	slices.SortFunc(matched, func(a, b *activeFault) int { return a.id - b.id })
	for _, a := range matched {
		if !a.live() {
			continue
		}
		a.hits++
		p.latency += max(a.f.Latency, 0)
		switch {
		case a.f.perItem():
			if a.f.Code != 0 {
				if p.items == nil {
					p.items = make(map[string]int)
				}
				if _, taken := p.items[a.f.OrderID]; !taken {
					p.items[a.f.OrderID] = a.f.Code
				}
			}
		case p.answer == nil && a.f.answers():
			f := a.f
			p.answer = &f
		}
	}
	return p
}
