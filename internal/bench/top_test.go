package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// A `go tool pprof -top` output of a CPU profile and one of an allocations
// profile, as the bench reads them.
const (
	cpuTopOutput = `File: fulfillctl
Type: cpu
Time: 2026-11-30 09:02:01 UTC
Duration: 3s, Total samples = 1.23s (41.00%)
Showing nodes accounting for 0.45s, 36.59% of 1.23s total
Dropped 120 nodes (cum <= 0.01s)
      flat  flat%   sum%        cum   cum%
     230ms 18.70% 18.70%      230ms 18.70%  internal/runtime/syscall/linux.Syscall6
      70ms  5.69% 24.39%       70ms  5.69%  runtime.futex
      40ms  3.25% 27.64%       40ms  3.25%  runtime.nextFreeFast (inline)
      20ms  1.63% 29.27%      150ms 12.20%  github.com/nats-io/nats%2ego.(*Conn).processMsg
         0     0% 29.27%      710ms 57.72%  github.com/fulfill/pipeline/internal/ingest.(*ChannelsPoller).order
`
	allocTopOutput = `File: fulfillctl
Type: alloc_space
Showing nodes accounting for 10.50MB, 60.00% of 17.50MB total
      flat  flat%   sum%        cum   cum%
    2.50MB 14.29% 14.29%     2.50MB 14.29%  io.ReadAll
    1.50MB  8.57% 22.86%     4.00MB 22.86%  encoding/json.Marshal
`
)

func TestParseTop(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []topEntry
	}{
		{"cpu", cpuTopOutput, []topEntry{
			{"internal/runtime/syscall/linux.Syscall6", .187, .187},
			{"runtime.futex", .0569, .0569},
			{"runtime.nextFreeFast", .0325, .0325},
			{"github.com/nats-io/nats%2ego.(*Conn).processMsg", .0163, .122},
			{"github.com/fulfill/pipeline/internal/ingest.(*ChannelsPoller).order", 0, .5772},
		}},
		{"alloc space", allocTopOutput, []topEntry{{"io.ReadAll", .1429, .1429}, {"encoding/json.Marshal", .0857, .2286}}},
		{"no header", "go: no such tool\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseTop(topText(tt.out))
			if len(got) != len(tt.want) {
				t.Fatalf("parsed %v, want %v", got, tt.want)
			}
			for i, e := range got {
				w := tt.want[i]
				if e.Func != w.Func || !near(e.Flat, w.Flat) || !near(e.Cum, w.Cum) {
					t.Errorf("entry %d = %+v, want %+v", i, e, w)
				}
			}
		})
	}
	if text := topText(cpuTopOutput); !strings.HasPrefix(text, "      flat  flat%") {
		t.Errorf("topText keeps the lines before the header:\n%s", text)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// TestPlumbingAndNames: the contributors name whose work it is (this
// module's, a library's) rather than the runtime and I/O plumbing every path
// goes through, and the report shortens their names.
func TestPlumbingAndNames(t *testing.T) {
	es := parseTop(topText(cpuTopOutput))
	got := withoutPlumbing(es)
	if len(got) != 2 || got[0].Func != "github.com/nats-io/nats%2ego.(*Conn).processMsg" || !strings.Contains(got[1].Func, "ChannelsPoller") {
		t.Errorf("withoutPlumbing = %v, want processMsg and ChannelsPoller.order", got)
	}
	for name, want := range map[string]string{
		"github.com/fulfill/pipeline/internal/ingest.(*ChannelsPoller).order": "internal/ingest.(*ChannelsPoller).order",
		"github.com/nats-io/nats%2ego.(*Conn).processMsg":                     "nats.go.(*Conn).processMsg",
		"github.com/rs/zerolog.Logger.With":                                   "rs/zerolog.Logger.With",
		"encoding/json.Marshal":                                               "encoding/json.Marshal",
	} {
		if got := shortFunc(name); got != want {
			t.Errorf("shortFunc(%q) = %q, want %q", name, got, want)
		}
	}
	if got := firstN(es, 2); len(got) != 2 || len(firstN(es[:1], 2)) != 1 {
		t.Errorf("firstN: %v", got)
	}
}

// TestContributorsOfRealProfiles profiles this test burning CPU and
// allocating in functions of its own, then reads the profiles as the bench
// reads the services': those functions must be named.
func TestContributorsOfRealProfiles(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to run pprof")
	}
	dir := t.TempDir()
	cpuFile := filepath.Join(dir, "cpu.pprof")
	f, err := os.Create(cpuFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Skipf("CPU profile: %v", err)
	}
	burnCPU(500 * time.Millisecond)
	pprof.StopCPUProfile()
	f.Close()

	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	sink = allocateObjects(20000)
	runtime.GC() // the allocations profile is as of the last GC
	runtime.MemProfileRate = rate
	allocFile := filepath.Join(dir, "allocs.pprof")
	af, err := os.Create(allocFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.Lookup("allocs").WriteTo(af, 0); err != nil {
		t.Fatal(err)
	}
	af.Close()

	c := cpuContributors(cpuFile)
	c.allocContributors(allocFile)
	if !names(c.CPUFlat, "burnCPU") && !names(c.CPUCum, "burnCPU") {
		t.Errorf("CPU contributors %v / %v do not name burnCPU", c.CPUFlat, c.CPUCum)
	}
	if !names(c.AllocObjects, "allocateObjects") || !names(c.AllocSpace, "allocateObjects") {
		t.Errorf("allocation contributors %v / %v do not name allocateObjects", c.AllocObjects, c.AllocSpace)
	}
	for _, list := range [][]topEntry{c.CPUFlat, c.CPUCum, c.Syscalls, c.AllocObjects, c.AllocSpace} {
		if len(list) > contributorsShown {
			t.Errorf("%d entries, want at most %d", len(list), contributorsShown)
		}
	}
}

func names(es []topEntry, fn string) bool {
	for _, e := range es {
		if strings.HasSuffix(e.Func, "."+fn) {
			return true
		}
	}
	return false
}

var sink []*[32]byte

//go:noinline
func burnCPU(d time.Duration) {
	x := 1.0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for range 10000 {
			x = x*1.000001 + 1
		}
	}
	if x == 0 {
		println(x)
	}
}

//go:noinline
func allocateObjects(n int) []*[32]byte {
	s := make([]*[32]byte, n)
	for i := range s {
		s[i] = new([32]byte)
	}
	return s
}
