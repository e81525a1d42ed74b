package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/events"
)

// Base is what a stage binary has once it started: its configuration,
// logger, metrics, admin server and JetStream handles.
type Base struct {
	Cfg     *config.Config
	Log     zerolog.Logger
	Metrics *Metrics
	Admin   *Admin
	NC      *nats.Conn
	JS      jetstream.JetStream
	Stream  jetstream.Stream
	// Shops is the registry of the shops served, kept current.
	Shops *Shops
	// Tracer starts the binary's spans; nil (tracing off) unless
	// OTEL_EXPORTER_OTLP_ENDPOINT is set.
	Tracer *tracing.Tracer
}

// Stage is the body of a binary: it runs until ctx ends, then drains.
type Stage func(ctx context.Context, b *Base) error

// Binary describes a stage binary to Run.
type Binary struct {
	// Name is the binary's name (config.Ingest, …) and Summary its --help
	// line.
	Name, Summary string
	// Help is printed after the variables by --help.
	Help string
	// Horizon is the longest a message may wait in the stream before this
	// binary settles it, and what makes it up (with the variables named):
	// the stream must keep messages at least that long, or a waiting order
	// ages out unnoticed.
	Horizon func(*config.Config) (time.Duration, string)
}

// Run is the whole life of a stage binary: parse the configuration (printing
// --help when asked), connect, create the stream if it is missing, serve
// the admin endpoints, run the stage until ctx ends, then drain the NATS
// connection. --help prints to stdout and returns nil; logs go to stderr.
func Run(ctx context.Context, bin Binary, args []string, getenv func(string) string, stdout, stderr io.Writer, stage Stage) error {
	binary := bin.Name
	cfg, err := config.Parse(binary, bin.Summary, args, getenv, stdout)
	if errors.Is(err, config.ErrHelp) && bin.Help != "" {
		fmt.Fprint(stdout, "\n"+bin.Help)
	}
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: configuration: %w", binary, err)
	}
	horizon, why := events.DuplicateWindow, "the duplicate window"
	if bin.Horizon != nil {
		horizon, why = bin.Horizon(cfg)
	}
	if cfg.StreamMaxAge < horizon {
		return fmt.Errorf("%s: configuration: STREAM_MAX_AGE %s is shorter than %s (%s): waiting orders would age out of the stream unnoticed", binary, cfg.StreamMaxAge, why, horizon)
	}
	log := NewLogger(stderr, binary, cfg.LogLevel, cfg.LogFormat)
	log.Info().Interface("config", cfg.Redacted()).Msg("starting")
	tracer, err := tracing.Setup(ctx, binary, cfg.OTLPEndpoint, getenv, log)
	if err != nil {
		return fmt.Errorf("%s: configuration: %w", binary, err)
	}
	// Runs last, once every span has ended: the batch not yet sent goes
	// out before the process exits.
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracer.Shutdown(sctx); err != nil {
			log.Warn().Err(err).Msg("tracing: flushing the last spans failed")
		}
	}()

	m := NewMetrics()
	shopSet, err := OpenShops(cfg, getenv, m, log)
	if err != nil {
		return fmt.Errorf("%s: configuration: %w", binary, err)
	}
	shopSet.tracer = tracer
	m.KnowShops(func(id string) bool { _, ok := shopSet.Current().Shop(id); return ok })
	admin, err := NewAdmin(cfg.AdminAddr, m, cfg.AdminPprof)
	if err != nil {
		return fmt.Errorf("%s: %w", binary, err)
	}
	notifyAdmin(ctx, binary, admin.Addr())
	// /healthz answers from the start; /readyz says "starting" until NATS
	// and the stream are there, so probes can tell slow from dead.
	starting := fmt.Errorf("starting: connecting to NATS at %s", config.RedactURLs(cfg.NATSURL))
	admin.AddCheck("nats", func(context.Context) error { return starting })
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var adminErr error
	wg.Add(1)
	go func() { defer wg.Done(); adminErr = admin.Serve(adminCtx) }()
	defer func() { stopAdmin(); wg.Wait() }()

	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, js, err := Connect(connectCtx, cfg.NATSURL, cfg.NATSCreds, binary, log)
	if err != nil {
		return fmt.Errorf("%s: %w", binary, err)
	}
	defer nc.Close()
	stream, diff, err := EnsureStream(connectCtx, js, cfg.StreamLimits(), cfg.StreamUpdate)
	if err != nil {
		return fmt.Errorf("%s: %w", binary, err)
	}
	switch {
	case len(diff) > 0 && cfg.StreamUpdate:
		log.Info().Strs("changes", diff).Msg("updated the ORDERS stream to this service's STREAM_* settings (STREAM_UPDATE=true)")
	case len(diff) > 0:
		log.Warn().Strs("differences", diff).Msg("the ORDERS stream differs from this service's STREAM_* settings; keeping it as it is (STREAM_UPDATE=true or fulfillctl stream apply changes it)")
	}
	if age := stream.CachedInfo().Config.MaxAge; age > 0 && age < horizon {
		return fmt.Errorf("%s: the ORDERS stream keeps events %s, shorter than %s (%s): waiting orders would age out unnoticed; raise its max age (STREAM_MAX_AGE with STREAM_UPDATE=true, or fulfillctl stream apply)", binary, age, why, horizon)
	}
	admin.AddCheck("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats %s", nc.Status())
		}
		return nil
	})
	b := &Base{Cfg: cfg, Log: log, Metrics: m, Admin: admin, NC: nc, JS: js, Stream: stream, Shops: shopSet, Tracer: tracer}
	log.Info().Str("admin_addr", admin.Addr()).Str("nats", config.RedactURLs(nc.ConnectedUrl())).
		Int("shops", shopSet.Current().Len()).Bool("tracing", tracer.On()).Msg("started")

	shopsCtx, stopShops := context.WithCancel(ctx)
	shopsDone := shopSet.Start(shopsCtx)
	runErr := stage(ctx, b)
	stopShops()
	shopsDone()

	// The stage has stopped fetching and settled what it held; flush our
	// publishes and acks before closing.
	drain(nc, log)
	stopAdmin()
	wg.Wait()
	if runErr != nil {
		return fmt.Errorf("%s: %w", binary, runErr)
	}
	if adminErr != nil {
		return fmt.Errorf("%s: %w", binary, adminErr)
	}
	log.Info().Msg("stopped")
	return nil
}

// WatchConsumer refreshes the lag gauges of consumer name every interval
// until ctx ends.
func (b *Base) WatchConsumer(ctx context.Context, cons jetstream.Consumer, name string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if info, err := cons.Info(ctx); err == nil {
			b.Metrics.Pending.WithLabelValues(name).Set(float64(info.NumPending))
			b.Metrics.AckPending.WithLabelValues(name).Set(float64(info.NumAckPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// drain flushes and closes nc, waiting up to 10 s for it to finish.
func drain(nc *nats.Conn, log zerolog.Logger) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warn().Err(err).Msg("nats drain")
		return
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		log.Warn().Msg("nats drain did not finish within 10 s")
	}
}

// Consume creates or updates the durable consumer name with cfg, reports it
// in /readyz and its lag in metrics, and runs fn with it until fn returns.
func (b *Base) Consume(ctx context.Context, cfg jetstream.ConsumerConfig, fn func(context.Context, jetstream.Consumer) error) error {
	// Not ready until the consumer exists: it is created after NATS
	// answers, which can take a restart or an election.
	var created atomic.Pointer[jetstream.Consumer]
	b.Admin.AddCheck("consumer", func(ctx context.Context) error {
		cons := created.Load()
		if cons == nil {
			return fmt.Errorf("consumer %s not created yet", cfg.Durable)
		}
		_, err := (*cons).Info(ctx)
		return err
	})
	var cons jetstream.Consumer
	err := Retry(ctx, func(ctx context.Context) error {
		var err error
		cons, err = b.Stream.CreateOrUpdateConsumer(ctx, cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("create or update consumer %s: %w", cfg.Durable, err)
	}
	created.Store(&cons)
	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); b.WatchConsumer(watchCtx, cons, cfg.Durable, 5*time.Second) }()
	err = fn(ctx, cons)
	stopWatch()
	<-done
	return err
}

// Publisher is a publisher that counts what it publishes in metrics, and
// failed events by component and errcode.
func (b *Base) Publisher() *pipeline.Publisher {
	pub := pipeline.NewPublisher(b.JS)
	pub.OnPublished = b.Metrics.ObservePublished
	pub.OnStored = b.Metrics.ObserveStored
	return pub
}
