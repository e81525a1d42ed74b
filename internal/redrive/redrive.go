// Package redrive sends orders through a stage again: the latest input
// event of each order in a window of the stream (Replay), or of each order
// whose latest terminal event is failed (RedriveFailed, the dead-letter
// re-drive). A copy names its original as its cause and keeps the
// correlation id, so the stream holds the whole history; its id is derived
// from the run, so the same command made twice publishes it once. Orders
// already shipped are never re-driven, and the shipper checks again before
// every call.
package redrive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
)

// Action is what a re-drive did with one order.
type Action string

// The actions of a report.
const (
	ActionRedrive     Action = "redrive"
	ActionWouldDrive  Action = "would-redrive"
	ActionSkipShipped Action = "skip: already shipped"
	ActionSkip        Action = "skip"
)

// Result is one line of a replay or re-drive report.
type Result struct {
	Shop    string `json:"shop"`
	OrderID string `json:"order_id"`
	Source  string `json:"source"`
	// Stage is the stage of the event re-driven (received: through the
	// enricher; enriched: through the shipper).
	Stage      string `json:"input_stage"`
	Action     Action `json:"action"`
	Reason     string `json:"reason,omitempty"`
	Original   string `json:"original_event_id,omitempty"`
	NewEventID string `json:"new_event_id,omitempty"`
}

// Redriver publishes the copies.
type Redriver struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	record *pipeline.OrderRecord
	pub    *pipeline.Publisher
	now    func() time.Time
}

// New binds the ORDERS stream.
func New(ctx context.Context, js jetstream.JetStream) (*Redriver, error) {
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	return &Redriver{js: js, stream: s, record: pipeline.NewOrderRecord(s), pub: pipeline.NewPublisher(js), now: time.Now}, nil
}

// Window selects what Replay re-drives.
type Window struct {
	// Stage is the input stage: received (through the enricher) or
	// enriched (through the shipper).
	Stage        events.Stage
	Since, Until time.Time
	// FromSeq and ToSeq bound the window by stream sequence instead (0:
	// unbounded).
	FromSeq, ToSeq uint64
	// Source, if set, keeps only events of that source; Shop of that
	// shop.
	Source events.Source
	Shop   string
	// OrderIDs, if set, keeps only those orders.
	OrderIDs []string
	DryRun   bool
}

// Replay re-drives, once, the latest original event of stage w.Stage of
// each order with one stored within the window. Copies made by earlier
// re-drives are not re-driven again, so running the same replay twice is a
// no-op.
func (r *Redriver) Replay(ctx context.Context, w Window) ([]Result, error) {
	if w.Stage != events.StageReceived && w.Stage != events.StageEnriched {
		return nil, fmt.Errorf("replay: %w: %q is not an input stage (received or enriched)", events.ErrInvalidStage, w.Stage)
	}
	filters := []string{events.FilterSubject(w.Stage)}
	if w.Shop != "" {
		f, err := events.ShopFilter(w.Stage, w.Shop)
		if err != nil {
			return nil, err
		}
		filters = []string{f}
	}
	if len(w.OrderIDs) > 0 {
		filters = filters[:0]
		for _, id := range w.OrderIDs {
			f, err := events.AnyShopFilter(w.Stage, id)
			if w.Shop != "" {
				f, err = events.OrderFilter(w.Stage, w.Shop, id)
			}
			if err != nil {
				return nil, err
			}
			filters = append(filters, f)
		}
	}
	latest := map[string]*events.Envelope{}
	var order []string
	win := tally.Window{Since: w.Since, Until: w.Until, FromSeq: w.FromSeq, ToSeq: w.ToSeq}
	err := tally.ScanWindow(ctx, r.stream, filters, win, func(m jetstream.Msg, _ *jetstream.MsgMetadata) {
		env, err := events.Decode(m.Data())
		if err != nil || m.Headers().Get(events.HeaderRedriveOf) != "" {
			return
		}
		if w.Source != "" && env.Source != w.Source {
			return
		}
		if _, ok := latest[env.Key()]; !ok {
			order = append(order, env.Key())
		}
		latest[env.Key()] = env
	})
	if err != nil {
		return nil, err
	}
	results := make([]Result, 0, len(order))
	for _, id := range order {
		orig := latest[id]
		res, err := r.drive(ctx, orig, "replay:"+orig.ID, w.DryRun)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// Filter selects failed orders: those whose latest terminal event is
// failed.
type Filter struct {
	// Since keeps orders that failed at or after it (zero: all).
	Since time.Time
	// Source keeps orders of that source ("" : all); Shop of that shop.
	Source events.Source
	Shop   string
	// Errcode keeps orders whose failure has that errcode (nil: all).
	Errcode *int
	// OrderIDs keeps only those orders (empty: all).
	OrderIDs []string
}

// Match reports whether o passes the filter.
func (f Filter) Match(o *tally.Order) bool {
	if !f.Since.IsZero() && o.LastTerminalAt.Before(f.Since) {
		return false
	}
	if f.Source != "" && o.Source != f.Source {
		return false
	}
	if f.Shop != "" && o.Shop != f.Shop {
		return false
	}
	if f.Errcode != nil && (o.LastFailed == nil || o.LastFailed.Errcode != *f.Errcode) {
		return false
	}
	return len(f.OrderIDs) == 0 || slices.Contains(f.OrderIDs, o.OrderID)
}

// Failed lists the failed orders that match f, oldest failure first.
func Failed(ctx context.Context, js jetstream.JetStream, f Filter) ([]*tally.Order, error) {
	tl, err := tally.Read(ctx, js)
	if err != nil {
		return nil, err
	}
	var out []*tally.Order
	for _, o := range tl.FailedOrders() {
		if f.Match(o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// RedriveFailed sends each of orders (from Failed) through the component
// that failed it again: a copy of its latest received event (enricher
// failures) or enriched event (shipper failures).
func (r *Redriver) RedriveFailed(ctx context.Context, orders []*tally.Order, dryRun bool) ([]Result, error) {
	results := make([]Result, 0, len(orders))
	for _, o := range orders {
		res, err := r.redriveOrder(ctx, o, dryRun)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

func (r *Redriver) redriveOrder(ctx context.Context, o *tally.Order, dryRun bool) (Result, error) {
	skip := Result{Shop: o.Shop, OrderID: o.OrderID, Source: string(o.Source), Action: ActionSkip}
	if o.LastFailed == nil || o.LastFailedEvent == nil {
		skip.Reason = "the failed event could not be read"
		return skip, nil
	}
	if len(o.LastFailed.Raw) > 0 {
		skip.Reason = "unusable input (raw bytes kept in the failed event); fix the producer and publish the order again"
		return skip, nil
	}
	stage, ok := o.LastFailed.Stage.Input()
	if !ok {
		skip.Reason = fmt.Sprintf("failed at %s; post the order to POST /v1/orders to start it again", o.LastFailed.Stage)
		return skip, nil
	}
	skip.Stage = string(stage)
	orig, _, err := r.record.Last(ctx, stage, o.Shop, o.OrderID)
	if err != nil {
		return skip, err
	}
	if orig == nil {
		skip.Reason = "its " + string(stage) + " event is no longer in the stream (older than STREAM_MAX_AGE?)"
		return skip, nil
	}
	return r.drive(ctx, orig, "redrive:"+o.LastFailedEvent.ID, dryRun)
}

// drive re-publishes orig unless its order is already shipped, or the same
// copy (same key) is already the order's latest event of the stage.
func (r *Redriver) drive(ctx context.Context, orig *events.Envelope, key string, dryRun bool) (Result, error) {
	res := Result{Shop: orig.Shop, OrderID: orig.OrderID, Source: string(orig.Source), Stage: string(orig.Stage()), Original: orig.ID}
	shipped, err := r.record.Shipped(ctx, orig.Shop, orig.OrderID)
	if err != nil {
		return res, err
	}
	if shipped != nil {
		res.Action, res.Reason = ActionSkipShipped, "shipped by event "+shipped.ID
		return res, nil
	}
	// A cancelled order is final on the platform: no copy may reach the
	// shipper.
	if failed, _, err := r.record.Last(ctx, events.StageFailed, orig.Shop, orig.OrderID); err != nil {
		return res, err
	} else if f := failedOf(failed); f.Cancelled() {
		res.Action, res.Reason = ActionSkip, fmt.Sprintf("cancelled on the platform (cancel_type %d, event %s): never re-driven", f.CancelType, failed.ID)
		return res, nil
	}
	cp, err := orig.Copy(key, r.now())
	if err != nil {
		return res, err
	}
	res.NewEventID = cp.ID
	last, lastSeq, err := r.record.Last(ctx, orig.Stage(), orig.Shop, orig.OrderID)
	if err != nil {
		return res, err
	}
	if last != nil && last.ID == cp.ID {
		res.Action, res.Reason = ActionSkip, "already re-driven by an earlier run of the same command"
		return res, nil
	}
	if dryRun {
		res.Action = ActionWouldDrive
		return res, nil
	}
	m, err := cp.Msg()
	if err != nil {
		return res, err
	}
	m.Header.Set(events.HeaderRedriveOf, orig.ID)
	// Stored only if no other event of the stage arrived since it was read:
	// of two re-drives running at once, one stores the copy and the other
	// reports it skipped, so the reports add up to what the stream holds.
	filter, err := events.OrderFilter(orig.Stage(), orig.Shop, orig.OrderID)
	if err != nil {
		return res, err
	}
	pipeline.ExpectLast(m, filter, lastSeq)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = r.pub.PublishEach(pctx, m)[0]
	if errors.Is(err, pipeline.ErrDecided) {
		res.Action, res.Reason = ActionSkip, "another re-drive or the pipeline stored an event of this order meanwhile; run it again to re-drive from there"
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("re-drive %s: %w", orig.OrderID, err)
	}
	res.Action = ActionRedrive
	return res, nil
}

// failedOf is the payload of a failed event, or nil.
func failedOf(e *events.Envelope) *events.Failed {
	if e == nil {
		return nil
	}
	var f events.Failed
	if e.DecodeData(&f) != nil {
		return nil
	}
	return &f
}
