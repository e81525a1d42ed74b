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
}

// NewOrderRecord reads from stream.
func NewOrderRecord(stream jetstream.Stream) *OrderRecord { return &OrderRecord{stream: stream} }

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
