package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// faultyScenario is 1,000 orders with every fault class the platform has:
// transient, permanent and waiting-on-merchant send codes, cancelled
// waybills, per-item batchGetOrder errors, ids as JSON numbers, a token
// that rotates under the pipeline, and windows that answer 31042.
func faultyScenario() stack.Options {
	return stack.Options{
		Sandbox: sandbox.Config{
			Seed:               7,
			Orders:             1000,
			Faults:             sandbox.DefaultFaults(),
			RotateTokenEvery:   700,
			MaxOrdersPerWindow: 300,
		},
		Env: faulttest.FastEnv(nil),
	}
}

func TestPipelineEndToEnd(t *testing.T) {
	st := faulttest.StartStack(t, faultyScenario())
	logs := &faulttest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	g := st.RunPipeline(ctx, logs, 2)
	t.Cleanup(func() { cancel(); _ = g.Wait() })

	want := st.Sandbox.Scenario()
	_, js := faulttest.Connect(t, st.NATSURL)
	tl := faulttest.WaitTerminal(t, js, want, 3*time.Minute, logs)
	faulttest.CheckOutcomes(t, st, tl, want)

	// SIGTERM-equivalent: every service drains and returns nil.
	cancel()
	if err := g.Wait(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
}

// TestPipelineSurvivesKills runs the enricher and one of two shippers as
// child processes and SIGKILLs both mid-run; the enricher is restarted, the
// killed shipper is not. JetStream must redeliver what they held, and every
// promise must still hold.
func TestPipelineSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills wait for the ack waits of the killed consumers")
	}
	st := faulttest.StartStack(t, faultyScenario())
	logs := &faulttest.SyncBuffer{}
	logDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	g := &stack.Group{}
	st.Go(ctx, g, "ingest", logs, nil)
	st.Go(ctx, g, "shipper", logs, nil)
	t.Cleanup(func() { cancel(); _ = g.Wait() })
	enricher := faulttest.StartChild(t, st, "enricher", logDir, nil)
	shipperB := faulttest.StartChild(t, st, "shipper", logDir, nil)
	// The killed shipper's messages come back to the other one, which
	// reads their orders' records from the stream's leader.
	nc, js := faulttest.Connect(t, st.NATSURL)
	var leaderReads atomic.Int64
	spy, err := nc.Subscribe("$JS.API.STREAM.MSG.GET."+events.StreamName, func(*nats.Msg) { leaderReads.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Unsubscribe()

	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	if err := st.Sandbox.WaitUntil(wctx, func() bool { return st.Sandbox.Stats().SuccessfulSends >= 250 }); err != nil {
		t.Fatalf("pipeline made no progress before the kills: %v\n%s", err, faulttest.Tail(logs.String(), 30))
	}
	enricher.Kill()
	shipperB.Kill()
	sent := st.Sandbox.Stats().SuccessfulSends
	t.Logf("killed enricher and shipper B after %d successful sends", sent)
	if sent >= len(st.Sandbox.Scenario())*9/10 {
		t.Fatalf("kills came too late to test anything (%d sends)", sent)
	}
	faulttest.StartChild(t, st, "enricher", logDir, nil)

	want := st.Sandbox.Scenario()
	tl := faulttest.WaitTerminal(t, js, want, 4*time.Minute, logs)
	faulttest.CheckOutcomes(t, st, tl, want, faulttest.RepeatedCalls())
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if leaderReads.Load() == 0 {
		t.Error("no order record was read from the stream's leader, though the killed shipper's messages were redelivered")
	}
	t.Logf("%d order records read from the stream's leader", leaderReads.Load())
}
