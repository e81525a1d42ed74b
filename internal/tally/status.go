package tally

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

// StatusReport is what fulfillctl status prints.
type StatusReport struct {
	Stream    StreamStatus     `json:"stream"`
	Stages    []StageStatus    `json:"stages"`
	Consumers []ConsumerStatus `json:"consumers"`
	// ShippedTwice counts orders with more than one shipped event: 0 unless
	// the exactly-once promise broke.
	ShippedTwice int `json:"shipped_twice"`
	// AtShipper counts orders enriched and not yet shipped or failed;
	// Parked lists (some of) those enriched more than ParkedAfter ago.
	AtShipper int      `json:"at_shipper"`
	Parked    []string `json:"parked,omitempty"`
	// ParkedCount is how many of AtShipper are parked (Parked lists at
	// most 20).
	ParkedCount int `json:"parked_count"`
	// Shop is the shop the report is limited to ("" : every shop).
	Shop string `json:"shop,omitempty"`
	// Shops has each shop's order counts, by shop id.
	Shops []ShopStatus `json:"shops"`
}

// ShopStatus counts one shop's orders by the stages they reached.
type ShopStatus struct {
	Shop     string `json:"shop"`
	Received int    `json:"received"`
	Shipped  int    `json:"shipped"`
	// Failed counts orders with a failed event and no shipped one.
	Failed int `json:"failed"`
	// InFlight counts orders received and neither shipped nor failed yet:
	// the shop's lag, in orders.
	InFlight int `json:"in_flight"`
	// State is the shop's state at the shippers: ok, or the worst a
	// replica reports (backing_off, token_refused), since when, with the
	// platform's last errcode and how many replicas report it.
	State    string    `json:"state"`
	Since    time.Time `json:"since,omitzero"`
	Errcode  int       `json:"errcode,omitempty"`
	Replicas int       `json:"replicas,omitempty"`
	// LastPush is when the shop's latest push was stored (zero: none in
	// the stream).
	LastPush time.Time `json:"last_push,omitzero"`
}

// PushQuiet is how long a shop that pushes may go without a push before
// status says its pushes stopped (polling still finds its orders).
const PushQuiet = 30 * time.Minute

// stateRank orders the shop states, worst last.
var stateRank = map[string]int{"ok": 0, "backing_off": 1, "token_refused": 2}

// StreamStatus is the ORDERS stream's state and health.
type StreamStatus struct {
	Name     string    `json:"name"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	FirstTS  time.Time `json:"first_ts"`
	LastTS   time.Time `json:"last_ts"`
	Replicas int       `json:"replicas"`
	Leader   string    `json:"leader,omitempty"`
	// Healthy is false when a replica is offline or lagging.
	Healthy bool   `json:"healthy"`
	Health  string `json:"health"`
}

// StageStatus counts a stage's messages and distinct orders.
type StageStatus struct {
	Stage    string `json:"stage"`
	Messages uint64 `json:"messages"`
	Orders   int    `json:"orders"`
	// Unusable counts messages on subjects not of the grammar.
	Unusable uint64 `json:"unusable,omitempty"`
}

// ParkedAfter is how long an order may sit at the shipper before status
// lists it: longer than any call and backoff of a healthy run, so what is
// listed waits on the platform (the waiting errcodes) or is stuck.
const ParkedAfter = 5 * time.Minute

// maxParkedLookups bounds the direct gets status makes to date the orders at
// the shipper.
const maxParkedLookups = 2000

// ConsumerStatus is one durable consumer's figures.
type ConsumerStatus struct {
	Name        string    `json:"name"`
	Filter      string    `json:"filter"`
	Pending     uint64    `json:"pending"`
	AckPending  int       `json:"ack_pending"`
	Redelivered int       `json:"redelivered"`
	Waiting     int       `json:"waiting"`
	LastActive  time.Time `json:"last_active,omitzero"`
}

// Status reads the stream's and the consumers' state: what fulfillctl
// status shows. A shop limits the stage and order figures to that shop's.
func Status(ctx context.Context, js jetstream.JetStream, shop string) (*StatusReport, error) {
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w (has a service started yet?)", events.StreamName, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	rep := &StatusReport{Stream: StreamStatus{
		Name: info.Config.Name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
		FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, FirstTS: info.State.FirstTime, LastTS: info.State.LastTime,
		Replicas: info.Config.Replicas, Healthy: true, Health: "ok",
	}, Shop: shop}
	if c := info.Cluster; c != nil {
		rep.Stream.Leader = c.Leader
		for _, p := range c.Replicas {
			if !p.Current || p.Offline {
				rep.Stream.Healthy, rep.Stream.Health = false, fmt.Sprintf("replica %s offline or behind", p.Name)
			}
		}
		if c.Leader == "" {
			rep.Stream.Healthy, rep.Stream.Health = false, "no leader"
		}
	}
	orders := map[events.Stage]map[string]int{} // stage → order id → messages
	filters, err := stageFilters(shop)
	if err != nil {
		return nil, err
	}
	for i, f := range filters {
		si, err := s.Info(ctx, jetstream.WithSubjectFilter(f))
		if err != nil {
			return nil, fmt.Errorf("stream %s subjects %s: %w", events.StreamName, f, err)
		}
		st := StageStatus{Stage: stageName(i)}
		ids := map[string]int{}
		for subject, n := range si.State.Subjects {
			st.Messages += n
			stage, _, shop, id, err := events.ParseSubject(subject)
			if err != nil {
				// Not of the grammar (a poison message): a message, not
				// an order.
				st.Unusable += n
				continue
			}
			ids[events.OrderKey(shop, id)] += int(n)
			orders[stage] = ids
		}
		st.Orders = len(ids)
		rep.Stages = append(rep.Stages, st)
	}
	for _, n := range orders[events.StageShipped] {
		if n > 1 {
			rep.ShippedTwice++
		}
	}
	states, err := pipeline.ReadShopStates(ctx, js)
	if err != nil {
		return nil, err
	}
	rep.Shops = withStates(shopCounts(orders), states, shop)
	if err := lastPushes(ctx, s, rep.Shops, orders[events.StagePush]); err != nil {
		return nil, err
	}
	if err := rep.atTheShipper(ctx, s, orders, time.Now()); err != nil {
		return nil, err
	}
	for _, name := range []string{events.ConsumerEnricher, events.ConsumerShipper, events.ConsumerPush} {
		c, err := s.Consumer(ctx, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
		cs := ConsumerStatus{Name: name, Filter: ci.Config.FilterSubject, Pending: ci.NumPending,
			AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting}
		if ci.Delivered.Last != nil {
			cs.LastActive = *ci.Delivered.Last
		}
		rep.Consumers = append(rep.Consumers, cs)
	}
	return rep, nil
}

// stageFilters are the subjects of every stage, a shop's or every shop's,
// then the dead-letter subject (which has no shop: it holds messages that
// could not be read).
func stageFilters(shop string) ([]string, error) {
	out := make([]string, 0, len(events.Stages)+1)
	for _, st := range events.Stages {
		f := events.FilterSubject(st)
		if shop != "" {
			var err error
			if f, err = events.ShopFilter(st, shop); err != nil {
				return nil, err
			}
		}
		out = append(out, f)
	}
	return append(out, events.DeadLetterSubject), nil
}

// stageName names the i-th of stageFilters.
func stageName(i int) string {
	if i < len(events.Stages) {
		return string(events.Stages[i])
	}
	return "deadletter"
}

// lastPushes dates each shop's latest push, for the shops with a push in
// the stream (from the push stage's order keys).
func lastPushes(ctx context.Context, s jetstream.Stream, shops []ShopStatus, pushed map[string]int) error {
	has := map[string]bool{}
	for key := range pushed {
		shop, _, _ := strings.Cut(key, ".")
		has[shop] = true
	}
	for i := range shops {
		if !has[shops[i].Shop] {
			continue
		}
		filter, err := events.ShopFilter(events.StagePush, shops[i].Shop)
		if err != nil {
			return fmt.Errorf("shop %s's pushes: %w", shops[i].Shop, err)
		}
		m, err := s.GetLastMsgForSubject(ctx, filter)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("date shop %s's last push: %w", shops[i].Shop, err)
		}
		shops[i].LastPush = m.Time
	}
	return nil
}

// withStates adds to each shop's counts the state the shippers report (a
// shop in trouble with no order in the stream too), limited to shop if set.
func withStates(counts []ShopStatus, states []pipeline.ShopState, shop string) []ShopStatus {
	byShop := map[string]int{}
	for i := range counts {
		counts[i].State = "ok"
		byShop[counts[i].Shop] = i
	}
	for _, st := range states {
		if shop != "" && st.Shop != shop {
			continue
		}
		i, ok := byShop[st.Shop]
		if !ok {
			counts = append(counts, ShopStatus{Shop: st.Shop, State: "ok"})
			i = len(counts) - 1
			byShop[st.Shop] = i
		}
		c := &counts[i]
		c.Replicas++
		if stateRank[st.State] > stateRank[c.State] {
			c.State, c.Since, c.Errcode = st.State, st.Since, st.Errcode
		}
	}
	sort.Slice(counts, func(i, j int) bool { return counts[i].Shop < counts[j].Shop })
	return counts
}

// shopCounts sums the orders of each shop by stage, from the per-stage
// order keys.
func shopCounts(orders map[events.Stage]map[string]int) []ShopStatus {
	byShop := map[string]*ShopStatus{}
	get := func(key string) *ShopStatus {
		shop, _, _ := strings.Cut(key, ".")
		s := byShop[shop]
		if s == nil {
			s = &ShopStatus{Shop: shop}
			byShop[shop] = s
		}
		return s
	}
	shipped, failed := orders[events.StageShipped], orders[events.StageFailed]
	for key := range orders[events.StageReceived] {
		s := get(key)
		s.Received++
		if shipped[key] == 0 && failed[key] == 0 {
			s.InFlight++
		}
	}
	for key := range shipped {
		get(key).Shipped++
	}
	for key := range failed {
		if shipped[key] == 0 {
			get(key).Failed++
		}
	}
	out := make([]ShopStatus, 0, len(byShop))
	for _, s := range byShop {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shop < out[j].Shop })
	return out
}

// atTheShipper counts the orders enriched but not decided, and finds those
// that have sat there longer than ParkedAfter (dating up to
// maxParkedLookups of them by their latest enriched event).
func (r *StatusReport) atTheShipper(ctx context.Context, s jetstream.Stream, orders map[events.Stage]map[string]int, now time.Time) error {
	var waiting []string
	for key := range orders[events.StageEnriched] {
		if orders[events.StageShipped][key] == 0 && orders[events.StageFailed][key] == 0 {
			waiting = append(waiting, key)
		}
	}
	sort.Strings(waiting)
	r.AtShipper = len(waiting)
	for _, key := range waiting[:min(len(waiting), maxParkedLookups)] {
		shop, id, _ := strings.Cut(key, ".")
		f, err := events.OrderFilter(events.StageEnriched, shop, id)
		if err != nil {
			continue
		}
		m, err := s.GetLastMsgForSubject(ctx, f)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("date order %s: %w", key, err)
		}
		if now.Sub(m.Time) > ParkedAfter {
			r.ParkedCount++
			if len(r.Parked) < 20 {
				r.Parked = append(r.Parked, key)
			}
		}
	}
	return nil
}
