package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// selfName names this process, which runs the NATS server and the sandbox, in
// the CPU figures and profiles.
const selfName = "nats-server+sandbox"

// cpuStart is the CPU time each process had used when a measurement began, by
// process name.
type cpuStart map[string]time.Duration

// startCPU notes the CPU time of this process.
func startCPU() cpuStart { return cpuStart{selfName: cpuTime(os.Getpid())} }

// addProcs notes the CPU time of procs, once they run.
func (c cpuStart) addProcs(procs []*proc) {
	for _, p := range procs {
		c[p.name] = cpuTime(p.cmd.Process.Pid)
	}
}

// perOrder is the CPU time each process (this one and procs) used since the
// start, divided by orders. It reads every clock before it divides.
func (c cpuStart) perOrder(procs []*proc, orders int) map[string]time.Duration {
	used := map[string]time.Duration{selfName: cpuTime(os.Getpid()) - c[selfName]}
	for _, p := range procs {
		used[p.name] = cpuTime(p.cmd.Process.Pid) - c[p.name]
	}
	for name, d := range used {
		used[name] = d / time.Duration(orders)
	}
	return used
}

// cpuTime is the CPU (user+system) a process has used: /proc/<pid>/stat for a
// child, getrusage for this process; 0 when it cannot be read.
func cpuTime(pid int) time.Duration {
	if pid == os.Getpid() {
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	return cpuTimeOf(fs, pid)
}

// cpuTimeOf is the user+system time in /proc/<pid>/stat under fs; 0 when it
// cannot be read.
func cpuTimeOf(fs procfs.FS, pid int) time.Duration {
	pp, err := fs.Proc(pid)
	if err != nil {
		return 0
	}
	st, err := pp.Stat()
	if err != nil {
		return 0
	}
	// CPUTime is ticks / USER_HZ in seconds; rounding keeps whole ticks exact.
	return time.Duration(math.Round(st.CPUTime() * float64(time.Second)))
}

// profiles records CPU profiles of every service and of this process (the
// NATS server and the sandbox) for d, into dir.
func profiles(ctx context.Context, procs []*proc, d time.Duration, dir string) []string {
	var (
		mu    sync.Mutex
		files []string
		wg    sync.WaitGroup
	)
	add := func(f string) { mu.Lock(); files = append(files, f); mu.Unlock() }
	for _, p := range procs {
		wg.Go(func() {
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.admin, int(d.Seconds()))
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			name := filepath.Join(dir, p.name+".pprof")
			f, err := os.Create(name)
			if err != nil {
				return
			}
			defer f.Close()
			if _, err := io.Copy(f, resp.Body); err == nil {
				add(name)
			}
		})
	}
	name := filepath.Join(dir, selfName+".pprof")
	if f, err := os.Create(name); err == nil {
		if pprof.StartCPUProfile(f) == nil {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
			pprof.StopCPUProfile()
			add(name)
		}
		f.Close()
	}
	wg.Wait()
	return files
}

// profiling is CPU profiles being recorded into a temporary directory.
type profiling struct {
	dir   string
	files chan []string
}

// startProfiles records d of CPU profile of every service and of this process
// in the background (see profiles).
func startProfiles(ctx context.Context, procs []*proc, d time.Duration) (*profiling, error) {
	dir, err := os.MkdirTemp("", "fulfill-profiles-*")
	if err != nil {
		return nil, err
	}
	p := &profiling{dir: dir, files: make(chan []string, 1)}
	go func() { p.files <- profiles(ctx, procs, d, dir) }()
	return p, nil
}

// tops waits for the profiles and returns the top 8 entries of each, by
// process name.
func (p *profiling) tops() map[string]string {
	tops := map[string]string{}
	for _, file := range <-p.files {
		name := strings.TrimSuffix(filepath.Base(file), ".pprof")
		tops[name] = topEntries(file, 8)
	}
	return tops
}

// remove deletes the profiles.
func (p *profiling) remove() { _ = os.RemoveAll(p.dir) }

// topEntries is `go tool pprof -top` of a profile, when the go command is
// at hand (make bench runs from a checkout); empty otherwise.
func topEntries(file string, n int) string {
	out, err := exec.Command("go", "tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n), file).Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "flat") {
			return strings.Join(lines[i:], "\n")
		}
	}
	return string(out)
}
