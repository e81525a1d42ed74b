package bench

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// SweepPoint is the shipper's throughput at one concurrency and replica
// count against a platform answering delivery/send in Latency.
type SweepPoint struct {
	Concurrency, Replicas int
	Orders                int
	OrdersPerSec          float64
	// Bound is Little's law: concurrency × replicas / latency.
	Bound float64
}

// sweepPoint pre-loads enriched orders (ingest and enricher at full speed),
// then starts the shippers and times them to the last terminal event.
func sweepPoint(ctx context.Context, o Options, conc, replicas int) (SweepPoint, error) {
	p := SweepPoint{Concurrency: conc, Replicas: replicas, Bound: float64(conc*replicas) / o.Latency.Seconds()}
	p.Orders = min(max(int(p.Bound*4), 400), 12000)
	err := withStack(stack.Options{Sandbox: benchSandbox(p.Orders)}, func(st *stack.Stack) error {
		st.Sandbox.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, Latency: o.Latency, Times: -1})
		nc, _, err := connect(st.NATSURL)
		if err != nil {
			return err
		}
		defer nc.Close()
		enriched, err := countSubjects(nc, p.Orders, events.FilterSubject(events.StageEnriched))
		if err != nil {
			return err
		}
		terminal, err := countTerminal(nc, p.Orders)
		if err != nil {
			return err
		}
		sctx, stop := context.WithCancel(ctx)
		g := &stack.Group{}
		defer func() { stop(); _ = g.Wait() }()
		env := map[string]string{"INGEST_POLL_INTERVAL": "100ms", "SHIP_CONCURRENCY": strconv.Itoa(conc), "LOG_LEVEL": "warn"}
		st.Go(sctx, g, "ingest", io.Discard, env)
		st.Go(sctx, g, "enricher", io.Discard, env)
		if err := enriched.wait(ctx, 3*time.Minute); err != nil {
			return err
		}
		start := time.Now()
		for range replicas {
			st.Go(sctx, g, "shipper", o.Logs, env)
		}
		if err := terminal.wait(ctx, 5*time.Minute); err != nil {
			return err
		}
		p.OrdersPerSec = float64(p.Orders) / terminal.last.Sub(start).Seconds()
		return nil
	})
	return p, err
}
