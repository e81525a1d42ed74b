package bench

import (
	"os/exec"
	"strconv"
	"strings"
)

// topEntry is one line of `go tool pprof -top`: a function and its shares of
// the profile's total, on its own (flat) and with what it calls (cum).
type topEntry struct {
	Func      string
	Flat, Cum float64 // 0..1
}

// Contributors are the functions a process spends the most on during the
// pipeline phase, from its profiles; each list is best first.
type Contributors struct {
	// CPUFlat is by CPU spent in the function itself; CPUCum by CPU spent
	// in it and what it calls, the runtime's and the standard library's
	// plumbing left out so that the callers that matter show.
	CPUFlat, CPUCum []topEntry
	// Syscalls is by CPU spent in system calls under the function (the CPU
	// profile focused on the syscall entry points), plumbing left out.
	Syscalls []topEntry
	// AllocObjects and AllocSpace are allocation sites by objects and by
	// bytes (the heap profile's sampled alloc_objects and alloc_space).
	AllocObjects, AllocSpace []topEntry
}

// contributorsShown is how many entries each list of Contributors keeps.
const contributorsShown = 5

// syscallFocus matches the functions through which Go enters the kernel.
const syscallFocus = `^(internal/runtime/syscall/linux\.Syscall6|syscall\.(Raw)?Syscall6?|syscall\.rawSyscallNoError|runtime\.(futex|write1|read|epollwait|usleep|nanotime1))$`

// cpuContributors reads the contributors of a CPU profile file.
func cpuContributors(file string) Contributors {
	var c Contributors
	_, flat := pprofTop(file, contributorsShown)
	c.CPUFlat = flat
	_, cum := pprofTop(file, 60, "-cum")
	c.CPUCum = firstN(withoutPlumbing(cum), contributorsShown)
	_, sys := pprofTop(file, 60, "-cum", "-focus="+syscallFocus)
	c.Syscalls = firstN(withoutPlumbing(sys), contributorsShown)
	return c
}

// allocContributors fills in the allocation sites of an allocs profile file.
func (c *Contributors) allocContributors(file string) {
	_, c.AllocObjects = pprofTop(file, contributorsShown, "-sample_index=alloc_objects")
	_, c.AllocSpace = pprofTop(file, contributorsShown, "-sample_index=alloc_space")
}

// pprofTop is `go tool pprof -top` of file with n nodes and extra args: the
// text from its header line on, and the parsed entries. Empty when the go
// command is not at hand (make bench runs from a checkout) or the profile is
// empty.
func pprofTop(file string, n int, args ...string) (string, []topEntry) {
	args = append([]string{"tool", "pprof", "-top", "-nodecount=" + strconv.Itoa(n)}, args...)
	out, err := exec.Command("go", append(args, file)...).Output()
	if err != nil {
		return "", nil
	}
	text := topText(string(out))
	return text, parseTop(text)
}

// topText is pprof's -top output from its header line on (the lines before
// name the file, the type and the dropped nodes).
func topText(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "flat") {
			return strings.Join(lines[i:], "\n")
		}
	}
	return ""
}

// parseTop parses the lines of topText: flat flat% sum% cum cum% name.
func parseTop(text string) []topEntry {
	var es []topEntry
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || !strings.HasSuffix(f[4], "%") {
			continue
		}
		flat, err1 := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		cum, err2 := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		name := strings.Join(f[5:], " ")
		name = strings.TrimSuffix(name, " (inline)")
		es = append(es, topEntry{Func: name, Flat: flat / 100, Cum: cum / 100})
	}
	return es
}

// plumbing are the prefixes of functions that every path goes through (the
// runtime, system call wrappers, buffered and network I/O, goroutine
// starters), which say nothing of whose work it is.
var plumbing = []string{
	"runtime.", "internal/", "syscall.", "os.", "net.", "bufio.", "io.", "sync.", "context.",
	"golang.org/x/sync/errgroup.", "main.", "github.com/fulfill/pipeline/internal/ctl.",
}

// withoutPlumbing drops the entries of plumbing functions.
func withoutPlumbing(es []topEntry) []topEntry {
	var out []topEntry
	for _, e := range es {
		if !isPlumbing(e.Func) {
			out = append(out, e)
		}
	}
	return out
}

func isPlumbing(name string) bool {
	for _, p := range plumbing {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func firstN(es []topEntry, n int) []topEntry {
	if len(es) > n {
		return es[:n]
	}
	return es
}

// shortFunc is a function name for a table: this module's prefix and the
// path of well-known modules cut, pprof's %2e escapes undone.
func shortFunc(name string) string {
	name = strings.ReplaceAll(name, "%2e", ".")
	for _, p := range []string{"github.com/fulfill/pipeline/", "github.com/nats-io/", "github.com/"} {
		if s, ok := strings.CutPrefix(name, p); ok {
			return s
		}
	}
	return name
}
