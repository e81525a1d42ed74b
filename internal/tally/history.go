package tally

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/pkg/events"
)

// Step is one event of an order's history.
type Step struct {
	Seq      uint64           `json:"seq"`
	StoredAt time.Time        `json:"stored_at"`
	Subject  string           `json:"subject"`
	Stage    events.Stage     `json:"stage"`
	Source   events.Source    `json:"source"`
	Shop     string           `json:"shop"`
	Event    *events.Envelope `json:"event,omitempty"`
	// CopyOf is the event a re-drive or replay copied, for a copy.
	CopyOf string `json:"copy_of,omitempty"`
	// Failed is the payload of a failed event, Shipped of a shipped one.
	Failed  *events.Failed  `json:"failed,omitempty"`
	Shipped *events.Shipped `json:"shipped,omitempty"`
	// Unreadable says why the message could not be decoded.
	Unreadable string `json:"unreadable,omitempty"`
}

// State is where an order is, as its history says.
type State string

// The states of an order.
const (
	StateUnknown  State = "unknown"   // no event in the stream
	StateReceived State = "received"  // waiting for the enricher
	StateEnriched State = "enriched"  // waiting for the shipper
	StateShipped  State = "shipped"   // terminal
	StateFailed   State = "failed"    // terminal, may be re-driven
	StateRedriven State = "re-driven" // failed, and a copy of its input is on its way
)

// History is an order's events from every source, in stream order.
type History struct {
	Shop    string `json:"shop"`
	OrderID string `json:"order_id"`
	Steps   []Step `json:"events"`
	State   State  `json:"state"`
}

// ReadHistory reads every event of the shop's order (its received,
// enriched, shipped, failed and logistics events, originals and copies); an
// empty shop finds the id in any shop.
func ReadHistory(ctx context.Context, js jetstream.JetStream, shop, orderID string) (*History, error) {
	if err := events.ValidateOrderID(orderID); err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	filters := make([]string, 0, len(events.Stages))
	for _, st := range events.Stages {
		f, err := events.OrderFilter(st, shop, orderID)
		if shop == "" {
			f, err = events.AnyShopFilter(st, orderID)
		}
		if err != nil {
			return nil, err
		}
		filters = append(filters, f)
	}
	h := &History{Shop: shop, OrderID: orderID}
	err = Scan(ctx, s, filters, time.Time{}, time.Time{}, func(m jetstream.Msg, md *jetstream.MsgMetadata) {
		step := Step{Seq: md.Sequence.Stream, StoredAt: md.Timestamp, Subject: m.Subject(), CopyOf: m.Headers().Get(events.HeaderRedriveOf)}
		step.Stage, step.Source, step.Shop, _, _ = events.ParseSubject(m.Subject())
		env, err := events.Decode(m.Data())
		if err != nil {
			step.Unreadable = err.Error()
		} else {
			step.Event = env
			switch env.Stage() {
			case events.StageFailed:
				var f events.Failed
				if env.DecodeData(&f) == nil {
					step.Failed = &f
				}
			case events.StageShipped:
				var sh events.Shipped
				if env.DecodeData(&sh) == nil {
					step.Shipped = &sh
				}
			}
		}
		h.Steps = append(h.Steps, step)
	})
	if err != nil {
		return nil, err
	}
	if shop == "" {
		var found []string
		for _, st := range h.Steps {
			if st.Shop != "" && !slices.Contains(found, st.Shop) {
				found = append(found, st.Shop)
			}
		}
		if len(found) > 1 {
			slices.Sort(found)
			return nil, &AmbiguousError{OrderID: orderID, Shops: found}
		}
		if len(found) == 1 {
			h.Shop = found[0]
		}
	}
	h.State = h.state()
	return h, nil
}

// AmbiguousError is ReadHistory's answer when an order id asked for
// without a shop is used by several shops.
type AmbiguousError struct {
	OrderID string
	Shops   []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("order %s is in %d shops (%s); name one with --shop", e.OrderID, len(e.Shops), strings.Join(e.Shops, ", "))
}

// state follows the history: the latest terminal event decides, unless an
// input event came after a failure (a re-drive under way); a shipped event
// is final whatever follows.
func (h *History) state() State {
	st := StateUnknown
	for _, s := range h.Steps {
		switch s.Stage {
		case events.StageShipped:
			return StateShipped
		case events.StageFailed:
			st = StateFailed
		case events.StageReceived, events.StageEnriched:
			switch st {
			case StateFailed, StateRedriven:
				st = StateRedriven
			default:
				st = State(s.Stage)
			}
		}
	}
	return st
}
