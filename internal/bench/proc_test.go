package bench

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// TestProcFigures reads memory, CPU time, system calls and context switches
// from fixed /proc files: the figures the bench reports for each service
// process. System calls are syscr+syscw of the process; context switches
// those of every thread, not only the main one's.
func TestProcFigures(t *testing.T) {
	fs, err := procfs.NewFS("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                   string
		pid                    int
		wantRSS, wantHW        uint64
		wantCPU                time.Duration
		wantSyscalls, wantCtxs float64 // NaN: not readable
	}{
		{"service with two threads", 4242, 51200 << 10, 65536 << 10, 18010 * time.Millisecond, 3000 + 1200, 150 + 7 + 1000 + 43},
		{"command name with spaces and parentheses, no io file, no task directory", 4243, 1700 << 10, 1704 << 10, 100 * time.Millisecond, math.NaN(), math.NaN()},
		{"gone", 9999, 0, 0, 0, math.NaN(), math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur, peak := memoryOf(fs, tt.pid)
			if cur != tt.wantRSS || peak != tt.wantHW {
				t.Errorf("memoryOf = %d, %d; want VmRSS %d, VmHWM %d", cur, peak, tt.wantRSS, tt.wantHW)
			}
			if got := cpuTimeOf(fs, tt.pid); got != tt.wantCPU {
				t.Errorf("cpuTimeOf = %v, want %v", got, tt.wantCPU)
			}
			u := procUsage(fs, tt.pid)
			if !sameFloat(u.syscalls, tt.wantSyscalls) || !sameFloat(u.ctxSwitches, tt.wantCtxs) {
				t.Errorf("procUsage = %v syscalls, %v context switches; want %v, %v", u.syscalls, u.ctxSwitches, tt.wantSyscalls, tt.wantCtxs)
			}
		})
	}
}

func sameFloat(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// TestProcFiguresOfALiveProcess reads this test's own process from the real
// /proc, as the bench reads its children.
func TestProcFiguresOfALiveProcess(t *testing.T) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	cur, peak := memoryOf(fs, os.Getpid())
	if cur == 0 || peak < cur {
		t.Errorf("memoryOf(self) = %d, %d; want a resident set and a peak at least as large", cur, peak)
	}
	// A Go test binary has used some CPU by the time it runs a test; the kernel
	// counts it in ticks.
	if d := cpuTimeOf(fs, os.Getpid()); d < 0 || d%(10*time.Millisecond) != 0 {
		t.Errorf("cpuTimeOf(self) = %v, want whole ticks of 10ms", d)
	}
}
