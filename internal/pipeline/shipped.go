package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/pkg/events"
)

// ShippedRecord answers whether an order already has an order.shipped event,
// from the stream itself (a direct get of the last message on
// orders.shipped.*.<order_id>), so every replica and every replay sees the
// same record without another store.
type ShippedRecord struct {
	stream jetstream.Stream
}

// NewShippedRecord reads from stream.
func NewShippedRecord(stream jetstream.Stream) *ShippedRecord { return &ShippedRecord{stream: stream} }

// Lookup returns the order's latest shipped event, or nil if it has none.
func (r *ShippedRecord) Lookup(ctx context.Context, orderID string) (*events.Envelope, error) {
	if err := events.ValidateOrderID(orderID); err != nil {
		return nil, err
	}
	m, err := r.stream.GetLastMsgForSubject(ctx, "orders.shipped.*."+orderID)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up shipped record of %s: %w", orderID, err)
	}
	env, err := events.Decode(m.Data)
	if err != nil {
		return nil, fmt.Errorf("shipped record of %s at seq %d: %w", orderID, m.Sequence, err)
	}
	return env, nil
}
