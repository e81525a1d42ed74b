package shipper

import (
	"context"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

// Summary is the one-line description of the binary for --help.
const Summary = "calls WeChat Channels delivery/send for every order.enriched event and ends each order shipped or failed"

// maxAckPending bounds messages in flight across all shipper replicas,
// including those parked by a long NakWithDelay.
const maxAckPending = 20000

// Run is the shipper binary: what cmd/shipper's main calls.
func Run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return service.Run(ctx, config.Shipper, Summary, args, getenv, stderr, func(ctx context.Context, b *service.Base) error {
		c := b.Cfg
		s := New(Options{
			Concurrency: c.ShipConcurrency, BackoffInitial: c.ShipBackoffInitial, BackoffMax: c.ShipBackoffMax,
			MaxElapsed: c.ShipMaxElapsed, WaitDelay: c.ShipWaitDelay, WaitMaxAttempts: c.ShipWaitMaxAttempts,
		}, b.WeChat(), b.Publisher(), pipeline.NewShippedRecord(b.Stream), b.Log, b.Metrics)
		cc, err := events.ConsumerConfig(events.ConsumerShipper, maxAckPending, 0)
		if err != nil {
			return err
		}
		return b.Consume(ctx, cc,
			func(ctx context.Context, cons jetstream.Consumer) error { return s.Run(ctx, cons) })
	})
}
