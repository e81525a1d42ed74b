package bench

import (
	"context"
	"math"
	"os"
	"runtime/metrics"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/procfs"
)

// usage is what one process has used so far: the counters read before and
// after the measured phase. A counter that could not be read is NaN (its
// figure is then reported as not measured).
type usage struct {
	cpu time.Duration
	// mallocs and allocBytes are go_memstats_mallocs_total and
	// go_memstats_alloc_bytes_total (heap objects and bytes allocated).
	mallocs, allocBytes float64
	// syscalls is syscr+syscw of /proc/<pid>/io: the read- and write-family
	// system calls (read, pread64, readv, preadv, write, pwrite64, writev,
	// pwritev, sendfile, copy_file_range) on any descriptor, sockets
	// included; not epoll_wait, futex, nanosleep, mmap or the like.
	syscalls float64
	// ctxSwitches is voluntary+nonvoluntary_ctxt_switches of
	// /proc/<pid>/task/<tid>/status summed over the threads (the process's
	// own status counts its main thread only).
	ctxSwitches float64
	// natsMsgs is messages in and out of the NATS server on the
	// connections named after the process, as the server counts them.
	natsMsgs float64
}

// readUsage reads p's counters: CPU, syscalls and context switches from
// /proc, allocations from its /metrics, NATS messages from srv (nil: none).
func readUsage(ctx context.Context, fs procfs.FS, p *proc, srv *server.Server) usage {
	u := procUsage(fs, p.cmd.Process.Pid)
	u.cpu = cpuTime(p.cmd.Process.Pid)
	u.mallocs, u.allocBytes = math.NaN(), math.NaN()
	if m, err := p.metric(ctx, "go_memstats_mallocs_total"); err == nil {
		u.mallocs = m
	}
	if b, err := p.metric(ctx, "go_memstats_alloc_bytes_total"); err == nil {
		u.allocBytes = b
	}
	u.natsMsgs = connMsgs(srv, p.name)
	return u
}

// readSelfUsage reads this process's counters (the NATS server and the
// sandbox run in it); its NATS messages are not counted.
func readSelfUsage(fs procfs.FS) usage {
	u := procUsage(fs, os.Getpid())
	u.cpu = cpuTime(os.Getpid())
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/tiny/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	u.mallocs, u.allocBytes = math.NaN(), math.NaN()
	if s[0].Value.Kind() == metrics.KindUint64 && s[1].Value.Kind() == metrics.KindUint64 {
		// As the Prometheus Go collector counts go_memstats_mallocs_total.
		u.mallocs = float64(s[0].Value.Uint64() + s[1].Value.Uint64())
	}
	if s[2].Value.Kind() == metrics.KindUint64 {
		u.allocBytes = float64(s[2].Value.Uint64())
	}
	u.natsMsgs = math.NaN()
	return u
}

// procUsage reads syscalls and context switches of process pid under fs.
func procUsage(fs procfs.FS, pid int) usage {
	u := usage{syscalls: math.NaN(), ctxSwitches: math.NaN()}
	pp, err := fs.Proc(pid)
	if err != nil {
		return u
	}
	if io, err := pp.IO(); err == nil {
		u.syscalls = float64(io.SyscR + io.SyscW)
	}
	if threads, err := fs.AllThreads(pid); err == nil && len(threads) > 0 {
		var n uint64
		for _, t := range threads {
			if st, err := t.NewStatus(); err == nil {
				n += st.TotalCtxtSwitches()
			}
		}
		u.ctxSwitches = float64(n)
	}
	return u
}

// connMsgs is the messages in and out of srv on the client connections
// named name; NaN without a server or such a connection.
func connMsgs(srv *server.Server, name string) float64 {
	if srv == nil {
		return math.NaN()
	}
	cz, err := srv.Connz(&server.ConnzOptions{Limit: 4096})
	if err != nil {
		return math.NaN()
	}
	n, found := int64(0), false
	for _, c := range cz.Conns {
		if c.Name == name {
			n, found = n+c.InMsgs+c.OutMsgs, true
		}
	}
	if !found {
		return math.NaN()
	}
	return float64(n)
}

// perOrder is what the process used between before and after, per order.
func (after usage) perOrder(before usage, orders int) usage {
	n := float64(max(orders, 1))
	return usage{
		cpu:         (after.cpu - before.cpu) / time.Duration(max(orders, 1)),
		mallocs:     (after.mallocs - before.mallocs) / n,
		allocBytes:  (after.allocBytes - before.allocBytes) / n,
		syscalls:    (after.syscalls - before.syscalls) / n,
		ctxSwitches: (after.ctxSwitches - before.ctxSwitches) / n,
		natsMsgs:    (after.natsMsgs - before.natsMsgs) / n,
	}
}
