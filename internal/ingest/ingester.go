package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/events"
)

// ConflictError answers an order taken in before with other content (a
// different carrier, waybill or products): the first one stands.
type ConflictError struct {
	Shop    string
	OrderID string
	// EventID and Source are the received event that stands.
	EventID string
	Source  events.Source
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("order %s of shop %s was already received (event %s, from %s) with other content; the first stands", e.OrderID, e.Shop, e.EventID, e.Source)
}

// Ingester publishes what the pollers and the HTTP API bring in, once per
// order. The ORDERS stream itself is the record of what was taken in: an
// order.received event is stored only if the order has none yet, from any
// source (the server checks it with the write), so two replicas polling
// the same window, an API post racing a poll, or a restart re-reading a
// window all leave one event. Whichever source stores an order first wins.
type Ingester struct {
	pub     *pipeline.Publisher
	record  *pipeline.OrderRecord
	known   *recent
	log     zerolog.Logger
	metrics *service.Metrics
	now     func() time.Time
	// Tracer, if on, traces each order from its poll or API request
	// (trace.go).
	Tracer *tracing.Tracer
}

// NewIngester wires the shared publishing side of ingest. retention is how
// long the stream keeps events: an order remembered as received longer
// ago than that is asked of the stream again, as it may be gone from it.
func NewIngester(stream jetstream.Stream, pub *pipeline.Publisher, retention time.Duration, log zerolog.Logger, m *service.Metrics) *Ingester {
	return &Ingester{pub: pub, record: pipeline.NewOrderRecord(stream), known: newRecent(100_000, retention),
		log: log, metrics: m, now: time.Now}
}

// ReadRecordsThrough makes KnownOrders read a page's records in one
// multi_last request (m reads the ORDERS stream) rather than one direct get
// per order.
func (in *Ingester) ReadRecordsThrough(m *pipeline.MultiLast) {
	in.record = in.record.WithMultiLast(m)
}

// KnownOrders is Known of each of orderIDs of shop (valid ids), in their
// order: a poller asks it of a whole list page at once, and the orders not
// remembered are read from the stream in one request.
func (in *Ingester) KnownOrders(ctx context.Context, shop string, orderIDs []string) ([]string, error) {
	ids := make([]string, len(orderIDs))
	var ask []string
	var at []int
	now := in.now()
	for i, id := range orderIDs {
		if ids[i] = in.known.get(events.OrderKey(shop, id), now); ids[i] == "" {
			ask = append(ask, id)
			at = append(at, i)
		}
	}
	if len(ask) == 0 {
		return ids, nil
	}
	found, err := in.record.Orders(ctx, events.StageReceived, shop, ask)
	if err != nil {
		return nil, err
	}
	for j, ev := range found {
		if ev.Env != nil {
			in.known.put(events.OrderKey(shop, ask[j]), ev.Env.ID, ev.Env.OccurredAt)
			ids[at[j]] = ev.Env.ID
		}
	}
	return ids, nil
}

// Known returns the id of the order's received event, or "" if the
// stream has none: what a poller asks before fetching an order's details.
func (in *Ingester) Known(ctx context.Context, shop, orderID string) (string, error) {
	key := events.OrderKey(shop, orderID)
	if id := in.known.get(key, in.now()); id != "" {
		return id, nil
	}
	env, _, err := in.record.Last(ctx, events.StageReceived, shop, orderID)
	if err != nil || env == nil {
		return "", err
	}
	in.known.put(key, env.ID, env.OccurredAt)
	return env.ID, nil
}

// Received publishes order.received for an order unless the stream holds
// one already. It returns the event id (the stored one for a duplicate)
// and whether the order was taken in before this call; and a
// *ConflictError when it was, with other content.
func (in *Ingester) Received(ctx context.Context, source events.Source, shop, orderID string, data events.Received) (string, bool, error) {
	start := in.now()
	env, err := events.New(events.Fact{Stage: events.StageReceived, Source: source, Shop: shop, OrderID: orderID, Data: data}, start)
	if err != nil {
		return "", false, err
	}
	in.metrics.In(events.StageReceived, shop)
	ctx, span := in.startPublish(ctx, env)
	defer span.End()
	again, err := in.publishFirst(ctx, env)
	if err == nil && !again {
		in.received(env, start)
		return env.ID, false, nil
	}
	if err != nil && !errors.Is(err, pipeline.ErrDecided) {
		return "", false, err
	}
	// Refused (another source's event is stored), or stored already under
	// this event id: by another caller at the same moment (another replica,
	// a concurrent request), or by this very call (a re-send whose first
	// answer was lost). Only the last is not a duplicate: the stored event
	// is then this call's, to its timestamp.
	stored, _, err := in.record.Last(ctx, events.StageReceived, shop, orderID)
	if err != nil {
		return "", false, err
	}
	if stored == nil {
		return "", false, fmt.Errorf("order %s: the server refused its received event, but the stream has none", orderID)
	}
	dup := stored.ID != env.ID || !stored.OccurredAt.Equal(env.OccurredAt)
	if !dup {
		in.received(env, start)
		return env.ID, false, nil
	}
	in.known.put(env.Key(), stored.ID, stored.OccurredAt)
	var was events.Received
	if err := stored.DecodeData(&was); err == nil && !sameOrder(was, data) {
		return stored.ID, dup, &ConflictError{Shop: shop, OrderID: orderID, EventID: stored.ID, Source: stored.Source}
	}
	return stored.ID, dup, nil
}

// sameOrder compares what shipping an order takes: carrier, waybill,
// products.
func sameOrder(a, b events.Received) bool {
	return a.DeliveryID == b.DeliveryID && a.WaybillID == b.WaybillID && slices.Equal(a.Products, b.Products)
}

// received notes env, stored by this call, as the order's received event.
func (in *Ingester) received(env *events.Envelope, start time.Time) {
	in.known.put(env.Key(), env.ID, start)
	in.log.Info().Str("shop", env.Shop).Str("order_id", env.OrderID).Str("event_id", env.ID).Str("correlation_id", env.CorrelationID).
		Str("source", string(env.Source)).Msg("order received")
}

// publishFirst stores env only if no event of its stage is stored for its
// order yet, from any source; ErrDecided otherwise. again says JetStream
// had a message of env's id already (its Nats-Msg-Id de-duplicated it),
// stored by this call's own earlier attempt or by another caller.
func (in *Ingester) publishFirst(ctx context.Context, env *events.Envelope) (again bool, err error) {
	m, err := env.Msg()
	if err != nil {
		return false, err
	}
	filter, err := events.OrderFilter(env.Stage(), env.Shop, env.OrderID)
	if err != nil {
		return false, err
	}
	pipeline.ExpectLast(m, filter, 0)
	inject(ctx, m)
	ack, err := in.pub.PublishAck(ctx, m)
	tracePublished(ctx, err)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// Failed publishes order.failed for an order that ingest could not take in
// (the platform refused its details), once per order.
func (in *Ingester) Failed(ctx context.Context, source events.Source, shop, orderID string, f events.Failed) error {
	env, err := events.New(events.Fact{Stage: events.StageFailed, Source: source, Shop: shop, OrderID: orderID, Key: "ingest", Data: f}, in.now())
	if err != nil {
		return err
	}
	_, err = in.publishFirst(ctx, env)
	if errors.Is(err, pipeline.ErrDecided) {
		return nil // recorded before
	}
	if err == nil {
		in.log.Warn().Str("shop", shop).Str("order_id", orderID).Str("event_id", env.ID).Int("errcode", f.Errcode).Str("reason", f.Reason).Msg("order failed at ingest")
	}
	return err
}
