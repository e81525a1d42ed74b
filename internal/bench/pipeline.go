package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/clients/sandbox"
	"github.com/fulfill/pipeline/pkg/events"
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
		cpu0 := map[string]time.Duration{"nats-server+sandbox": cpuTime(os.Getpid())}
		procs, err := startServices(ctx, o, st, 1, map[string]string{"INGEST_POLL_INTERVAL": "100ms"})
		if err != nil {
			return err
		}
		defer stopAll(procs)
		for _, p := range procs {
			cpu0[p.name] = cpuTime(p.cmd.Process.Pid)
		}
		profDir, err := os.MkdirTemp("", "fulfill-profiles-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(profDir)
		profs := make(chan []string, 1)
		go func() { profs <- profiles(ctx, procs, 3*time.Second, profDir) }()
		if err := cnt.wait(ctx, 5*time.Minute); err != nil {
			return err
		}
		cpu := map[string]time.Duration{"nats-server+sandbox": cpuTime(os.Getpid()) - cpu0["nats-server+sandbox"]}
		for _, p := range procs {
			cpu[p.name] = cpuTime(p.cmd.Process.Pid) - cpu0[p.name]
		}
		tl, err := tally.Read(ctx, js)
		if err != nil {
			return err
		}
		f := PipelineFigures{Orders: o.Orders, CallsPerOrder: map[string]float64{},
			CPUPerOrder: map[string]time.Duration{}, Profiles: map[string]string{}}
		for name, d := range cpu {
			f.CPUPerOrder[name] = d / time.Duration(o.Orders)
		}
		for _, file := range <-profs {
			name := strings.TrimSuffix(filepath.Base(file), ".pprof")
			f.Profiles[name] = topEntries(file, 8)
		}
		if span := tl.LastTerminalAt.Sub(tl.FirstReceivedAt); span > 0 {
			f.OrdersPerSec = float64(o.Orders) / span.Seconds()
		}
		stats := st.Sandbox.Stats()
		for ep, n := range stats.Calls {
			f.CallsPerOrder[ep] = float64(n) / float64(o.Orders)
		}
		for _, p := range procs {
			sf := ServiceFigures{Name: p.name}
			_, sf.PeakRSS = p.rss()
			if m, err := p.metric(ctx, "go_memstats_mallocs_total"); err == nil {
				sf.AllocsPerOrder = m / float64(o.Orders)
			}
			if p.name == "enricher" {
				sum, _ := p.metric(ctx, "fulfill_batch_size_sum")
				n, _ := p.metric(ctx, "fulfill_batch_size_count")
				if n > 0 {
					f.BatchFill = sum / n
				}
			}
			f.Services = append(f.Services, sf)
		}
		r.Pipeline = f

		// Latency at half the measured throughput: new orders arrive at
		// that rate for a few seconds while the same processes run.
		rate := f.OrdersPerSec / 2
		n := int(rate * 5)
		if n < 50 {
			n = 50
		}
		step("latency: %d orders arriving at %.0f/s", n, rate)
		lf, err := latencyPhase(ctx, st, js, rate, n)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		r.Latency = lf
		return nil
	})
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
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if _, err := tally.Watch(wctx, js, 500*time.Millisecond, func(t *tally.Tally) bool { return t.AllTerminal(ids) }); err != nil {
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
	filter, err := events.OrderFilter(stage, id)
	if err != nil {
		return time.Time{}, err
	}
	m, err := s.GetLastMsgForSubject(ctx, filter)
	if err != nil {
		return time.Time{}, err
	}
	return m.Time, nil
}
