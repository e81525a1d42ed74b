package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fulfill/pipeline/internal/redrive"
	"github.com/fulfill/pipeline/pkg/events"
)

func replay(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "replay", "--stage enricher|shipper --since D|T [--until T] [--source S] [--order-id ID…] [--dry-run] [--json]")
	stageName := fs.String("stage", "", "the stage to re-drive: enricher (its input: received events) or shipper (enriched events)")
	sinceV := fs.String("since", "", "start of the window: a duration ago (1h) or an RFC 3339 time (required)")
	untilV := fs.String("until", "", "end of the window: an RFC 3339 time or a duration ago (default now)")
	source := fs.String("source", "", "only events of this source (channels, vvtool, api)")
	dry := fs.Bool("dry-run", false, "print what would be re-driven, publish nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	var ids listFlag
	fs.Var(&ids, "order-id", "only this order (repeatable, or comma-separated)")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	stage, ok := events.Component(*stageName).Input()
	if !ok {
		return fmt.Errorf("%w: replay --stage must be enricher or shipper", ErrUsage)
	}
	if *sinceV == "" {
		return fmt.Errorf("%w: replay needs --since", ErrUsage)
	}
	now := time.Now()
	since, err := parseSince(*sinceV, now)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	until, err := parseUntil(*untilV, now)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if *source != "" && !events.Source(*source).Valid() {
		return fmt.Errorf("%w: --source %q: want channels, vvtool or api", ErrUsage, *source)
	}
	for _, id := range ids {
		if err := events.ValidateOrderID(id); err != nil {
			return fmt.Errorf("%w: --order-id: %v", ErrUsage, err)
		}
	}

	nc, js, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer nc.Close()
	r, err := redrive.New(ctx, js)
	if err != nil {
		return err
	}
	results, err := r.Replay(ctx, redrive.Window{Stage: stage, Since: since, Until: until,
		Source: events.Source(*source), OrderIDs: ids, DryRun: *dry})
	if err != nil {
		return err
	}
	return printResults(e.Stdout, results, *asJSON)
}

// printResults writes a re-drive report as a table or as JSON.
func printResults(w io.Writer, results []redrive.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if results == nil {
			results = []redrive.Result{}
		}
		return enc.Encode(results)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER_ID\tSOURCE\tSTAGE\tACTION\tNEW_EVENT_ID\tREASON")
	counts := map[redrive.Action]int{}
	for _, r := range results {
		counts[r.Action]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.OrderID, r.Source, r.Stage, r.Action, r.NewEventID, r.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d orders: %d re-driven, %d would be re-driven (dry run), %d already shipped, %d skipped\n",
		len(results), counts[redrive.ActionRedrive], counts[redrive.ActionWouldDrive], counts[redrive.ActionSkipShipped], counts[redrive.ActionSkip])
	return err
}
