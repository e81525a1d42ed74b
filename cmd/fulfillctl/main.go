// Command fulfillctl operates the order-fulfillment pipeline: a one-process
// first run (up), the sandbox, status, the dead-letter list and re-drive,
// and replay. Run fulfillctl --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fulfill/pipeline/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fulfillctl:", err)
		stop()
		if errors.Is(err, ctl.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return ctl.Run(ctx, args, ctl.Env{Getenv: getenv, Stdout: stdout, Stderr: stderr})
}
