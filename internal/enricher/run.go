package enricher

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

// Summary is the one-line description of the binary for --help.
const Summary = "attaches waybills (batchGetOrder, up to 100 orders a call) to order.received events"

const maxAckPending = 20000

// horizon is the longest a received event may wait for the enricher: the
// redeliveries of a batch whose batchGetOrder keeps failing transiently.
func horizon(c *config.Config) (time.Duration, string) {
	d := RetryHorizon(defaultMaxDeliveries, c.EnrichAckWait)
	return d, fmt.Sprintf("the enricher's retries of a failing batchGetOrder (%d deliveries with ENRICH_ACK_WAIT %s)", defaultMaxDeliveries, c.EnrichAckWait)
}

// Run is the enricher binary: what cmd/enricher's main calls.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Run(ctx, service.Binary{Name: config.Enricher, Summary: Summary, Horizon: horizon}, args, getenv, stdout, stderr, func(ctx context.Context, b *service.Base) error {
		e := New(Options{BatchSize: b.Cfg.EnrichBatchSize, MaxWait: b.Cfg.EnrichMaxWait, Heartbeat: b.Cfg.EnrichAckWait / 4}, func(shop string) (Waybills, error) { return b.Shops.WeChat(shop) }, pipeline.NewOrderRecord(b.Stream), b.Publisher(), b.Log, b.Metrics)
		e.Tracer = b.Tracer
		cc, err := events.ConsumerConfig(events.ConsumerEnricher, maxAckPending, b.Cfg.EnrichAckWait)
		if err != nil {
			return err
		}
		return b.Consume(ctx, cc,
			func(ctx context.Context, cons jetstream.Consumer) error { return e.Run(ctx, cons) })
	})
}
