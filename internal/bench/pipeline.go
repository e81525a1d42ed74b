package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// ServiceFigures are one service process's costs.
type ServiceFigures struct {
	Name           string
	PeakRSS        uint64
	AllocsPerOrder float64
}

// PipelineFigures are the throughput phase's results.
type PipelineFigures struct {
	Orders        int
	OrdersPerSec  float64
	CallsPerOrder map[string]float64
	BatchFill     float64
	Services      []ServiceFigures
	// CPUPerOrder is each process's CPU time per order, the bench process
	// (NATS server and sandbox) included: what bounds the throughput on
	// a machine with CPUs cores.
	CPUPerOrder map[string]time.Duration
	// Profiles are `go tool pprof -top` excerpts of each process.
	Profiles map[string]string
}

// LatencyFigures are received→shipped latencies at a fixed arrival rate.
type LatencyFigures struct {
	Rate     float64
	Orders   int
	P50, P99 time.Duration
}

// startServices runs ingest, enricher and shippers shipper processes.
func startServices(ctx context.Context, o Options, st *stack.Stack, shippers int, extra map[string]string) ([]*proc, error) {
	names := []string{"ingest", "enricher"}
	for range shippers {
		names = append(names, "shipper")
	}
	var procs []*proc
	for _, name := range names {
		p, err := startProc(o.Exe, append(append([]string{}, o.Args...), name), name, serviceEnv(st, name, extra), o.Logs)
		if err != nil {
			stopAll(procs)
			return nil, err
		}
		procs = append(procs, p)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, p := range procs {
		if err := p.waitReady(rctx); err != nil {
			stopAll(procs)
			return nil, err
		}
	}
	return procs, nil
}

func stopAll(procs []*proc) {
	for _, p := range procs {
		_ = p.stop()
	}
}

// pipelinePhase runs o.Orders orders through ingest, enricher and shipper
// processes and records the throughput, each process's costs and profiles,
// then the latency at half that throughput while the same processes run.
func pipelinePhase(ctx context.Context, o Options, r *Report, step func(string, ...any)) error {
	return withStack(stack.Options{Sandbox: benchSandbox(o.Orders)}, func(st *stack.Stack) error {
		nc, js, err := connect(st.NATSURL)
		if err != nil {
			return err
		}
		defer nc.Close()
		cnt, err := countTerminal(nc, o.Orders)
		if err != nil {
			return err
		}
		cpu := startCPU()
		procs, err := startServices(ctx, o, st, 1, map[string]string{"INGEST_POLL_INTERVAL": "100ms"})
		if err != nil {
			return err
		}
		defer stopAll(procs)
		cpu.addProcs(procs)
		prof, err := startProfiles(ctx, procs, 3*time.Second)
		if err != nil {
			return err
		}
		defer prof.remove()
		if err := cnt.wait(ctx, 5*time.Minute); err != nil {
			return err
		}

		// The figures are read in this order on purpose: CPU first, before
		// anything else runs; the platform calls after the profiles, as ingest
		// keeps polling.
		f := PipelineFigures{Orders: o.Orders, CPUPerOrder: cpu.perOrder(procs, o.Orders)}
		tl, err := tally.Read(ctx, js)
		if err != nil {
			return err
		}
		f.Profiles = prof.tops()
		if span := tl.LastTerminalAt.Sub(tl.FirstReceivedAt); span > 0 {
			f.OrdersPerSec = float64(o.Orders) / span.Seconds()
		}
		f.CallsPerOrder = callsPerOrder(st.Sandbox.Stats(), o.Orders)
		f.Services, f.BatchFill = serviceFigures(ctx, procs, o.Orders)
		r.Pipeline = f

		lf, err := latencyAtHalf(ctx, st, js, f.OrdersPerSec, step)
		if err != nil {
			return err
		}
		r.Latency = lf
		return nil
	})
}

// callsPerOrder is each platform endpoint's calls divided by orders.
func callsPerOrder(stats sandbox.Stats, orders int) map[string]float64 {
	calls := map[string]float64{}
	for ep, n := range stats.Calls {
		calls[ep] = float64(n) / float64(orders)
	}
	return calls
}

// serviceFigures is each service's peak RSS and allocations per order, and the
// enricher's mean batch fill (0 before its first batch).
func serviceFigures(ctx context.Context, procs []*proc, orders int) ([]ServiceFigures, float64) {
	var (
		services []ServiceFigures
		fill     float64
	)
	for _, p := range procs {
		sf := ServiceFigures{Name: p.name}
		_, sf.PeakRSS = p.rss()
		if m, err := p.metric(ctx, "go_memstats_mallocs_total"); err == nil {
			sf.AllocsPerOrder = m / float64(orders)
		}
		if p.name == "enricher" {
			if f, ok := p.batchFill(ctx); ok {
				fill = f
			}
		}
		services = append(services, sf)
	}
	return services, fill
}

// latencyAtHalf measures latencyPhase at half the pipeline's throughput: new
// orders arrive at that rate for about five seconds (at least 50 orders).
func latencyAtHalf(ctx context.Context, st *stack.Stack, js jetstream.JetStream, throughput float64, step func(string, ...any)) (LatencyFigures, error) {
	rate := throughput / 2
	n := max(int(rate*5), 50)
	step("latency: %d orders arriving at %.0f/s", n, rate)
	lf, err := latencyPhase(ctx, st, js, rate, n)
	if err != nil {
		return LatencyFigures{}, fmt.Errorf("latency: %w", err)
	}
	return lf, nil
}

// latencyPhase adds n orders to the sandbox at rate per second and measures
// each one's stream time from received to shipped.
func latencyPhase(ctx context.Context, st *stack.Stack, js jetstream.JetStream, rate float64, n int) (LatencyFigures, error) {
	before := map[string]bool{}
	for _, o := range st.Sandbox.Scenario() {
		before[o.OrderID] = true
	}
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
	added, start := 0, time.Now()
	for added < n {
		select {
		case <-ctx.Done():
			return LatencyFigures{}, ctx.Err()
		case <-tick.C:
		}
		due := min(n, int(time.Since(start).Seconds()*rate)+1)
		for ; added < due; added++ {
			st.Sandbox.AddOrder(sandbox.ScenarioOrder{}, 1+rand.IntN(2))
		}
	}
	var ids []string
	for _, o := range st.Sandbox.Scenario() {
		if !before[o.OrderID] {
			ids = append(ids, o.OrderID)
		}
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = events.OrderKey(events.DefaultShop, id)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if _, err := tally.Watch(wctx, js, 500*time.Millisecond, func(t *tally.Tally) bool { return t.AllTerminal(keys) }); err != nil {
		return LatencyFigures{}, err
	}
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return LatencyFigures{}, err
	}
	var lat []time.Duration
	for _, id := range ids {
		rcv, err := storedAt(ctx, s, events.StageReceived, id)
		if err != nil {
			return LatencyFigures{}, err
		}
		shp, err := storedAt(ctx, s, events.StageShipped, id)
		if err != nil {
			return LatencyFigures{}, err
		}
		lat = append(lat, shp.Sub(rcv))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return LatencyFigures{Rate: rate, Orders: len(lat), P50: lat[len(lat)/2], P99: lat[len(lat)*99/100]}, nil
}

// storedAt is when the stream stored the latest event of stage for order id.
func storedAt(ctx context.Context, s jetstream.Stream, stage events.Stage, id string) (time.Time, error) {
	filter, err := events.OrderFilter(stage, events.DefaultShop, id)
	if err != nil {
		return time.Time{}, err
	}
	m, err := s.GetLastMsgForSubject(ctx, filter)
	if err != nil {
		return time.Time{}, err
	}
	return m.Time, nil
}
