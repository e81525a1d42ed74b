package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/fulfill/pipeline/internal/embednats"
)

// proc is a service running as its own process (fulfillctl service NAME),
// so its memory can be measured alone.
type proc struct {
	name  string
	cmd   *exec.Cmd
	admin string
	done  chan error
}

// startProc runs exe with args and env (on top of PATH/HOME only), its
// admin server on a free port.
func startProc(exe string, args []string, name string, env map[string]string, logs io.Writer) (*proc, error) {
	port, err := embednats.FreePort()
	if err != nil {
		return nil, err
	}
	admin := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(exe, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "ADMIN_ADDR=" + admin, "ADMIN_PPROF=true", "LOG_LEVEL=warn"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, admin: admin, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// rss returns the process's resident set and its peak (VmRSS, VmHWM), bytes;
// 0, 0 once it is gone.
func (p *proc) rss() (cur, peak uint64) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, 0
	}
	return memoryOf(fs, p.cmd.Process.Pid)
}

// memoryOf reads VmRSS and VmHWM of process pid from /proc/<pid>/status under
// fs, in bytes; 0, 0 when it cannot.
func memoryOf(fs procfs.FS, pid int) (cur, peak uint64) {
	pp, err := fs.Proc(pid)
	if err != nil {
		return 0, 0
	}
	st, err := pp.NewStatus()
	if err != nil {
		return 0, 0
	}
	return st.VmRSS, st.VmHWM
}

// metric reads one unlabelled series from the process's /metrics.
func (p *proc) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s metrics: %w", p.name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s metrics: no %s", p.name, name)
}

// batchFill is the mean batch size the process reports (fulfill_batch_size);
// ok is false before its first batch.
func (p *proc) batchFill(ctx context.Context) (fill float64, ok bool) {
	sum, _ := p.metric(ctx, "fulfill_batch_size_sum")
	n, _ := p.metric(ctx, "fulfill_batch_size_count")
	if n > 0 {
		return sum / n, true
	}
	return 0, false
}

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited before it was ready: %v", p.name, err)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", p.name, ctx.Err())
		case <-t.C:
		}
	}
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
	}
}
