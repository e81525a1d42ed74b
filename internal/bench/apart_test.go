package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"maps"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestCeilingHopsProcess is the child process of the tests below: this test
// binary run with -test.run naming it and CeilingHopsService after "--",
// as ceilingApart runs Options.Exe. Run any other way it has nothing to do.
func TestCeilingHopsProcess(t *testing.T) {
	if flag.Arg(0) != CeilingHopsService {
		t.Skip("the ceiling's hops process of TestCeilingApart; nothing to do on its own")
	}
	if err := ServeCeilingHops(context.Background(), os.Getenv, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// childOptions run this test binary as the ceiling's hops process.
func childOptions(orders int) Options {
	return Options{Orders: orders, Payload: 600, GOMAXPROCS: 1, Exe: os.Args[0], Args: []string{"-test.run=^TestCeilingHopsProcess$", "--"}}
}

// TestCeilingApartMakesExactlyTheForcedCalls runs a short ceiling with its
// hops in a child process against the real sandbox over HTTP, without and
// with the contract's bookkeeping: the sandbox must see exactly the calls
// of the in-process ceiling (one order/get and one delivery/send per order,
// one batchGetOrder per 100, one token call per client), every order
// shipped once, and the figures of both processes must be read; the child
// runs with the GOMAXPROCS asked for (ceilingApart refuses its figures
// otherwise). With the bookkeeping, each order takes a lease in the bucket
// and has its record read: two requests and two replies more per order.
func TestCeilingApartMakesExactlyTheForcedCalls(t *testing.T) {
	const orders = 250
	var plainMsgs float64
	for _, contract := range []bool{false, true} {
		err := withStack(stack.Options{Sandbox: benchSandbox(orders)}, func(st *stack.Stack) error {
			f, err := ceilingApart(t.Context(), childOptions(orders), st, contract)
			if err != nil {
				return err
			}
			if f.Orders != orders || f.OrdersPerSec <= 0 || f.NATSMsgsPerOrder <= 0 {
				t.Errorf("contract %v: figures %+v: want %d orders, orders/s and NATS messages", contract, f, orders)
			}
			if f.HopsCPUPerOrder <= 0 || f.CPUPerOrder <= f.HopsCPUPerOrder {
				t.Errorf("contract %v: CPU per order %s, the hops' %s: want both, the hops' a part of the whole", contract, f.CPUPerOrder, f.HopsCPUPerOrder)
			}
			if _, err := os.Stat("/proc/self/io"); err == nil && (math.IsNaN(f.SyscallsPerOrder) || f.SyscallsPerOrder <= 0 || math.IsNaN(f.CtxSwitchesPerOrder)) {
				t.Errorf("contract %v: syscalls %v, context switches %v per order: want both measured where /proc is", contract, f.SyscallsPerOrder, f.CtxSwitchesPerOrder)
			}
			stats := st.Sandbox.Stats()
			want := map[string]int{
				sandbox.EndpointOrderGet:      orders,
				sandbox.EndpointBatchGetOrder: 3,
				sandbox.EndpointDeliverySend:  orders,
				sandbox.EndpointStableToken:   3,
			}
			if !maps.Equal(stats.Calls, want) {
				t.Errorf("contract %v: sandbox saw %v, want exactly %v", contract, stats.Calls, want)
			}
			if stats.SuccessfulSends != orders || stats.DuplicateSends != 0 || stats.ConcurrentSends != 0 {
				t.Errorf("contract %v: sends: %d successful, %d duplicate, %d concurrent; want %d, 0, 0",
					contract, stats.SuccessfulSends, stats.DuplicateSends, stats.ConcurrentSends, orders)
			}
			leases := leaseWrites(t, st)
			if !contract {
				plainMsgs = f.NATSMsgsPerOrder
				if leases != 0 {
					t.Errorf("without the bookkeeping %d leases were taken", leases)
				}
				return nil
			}
			if leases != orders {
				t.Errorf("with the bookkeeping %d leases were taken, want one per order (%d)", leases, orders)
			}
			if extra := f.NATSMsgsPerOrder - plainMsgs; extra < 3.9 || extra > 4.5 {
				t.Errorf("with the bookkeeping %.2f NATS messages per order, without %.2f: want 4 more (lease and record, a request and a reply each)",
					f.NATSMsgsPerOrder, plainMsgs)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// leaseWrites is how many writes the contract ceiling's lease bucket on
// st's server has stored (0 if it has none): expired leases leave the
// bucket, their sequence numbers stay.
func leaseWrites(t *testing.T, st *stack.Stack) int {
	t.Helper()
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), "KV_"+contractBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return int(s.CachedInfo().State.LastSeq)
}

// TestCeilingApartReportsTheChildsError: a child that cannot do its work
// (here: an orders file that is not there, as when the bench's temporary
// directory went away) ends the phase with the child's own error, not a
// figure of zero.
func TestCeilingApartReportsTheChildsError(t *testing.T) {
	var out bytes.Buffer
	err := ServeCeilingHops(t.Context(), func(k string) string {
		if k == hopsOrdersVar {
			return "/nonexistent/orders.json"
		}
		return ""
	}, &out)
	if err == nil || !strings.Contains(err.Error(), hopsOrdersVar) {
		t.Errorf("ServeCeilingHops with no orders file = %v, want an error naming %s", err, hopsOrdersVar)
	}
	if out.Len() != 0 {
		t.Errorf("it wrote figures %q", out.String())
	}

	o := childOptions(10)
	o.Args = []string{"-test.run=^TestCeilingHopsProcess$", "--", "--not-a-child"}
	err = withStack(stack.Options{Sandbox: benchSandbox(10)}, func(st *stack.Stack) error {
		_, err := ceilingApart(t.Context(), o, st, false)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "ceiling hops process") {
		t.Errorf("ceilingApart with a child that answers nothing = %v, want an error saying so", err)
	}
}

// TestChildEnv: child processes get GOMAXPROCS=1 unless told otherwise, as
// deploy/ runs the stages, and Go's default when asked for.
func TestChildEnv(t *testing.T) {
	tests := []struct {
		name string
		in   int
		want map[string]string
	}{
		{"default", 0, map[string]string{"GOMAXPROCS": "1"}},
		{"set", 4, map[string]string{"GOMAXPROCS": "4"}},
		{"Go's default", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{GOMAXPROCS: tt.in}
			o.defaults()
			if got := o.childEnv(); !maps.Equal(got, tt.want) {
				t.Errorf("childEnv() = %v, want %v", got, tt.want)
			}
		})
	}
}
