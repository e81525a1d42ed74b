package bench

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/procfs"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestUsagePerOrder divides what was used between two readings by orders; a
// counter unread at either end stays unmeasured (NaN), never a number.
func TestUsagePerOrder(t *testing.T) {
	before := usage{cpu: time.Second, mallocs: 1000, allocBytes: 1 << 20, syscalls: 50, ctxSwitches: math.NaN(), natsMsgs: 10}
	after := usage{cpu: 3 * time.Second, mallocs: 201000, allocBytes: 3 << 20, syscalls: 1050, ctxSwitches: 99, natsMsgs: math.NaN()}
	got := after.perOrder(before, 1000)
	want := usage{cpu: 2 * time.Millisecond, mallocs: 200, allocBytes: 2 << 20 / 1000.0, syscalls: 1, ctxSwitches: math.NaN(), natsMsgs: math.NaN()}
	if got.cpu != want.cpu || got.mallocs != want.mallocs || got.allocBytes != want.allocBytes || got.syscalls != want.syscalls ||
		!math.IsNaN(got.ctxSwitches) || !math.IsNaN(got.natsMsgs) {
		t.Errorf("perOrder = %+v, want %+v", got, want)
	}
}

// TestSelfUsageCountsThisProcess reads this test's own counters around known
// work: allocations and write system calls are counted, NATS messages are
// not measured for the bench process.
func TestSelfUsageCountsThisProcess(t *testing.T) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	f, err := os.Create(t.TempDir() + "/w")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := readSelfUsage(fs)
	keep := make([]*[64]byte, 0, 10000)
	for range 10000 {
		keep = append(keep, new([64]byte))
	}
	for range 100 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	after := readSelfUsage(fs)
	if d := after.mallocs - before.mallocs; d < 10000 {
		t.Errorf("%v allocations counted, want at least the 10000 made", d)
	}
	if d := after.allocBytes - before.allocBytes; d < 10000*64 {
		t.Errorf("%v bytes allocated counted, want at least 640000", d)
	}
	if d := after.syscalls - before.syscalls; math.IsNaN(d) || d < 100 {
		t.Errorf("%v read/write system calls counted, want at least the 100 writes", d)
	}
	if math.IsNaN(after.ctxSwitches) || after.cpu <= 0 || !math.IsNaN(after.natsMsgs) {
		t.Errorf("usage %+v: want context switches, CPU, and NATS messages unmeasured", after)
	}
	_ = keep
}

// TestConnMsgs counts the messages of the connections named after a service,
// as the NATS server counts them, and nothing for a name with none.
func TestConnMsgs(t *testing.T) {
	err := withStack(stack.Options{Sandbox: sandbox.Config{}}, func(st *stack.Stack) error {
		var conns []*nats.Conn
		for range 2 { // a service may hold more than one connection
			nc, err := nats.Connect(st.NATSURL, nats.Name("shipper"))
			if err != nil {
				return err
			}
			defer nc.Close()
			conns = append(conns, nc)
		}
		before := connMsgs(st.Server, "shipper")
		for _, nc := range conns {
			for range 5 {
				if err := nc.Publish("x.y", nil); err != nil {
					return err
				}
			}
			if err := nc.Flush(); err != nil {
				return err
			}
		}
		// The server adds a read's messages to the connection's counters after
		// it has answered the flush's PING, so the count may trail the flush.
		deadline := time.Now().Add(10 * time.Second)
		for d := connMsgs(st.Server, "shipper") - before; d != 10; d = connMsgs(st.Server, "shipper") - before {
			if d > 10 || time.Now().After(deadline) {
				t.Errorf("%v messages counted for shipper, want the 10 published", d)
				break
			}
			<-time.After(10 * time.Millisecond)
		}
		if v := connMsgs(st.Server, "ingest"); !math.IsNaN(v) {
			t.Errorf("ingest, without a connection: %v, want NaN", v)
		}
		if v := connMsgs(nil, "shipper"); !math.IsNaN(v) {
			t.Errorf("without a server: %v, want NaN", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
