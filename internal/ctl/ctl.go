// Package ctl is fulfillctl, the operator's command: a one-process first run
// (up), the sandbox alone, stream and consumer status, the dead-letter list
// and re-drive, and replay of a window of the stream.
package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fulfill/pipeline/pkg/events"
)

// ErrUsage marks a command line that could not be understood; the message
// says what was wrong.
var ErrUsage = errors.New("usage")

// ErrNotDone marks a command that ran but did not do all it was asked (an
// order named for a re-drive that was not re-driven); fulfillctl exits 1.
var ErrNotDone = errors.New("not done")

// Env is what every subcommand gets from main.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e Env, args []string) error
}

func commands() []command {
	return []command{
		{"up", "run everything in one process on embedded JetStream and the sandbox", up},
		{"sandbox", "serve the platform sandbox alone", serveSandbox},
		{"status", "stream and consumer figures: counts per stage, lag, redeliveries", status},
		{"shops", "each shop's orders (received, shipped, failed, in flight) and its state at the shippers (ok, backing off, token refused)", shopsCmd},
		{"order", "where is this order? its whole history, its state and what to do next", order},
		{"dlq", "list (dlq list) and re-drive (dlq redrive) orders whose latest terminal event is failed", dlq},
		{"replay", "re-drive a stage's input events of a time window", replay},
		{"stream", "stream apply: change the shared ORDERS stream's replicas, max age or max bytes (services never do)", stream},
		{"bench", "measure the pipeline against raw JetStream; writes docs/PERFORMANCE.md", benchCmd},
		{"service", "run one service (ingest, enricher, shipper) configured by the environment", serviceCmd},
	}
}

// Run is fulfillctl: args[0] is the program name, args[1] the subcommand.
func Run(ctx context.Context, args []string, e Env) error {
	if len(args) < 2 || args[1] == "-h" || args[1] == "--help" || args[1] == "help" {
		printHelp(e.Stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[1] {
			return c.run(ctx, e, args[2:])
		}
	}
	printHelp(e.Stderr)
	return fmt.Errorf("%w: unknown command %q", ErrUsage, args[1])
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "fulfillctl — operate the order-fulfillment pipeline")
	fmt.Fprintln(w, "\nUsage: fulfillctl <command> [flags]   (fulfillctl <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEnvironment (all commands but up and sandbox):")
	fmt.Fprintln(w, "  NATS_URL    NATS server URLs, comma-separated (default nats://127.0.0.1:4222)")
	fmt.Fprintln(w, "  NATS_CREDS  path to a NATS .creds file (default unset)")
}

// shopFlag adds --shop, which limits a command to one shop's orders.
func (fs *flagSet) shopFlag(what string) *string {
	return fs.String("shop", "", what+" of this shop only (default: every shop)")
}

// checkShop refuses a --shop that cannot be a shop id.
func checkShop(shop string) error {
	if shop == "" {
		return nil
	}
	if err := events.ValidateShopID(shop); err != nil {
		return fmt.Errorf("%w: --shop: %v", ErrUsage, err)
	}
	return nil
}

// flagSet is a subcommand's flags, with its usage line.
type flagSet struct {
	*flag.FlagSet
	usage  string
	stdout io.Writer
}

// newFlags is a flag set whose --help prints to stdout, and whose errors
// say which command they belong to.
func newFlags(e Env, name, usage string) *flagSet {
	fs := flag.NewFlagSet("fulfillctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, usage: usage, stdout: e.Stdout}
}

// parse parses args; it returns done=true after printing --help.
func parse(fs *flagSet, args []string) (done bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(fs.stdout, "Usage: %s %s\n\nFlags:\n", fs.Name(), fs.usage)
		fs.SetOutput(fs.stdout)
		fs.PrintDefaults()
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v", ErrUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%w: %s: unexpected argument %q", ErrUsage, fs.Name(), fs.Arg(0))
	}
	return false, nil
}

// listFlag collects a repeatable flag (--order-id A --order-id B, or A,B).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// writeJSON prints v as indented JSON, with <, > and & as themselves (the
// subjects orders.received.> read as they are written).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// plural is "1 order", "2 orders".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
