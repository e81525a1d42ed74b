package shipper

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
const Summary = "calls WeChat Channels delivery/send for every order.enriched event and ends each order shipped or failed"

// LeaseBucket is the KV bucket of the per-order leases: key the order id,
// value the holding process. `nats kv ls FULFILL_SHIP_LEASES` shows the
// orders being called right now.
const LeaseBucket = "FULFILL_SHIP_LEASES"

// horizon is the longest an enriched event may wait for the shipper: every
// waiting-on-merchant attempt, and a last round of transient retries.
func horizon(c *config.Config) (time.Duration, string) {
	d := time.Duration(c.ShipWaitMaxAttempts)*c.ShipWaitDelay + c.ShipMaxElapsed
	return d, fmt.Sprintf("the longest an order may wait in the shipper: SHIP_WAIT_DELAY %s × SHIP_WAIT_MAX_ATTEMPTS %d + SHIP_MAX_ELAPSED %s", c.ShipWaitDelay, c.ShipWaitMaxAttempts, c.ShipMaxElapsed)
}

// maxAckPending bounds messages in flight across all shipper replicas,
// including those parked by a long NakWithDelay.
const maxAckPending = 20000

// Run is the shipper binary: what cmd/shipper's main calls.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Run(ctx, service.Binary{Name: config.Shipper, Summary: Summary, Horizon: horizon, Help: ErrcodeTable(false)}, args, getenv, stdout, stderr, func(ctx context.Context, b *service.Base) error {
		c := b.Cfg
		// The lease outlives its last renewal by less than the ack wait,
		// so a dead replica's order is free again by the time JetStream
		// redelivers its message to another.
		leases, err := pipeline.OpenLeases(ctx, b.JS, pipeline.LeaseConfig{
			Bucket:      LeaseBucket,
			Description: "shipper: the order whose delivery/send is under way, one holder at a time across replicas",
			TTL:         c.ShipAckWait - c.ShipHeartbeat,
			Replicas:    c.StreamReplicas,
		})
		if err != nil {
			return err
		}
		if ttl := leases.TTL(); 2*c.ShipHeartbeat > ttl {
			return fmt.Errorf("lease bucket %s keeps leases %s, too short for SHIP_HEARTBEAT %s (at most half of it): delete the bucket or lower SHIP_HEARTBEAT", LeaseBucket, ttl, c.ShipHeartbeat)
		} else if ttl != c.ShipAckWait-c.ShipHeartbeat {
			b.Log.Warn().Dur("lease_ttl", ttl).Dur("configured", c.ShipAckWait-c.ShipHeartbeat).
				Msgf("lease bucket %s exists with another TTL; using it (every replica must agree)", LeaseBucket)
		}
		s := New(Options{
			Concurrency: c.ShipConcurrency, BackoffInitial: c.ShipBackoffInitial, BackoffMax: c.ShipBackoffMax,
			MaxElapsed: c.ShipMaxElapsed, WaitDelay: c.ShipWaitDelay, WaitMaxAttempts: c.ShipWaitMaxAttempts,
			Heartbeat: c.ShipHeartbeat,
		}, b.WeChat(), b.Publisher(), pipeline.NewOrderRecord(b.Stream), LeaseTable{leases}, b.Log, b.Metrics)
		cc, err := events.ConsumerConfig(events.ConsumerShipper, maxAckPending, c.ShipAckWait)
		if err != nil {
			return err
		}
		return b.Consume(ctx, cc, func(ctx context.Context, cons jetstream.Consumer) error { return s.Run(ctx, cons) })
	})
}
