package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// node is one nats-server of the test cluster.
type node struct {
	name string
	srv  *server.Server
	url  string

	mu      sync.Mutex
	stopped bool
}

// stop shuts the server down and waits until it is gone; later calls do
// nothing.
func (n *node) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	n.stopped = true
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// natsCluster is three (or more) embedded servers routed to each other on
// loopback, each with its own JetStream directory.
type natsCluster struct {
	nodes []*node
}

// startCluster starts one node per name and waits until every node sees the
// others and JetStream has a meta leader. The nodes are shut down at the end
// of the test.
func startCluster(t *testing.T, names ...string) *natsCluster {
	t.Helper()
	ports := make([]int, len(names))
	for i := range names {
		p, err := embednats.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	c := &natsCluster{}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.stop()
		}
	})
	for i, name := range names {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
			}
		}
		srv, err := embednats.Start(embednats.Options{
			StoreDir:    t.TempDir(),
			Name:        name,
			ClusterName: "fulfill-test",
			ClusterPort: ports[i],
			Routes:      routes,
			// As deploy/nats/nats.conf: fsync before acknowledging.
			SyncAlways: true,
		})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		c.nodes = append(c.nodes, &node{name: name, srv: srv, url: srv.ClientURL()})
	}
	err := poll(t.Context(), 30*time.Second, 50*time.Millisecond, func() bool {
		leaders := 0
		for _, n := range c.nodes {
			if n.srv.NumRoutes() < len(c.nodes)-1 || !n.srv.JetStreamIsCurrent() {
				return false
			}
			if n.srv.JetStreamIsLeader() {
				leaders++
			}
		}
		return leaders == 1
	})
	if err != nil {
		t.Fatalf("the cluster did not form with a JetStream meta leader: %v", err)
	}
	return c
}

// urls is the NATS_URL of the cluster: every node's client URL.
func (c *natsCluster) urls() string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.url)
	}
	return strings.Join(out, ",")
}

func (c *natsCluster) node(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// poll checks cond every interval until it holds, ctx ends or timeout
// passes. There is no event to wait on for a cluster's or a stream's state,
// so the test asks, as an operator would.
func poll(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// logSink collects the services' logs for failure messages.
type logSink struct{ faulttest.SyncBuffer }

// tail is the last n lines of the logs.
func (l *logSink) tail(n int) string { return faulttest.Tail(l.String(), n) }

// pipeline runs stage binaries through their Run functions until ctx ends.
type pipeline struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
	// exited is closed when the first replica returns, so a test waiting
	// for progress stops waiting for a pipeline that is gone.
	exited   chan struct{}
	exitOnce sync.Once
}

func newPipeline() *pipeline { return &pipeline{exited: make(chan struct{})} }

// start runs one replica of binary with env.
func (p *pipeline) start(ctx context.Context, binary string, env map[string]string, logs io.Writer) {
	run := stack.Services[binary]
	getenv := func(k string) string { return env[k] }
	p.wg.Go(func() {
		err := run(ctx, []string{binary}, getenv, logs, logs)
		p.mu.Lock()
		if err != nil {
			p.errs = append(p.errs, err)
		}
		p.mu.Unlock()
		p.exitOnce.Do(func() { close(p.exited) })
	})
}

// err is what the replicas that returned so far returned.
func (p *pipeline) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

// wait returns once every replica returned, with their errors.
func (p *pipeline) wait() error {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

// serviceEnv is the environment of every replica: the cluster, replicated
// streams, the sandbox as the platform, and retry delays short enough for a
// test.
func serviceEnv(t *testing.T, natsURL, platform string) map[string]string {
	t.Helper()
	env := faulttest.FastEnv(map[string]string{
		"NATS_URL":           natsURL,
		"STREAM_REPLICAS":    "3",
		"ADMIN_ADDR":         "127.0.0.1:0",
		"WECHAT_API_BASE":    platform,
		"WECHAT_APPID":       sandbox.DefaultAppID,
		"WECHAT_APPSECRET":   sandbox.DefaultAppSecret,
		"INGEST_SOURCES":     "channels",
		"INGEST_DELIVERY_ID": sandbox.DefaultDeliveryID,
	})
	// Every variable set here must be one a binary reads.
	for k := range env {
		if _, ok := config.Lookup(k); !ok {
			t.Fatalf("%s is not in config.Vars", k)
		}
	}
	return env
}

// streamInfo asks for the ORDERS stream's state.
func streamInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// leaderOf waits until the ORDERS stream reports a leader other than not
// and returns the stream's state then.
func leaderOf(t *testing.T, js jetstream.JetStream, not string, timeout time.Duration) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	var lastErr error
	err := poll(t.Context(), timeout, 100*time.Millisecond, func() bool {
		info, lastErr = streamInfo(t.Context(), js)
		return lastErr == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != not
	})
	if err != nil {
		t.Fatalf("stream %s has no leader (other than %q) after %s: %v (last error: %v)", events.StreamName, not, timeout, err, lastErr)
	}
	return info
}

// awaitTerminal reads the stream until every scenario order has a terminal
// event, and returns what it read.
func awaitTerminal(t *testing.T, js jetstream.JetStream, want []sandbox.ScenarioOrder, timeout time.Duration, logs *logSink) *tally.Tally {
	t.Helper()
	var last *tally.Tally
	var lastErr error
	done := func(tl *tally.Tally) int {
		n := 0
		for _, o := range want {
			if s := tl.Orders[faulttest.Key(o)]; s != nil && s.Latest != "" {
				n++
			}
		}
		return n
	}
	err := poll(t.Context(), timeout, time.Second, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		tl, err := tally.Read(ctx, js)
		if err != nil {
			lastErr = err
			return false
		}
		last = tl
		return done(tl) == len(want)
	})
	if err != nil {
		n := 0
		if last != nil {
			n = done(last)
		}
		t.Fatalf("%d of %d orders reached a terminal event within %s (last read error: %v)\nlogs:\n%s",
			n, len(want), timeout, lastErr, logs.tail(40))
	}
	return last
}

// TestPipelineSurvivesLosingStreamLeader runs the pipeline on a three-node
// cluster with replicated streams and shuts down the ORDERS stream's leader
// once shipping is under way. JetStream elects another leader; publishes
// and acks in flight are retried or redelivered; and the promises still
// hold: one terminal event per order, one successful delivery/send per
// shipped order, none for failed ones, and no two sends for one order at
// once.
func TestPipelineSurvivesLosingStreamLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster and a failover (15–40 s with the race detector on 2 cores)")
	}
	const orders = 800
	c := startCluster(t, "n1", "n2", "n3")

	sb := sandbox.New(sandbox.Config{Seed: 8, Orders: orders, Faults: sandbox.DefaultFaults()})
	platform := httptest.NewServer(sb)
	t.Cleanup(platform.Close)

	nc, err := nats.Connect(c.urls(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	env := serviceEnv(t, c.urls(), platform.URL)
	logs := &logSink{}
	ctx, cancel := context.WithCancel(t.Context())
	p := newPipeline()
	t.Cleanup(func() { cancel(); _ = p.wait() })

	// ingest first, as a rollout would: it creates the replicated stream.
	// Replicas that all create a new stream at the same moment on a cluster
	// can wait out their whole start-up timeout (see deploy/README.md).
	p.start(ctx, config.Ingest, env, logs)
	err = poll(ctx, 60*time.Second, 100*time.Millisecond, func() bool {
		select {
		case <-p.exited:
			return true
		default:
		}
		info, err := streamInfo(ctx, js)
		return err == nil && info.Cluster != nil && info.Cluster.Leader != ""
	})
	if err != nil || p.err() != nil {
		t.Fatalf("ingest did not create stream %s: %v (ingest: %v)\nlogs:\n%s", events.StreamName, err, p.err(), logs.tail(40))
	}
	for range 2 {
		p.start(ctx, config.Enricher, env, logs)
		p.start(ctx, config.Shipper, env, logs)
	}

	// Mid-run: some orders shipped, most not yet.
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	go func() {
		select {
		case <-p.exited:
			wcancel()
		case <-wctx.Done():
		}
	}()
	err = sb.WaitUntil(wctx, func() bool { return sb.Stats().SuccessfulSends >= orders/8 })
	wcancel()
	if err != nil {
		t.Fatalf("no shipping under way: %d successful sends: %v (services: %v)\nlogs:\n%s",
			sb.Stats().SuccessfulSends, err, p.err(), logs.tail(40))
	}
	before := leaderOf(t, js, "", 10*time.Second)
	if got := before.Config.Replicas; got != 3 {
		t.Fatalf("stream %s has %d replicas, want 3 (STREAM_REPLICAS)", events.StreamName, got)
	}
	if got := len(before.Cluster.Replicas); got != 2 {
		t.Fatalf("stream %s has %d followers, want 2", events.StreamName, got)
	}
	leader := before.Cluster.Leader
	victim := c.node(leader)
	if victim == nil {
		t.Fatalf("stream leader %q is not a node of the cluster", leader)
	}
	stoppedAt := time.Now()
	victim.stop()
	sent := sb.Stats().SuccessfulSends
	t.Logf("shut down %s, the %s leader, after %d of %d orders were sent", leader, events.StreamName, sent, orders)
	if sent >= orders*9/10 {
		t.Fatalf("the leader went down too late to test anything (%d sends)", sent)
	}

	after := leaderOf(t, js, leader, 30*time.Second)
	t.Logf("%s took over as %s leader in %s", after.Cluster.Leader, events.StreamName, time.Since(stoppedAt).Round(time.Millisecond))

	want := sb.Scenario()
	tl := awaitTerminal(t, js, want, 150*time.Second, logs)
	checkExactlyOnce(t, sb, tl, want)

	// SIGTERM's equivalent: every replica drains on the surviving nodes and
	// returns nil.
	cancel()
	if err := p.wait(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
}

// checkExactlyOnce asserts the pipeline's promises for every scenario
// order, from the stream (terminal events) and from the platform's side
// (successful sends, overlapping sends).
func checkExactlyOnce(t *testing.T, sb *sandbox.Sandbox, tl *tally.Tally, want []sandbox.ScenarioOrder) {
	t.Helper()
	var problems []string
	outcomes := map[sandbox.Outcome]int{}
	for _, o := range want {
		s := tl.Orders[faulttest.Key(o)]
		if s == nil {
			problems = append(problems, fmt.Sprintf("%s (%s): no event at all", o.OrderID, o.Fault))
			continue
		}
		if len(s.Terminals) != 1 || s.Shipped+s.Failed != 1 {
			problems = append(problems, fmt.Sprintf("%s (%s): %d terminal events (%d shipped, %d failed), want exactly 1",
				o.OrderID, o.Fault, len(s.Terminals), s.Shipped, s.Failed))
		}
		sends := sb.Sends(o.OrderID)
		switch o.Expect {
		case sandbox.OutcomeShipped:
			if s.Latest != events.StageShipped || sends != 1 {
				problems = append(problems, fmt.Sprintf("%s (%s): ended %q with %d successful sends, want shipped with exactly 1",
					o.OrderID, o.Fault, s.Latest, sends))
			}
		case sandbox.OutcomeFailed:
			if s.Latest != events.StageFailed || sends != 0 {
				problems = append(problems, fmt.Sprintf("%s (%s): ended %q with %d successful sends, want failed with none",
					o.OrderID, o.Fault, s.Latest, sends))
			}
		}
		outcomes[o.Expect]++
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
		}
		t.Errorf("%d of %d orders broke a promise:\n%s", len(problems), len(want), strings.Join(problems, "\n"))
	}
	if tl.Undecodable != 0 || tl.DeadLetters != 0 {
		t.Errorf("the stream holds %d undecodable messages and %d dead letters, want none", tl.Undecodable, tl.DeadLetters)
	}
	st := sb.Stats()
	if st.ConcurrentSends != 0 {
		t.Errorf("%d delivery/send calls overlapped another for the same order", st.ConcurrentSends)
	}
	t.Logf("expected outcomes %v; %d successful sends, %d answered already-shipped (109001); stream messages by stage %v",
		outcomes, st.SuccessfulSends, st.DuplicateSends, tl.Messages)
}
