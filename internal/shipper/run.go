package shipper

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

// Summary is the one-line description of the binary for --help.
const Summary = "calls WeChat Channels delivery/send for every order.enriched event and ends each order shipped or failed"

// LeaseBucket is the KV bucket of the per-order leases: key the order id,
// value the holding process. `nats kv ls FULFILL_SHIP_LEASES` shows the
// orders being called right now, and those shipped in the last
// SHIP_ACK_WAIT - SHIP_HEARTBEAT, whose leases are left to expire.
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
		var states *pipeline.ShopStates
		if err := service.Retry(ctx, func(ctx context.Context) (err error) {
			states, err = pipeline.OpenShopStates(ctx, b.JS, c.StreamReplicas)
			return err
		}); err != nil {
			return err
		}
		// A wait lives SHIP_WAIT_MAX_ATTEMPTS × SHIP_WAIT_DELAY; its
		// start is kept that long and an hour more.
		var waits *pipeline.WaitStarts
		if err := service.Retry(ctx, func(ctx context.Context) (err error) {
			waits, err = pipeline.OpenWaitStarts(ctx, b.JS, time.Duration(c.ShipWaitMaxAttempts)*c.ShipWaitDelay+time.Hour, c.StreamReplicas)
			return err
		}); err != nil {
			return err
		}
		if need := time.Duration(c.ShipWaitMaxAttempts-1) * c.ShipWaitDelay; waits.TTL() < need {
			b.Log.Warn().Dur("ttl", waits.TTL()).Dur("needed", need).
				Msgf("bucket %s forgets a wait sooner than SHIP_WAIT_MAX_ATTEMPTS × SHIP_WAIT_DELAY: orders may wait longer than that (delete the bucket to recreate it)", pipeline.WaitStartBucket)
		}
		multi := pipeline.NewMultiLast(b.NC, events.StreamName)
		defer multi.Close()
		rep := &stateReporter{states: states, log: b.Log, current: map[string]ShopStatus{}}
		s := New(Options{
			Concurrency: c.ShipConcurrency, ShopConcurrency: shopConcurrency(b), BackoffInitial: c.ShipBackoffInitial, BackoffMax: c.ShipBackoffMax,
			MaxElapsed: c.ShipMaxElapsed, WaitDelay: c.ShipWaitDelay, WaitMaxAttempts: c.ShipWaitMaxAttempts,
			Heartbeat: c.ShipHeartbeat,
		}, func(shop string) (Sender, error) { return b.Shops.WeChat(shop) }, b.Publisher(), pipeline.NewOrderRecord(b.Stream).WithMultiLast(multi),
			LeaseTable{leases}, b.Log, b.Metrics, rep.changed)
		s.Tracer = b.Tracer
		s.Waits = waits
		s.Leader = pipeline.NewLeaderRecord(b.NC, events.StreamName)
		repCtx, stopRep := context.WithCancel(ctx)
		defer stopRep()
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { rep.run(repCtx) })
		cc, err := events.ConsumerConfig(events.ConsumerShipper, maxAckPending, c.ShipAckWait)
		if err != nil {
			return err
		}
		return b.Consume(ctx, cc, func(ctx context.Context, cons jetstream.Consumer) error { return s.Run(ctx, cons) })
	})
}

// shopConcurrency is each shop's slots: its ship_concurrency, else
// SHIP_SHOP_CONCURRENCY; the one shop of a deployment without SHOPS_FILE
// may use every worker.
func shopConcurrency(b *service.Base) func(string) int {
	return func(shop string) int {
		if !b.Shops.FromFile() {
			return b.Cfg.ShipConcurrency
		}
		if sh, ok := b.Shops.Current().Shop(shop); ok && sh.ShipConcurrency > 0 {
			return sh.ShipConcurrency
		}
		return b.Cfg.ShipShopConcurrency
	}
}

// stateReporter writes the shops this replica backs off to the shop-state
// bucket, for fulfillctl shops and status: on each change, and again every
// ShopStateRefresh so the entries of a live replica do not expire.
type stateReporter struct {
	states *pipeline.ShopStates
	log    zerolog.Logger

	mu      sync.Mutex
	current map[string]ShopStatus // shops not ok
}

func (r *stateReporter) changed(shop string, st ShopStatus) {
	r.mu.Lock()
	if st.State == ShopOK {
		delete(r.current, shop)
	} else {
		r.current[shop] = st
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.write(ctx, shop, st); err != nil {
		r.log.Warn().Err(err).Str("shop", shop).Msg("record the shop's state (fulfillctl shops may not show it)")
	}
}

func (r *stateReporter) write(ctx context.Context, shop string, st ShopStatus) error {
	if st.State == ShopOK {
		return r.states.Delete(ctx, shop)
	}
	return r.states.Put(ctx, pipeline.ShopState{Shop: shop, State: string(st.State), Since: st.Since, Errcode: st.Errcode})
}

func (r *stateReporter) run(ctx context.Context) {
	t := time.NewTicker(pipeline.ShopStateRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// A replica stopping stops vouching for its entries.
			r.mu.Lock()
			shops := slices.Collect(maps.Keys(r.current))
			r.mu.Unlock()
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			for _, shop := range shops {
				_ = r.states.Delete(dctx, shop)
			}
			cancel()
			return
		case <-t.C:
			r.mu.Lock()
			cur := maps.Clone(r.current)
			r.mu.Unlock()
			for shop, st := range cur {
				_ = r.write(ctx, shop, st)
			}
		}
	}
}
