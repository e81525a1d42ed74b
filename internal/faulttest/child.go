package faulttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/stack"
)

// ChildEnv names the service a re-executed test binary runs instead of the
// tests, so a test can SIGKILL a real process.
const ChildEnv = "FULFILL_E2E_CHILD"

// RunChildIfAsked is called first thing by the TestMain of a package that
// starts children: in a re-executed test binary it runs the service named
// by ChildEnv with the process environment until SIGTERM or SIGINT, then
// exits the process (0 on a clean stop, 1 otherwise). In the test binary
// itself it returns at once.
func RunChildIfAsked() {
	name := os.Getenv(ChildEnv)
	if name == "" {
		return
	}
	run, ok := stack.Services[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "%s=%q: no such service\n", ChildEnv, name)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, []string{name}, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Child is a service running as a separate process (the test binary
// re-executed), so it can be killed for real.
type Child struct {
	// Name is the service ("ingest", "enricher", "shipper").
	Name string
	// LogPath is the file holding the child's stdout and stderr.
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
	err  error // the exit error, once done is closed
}

// StartChild runs service name as a child process with the stack's
// environment plus extra, logging to a new file in logDir. The child is
// killed when the test ends, if it still runs.
func StartChild(t testing.TB, st *stack.Stack, name, logDir string, extra map[string]string) *Child {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	env := append(os.Environ(), ChildEnv+"="+name)
	getenv := st.Getenv(extra)
	seen := map[string]bool{}
	for _, v := range config.Vars {
		seen[v.Name] = true
		if val := getenv(v.Name); val != "" {
			env = append(env, v.Name+"="+val)
		}
	}
	for k, v := range extra {
		if !seen[k] {
			env = append(env, k+"="+v)
		}
	}
	cmd.Env = env
	path := filepath.Join(logDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	c := &Child{Name: name, LogPath: path, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	t.Cleanup(c.Kill)
	return c
}

// PID is the child's process id.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// Done is closed once the child has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// Kill sends SIGKILL and waits for the process to be gone; killing a child
// that already exited does nothing.
func (c *Child) Kill() {
	c.once.Do(func() { _ = c.cmd.Process.Signal(syscall.SIGKILL) })
	<-c.done
}

// Term sends SIGTERM and returns the exit error once the process is gone
// (nil for a clean stop).
func (c *Child) Term() error {
	c.once.Do(func() { _ = c.cmd.Process.Signal(syscall.SIGTERM) })
	<-c.done
	return c.err
}

// Logs returns what the child has logged so far.
func (c *Child) Logs() string {
	b, _ := os.ReadFile(c.LogPath)
	return string(b)
}

// PeakRSS is the child's peak resident set size (VmHWM of
// /proc/<pid>/status) in bytes; the child must still run.
func (c *Child) PeakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.PID()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", c.PID())
}
