package ctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fulfill/pipeline/internal/bench"
	"github.com/fulfill/pipeline/internal/stack"
)

func benchCmd(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "bench", "[--orders N] [--backlog N] [--out docs/PERFORMANCE.md] [--sweep 8,32,128,512] [--gomaxprocs N] [--quick]")
	orders := fs.Int("orders", 20000, "orders of the raw-limit, ceiling and pipeline phases")
	backlog := fs.Int("backlog", 200000, "received events pre-loaded and drained at the end (0: skip)")
	out := fs.String("out", "docs/PERFORMANCE.md", "where to write the report (sweep.svg goes beside it); empty: print only")
	sweep := fs.String("sweep", "8,32,128,512", "SHIP_CONCURRENCY values of the sweep")
	quick := fs.Bool("quick", false, "a small run (2,000 orders, 20,000 backlog, sweep 8,32) to try the command")
	procs := fs.Int("gomaxprocs", 1, "GOMAXPROCS of the service processes (deploy/ sets it from each stage's CPU request); 0: Go's default, the machine's cores")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	o := bench.Options{Orders: *orders, Backlog: *backlog, Progress: e.Stdout, GOMAXPROCS: *procs}
	if *procs <= 0 {
		o.GOMAXPROCS = -1
	}
	if *backlog == 0 {
		o.Backlog = -1
	}
	for _, s := range strings.Split(*sweep, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("%w: --sweep %q: want comma-separated concurrencies", ErrUsage, *sweep)
		}
		o.Sweep = append(o.Sweep, n)
	}
	if *quick {
		o.Orders, o.Backlog, o.Sweep = 2000, 20000, []int{8, 32}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench needs its own executable to start services: %w", err)
	}
	o.Exe, o.Args = exe, []string{"service"}
	r, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	r.Markdown(&md)
	fmt.Fprintln(e.Stdout)
	if _, err := e.Stdout.Write(md.Bytes()); err != nil {
		return err
	}
	if *out == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*out, md.Bytes(), 0o644); err != nil {
		return err
	}
	var svg bytes.Buffer
	r.SVG(&svg)
	if err := os.WriteFile(filepath.Join(filepath.Dir(*out), "sweep.svg"), svg.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "\nwrote %s and %s\n", *out, filepath.Join(filepath.Dir(*out), "sweep.svg"))
	return nil
}

// serviceCmd runs one stage service in this process, configured by the
// environment: how bench starts services as separate processes, and the
// ceiling's hops as one.
func serviceCmd(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.Stdout, "Usage: fulfillctl service ingest|enricher|shipper [flags]   (the same as the ingest, enricher and shipper binaries; fulfillctl service shipper --help lists its settings). bench also runs 'service ceiling-hops', the hops of the platform-inclusive and contract ceilings in a process of their own")
		if len(args) == 0 {
			return fmt.Errorf("%w: service needs one of ingest, enricher, shipper", ErrUsage)
		}
		return nil
	}
	if args[0] == bench.CeilingHopsService {
		return bench.ServeCeilingHops(ctx, e.Getenv, e.Stdout)
	}
	run, ok := stack.Services[args[0]]
	if !ok {
		return fmt.Errorf("%w: unknown service %q (want ingest, enricher or shipper)", ErrUsage, args[0])
	}
	return run(ctx, args, e.Getenv, e.Stdout, e.Stderr)
}
