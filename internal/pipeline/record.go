package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/pkg/events"
)

// OrderRecord answers what the stream holds of an order: its latest event
// of a stage from any source, with that event's stream sequence. The stream
// itself is the record, shared by every replica and every replay, so no
// other store can disagree with it.
type OrderRecord struct {
	stream jetstream.Stream
	multi  *MultiLast
}

// NewOrderRecord reads from stream.
func NewOrderRecord(stream jetstream.Stream) *OrderRecord { return &OrderRecord{stream: stream} }

// WithMultiLast makes Stages and Orders read through m, in one request each
// instead of a direct get per event; m must read the same stream.
func (r *OrderRecord) WithMultiLast(m *MultiLast) *OrderRecord {
	return &OrderRecord{stream: r.stream, multi: m}
}

func (r *OrderRecord) withoutMulti() *OrderRecord { return &OrderRecord{stream: r.stream} }

// Event is one event of an order's record and its stream sequence; the
// zero Event where the record has none.
type Event struct {
	Env *events.Envelope
	Seq uint64
}

// Stages returns the order's latest event of each of stages, in their
// order: what Last answers for each, read in one request.
func (r *OrderRecord) Stages(ctx context.Context, shop, orderID string, stages ...events.Stage) ([]Event, error) {
	keys := make([]recordKey, len(stages))
	for i, st := range stages {
		keys[i] = recordKey{stage: st, shop: shop, orderID: orderID}
	}
	return r.lasts(ctx, keys)
}

// Orders returns the latest event of stage of each of orderIDs of shop, in
// their order: what Last answers for each, read in one request.
func (r *OrderRecord) Orders(ctx context.Context, stage events.Stage, shop string, orderIDs []string) ([]Event, error) {
	keys := make([]recordKey, len(orderIDs))
	for i, id := range orderIDs {
		keys[i] = recordKey{stage: stage, shop: shop, orderID: id}
	}
	return r.lasts(ctx, keys)
}

// recordKey names one entry of the record: an order's stage.
type recordKey struct {
	stage         events.Stage
	shop, orderID string
}

// lasts reads the entries of keys, in one multi_last request if the record
// has one, else one direct get each. Each key's filter spans the sources,
// so it may match several subjects: the latest message among them wins,
// as Last's direct get would answer.
func (r *OrderRecord) lasts(ctx context.Context, keys []recordKey) ([]Event, error) {
	out := make([]Event, len(keys))
	if r.multi == nil || len(keys) > maxMultiLast {
		for i, k := range keys {
			env, seq, err := r.Last(ctx, k.stage, k.shop, k.orderID)
			if err != nil {
				return nil, err
			}
			out[i] = Event{Env: env, Seq: seq}
		}
		return out, nil
	}
	filters := make([]string, len(keys))
	index := make(map[recordKey]int, len(keys))
	for i, k := range keys {
		f, err := events.OrderFilter(k.stage, k.shop, k.orderID)
		if err != nil {
			return nil, err
		}
		filters[i] = f
		if _, ok := index[k]; !ok {
			index[k] = i
		}
	}
	msgs, err := r.multi.Get(ctx, filters...)
	if errors.Is(err, ErrMultiLastUnavailable) {
		// A server before 2.11, or a stream without direct gets: read
		// each entry as Last does.
		return r.withoutMulti().lasts(ctx, keys)
	}
	if err != nil {
		return nil, fmt.Errorf("look up the records of %d orders: %w", len(keys), err)
	}
	for _, m := range msgs {
		stage, _, shop, orderID, err := events.ParseSubject(m.Subject)
		if err != nil {
			return nil, fmt.Errorf("record at seq %d: %w", m.Sequence, err)
		}
		i, ok := index[recordKey{stage: stage, shop: shop, orderID: orderID}]
		if !ok {
			return nil, fmt.Errorf("record at seq %d: %s matches none of the orders asked for", m.Sequence, m.Subject)
		}
		if m.Sequence < out[i].Seq {
			continue
		}
		env, err := events.Decode(m.Data)
		if err != nil {
			return nil, fmt.Errorf("%s record of %s at seq %d: %w", stage, events.OrderKey(shop, orderID), m.Sequence, err)
		}
		out[i] = Event{Env: env, Seq: m.Sequence}
	}
	for i, k := range keys { // a key asked for twice
		out[i] = out[index[k]]
	}
	return out, nil
}

// Last returns the order's latest event of stage (a direct get of the last
// message on orders.<stage>.*.<shop>.<order_id>) and its stream sequence, or
// nil and 0 if it has none.
func (r *OrderRecord) Last(ctx context.Context, stage events.Stage, shop, orderID string) (*events.Envelope, uint64, error) {
	filter, err := events.OrderFilter(stage, shop, orderID)
	if err != nil {
		return nil, 0, err
	}
	m, err := r.stream.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("look up the %s record of %s: %w", stage, events.OrderKey(shop, orderID), err)
	}
	env, err := events.Decode(m.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("%s record of %s at seq %d: %w", stage, events.OrderKey(shop, orderID), m.Sequence, err)
	}
	return env, m.Sequence, nil
}

// Shipped returns the order's shipped event, or nil if it has none.
func (r *OrderRecord) Shipped(ctx context.Context, shop, orderID string) (*events.Envelope, error) {
	env, _, err := r.Last(ctx, events.StageShipped, shop, orderID)
	return env, err
}
