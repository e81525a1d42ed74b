package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/clients/sandbox"
	"github.com/fulfill/pipeline/pkg/events"
)

// syncBuffer is a log sink shared by services running in goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail is the end of the logs, for failure messages.
func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// startStack starts NATS and the sandbox and closes them at the end.
func startStack(t *testing.T, o stack.Options) *stack.Stack {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	st, err := stack.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitTerminal watches the stream until every scenario order has a
// terminal event, or fails the test at the deadline.
func waitTerminal(t *testing.T, js jetstream.JetStream, want []sandbox.ScenarioOrder, deadline time.Duration, logs fmt.Stringer) *tally.Tally {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	ids := make([]string, len(want))
	for i, o := range want {
		ids[i] = o.OrderID
	}
	tl, err := tally.Watch(ctx, js, 250*time.Millisecond, func(tl *tally.Tally) bool { return tl.AllTerminal(ids) })
	if err != nil {
		n := 0
		if tl != nil {
			n = tl.Terminal(events.StageShipped) + tl.Terminal(events.StageFailed)
		}
		t.Fatalf("only %d of %d orders reached a terminal state within %s: %v\nlogs:\n%s", n, len(want), deadline, err, tail(logs.String(), 40))
	}
	return tl
}

// checkOutcomes asserts the pipeline's promises for every scenario order.
func checkOutcomes(t *testing.T, st *stack.Stack, tl *tally.Tally, want []sandbox.ScenarioOrder) {
	t.Helper()
	sendCalls := map[string]int{}
	for _, c := range st.Sandbox.Calls() {
		if c.Endpoint == sandbox.EndpointDeliverySend {
			for _, id := range c.OrderIDs {
				sendCalls[id]++
			}
		}
		if c.Endpoint == sandbox.EndpointBatchGetOrder && len(c.OrderIDs) > 100 {
			t.Errorf("batchGetOrder call with %d orders", len(c.OrderIDs))
		}
	}
	byFault := map[string]int{}
	var problems []string
	for _, o := range want {
		byFault[o.Fault]++
		s := tl.Orders[o.OrderID]
		if s == nil {
			problems = append(problems, fmt.Sprintf("%s (%s): no events at all", o.OrderID, o.Fault))
			continue
		}
		if len(s.Terminals) != 1 {
			problems = append(problems, fmt.Sprintf("%s (%s): %d terminal events, want 1", o.OrderID, o.Fault, len(s.Terminals)))
		}
		sends := st.Sandbox.Sends(o.OrderID)
		switch o.Expect {
		case sandbox.OutcomeShipped:
			if s.Latest != events.StageShipped || sends != 1 {
				problems = append(problems, fmt.Sprintf("%s (%s): latest %q, %d successful sends; want shipped once", o.OrderID, o.Fault, s.Latest, sends))
			}
			if o.Fault == "transient" && sendCalls[o.OrderID] < 2 {
				problems = append(problems, fmt.Sprintf("%s (transient): %d delivery/send calls, want retries", o.OrderID, sendCalls[o.OrderID]))
			}
		case sandbox.OutcomeFailed:
			if s.Latest != events.StageFailed || sends != 0 {
				problems = append(problems, fmt.Sprintf("%s (%s): latest %q, %d successful sends; want failed", o.OrderID, o.Fault, s.Latest, sends))
			}
			switch o.Fault {
			case "permanent":
				if sendCalls[o.OrderID] != 1 {
					problems = append(problems, fmt.Sprintf("%s (permanent): %d delivery/send calls, want exactly 1", o.OrderID, sendCalls[o.OrderID]))
				}
			case "cancelled", "item_error":
				if sendCalls[o.OrderID] != 0 {
					problems = append(problems, fmt.Sprintf("%s (%s): %d delivery/send calls, want none", o.OrderID, o.Fault, sendCalls[o.OrderID]))
				}
			}
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
		}
		t.Errorf("%d orders broke a promise:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	stats := st.Sandbox.Stats()
	if stats.ConcurrentSends != 0 {
		t.Errorf("%d delivery/send calls overlapped another for the same order", stats.ConcurrentSends)
	}
	if stats.MaxBatchSize > 100 || stats.BatchOver100 != 0 {
		t.Errorf("batchGetOrder: max batch %d, %d over 100", stats.MaxBatchSize, stats.BatchOver100)
	}
	if stats.ForceRefreshTooSoon != 0 {
		t.Errorf("%d force_refresh calls within 30 s of the previous", stats.ForceRefreshTooSoon)
	}
	t.Logf("orders by fault class: %v; sandbox calls: %v; errcodes: %v", byFault, stats.Calls, stats.ErrCodes)
}

// child is a service running as a separate process (this test binary
// re-executed), so it can be killed for real.
type child struct {
	cmd  *exec.Cmd
	done chan error
}

func startChild(t *testing.T, st *stack.Stack, name string, logDir string, extra map[string]string) *child {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	env := append(os.Environ(), childEnv+"="+name)
	getenv := st.Getenv(extra)
	for _, k := range []string{"NATS_URL", "ADMIN_ADDR", "WECHAT_API_BASE", "WECHAT_APPID", "WECHAT_APPSECRET",
		"INGEST_SOURCES", "INGEST_DELIVERY_ID", "INGEST_POLL_INTERVAL", "ENRICH_MAX_WAIT", "SHIP_CONCURRENCY",
		"SHIP_BACKOFF_INITIAL", "SHIP_BACKOFF_MAX", "SHIP_WAIT_DELAY", "SHIP_MAX_ELAPSED"} {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	cmd.Env = env
	f, err := os.Create(filepath.Join(logDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() { c.kill() })
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.done <- nil // later kills return at once
}

// term sends SIGTERM and returns the exit error.
func (c *child) term() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	err := <-c.done
	c.done <- nil
	return err
}
