package ingest

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

// Ingester publishes what the pollers and the HTTP API bring in, once.
type Ingester struct {
	ledger  *Ledger
	pub     *pipeline.Publisher
	log     zerolog.Logger
	metrics *service.Metrics
	now     func() time.Time
}

// NewIngester wires the shared publishing side of ingest.
func NewIngester(ledger *Ledger, pub *pipeline.Publisher, log zerolog.Logger, m *service.Metrics) *Ingester {
	return &Ingester{ledger: ledger, pub: pub, log: log, metrics: m, now: time.Now}
}

// Received publishes order.received for an order unless the ledger says it
// was published before. It returns the event id (the earlier one for a
// duplicate) and whether it was a duplicate.
func (in *Ingester) Received(ctx context.Context, source events.Source, orderID string, data events.Received) (string, bool, error) {
	key := OrderKey(orderID)
	id, err := in.ledger.Seen(ctx, key)
	if err != nil {
		return "", false, err
	}
	if id != "" {
		return id, true, nil
	}
	env, err := events.New(events.Fact{Stage: events.StageReceived, Source: source, OrderID: orderID, Data: data}, in.now())
	if err != nil {
		return "", false, err
	}
	if err := in.publish(ctx, key, env); err != nil {
		return "", false, err
	}
	in.log.Info().Str("order_id", orderID).Str("event_id", env.ID).Str("correlation_id", env.CorrelationID).
		Str("source", string(source)).Msg("order received")
	return env.ID, false, nil
}

// publish stores env in the stream, then records key in the ledger. In
// that order: a crash in between re-publishes, which the Nats-Msg-Id or the
// shipper's shipped record absorbs, rather than losing the order.
func (in *Ingester) publish(ctx context.Context, key string, env *events.Envelope) error {
	in.metrics.EventsIn.WithLabelValues(string(env.Stage())).Inc()
	if err := in.pub.Publish(ctx, env); err != nil {
		return err
	}
	return in.ledger.Remember(ctx, key, env.ID)
}

// Failed publishes order.failed for an order that ingest could not take in
// (the platform refused its details), once per order.
func (in *Ingester) Failed(ctx context.Context, source events.Source, orderID string, f events.Failed) error {
	key := "failed." + orderID
	if id, err := in.ledger.Seen(ctx, key); err != nil || id != "" {
		return err
	}
	env, err := events.New(events.Fact{Stage: events.StageFailed, Source: source, OrderID: orderID, Key: "ingest", Data: f}, in.now())
	if err != nil {
		return err
	}
	in.log.Warn().Str("order_id", orderID).Str("event_id", env.ID).Int("errcode", f.Errcode).Str("reason", f.Reason).Msg("order failed at ingest")
	return in.publish(ctx, key, env)
}
