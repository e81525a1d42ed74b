package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
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

// profiles records, for d, a CPU profile and a delta allocations profile of
// every service (name.pprof and name.allocs.pprof) and a CPU profile of this
// process (the NATS server and the sandbox), into dir.
func profiles(ctx context.Context, procs []*proc, d time.Duration, dir string) []string {
	var (
		mu    sync.Mutex
		files []string
		wg    sync.WaitGroup
	)
	add := func(f string) { mu.Lock(); files = append(files, f); mu.Unlock() }
	fetch := func(p *proc, path, file string) {
		url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", p.admin, path, int(d.Seconds()))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return
		}
		name := filepath.Join(dir, file)
		f, err := os.Create(name)
		if err != nil {
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err == nil {
			add(name)
		}
	}
	for _, p := range procs {
		wg.Go(func() { fetch(p, "profile", p.name+".pprof") })
		wg.Go(func() { fetch(p, "allocs", p.name+allocsSuffix) })
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

// allocsSuffix ends the file name of a delta allocations profile.
const allocsSuffix = ".allocs.pprof"

// profiling is CPU profiles being recorded into a temporary directory.
type profiling struct {
	dir   string
	files chan []string
}

// startProfiles records d of profiles of every service and of this process
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

// read waits for the profiles and returns, by process name, the top 8
// entries of each CPU profile (`go tool pprof -top`) and the contributors.
func (p *profiling) read() (tops map[string]string, contributors map[string]Contributors) {
	tops, contributors = map[string]string{}, map[string]Contributors{}
	files := <-p.files
	for _, file := range files {
		base := filepath.Base(file)
		if strings.HasSuffix(base, allocsSuffix) {
			continue
		}
		name := strings.TrimSuffix(base, ".pprof")
		tops[name], _ = pprofTop(file, 8)
		contributors[name] = cpuContributors(file)
	}
	for _, file := range files {
		if name, ok := strings.CutSuffix(filepath.Base(file), allocsSuffix); ok {
			c := contributors[name]
			c.allocContributors(file)
			contributors[name] = c
		}
	}
	return tops, contributors
}

// remove deletes the profiles.
func (p *profiling) remove() { _ = os.RemoveAll(p.dir) }
