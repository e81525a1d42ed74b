package bench

import (
	"context"
	"errors"
	"maps"
	"os"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestCeilingMakesExactlyTheForcedCalls runs a short ceiling against the real
// sandbox over HTTP: the sandbox must see exactly one order/get and one
// delivery/send per order, one batchGetOrder per 100 orders (the last one
// what remains), one token call per client (a hop is a service), every one
// answered 0, and nothing else; and every order shipped once.
func TestCeilingMakesExactlyTheForcedCalls(t *testing.T) {
	tests := []struct {
		name             string
		orders, workers  int
		wantBatches, max int
	}{
		{"whole batches", 300, ceilingWorkers, 3, 100},
		{"a partial last batch", 250, ceilingWorkers, 3, 100},
		{"fewer orders than one batch", 40, 4, 1, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := withStack(stack.Options{Sandbox: benchSandbox(tt.orders)}, func(st *stack.Stack) error {
				f, err := ceiling(context.Background(), st, 600, tt.workers)
				if err != nil {
					return err
				}
				if f.OrdersPerSec <= 0 || f.Orders != tt.orders || f.NATSMsgsPerOrder <= 0 {
					t.Errorf("figures %+v: want orders/s, %d orders and NATS messages", f, tt.orders)
				}
				if _, err := os.Stat("/proc/self/io"); err == nil && !(f.SyscallsPerOrder > 0) {
					t.Errorf("syscalls per order %v: want them measured where /proc is", f.SyscallsPerOrder)
				}
				stats := st.Sandbox.Stats()
				want := map[string]int{
					sandbox.EndpointOrderGet:      tt.orders,
					sandbox.EndpointBatchGetOrder: tt.wantBatches,
					sandbox.EndpointDeliverySend:  tt.orders,
					sandbox.EndpointStableToken:   3,
				}
				if !maps.Equal(stats.Calls, want) {
					t.Errorf("sandbox saw %v, want exactly %v", stats.Calls, want)
				}
				for ep, codes := range stats.ErrCodes {
					if len(codes) != 1 || codes[0] != stats.Calls[ep] {
						t.Errorf("%s answered %v, want errcode 0 only", ep, codes)
					}
				}
				if stats.SuccessfulSends != tt.orders || stats.DuplicateSends != 0 || stats.ConcurrentSends != 0 {
					t.Errorf("sends: %d successful, %d duplicate, %d concurrent; want %d, 0, 0",
						stats.SuccessfulSends, stats.DuplicateSends, stats.ConcurrentSends, tt.orders)
				}
				if stats.MaxBatchSize != tt.max {
					t.Errorf("largest batchGetOrder %d, want %d", stats.MaxBatchSize, tt.max)
				}
				for _, ep := range []string{sandbox.EndpointOrderGet, sandbox.EndpointDeliverySend} {
					if got := f.CallsPerOrder[ep]; got != 1 {
						t.Errorf("reported %s per order %v, want 1", ep, got)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCeilingStopsOnAPlatformError: a call the platform refuses ends the
// ceiling with that error at once, instead of waiting out its time limit for
// an order that will never ship.
func TestCeilingStopsOnAPlatformError(t *testing.T) {
	err := withStack(stack.Options{Sandbox: benchSandbox(50)}, func(st *stack.Stack) error {
		st.Sandbox.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, OrderID: st.Sandbox.Scenario()[7].OrderID, Code: 606003})
		_, err := ceiling(context.Background(), st, 600, 4)
		if err == nil {
			t.Fatal("ceiling succeeded although delivery/send refused an order")
		}
		t.Logf("ceiling: %v", err)
		// The phase's stream is gone after, failed or not.
		_, js, cerr := connect(st.NATSURL)
		if cerr != nil {
			return cerr
		}
		if _, serr := js.Stream(context.Background(), ceilingStream); !errors.Is(serr, jetstream.ErrStreamNotFound) {
			t.Errorf("stream %s after the phase: %v, want it deleted", ceilingStream, serr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
