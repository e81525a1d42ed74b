package ctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

// stream is fulfillctl stream apply: the operator's explicit way to change
// the shared ORDERS stream, which services only create and never change.
func stream(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 || args[0] != "apply" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.Stdout, "Usage: fulfillctl stream apply [flags]   (fulfillctl stream apply --help)")
			return nil
		}
		return fmt.Errorf("%w: stream needs apply", ErrUsage)
	}
	def := func(name string) string {
		if v := e.Getenv(name); v != "" {
			return v
		}
		v, _ := config.Lookup(name)
		return v.Default
	}
	fs := newFlags(e, "stream apply", "[--replicas N] [--max-age D] [--max-bytes S] [--dry-run]")
	replicas := fs.String("replicas", def("STREAM_REPLICAS"), "replicas of the stream (default STREAM_REPLICAS)")
	maxAge := fs.String("max-age", def("STREAM_MAX_AGE"), "how long events are kept (default STREAM_MAX_AGE)")
	maxBytes := fs.String("max-bytes", def("STREAM_MAX_BYTES"), "storage bound, e.g. 10GiB, 0 for none (default STREAM_MAX_BYTES)")
	dry := fs.Bool("dry-run", false, "print the differences, change nothing")
	if done, err := parse(fs, args[1:]); done || err != nil {
		return err
	}
	var want events.StreamLimits
	var err error
	if want.Replicas, err = strconv.Atoi(*replicas); err != nil || want.Replicas < 1 || want.Replicas > 5 {
		return fmt.Errorf("%w: --replicas %q: want 1 to 5", ErrUsage, *replicas)
	}
	if want.MaxAge, err = time.ParseDuration(*maxAge); err != nil || want.MaxAge < events.DuplicateWindow {
		return fmt.Errorf("%w: --max-age %q: want a duration of at least the %s duplicate window", ErrUsage, *maxAge, events.DuplicateWindow)
	}
	if want.MaxBytes, err = config.ParseSize(*maxBytes); err != nil {
		return fmt.Errorf("%w: --max-bytes: %v", ErrUsage, err)
	}
	nc, js, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := js.Stream(ctx, events.StreamName); errors.Is(err, jetstream.ErrStreamNotFound) && *dry {
		fmt.Fprintf(e.Stdout, "Stream %s does not exist; it would be created (dry run).\n", events.StreamName)
		return nil
	}
	_, diff, err := service.EnsureStream(ctx, js, want, !*dry)
	if err != nil {
		return err
	}
	if len(diff) == 0 {
		fmt.Fprintf(e.Stdout, "Stream %s already has these settings.\n", events.StreamName)
		return nil
	}
	verb := "changed"
	if *dry {
		verb = "would change (dry run)"
	}
	fmt.Fprintf(e.Stdout, "Stream %s %s:\n", events.StreamName, verb)
	for _, d := range diff {
		fmt.Fprintf(e.Stdout, "  %s\n", d)
	}
	return nil
}
