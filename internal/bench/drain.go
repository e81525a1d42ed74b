package bench

import (
	"context"
	"time"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/events"
)

// DrainFigures are the backlog drain's memory figures per service.
type DrainFigures struct {
	Backlog      int
	Took         time.Duration
	OrdersPerSec float64
	// Samples is each service's RSS, one sample a second.
	Samples map[string][]uint64
	Peak    map[string]uint64
	// FirstPeak and LastPeak compare the first and last minute (or third,
	// for a shorter drain): flat memory keeps them within 10%.
	FirstPeak, LastPeak map[string]uint64
	BatchFill           float64
}

// drainPhase pre-loads Backlog received events (ingest alone), then runs
// enricher and shipper processes until all are terminal, sampling RSS.
func drainPhase(ctx context.Context, o Options, r *Report, step func(string, ...any)) error {
	return withStack(stack.Options{Sandbox: benchSandbox(o.Backlog)}, func(st *stack.Stack) error {
		nc, _, err := connect(st.NATSURL)
		if err != nil {
			return err
		}
		defer nc.Close()
		received, err := countSubjects(nc, o.Backlog, events.FilterSubject(events.StageReceived))
		if err != nil {
			return err
		}
		terminal, err := countTerminal(nc, o.Backlog)
		if err != nil {
			return err
		}
		pctx, stopIngest := context.WithCancel(ctx)
		g := &stack.Group{}
		st.Go(pctx, g, "ingest", o.Logs, map[string]string{"INGEST_POLL_INTERVAL": "100ms", "LOG_LEVEL": "warn"})
		t0 := time.Now()
		err = received.wait(ctx, 10*time.Minute)
		stopIngest()
		_ = g.Wait()
		if err != nil {
			return err
		}
		step("backlog: %d received events pre-loaded in %s", o.Backlog, time.Since(t0).Round(time.Second))

		// An idle ingest (HTTP API only) runs beside them, to be measured too.
		procs, err := startServices(ctx, o, st, 1, map[string]string{
			"INGEST_SOURCES": "none", "INGEST_API_TOKEN": "bench", "INGEST_HTTP_ADDR": "127.0.0.1:0",
		})
		if err != nil {
			return err
		}
		defer stopAll(procs)
		d := DrainFigures{Backlog: o.Backlog, Samples: map[string][]uint64{}, Peak: map[string]uint64{},
			FirstPeak: map[string]uint64{}, LastPeak: map[string]uint64{}}
		start := time.Now()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		limit := time.After(15 * time.Minute)
	loop:
		for {
			for _, p := range procs {
				cur, _ := p.rss()
				d.Samples[p.name] = append(d.Samples[p.name], cur)
			}
			select {
			case <-terminal.done:
				break loop
			case <-ctx.Done():
				return ctx.Err()
			case <-limit:
				return terminal.wait(ctx, 0)
			case <-tick.C:
			}
		}
		d.Took = time.Since(start)
		d.OrdersPerSec = float64(o.Backlog) / d.Took.Seconds()
		for _, p := range procs {
			_, d.Peak[p.name] = p.rss()
			s := d.Samples[p.name]
			w := min(60, max(len(s)/3, 1))
			d.FirstPeak[p.name], d.LastPeak[p.name] = maxOf(s[:w]), maxOf(s[len(s)-w:])
			if p.name == "enricher" {
				if fill, ok := p.batchFill(ctx); ok {
					d.BatchFill = fill
				}
			}
		}
		r.Drain = &d
		step("backlog: drained in %s (%.0f orders/s)", d.Took.Round(time.Second), d.OrdersPerSec)
		return nil
	})
}

func maxOf(s []uint64) uint64 {
	var m uint64
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
