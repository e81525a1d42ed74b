package bench

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/procfs"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// ProcessFigures are one process's costs in the pipeline phase: peak RSS,
// and per order over the measured part (from the moment every service is
// ready until the last order is terminal) CPU, allocations, system calls,
// context switches and NATS messages (see usage for what each counts), and
// the main contributors from its profiles. NaN marks a figure not measured.
type ProcessFigures struct {
	Name    string
	PeakRSS uint64 // 0 for the bench process
	CPU     time.Duration
	// Allocs and AllocBytes are heap objects and bytes allocated.
	Allocs, AllocBytes float64
	// Syscalls are read/write-family system calls; CtxSwitches context
	// switches; NATSMsgs messages in and out of the NATS server.
	Syscalls, CtxSwitches, NATSMsgs float64
	Contributors                    Contributors
	// Profile is `go tool pprof -top` of its CPU profile, 8 entries.
	Profile string
}

// PipelineFigures are the throughput phase's results.
type PipelineFigures struct {
	Orders        int
	OrdersPerSec  float64
	CallsPerOrder map[string]float64
	BatchFill     float64
	// Processes are the three services (by name), then the bench process
	// (selfName: the NATS server and the sandbox): together what bounds the
	// throughput on a machine with Report.CPUs cores.
	Processes []ProcessFigures
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
		env := serviceEnv(st, name, extra)
		maps.Copy(env, o.childEnv())
		p, err := startProc(o.Exe, append(append([]string{}, o.Args...), name), name, env, o.Logs)
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

// gateCode is what order/list/get answers while the bench holds ingest back
// (-1, system busy: ingest retries at its next poll).
const gateCode = -1

// pipelinePhase runs o.Orders orders through ingest, enricher and shipper
// processes and records the throughput and each process's costs and
// profiles, then the latency at half that throughput while the same
// processes run. The costs are measured from the moment every service is
// ready (ingest is held back until then: order/list/get answers gateCode)
// to the moment the last order is terminal, so start-up is not counted.
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
		// order/list/get is counted up to the last order received: after it
		// ingest is caught up, and its idle polls (every 100ms here) are the
		// poll interval's cost, not the paging's.
		rcv, err := countSubjects(nc, o.Orders, events.FilterSubject(events.StageReceived))
		if err != nil {
			return err
		}
		var listed sandbox.Stats
		rcv.whenDone(func() { listed = withoutGate(st.Sandbox.Stats()) })
		gate := st.Sandbox.Inject(sandbox.Fault{Endpoint: sandbox.EndpointOrderList, Code: gateCode})
		procs, err := startServices(ctx, o, st, 1, map[string]string{"INGEST_POLL_INTERVAL": "100ms"})
		if err != nil {
			return err
		}
		defer stopAll(procs)
		fs, _ := procfs.NewDefaultFS() // without /proc every figure of it is NaN
		before := readAllUsage(ctx, fs, procs, st)
		st.Sandbox.RemoveFault(gate)
		prof, err := startProfiles(ctx, procs, 3*time.Second)
		if err != nil {
			return err
		}
		defer prof.remove()
		if err := cnt.wait(ctx, 5*time.Minute); err != nil {
			return err
		}

		// Every counter first, before anything else runs; the platform
		// calls next, before ingest's idle polls add to them.
		after := readAllUsage(ctx, fs, procs, st)
		f := PipelineFigures{Orders: o.Orders, CallsPerOrder: callsPerOrder(withoutGate(st.Sandbox.Stats()), o.Orders)}
		select {
		case <-rcv.done:
			f.CallsPerOrder[sandbox.EndpointOrderList] = float64(listed.Calls[sandbox.EndpointOrderList]) / float64(o.Orders)
		default: // an order failed before it was received: every list call counts
		}
		tl, err := tally.Read(ctx, js)
		if err != nil {
			return err
		}
		if span := tl.LastTerminalAt.Sub(tl.FirstReceivedAt); span > 0 {
			f.OrdersPerSec = float64(o.Orders) / span.Seconds()
		}
		f.Processes, f.BatchFill = processFigures(ctx, procs, before, after, o.Orders)
		tops, contributors := prof.read()
		for i := range f.Processes {
			p := &f.Processes[i]
			p.Profile, p.Contributors = tops[p.Name], contributors[p.Name]
		}
		r.Pipeline = f

		lf, err := latencyAtHalf(ctx, st, js, f.OrdersPerSec, step)
		if err != nil {
			return err
		}
		r.Latency = lf
		return nil
	})
}

// readAllUsage reads every service's counters and this process's, by name.
func readAllUsage(ctx context.Context, fs procfs.FS, procs []*proc, st *stack.Stack) map[string]usage {
	u := map[string]usage{selfName: readSelfUsage(fs)}
	for _, p := range procs {
		u[p.name] = readUsage(ctx, fs, p, st.Server)
	}
	return u
}

// withoutGate is stats without the order/list/get calls that the gate
// refused.
func withoutGate(stats sandbox.Stats) sandbox.Stats {
	if n := stats.ErrCodes[sandbox.EndpointOrderList][gateCode]; n > 0 {
		stats.Calls[sandbox.EndpointOrderList] -= n
		if stats.Calls[sandbox.EndpointOrderList] == 0 {
			delete(stats.Calls, sandbox.EndpointOrderList)
		}
	}
	return stats
}

// callsPerOrder is each platform endpoint's calls divided by orders.
func callsPerOrder(stats sandbox.Stats, orders int) map[string]float64 {
	calls := map[string]float64{}
	for ep, n := range stats.Calls {
		calls[ep] = float64(n) / float64(orders)
	}
	return calls
}

// processFigures is each service's figures, sorted by name, then this
// process's, and the enricher's mean batch fill (0 before its first batch).
func processFigures(ctx context.Context, procs []*proc, before, after map[string]usage, orders int) ([]ProcessFigures, float64) {
	var (
		out  []ProcessFigures
		fill float64
	)
	figures := func(name string) ProcessFigures {
		u := after[name].perOrder(before[name], orders)
		return ProcessFigures{Name: name, CPU: u.cpu, Allocs: u.mallocs, AllocBytes: u.allocBytes,
			Syscalls: u.syscalls, CtxSwitches: u.ctxSwitches, NATSMsgs: u.natsMsgs}
	}
	for _, p := range procs {
		pf := figures(p.name)
		_, pf.PeakRSS = p.rss()
		if p.name == "enricher" {
			if f, ok := p.batchFill(ctx); ok {
				fill = f
			}
		}
		out = append(out, pf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return append(out, figures(selfName)), fill
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
