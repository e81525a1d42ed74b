package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// fastEnv is faulttest.FastEnv: the services' environment for a test run.
func fastEnv(over map[string]string) map[string]string { return faulttest.FastEnv(over) }

// scenario is a sandbox of n orders with the default fault mix (transient,
// permanent, waiting and cancelled orders, item errors, numeric ids).
func scenario(seed int64, n int) sandbox.Config {
	return sandbox.Config{Seed: seed, Orders: n, Faults: sandbox.DefaultFaults(), MaxOrdersPerWindow: 300}
}

// freeAddr is a free loopback address for a listener started later.
func freeAddr(t testing.TB) string {
	t.Helper()
	p, err := embednats.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(p)
}

// runInProcess runs service name in process with logs and returns a func
// that stops it (SIGTERM-equivalent) and returns its error.
func runInProcess(t testing.TB, st *stack.Stack, name string, logs io.Writer, extra map[string]string) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &stack.Group{}
	st.Go(ctx, g, name, logs, extra)
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return g.Wait()
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// httpGet returns the body of a GET, failing the test on any error.
func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// metric sums the samples of a Prometheus series in text exposition
// format whose labels include every one of labels ("k=\"v\"").
func metric(text, name string, labels ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// histogramQuantile estimates quantile q of a Prometheus histogram from its
// cumulative buckets: the upper bound of the first bucket holding q of the
// observations.
func histogramQuantile(text, name string, q float64, labels ...string) float64 {
	type bucket struct{ le, n float64 }
	var bs []bucket
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"_bucket{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		i := strings.Index(line, `le="`)
		if !ok || i < 0 {
			continue
		}
		leStr := line[i+4:]
		leStr = leStr[:strings.Index(leStr, `"`)]
		le := math.Inf(1)
		if leStr != "+Inf" {
			le, _ = strconv.ParseFloat(leStr, 64)
		}
		f := strings.Fields(line[strings.LastIndex(line, "}")+1:])
		n, _ := strconv.ParseFloat(f[0], 64)
		bs = append(bs, bucket{le, n})
	}
	if len(bs) == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].n
	for _, b := range bs {
		if b.n >= q*total {
			return b.le
		}
	}
	return math.Inf(1)
}

// consumerInfo returns the info of a durable consumer of ORDERS.
func consumerInfo(t testing.TB, js jetstream.JetStream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, events.StreamName, name)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	return info
}

// redeliveries is how many times a durable consumer delivered a message
// again (after a nak, an ack timeout or a crash), from JetStream's own
// counters: deliveries made minus distinct messages delivered.
func redeliveries(t testing.TB, js jetstream.JetStream, name string, distinct int) int {
	t.Helper()
	info := consumerInfo(t, js, name)
	return int(info.Delivered.Consumer) - distinct
}

// waitSends blocks until the sandbox counted at least n successful sends.
func waitSends(t testing.TB, sb *sandbox.Sandbox, n int, deadline time.Duration, logs fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := sb.WaitUntil(ctx, func() bool { return sb.Stats().SuccessfulSends >= n }); err != nil {
		tailed := ""
		if logs != nil {
			tailed = faulttest.Tail(logs.String(), 30)
		}
		t.Fatalf("waiting for %d successful sends (have %d): %v\n%s", n, sb.Stats().SuccessfulSends, err, tailed)
	}
}

// noPanics fails the test if logs show a panic.
func noPanics(t testing.TB, what, logs string) {
	t.Helper()
	for _, needle := range []string{"panic:", "http: panic serving", "goroutine "} {
		if i := strings.Index(logs, needle); i >= 0 {
			t.Errorf("%s logged %q:\n%s", what, needle, logs[i:min(len(logs), i+2000)])
			return
		}
	}
}

// multiLogs is several log sources read as one, for failure messages.
type multiLogs []fmt.Stringer

func (m multiLogs) String() string {
	var b strings.Builder
	for _, s := range m {
		b.WriteString(s.String())
	}
	return b.String()
}

// childLogs reads a set of children's logs.
type childLogs struct{ children *[]*faulttest.Child }

func (c childLogs) String() string {
	var b strings.Builder
	for _, ch := range *c.children {
		b.WriteString(ch.Logs())
	}
	return b.String()
}

// pipeline is the services of a run, started in process.
type pipeline struct {
	stops  []func() error
	admins map[string][]string // service → admin addresses
}

// startPipeline runs ingest, the enricher and shippers shipper replicas (0:
// none) in
// process, one after the other, each once ready: services starting at the
// same moment trip a data race inside nats-server 2.15.2 (a stream update,
// which every service makes at start, against another's consumer create;
// see the suite's report), which the race detector reports in this process.
func startPipeline(t testing.TB, st *stack.Stack, logs io.Writer, shippers int, extra map[string]string) *pipeline {
	t.Helper()
	names := []string{"ingest", "enricher"}
	for range shippers {
		names = append(names, "shipper")
	}
	return startServices(t, st, logs, extra, names...)
}

// startServices runs the named services in process, one after the other,
// each once ready (see startPipeline).
func startServices(t testing.TB, st *stack.Stack, logs io.Writer, extra map[string]string, names ...string) *pipeline {
	t.Helper()
	p := &pipeline{admins: map[string][]string{}}
	for _, name := range names {
		env := maps.Clone(extra)
		if env == nil {
			env = map[string]string{}
		}
		addr := freeAddr(t)
		env["ADMIN_ADDR"] = addr
		stop := runInProcess(t, st, name, logs, env)
		faulttest.WaitReady(t, addr, nil)
		p.stops = append(p.stops, stop)
		p.admins[name] = append(p.admins[name], addr)
	}
	return p
}

// stop stops every service (SIGTERM-equivalent) and returns their errors.
func (p *pipeline) stop() error {
	var errs []string
	for i := len(p.stops) - 1; i >= 0; i-- {
		if err := p.stops[i](); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// startChildReady starts service name as a child process on a fresh
// admin address and waits until it is ready.
func startChildReady(t testing.TB, st *stack.Stack, name, logDir string, extra map[string]string) (*faulttest.Child, string) {
	t.Helper()
	env := maps.Clone(extra)
	if env == nil {
		env = map[string]string{}
	}
	addr := freeAddr(t)
	env["ADMIN_ADDR"] = addr
	c := faulttest.StartChild(t, st, name, logDir, env)
	faulttest.WaitReady(t, addr, c.Done())
	return c, addr
}

func slicesSort(s []string) { slices.Sort(s) }

// outcomes counts how the scenario's orders ended in the stream: lost (no
// terminal event), shipped, failed; a duplicate is an order with two
// shipped events or two successful sends; overlaps are the sandbox's
// concurrent sends.
func outcomes(st *stack.Stack, tl *tally.Tally, want []sandbox.ScenarioOrder) faulttest.Result {
	res := faulttest.Result{Orders: len(want), Overlaps: st.Sandbox.Stats().ConcurrentSends}
	for _, o := range want {
		s := tl.Orders[st.Key(o)]
		switch {
		case s == nil || s.Latest == "":
			res.Lost++
		case s.Latest == events.StageShipped:
			res.Shipped++
		default:
			res.Failed++
		}
		if s != nil && s.Shipped > 1 || st.Sandbox.Sends(o.OrderID) > 1 {
			res.Duplicates++
		}
	}
	return res
}
