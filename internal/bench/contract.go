package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/pipeline"
)

// bookkeeping is the per-order work the pipeline's contract adds to the
// platform calls, done the way the shipper does it, and nothing more: one
// delivery/send per order at a time across replicas needs the order's
// lease, a key created in a KV bucket (the shipper's settings: file
// storage, a TTL of SHIP_ACK_WAIT - SHIP_HEARTBEAT), before the call; a
// copy of the order (a replay, a re-drive) must not call again, so the
// order's shipped and failed record is read (one multi_last direct get)
// before it; and a second shipped event must be refused by the server, so
// the shipped event is published with an expected last subject sequence.
// The ceiling with it is the most a pipeline that keeps the contract could
// do: what lies beyond it is the contract's cost, not the pipeline's.
type bookkeeping struct {
	leases *pipeline.Leases
	record *pipeline.MultiLast
	prefix string
}

// contractBucket is the ceiling's lease bucket, beside its stream.
const contractBucket = ceilingStream + "_LEASES"

// newBookkeeping opens the lease bucket on js and reads the stream named
// stream through nc; prefix is the chain's subject prefix. The stream must
// allow direct gets.
func newBookkeeping(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, stream, prefix string) (*bookkeeping, error) {
	ttl, err := shipperLeaseTTL()
	if err != nil {
		return nil, err
	}
	leases, err := pipeline.OpenLeases(ctx, js, pipeline.LeaseConfig{Bucket: contractBucket, TTL: ttl, Replicas: 1})
	if err != nil {
		return nil, err
	}
	return &bookkeeping{leases: leases, record: pipeline.NewMultiLast(nc, stream), prefix: prefix}, nil
}

// shipperLeaseTTL is how long the shipper's leases live by default.
func shipperLeaseTTL() (time.Duration, error) {
	var d [2]time.Duration
	for i, name := range []string{"SHIP_ACK_WAIT", "SHIP_HEARTBEAT"} {
		v, ok := config.Lookup(name)
		if !ok {
			return 0, fmt.Errorf("no variable %s", name)
		}
		var err error
		if d[i], err = time.ParseDuration(v.DefaultFor(config.Shipper)); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	return d[0] - d[1], nil
}

// close ends the record's subscription.
func (b *bookkeeping) close() { _ = b.record.Close() }

// before wraps ship, the call of the shipped hop, with the order's lease and
// record read for each id, in the shipper's order. An order already shipped
// or failed is an error: in the ceiling every order is new.
func (b *bookkeeping) before(ship func(ctx context.Context, ids []string) error) func(ctx context.Context, ids []string) error {
	return func(ctx context.Context, ids []string) error {
		for _, id := range ids {
			if _, err := b.leases.Acquire(ctx, id); err != nil {
				return err
			}
			found, err := b.record.Get(ctx, b.prefix+".shipped."+id, b.prefix+".failed."+id)
			if err != nil {
				return fmt.Errorf("record of %s: %w", id, err)
			}
			if len(found) > 0 {
				return fmt.Errorf("record of %s: %s is stored already", id, found[0].Subject)
			}
		}
		return ship(ctx, ids)
	}
}
