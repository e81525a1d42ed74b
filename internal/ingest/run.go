package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/shops"
	"github.com/fulfill/pipeline/pkg/clients/wechat/push"
	"github.com/fulfill/pipeline/pkg/events"
)

// Summary is the one-line description of the binary for --help.
const Summary = "polls WeChat Channels and vv-tool, accepts POST /v1/orders, and publishes each order once to JetStream"

// Poller is one source polled every INGEST_POLL_INTERVAL.
type Poller interface {
	Poll(ctx context.Context) error
}

// Run is the ingest binary: what cmd/ingest's main calls.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Run(ctx, service.Binary{Name: config.Ingest, Summary: Summary}, args, getenv, stdout, stderr, func(ctx context.Context, b *service.Base) error {
		c := b.Cfg
		var ledger *Ledger
		if err := service.Retry(ctx, func(ctx context.Context) (err error) {
			ledger, err = OpenLedger(ctx, b.JS, c.StreamReplicas)
			return err
		}); err != nil {
			return err
		}
		b.Admin.AddCheck("ledger", func(ctx context.Context) error { _, err := ledger.kv.Status(ctx); return err })
		pub := b.Publisher()
		pub.GiveUpWhenFull = true // a full stream is answered 503 (the API) or retried next poll
		in := NewIngester(b.Stream, pub, b.Stream.CachedInfo().Config.MaxAge, b.Log, b.Metrics)
		in.Tracer = b.Tracer
		records := pipeline.NewMultiLast(b.NC, events.StreamName)
		defer records.Close()
		in.ReadRecordsThrough(records)

		var wg sync.WaitGroup
		defer wg.Wait() // after cancel: deferred calls run last first
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()

		pollers := &pollerSet{run: map[string]*running{}, interval: c.IngestPollInterval, log: b.Log,
			build: func(sh *shops.Shop) map[string]Poller { return shopPollers(b, in, ledger, sh) }}
		defer pollers.stopAll()
		api := &API{In: in, Token: c.IngestAPIToken}
		pollers.apply(ctx, b.Shops.Current())
		api.SetShops(apiTokens(b.Shops.Current()))
		setPush := func(reg *shops.Registry) {
			keys := pushKeys(reg)
			api.SetPush(keys)
			// A shop with push is watched from now: no push within 30
			// minutes while its orders come in is an alert.
			for shop := range keys {
				b.Metrics.WatchPushes(shop)
			}
		}
		setPush(b.Shops.Current())
		b.Shops.OnChange(func(reg *shops.Registry) {
			b.Log.Info().Int("shops", reg.Len()).Int("pollers", pollers.apply(ctx, reg)).Msg("shops reloaded")
			api.SetShops(apiTokens(reg))
			setPush(reg)
		})

		errc := make(chan error, 2)
		// Stored pushes are acted on by a consumer of their own; it idles
		// while no shop has push configured.
		pushes := &Pushes{In: in, Workers: 16, Heartbeat: pushAckWait / 4, Log: b.Log,
			Orders: func(shop string) (*ChannelsPoller, error) { return orderTaker(b, in, shop) }}
		pc, err := events.ConsumerConfig(events.ConsumerPush, 10_000, pushAckWait)
		if err != nil {
			return err
		}
		wg.Go(func() {
			if err := b.Consume(ctx, pc, pushes.Run); err != nil && ctx.Err() == nil {
				errc <- err
			}
		})
		// With a shops file the API serves whatever tokens and push keys
		// the file gives after a reload, so it listens even when none is
		// set yet.
		if c.IngestAPIToken != "" || b.Shops.FromFile() || len(pushKeys(b.Shops.Current())) > 0 {
			ln, err := net.Listen("tcp", c.IngestHTTPAddr)
			if err != nil {
				return fmt.Errorf("order API listen on %s: %w", c.IngestHTTPAddr, err)
			}
			srv := api.NewServer()
			b.Log.Info().Str("addr", ln.Addr().String()).Msg("order API listening")
			wg.Go(func() {
				if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					errc <- fmt.Errorf("order API: %w", err)
				}
			})
			wg.Go(func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		}
	})
}

// shopPollers are the pollers of one shop, by source: each source of
// INGEST_SOURCES the shop has an account for.
func shopPollers(b *service.Base, in *Ingester, ledger *Ledger, sh *shops.Shop) map[string]Poller {
	c := b.Cfg
	out := map[string]Poller{}
	log := b.Log.With().Str("shop", sh.ID).Logger()
	if c.HasSource("channels") && sh.Channels != nil && sh.Channels.DeliveryID != "" {
		if client, err := b.Shops.WeChat(sh.ID); err == nil {
			out["channels"] = &ChannelsPoller{Shop: sh.ID, Client: client, In: in, Ledger: ledger, DeliveryID: sh.Channels.DeliveryID,
				Lookback: c.IngestLookback, Concurrency: 32, Log: log}
		}
	}
	if c.HasSource("vvtool") && sh.VVTool != nil {
		if client, err := b.Shops.VVTool(sh.ID); err == nil {
			out["vvtool"] = &VVToolPoller{Shop: sh.ID, Client: client, In: in, ShopIDs: sh.VVTool.ShopIDs, Lookback: c.IngestLookback, Log: log}
		}
	}
	return out
}

// pushAckWait is the ack wait of the push consumer: one order/get call
// and a publish, with room.
const pushAckWait = 30 * time.Second

// orderTaker is the Channels order taker of shop, for its pushes.
func orderTaker(b *service.Base, in *Ingester, shop string) (*ChannelsPoller, error) {
	sh, err := b.Shops.Shop(shop)
	if err != nil {
		return nil, err
	}
	client, err := b.Shops.WeChat(shop)
	if err != nil {
		return nil, err
	}
	return &ChannelsPoller{Shop: shop, Client: client, In: in, DeliveryID: sh.Channels.DeliveryID, Log: b.Log.With().Str("shop", shop).Logger()}, nil
}

// pushKeys are the push settings of the shops that have them.
func pushKeys(reg *shops.Registry) map[string]push.Keys {
	out := map[string]push.Keys{}
	for _, sh := range reg.Shops() {
		if ch := sh.Channels; ch != nil && ch.PushToken != "" {
			out[sh.ID] = push.Keys{Token: ch.PushToken, AESKey: ch.PushAESKey, PreviousAESKey: ch.PushAESKeyPrevious, AppID: ch.AppID}
		}
	}
	return out
}

// apiTokens maps each shop to its own API token ("" for none).
func apiTokens(reg *shops.Registry) map[string]string {
	out := make(map[string]string, reg.Len())
	for _, sh := range reg.Shops() {
		out[sh.ID] = sh.APIToken
	}
	return out
}

// pollerSet runs one poll loop per shop and source, and on a reload starts
// the loops of added shops, stops those of removed ones, and restarts those
// of shops whose accounts changed.
type pollerSet struct {
	interval time.Duration
	log      zerolog.Logger
	build    func(*shops.Shop) map[string]Poller

	mu  sync.Mutex
	run map[string]*running // by shop id
}

// running is one shop's poll loops.
type running struct {
	shop   *shops.Shop
	loops  int
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// apply makes the running loops those of reg, and answers how many loops
// run.
func (s *pollerSet) apply(ctx context.Context, reg *shops.Registry) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.run {
		if sh, ok := reg.Shop(id); !ok || !reflect.DeepEqual(sh, r.shop) {
			r.cancel()
			r.done.Wait()
			delete(s.run, id)
			s.log.Info().Str("shop", id).Msg("stopped polling the shop")
		}
	}
	loops := 0
	for _, sh := range reg.Shops() {
		if r, ok := s.run[sh.ID]; ok {
			loops += r.loops
			continue
		}
		pollers := s.build(sh)
		rctx, cancel := context.WithCancel(ctx)
		r := &running{shop: sh, loops: len(pollers), cancel: cancel}
		for source, p := range pollers {
			r.done.Go(func() { poll(rctx, source, p, s.interval, s.log.With().Str("shop", sh.ID).Logger()) })
		}
		s.run[sh.ID] = r
		loops += len(pollers)
	}
	return loops
}

// stopAll stops every loop and waits for them.
func (s *pollerSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.run {
		r.cancel()
		r.done.Wait()
		delete(s.run, id)
	}
}

// poll runs p now and then every interval until ctx ends. A failed poll is
// logged and retried at the next tick: the checkpoint only moves past
// windows that were published whole.
func poll(ctx context.Context, name string, p Poller, interval time.Duration, log zerolog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Str("source", name).Msg("poll failed; retrying next interval")
		} else {
			log.Debug().Str("source", name).Dur("took", time.Since(start)).Msg("poll done")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
