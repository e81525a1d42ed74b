// Package bench is fulfillctl bench: it measures the pipeline against the
// ceiling the platform calls allow (the same JetStream hops with only the
// forced calls) and against raw JetStream, on one embedded server with the
// sandbox, and writes the figures to docs/PERFORMANCE.md.
package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// Options size the bench.
type Options struct {
	Orders   int // pipeline and raw-limit orders (default 20,000)
	Backlog  int // pre-loaded received events drained at the end (default 200,000)
	Payload  int // raw-limit message size in bytes (default 600, the pipeline's typical event)
	Latency  time.Duration
	Sweep    []int // SHIP_CONCURRENCY values of the sweep
	Replicas []int // shipper replica counts of the sweep
	// Exe and Args run one service as a child process: Args followed by
	// the service name (fulfillctl's hidden "service" command).
	Exe  string
	Args []string
	// GOMAXPROCS is that of every child process (the services, the
	// ceiling's hops apart): 1 unless set, as deploy/ runs the stages (it
	// sets GOMAXPROCS from their CPU request); negative leaves Go's default,
	// the machine's cores.
	GOMAXPROCS int
	// Logs receives the services' logs; Progress a line per phase.
	Logs     io.Writer
	Progress io.Writer
}

func (o *Options) defaults() {
	if o.Orders <= 0 {
		o.Orders = 20000
	}
	if o.Backlog < 0 {
		o.Backlog = 0
	} else if o.Backlog == 0 {
		o.Backlog = 200000
	}
	if o.GOMAXPROCS == 0 {
		o.GOMAXPROCS = 1
	}
	if o.Payload <= 0 {
		o.Payload = 600
	}
	if o.Latency <= 0 {
		o.Latency = 50 * time.Millisecond
	}
	if len(o.Sweep) == 0 {
		o.Sweep = []int{8, 32, 128, 512}
	}
	if len(o.Replicas) == 0 {
		o.Replicas = []int{1, 3}
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Run runs every phase and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	r := &Report{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Started: time.Now(), Opts: o}
	step := func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "%s  "+format+"\n", append([]any{time.Now().Format(time.TimeOnly)}, args...)...)
	}

	step("raw limit: %d orders through three hops of plain jetstream", o.Orders)
	if err := withStack(stack.Options{}, func(st *stack.Stack) error {
		f, err := measureHops(ctx, st, rawChain(o.Orders, o.Payload))
		r.Raw = f
		return err
	}); err != nil {
		return nil, fmt.Errorf("raw limit: %w", err)
	}
	step("raw limit: %.0f orders/s", r.Raw.OrdersPerSec)

	step("ceiling: %d orders through the same hops with order/get, batchGetOrder per %d and delivery/send against the sandbox, %d workers a hop",
		o.Orders, ceilingBatch, ceilingWorkers)
	f, err := ceilingPhase(ctx, o.Orders, o.Payload)
	if err != nil {
		return nil, fmt.Errorf("platform-inclusive ceiling: %w", err)
	}
	r.Ceiling = f
	step("ceiling: %.0f orders/s", r.Ceiling.OrdersPerSec)

	step("ceiling, hops apart: the same with the hops in a process of their own, the NATS server and sandbox in this one")
	if r.CeilingApart, err = ceilingApartPhase(ctx, o, false); err != nil {
		return nil, fmt.Errorf("platform-inclusive ceiling, hops apart: %w", err)
	}
	step("ceiling, hops apart: %.0f orders/s", r.CeilingApart.OrdersPerSec)

	step("contract ceiling: the same, hops apart, with each order's lease, record read and guarded shipped event as the shipper makes them")
	if r.CeilingContract, err = ceilingApartPhase(ctx, o, true); err != nil {
		return nil, fmt.Errorf("contract ceiling: %w", err)
	}
	step("contract ceiling: %.0f orders/s", r.CeilingContract.OrdersPerSec)

	step("pipeline: %d orders through ingest, enricher and shipper processes", o.Orders)
	if err := pipelinePhase(ctx, o, r, step); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	step("pipeline: %.0f orders/s (%.0f%% of the ceiling, %.0f%% of raw), p99 %s", r.Pipeline.OrdersPerSec, 100*r.Ratio(), 100*r.RawRatio(), r.Latency.P99)

	for _, reps := range o.Replicas {
		for _, c := range o.Sweep {
			step("sweep: SHIP_CONCURRENCY %d × %d shipper(s) at %s platform latency", c, reps, o.Latency)
			p, err := sweepPoint(ctx, o, c, reps)
			if err != nil {
				return nil, fmt.Errorf("sweep %d×%d: %w", c, reps, err)
			}
			r.Sweep = append(r.Sweep, p)
			step("sweep: %.0f orders/s (bound %.0f)", p.OrdersPerSec, p.Bound)
		}
	}

	if o.Backlog > 0 {
		step("backlog: draining %d pre-loaded received events", o.Backlog)
		if err := drainPhase(ctx, o, r, step); err != nil {
			return nil, fmt.Errorf("backlog drain: %w", err)
		}
	}
	r.Took = time.Since(r.Started)
	return r, nil
}

// withStack runs fn with a fresh embedded server and sandbox.
func withStack(o stack.Options, fn func(*stack.Stack) error) error {
	dir, err := os.MkdirTemp("", "fulfill-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.DataDir = dir
	// OTEL_EXPORTER_OTLP_ENDPOINT and the like in the bench's environment
	// turn the services' tracing on: the bench then measures its cost.
	env := tracing.Environ(os.Getenv)
	maps.Copy(env, o.Env)
	o.Env = env
	st, err := stack.Start(o)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// childEnv is what every child process gets on top of its own
// environment: GOMAXPROCS, unless Go's default is asked for.
func (o Options) childEnv() map[string]string {
	if o.GOMAXPROCS <= 0 {
		return nil
	}
	return map[string]string{"GOMAXPROCS": strconv.Itoa(o.GOMAXPROCS)}
}

// serviceEnv is the environment a child service gets from the stack.
func serviceEnv(st *stack.Stack, name string, extra map[string]string) map[string]string {
	get := st.Getenv(extra)
	env := map[string]string{}
	for _, v := range config.VarsFor(name) {
		if val := get(v.Name); val != "" && v.Name != "ADMIN_ADDR" {
			env[v.Name] = val
		}
	}
	maps.Copy(env, tracing.Environ(get))
	return env
}

// benchSandbox is the sandbox of throughput phases: no faults, no latency,
// and a window limit that lets order/list/get page 100 ids a call.
func benchSandbox(orders int) sandbox.Config {
	return sandbox.Config{Seed: 42, Orders: orders, Faults: sandbox.NoFaults(), MaxOrdersPerWindow: 50000}
}

// counter counts distinct subjects as JetStream stores them (a core
// subscription sees every stored publish) and closes done at want. Its
// subscriptions end with their connection.
type counter struct {
	mu     sync.Mutex
	seen   map[string]bool
	want   int
	done   chan struct{}
	first  time.Time
	last   time.Time
	atWant func() // see whenDone
}

// countTerminal counts orders with a terminal event (shipped or failed).
func countTerminal(nc *nats.Conn, want int) (*counter, error) {
	return countSubjects(nc, want, events.FilterSubject(events.StageShipped), events.FilterSubject(events.StageFailed))
}

// countSubjects counts distinct subjects matching any of filters.
func countSubjects(nc *nats.Conn, want int, filters ...string) (*counter, error) {
	c := &counter{seen: map[string]bool{}, want: want, done: make(chan struct{})}
	for _, filter := range filters {
		if _, err := nc.Subscribe(filter, c.add); err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", filter, err)
		}
	}
	return c, nil
}

// whenDone sets atWant: f runs once when want subjects are counted, before
// done is closed, under c's lock.
func (c *counter) whenDone(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.atWant = f
}

// add counts m's subject if it is new.
func (c *counter) add(m *nats.Msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[m.Subject] {
		return
	}
	now := time.Now()
	if len(c.seen) == 0 {
		c.first = now
	}
	c.seen[m.Subject], c.last = true, now
	if len(c.seen) == c.want {
		if c.atWant != nil {
			c.atWant()
		}
		close(c.done)
	}
}

func (c *counter) wait(ctx context.Context, limit time.Duration) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(limit):
		c.mu.Lock()
		defer c.mu.Unlock()
		return fmt.Errorf("only %d of %d orders finished within %s", len(c.seen), c.want, limit)
	}
}

// connect dials the bench's NATS server as every program of this module
// does (service.Connect).
func connect(url string) (*nats.Conn, jetstream.JetStream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return service.Connect(ctx, url, "", "fulfillctl bench", zerolog.Nop())
}
