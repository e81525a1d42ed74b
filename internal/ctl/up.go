package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// ErrLost is returned by up --until-done when an order never reached a
// terminal state.
var ErrLost = errors.New("orders lost")

func faultMix(name string) (sandbox.FaultMix, error) {
	switch name {
	case "default":
		return sandbox.DefaultFaults(), nil
	case "none":
		return sandbox.NoFaults(), nil
	}
	return sandbox.FaultMix{}, fmt.Errorf("%w: --faults %q: want default or none", ErrUsage, name)
}

// upOptions are up's flags.
type upOptions struct {
	orders      int
	untilDone   bool
	dataDir     string
	faults      string
	mix         sandbox.FaultMix
	seed        int64
	shippers    int
	shops       int
	natsPort    int
	sandboxAddr string
	stall       time.Duration
	// observability prints where to scrape the services and what to
	// import; traces passes the shell's OTEL_* variables to them.
	observability bool
	traces        map[string]string
	// push makes the sandbox push each paid order to ingest, as WeChat
	// does, with polling every pollInterval as the safety net.
	push         bool
	pollInterval time.Duration
}

func parseUp(e Env, args []string) (*upOptions, bool, error) {
	fs := newFlags(e, "up", "[--orders N] [--shops N] [--until-done] [--data-dir DIR] [--faults default|none] [--seed S] [--shippers N] [--nats-port P] [--sandbox-addr A] [--stall D] [--push=false] [--poll-interval D] [--observability]")
	o := &upOptions{}
	fs.IntVar(&o.orders, "orders", 500, "demo orders the sandbox serves (per shop)")
	fs.IntVar(&o.shops, "shops", 1, "demo shops, each its own Channels app, in a shops file (1: the one shop default, configured by environment)")
	fs.BoolVar(&o.untilDone, "until-done", false, "exit once every order is shipped or failed: 0 if none was lost")
	fs.StringVar(&o.dataDir, "data-dir", "", "keep the stream here (a standalone nats-server opens it with -sd DIR) with the services' log and the sandbox's dates, so a rerun resumes (default: a temporary directory, removed after a successful run)")
	fs.StringVar(&o.faults, "faults", "default", "fault mix of the sandbox: default (transient, permanent, waiting, cancelled…) or none")
	fs.Int64Var(&o.seed, "seed", 1, "scenario seed")
	fs.IntVar(&o.shippers, "shippers", 1, "shipper replicas")
	fs.IntVar(&o.natsPort, "nats-port", 4222, "NATS port (a free port if this one is taken)")
	fs.StringVar(&o.sandboxAddr, "sandbox-addr", "127.0.0.1:0", "the sandbox's listen address (default: a free loopback port)")
	fs.DurationVar(&o.stall, "stall", time.Minute, "with --until-done: give up when nothing progresses for this long")
	fs.BoolVar(&o.push, "push", true, "the sandbox pushes each paid or cancelled order to ingest's push URL as WeChat does (signed, encrypted, retried on WeChat's schedule sped up 100 times); --push=false: orders come by polling alone")
	fs.DurationVar(&o.pollInterval, "poll-interval", 0, "INGEST_POLL_INTERVAL of the run (default: 30s with push, the safety net; 1s without)")
	fs.BoolVar(&o.observability, "observability", false, "print the /metrics URL of every service, a Prometheus scrape config for them, and the dashboard and alert rules to import (starts nothing more); OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables of the environment turn on the services' traces, with or without this flag")
	if done, err := parse(fs, args); done || err != nil {
		return nil, done, err
	}
	mix, err := faultMix(o.faults)
	if err != nil {
		return nil, false, err
	}
	o.mix = mix
	o.traces = tracing.Environ(e.Getenv)
	if o.orders < 0 {
		return nil, false, fmt.Errorf("%w: --orders must be ≥ 0", ErrUsage)
	}
	if o.pollInterval < 0 {
		return nil, false, fmt.Errorf("%w: --poll-interval must be ≥ 0", ErrUsage)
	}
	if o.pollInterval == 0 {
		o.pollInterval = time.Second
		if o.push {
			o.pollInterval = 30 * time.Second
		}
	}
	if o.shops < 1 || o.shops > 1000 {
		return nil, false, fmt.Errorf("%w: --shops must be 1..1000", ErrUsage)
	}
	return o, false, nil
}

// up runs the whole pipeline in this process: start the stack, run the
// services until every order is terminal (or ctx ends), then print the
// summary read back from the stream.
func up(ctx context.Context, e Env, args []string) (runErr error) {
	o, done, err := parseUp(e, args)
	if done || err != nil {
		return err
	}
	dir, keep := o.dataDir, o.dataDir != ""
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fulfill-up-*"); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
	}
	st, err := startUpStack(o, dir)
	if err != nil {
		return err
	}
	defer func() {
		st.Close()
		switch {
		case keep:
			fmt.Fprintf(e.Stdout, "\nThe stream and logs stay in %s: nats-server -js -sd %s serves it again (then nats stream info ORDERS), and up --data-dir %s resumes it.\n", dir, dir, dir)
		case runErr != nil:
			fmt.Fprintf(e.Stdout, "\nThe run failed: its stream and log stay in %s (nats-server -js -sd %s serves the stream).\n", dir, dir)
		default:
			_ = os.RemoveAll(dir)
		}
	}()
	logPath := filepath.Join(dir, "services.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("service log: %w", err)
	}
	defer logFile.Close()

	fmt.Fprintf(e.Stdout, "NATS:     %s   (nats -s %s stream info ORDERS)\n", st.NATSURL, st.NATSURL)
	if o.shops > 1 {
		fmt.Fprintf(e.Stdout, "Sandbox:  %s   (%d shops, %d orders each, faults %s)\n", st.SandboxURL, o.shops, o.orders, o.faults)
		fmt.Fprintf(e.Stdout, "Shops:    %s   (fulfillctl shops)\n", st.ShopsFile)
	} else {
		fmt.Fprintf(e.Stdout, "Sandbox:  %s   (appid %s, %d orders, faults %s)\n", st.SandboxURL, sandbox.DefaultAppID, o.orders, o.faults)
	}
	if o.push {
		fmt.Fprintf(e.Stdout, "Push:     %s   (Channels orders are pushed there when paid; polling every %s is the safety net)\n", pushURL(st, o.shops), o.pollInterval)
	}
	fmt.Fprintf(e.Stdout, "Logs:     %s\n\n", logPath)

	svcCtx, stopServices := context.WithCancel(ctx)
	defer stopServices()
	g := st.RunPipeline(svcCtx, logFile, o.shippers)
	defer func() { stopServices(); _ = g.Wait() }() // before the log file closes
	if o.observability || o.push {
		// Pushes answered an error (ingest not listening yet) would be
		// sent again on WeChat's schedule; waiting for the services saves
		// that.
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		admins, err := g.Admins(actx)
		cancel()
		if err != nil {
			return fmt.Errorf("services: %w (see %s)", err, logPath)
		}
		if o.observability {
			printObservability(e.Stdout, admins, o.traces)
		}
	}
	if o.push {
		if err := st.Sandbox.StartPushes(svcCtx); err != nil {
			return fmt.Errorf("sandbox pushes: %w", err)
		}
		defer st.Sandbox.StopPushes()
	}

	nc, js, err := connect(ctx, Env{Getenv: func(k string) string {
		if k == "NATS_URL" {
			return st.NATSURL
		}
		return ""
	}, Stderr: e.Stderr})
	if err != nil {
		return err
	}
	defer nc.Close()

	p := &progress{w: e.Stdout, tty: isTerminal(e.Stdout), sb: st.Sandbox, key: st.Key, want: len(st.Sandbox.Scenario()), start: time.Now()}
	// A service that stops (bad configuration, a port taken) ends the run
	// at once, with its error, instead of a progress line that never moves.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() {
		select {
		case <-g.Failed():
			stopRun()
		case <-runCtx.Done():
		}
	}()
	waitErr := p.run(runCtx, js, o.untilDone, o.stall)
	stopServices()
	svcErr := g.Wait()
	return finishUp(e, o, js, st, p, waitErr, svcErr)
}

// startUpStack starts NATS (on the asked port if it is free) with its
// store in dir, and the sandbox, dated as it was when dir was used before.
func startUpStack(o *upOptions, dir string) (*stack.Stack, error) {
	port := o.natsPort
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		port = 0
	} else {
		l.Close()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	sb := sandbox.Config{Seed: o.seed, Orders: o.orders, Faults: o.mix, PushTimeScale: 0.01}
	if err := applySandboxState(filepath.Join(dir, "sandbox.json"), &sb, time.Now()); err != nil {
		return nil, err
	}
	env := map[string]string{"INGEST_SOURCES": "channels,vvtool", "INGEST_POLL_INTERVAL": o.pollInterval.String()}
	maps.Copy(env, o.traces)
	return stack.Start(stack.Options{
		DataDir:     dir,
		NATSPort:    port,
		SandboxAddr: o.sandboxAddr,
		Sandbox:     sb,
		Env:         env,
		Shops:       shopsOption(o.shops),
		Push:        o.push,
	})
}

// pushURL is where the sandbox pushes: the first shop's URL, with the
// others' pattern when there are several.
func pushURL(st *stack.Stack, shops int) string {
	if shops > 1 {
		return st.IngestURL + "/v1/wechat/push/{" + stack.ShopID(0) + "…" + stack.ShopID(shops-1) + "}"
	}
	return st.IngestURL + "/v1/wechat/push/" + events.DefaultShop
}

// shopsOption is stack.Options.Shops for --shops: 0 (the environment's one
// shop) for one.
func shopsOption(n int) int {
	if n > 1 {
		return n
	}
	return 0
}

// finishUp prints the summary read back from the stream and says whether
// the run succeeded.
func finishUp(e Env, o *upOptions, js jetstream.JetStream, st *stack.Stack, p *progress, waitErr, svcErr error) error {
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tl, err := tally.Read(rctx, js)
	if err != nil {
		return err
	}
	lost := summary(e.Stdout, tl, st.Sandbox.Scenario(), st.Key, time.Since(p.start))
	fmt.Fprintf(e.Stdout, "Sandbox: %s\n", st.Sandbox.Stats().Mistakes())
	if svcErr != nil {
		return fmt.Errorf("services: %w", svcErr)
	}
	if o.untilDone {
		if waitErr != nil {
			return waitErr
		}
		if lost > 0 {
			return fmt.Errorf("%w: %d of %d orders never reached a terminal state", ErrLost, lost, p.want)
		}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// progress shows received / enriched / shipped / failed as the stream has
// them, with the recent rate and the platform's codes (retried, refused).
type progress struct {
	w     io.Writer
	tty   bool
	sb    *sandbox.Sandbox
	key   func(sandbox.ScenarioOrder) string
	want  int
	start time.Time

	samples  []sample // terminal counts of the last rateWindow
	lastLine string
}

// sample is the number of terminal orders at a moment.
type sample struct {
	at       time.Time
	terminal int
}

// rateWindow is how far back the progress line's orders/s looks: a rate
// since the start would decay while the pipeline idles.
const rateWindow = 5 * time.Second

// run refreshes the progress line until ctx ends or, with untilDone, until
// every scenario order is terminal (or nothing moved for stall).
func (p *progress) run(ctx context.Context, js jetstream.JetStream, untilDone bool, stall time.Duration) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	lastPrint, lastChange, lastTerminal := time.Time{}, time.Now(), -1
	for {
		rep, err := tally.Status(ctx, js, "")
		if err == nil {
			counts := map[string]int{}
			for _, s := range rep.Stages {
				counts[s.Stage] = s.Orders
			}
			terminal := counts["shipped"] + counts["failed"]
			if terminal != lastTerminal {
				lastTerminal, lastChange = terminal, time.Now()
			}
			// On a terminal the line is redrawn in place; in a file or a
			// pipe a line is written when something changed (at most every
			// 2 s), or every 10 s to show the run is alive.
			since := time.Since(lastPrint)
			if line := p.line(counts, terminal); p.tty || (line != p.lastLine && since >= 2*time.Second) || since >= 10*time.Second {
				p.print(line)
				lastPrint = time.Now()
			}
			if untilDone && terminal >= p.want {
				if tl, err := tally.Read(ctx, js); err == nil && p.allTerminal(tl) {
					p.print(p.line(counts, terminal))
					if p.tty {
						fmt.Fprintln(p.w)
					}
					return nil
				}
			}
			if untilDone && time.Since(lastChange) > stall {
				fmt.Fprintln(p.w)
				return fmt.Errorf("%w: no progress for %s with %d of %d orders terminal", ErrLost, stall, terminal, p.want)
			}
		}
		select {
		case <-ctx.Done():
			if p.tty {
				fmt.Fprintln(p.w)
			}
			if untilDone {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			return nil
		case <-tick.C:
		}
	}
}

func (p *progress) allTerminal(tl *tally.Tally) bool {
	ids := make([]string, 0, p.want)
	for _, o := range p.sb.Scenario() {
		ids = append(ids, p.key(o))
	}
	return tl.AllTerminal(ids)
}

// line is the progress line for the counts: the rate is over the last
// rateWindow.
func (p *progress) line(c map[string]int, terminal int) string {
	now := time.Now()
	p.samples = append(p.samples, sample{now, terminal})
	for len(p.samples) > 1 && now.Sub(p.samples[1].at) >= rateWindow {
		p.samples = p.samples[1:]
	}
	first := p.samples[0]
	rate := float64(terminal-first.terminal) / max(now.Sub(first.at).Seconds(), 0.5)
	retried, refused := platformCodes(p.sb)
	return fmt.Sprintf("received %d/%d | enriched %d | shipped %d | failed %d | logistics %d | %.0f orders/s | retried %s | refused %s",
		c["received"], p.want, c["enriched"], c["shipped"], c["failed"], c["logistics"], rate, retried, refused)
}

func (p *progress) print(line string) {
	p.lastLine = line
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// platformCodes lists the non-zero errcodes the platform answered
// delivery/send and batchGetOrder with, split into those the pipeline
// retries (transient, token, waiting: e.g. "100003×12 -1×4") and those it
// took as final (already shipped, permanent).
func platformCodes(sb *sandbox.Sandbox) (retried, refused string) {
	stats := sb.Stats()
	agg := map[int]int{}
	for _, ep := range []string{sandbox.EndpointDeliverySend, sandbox.EndpointBatchGetOrder} {
		for code, n := range stats.ErrCodes[ep] {
			if code != 0 {
				agg[code] += n
			}
		}
	}
	codes := make([]int, 0, len(agg))
	for c := range agg {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var again, final []string
	for _, c := range codes {
		part := strconv.Itoa(c) + "×" + strconv.Itoa(agg[c])
		// The sandbox records a raw HTTP answer as minus its status, and a
		// caller gone (a timeout) as CodeClientGone.
		answer := &wechat.APIError{Code: c}
		if c <= -100 {
			answer = &wechat.APIError{HTTPStatus: -c}
		}
		switch class := wechat.Classify(answer); {
		case c == sandbox.CodeClientGone, class == wechat.ClassTransient, class == wechat.ClassToken, class == wechat.ClassWait:
			again = append(again, part)
		default:
			final = append(final, part)
		}
	}
	return orNone(again), orNone(final)
}

func orNone(parts []string) string {
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// summary prints the end-of-run table from the stream and returns how many
// scenario orders have no terminal event.
func summary(w io.Writer, tl *tally.Tally, want []sandbox.ScenarioOrder, key func(sandbox.ScenarioOrder) string, took time.Duration) int {
	type row struct{ orders, shipped, failed, lost, expected int }
	rows := map[string]*row{}
	total := &row{}
	twice := 0
	for _, o := range want {
		r := rows[o.Fault]
		if r == nil {
			r = &row{}
			rows[o.Fault] = r
		}
		r.orders++
		total.orders++
		s := tl.Orders[key(o)]
		switch {
		case s == nil || s.Latest == "":
			r.lost++
			total.lost++
		case s.Latest == events.StageShipped:
			r.shipped++
			total.shipped++
		default:
			r.failed++
			total.failed++
		}
		if s != nil && s.Shipped > 1 {
			twice++
		}
		if (s != nil && s.Latest == events.StageShipped) == (o.Expect == sandbox.OutcomeShipped) && s != nil && s.Latest != "" {
			r.expected++
			total.expected++
		}
	}
	fmt.Fprintf(w, "\nSummary (read from the ORDERS stream) after %s:\n\n", took.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "FAULT CLASS\tORDERS\tSHIPPED\tFAILED\tLOST\tAS EXPECTED\t")
	names := make([]string, 0, len(rows))
	for n := range rows {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := rows[n]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", n, r.orders, r.shipped, r.failed, r.lost, r.expected)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t\n", total.orders, total.shipped, total.failed, total.lost, total.expected)
	tw.Flush()
	fmt.Fprintf(w, "\nStream: %d received, %d enriched, %d shipped, %d failed, %d logistics events; orders shipped twice: %d; dead letters: %d\n",
		tl.Messages[events.StageReceived], tl.Messages[events.StageEnriched], tl.Messages[events.StageShipped],
		tl.Messages[events.StageFailed], tl.Messages[events.StageLogistics], twice, tl.DeadLetters)
	via := map[string]int{}
	for _, o := range tl.Orders {
		if o.Received > 0 {
			via[o.Via]++
		}
	}
	fmt.Fprintf(w, "Orders came in by push: %d, by poll: %d, by the API: %d (pushes stored: %d)\n",
		via[events.ViaPush], via[events.ViaPoll], via[events.ViaAPI], tl.Messages[events.StagePush])
	match := tl.Terminal(events.StageShipped) == total.shipped && tl.Terminal(events.StageFailed) == total.failed && twice == 0
	verdict := "yes"
	if !match {
		verdict = "NO"
	}
	fmt.Fprintf(w, "Summary matches the stream's terminal counts (%d shipped, %d failed orders): %s\n",
		tl.Terminal(events.StageShipped), tl.Terminal(events.StageFailed), verdict)
	if !match {
		return max(total.lost, 1)
	}
	return total.lost
}
