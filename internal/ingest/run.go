package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/clients/vvtool"
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
		ledger, err := OpenLedger(ctx, b.JS, c.StreamReplicas)
		if err != nil {
			return err
		}
		b.Admin.AddCheck("ledger", func(ctx context.Context) error { _, err := ledger.kv.Status(ctx); return err })
		pub := b.Publisher()
		pub.GiveUpWhenFull = true // a full stream is answered 503 (the API) or retried next poll
		in := NewIngester(b.Stream, pub, b.Stream.CachedInfo().Config.MaxAge, b.Log, b.Metrics)

		pollers := map[string]Poller{}
		if c.HasSource("channels") {
			pollers["channels"] = &ChannelsPoller{Shop: events.DefaultShop, Client: b.WeChat(), In: in, Ledger: ledger, DeliveryID: c.IngestDeliveryID,
				Lookback: c.IngestLookback, Concurrency: 32, Log: b.Log}
		}
		if c.HasSource("vvtool") {
			client := vvtool.NewClient(c.VVToolToken, vvtool.WithBaseURL(c.VVToolAPIBase),
				vvtool.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: service.Transport()}),
				vvtool.WithObserver(func(code int, d time.Duration) { b.Metrics.ObserveAPI("vvtool/detail", code, d) }))
			pollers["vvtool"] = &VVToolPoller{Shop: events.DefaultShop, Client: client, In: in, ShopIDs: c.VVToolShopIDs, Lookback: c.IngestLookback, Log: b.Log}
		}

		var wg sync.WaitGroup
		defer wg.Wait()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := make(chan error, 1)
		if c.IngestAPIToken != "" {
			ln, err := net.Listen("tcp", c.IngestHTTPAddr)
			if err != nil {
				return fmt.Errorf("order API listen on %s: %w", c.IngestHTTPAddr, err)
			}
			srv := (&API{In: in, Token: c.IngestAPIToken}).NewServer()
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
		for name, p := range pollers {
			wg.Go(func() { poll(ctx, name, p, c.IngestPollInterval, b.Log) })
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		}
	})
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
