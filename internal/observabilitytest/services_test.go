package observabilitytest

import (
	"context"
	"io"
	"maps"
	"strconv"
	"sync"
	"testing"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
)

// startInOrder runs ingest, enricher and shipper in process with env on top
// of the stack's, one after the other, each once ready: services creating
// the stream and their consumers at the same moment trip a data race
// inside nats-server 2.15.2 (see internal/reliability). It returns their
// admin addresses by name and a func that stops them, in that order (it
// runs again, doing nothing, when the test ends).
func startInOrder(t *testing.T, st *stack.Stack, logs io.Writer, env map[string]string) (map[string]string, func()) {
	t.Helper()
	admins := map[string]string{}
	var stops []func()
	for _, name := range []string{"ingest", "enricher", "shipper"} {
		port, err := embednats.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		ctx, cancel := context.WithCancel(context.Background())
		g := &stack.Group{}
		extra := map[string]string{"ADMIN_ADDR": addr}
		maps.Copy(extra, env)
		st.Go(ctx, g, name, logs, extra)
		stop := sync.OnceFunc(func() {
			cancel()
			if err := g.Wait(); err != nil {
				t.Errorf("%s did not stop cleanly: %v", name, err)
			}
		})
		stops = append(stops, stop)
		t.Cleanup(stop)
		faulttest.WaitReady(t, addr, nil)
		admins[name] = addr
	}
	return admins, func() {
		for _, stop := range stops {
			stop()
		}
	}
}
