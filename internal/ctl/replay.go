package ctl

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fulfill/pipeline/internal/redrive"
	"github.com/fulfill/pipeline/pkg/events"
)

func replay(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "replay", "--stage enricher|shipper (--since D|T [--until T] | --from-seq N [--to-seq M]) [--source S] [--shop S] [--order-id ID…] [--dry-run] [--json]")
	stageName := fs.String("stage", "", "the stage to re-drive: enricher (its input: received events) or shipper (enriched events)")
	sinceV := fs.String("since", "", "start of the window: a duration ago (1h) or an RFC 3339 time (this or --from-seq)")
	untilV := fs.String("until", "", "end of the window: an RFC 3339 time or a duration ago (default now)")
	fromSeq := fs.Uint64("from-seq", 0, "start of the window by stream sequence (instead of --since)")
	toSeq := fs.Uint64("to-seq", 0, "end of the sequence window (default the last)")
	source := fs.String("source", "", "only events of this source (channels, vvtool, api)")
	shop := fs.shopFlag("only events")
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
	w := redrive.Window{Stage: stage, Source: events.Source(*source), Shop: *shop, OrderIDs: ids, DryRun: *dry, FromSeq: *fromSeq, ToSeq: *toSeq}
	switch {
	case (*sinceV == "") == (*fromSeq == 0):
		return fmt.Errorf("%w: replay needs one window: --since (a time) or --from-seq (a stream sequence)", ErrUsage)
	case *fromSeq > 0 && *untilV != "", *sinceV != "" && *toSeq > 0:
		return fmt.Errorf("%w: replay takes --since with --until, or --from-seq with --to-seq", ErrUsage)
	case *toSeq > 0 && *toSeq < *fromSeq:
		return fmt.Errorf("%w: replay --to-seq %d is before --from-seq %d", ErrUsage, *toSeq, *fromSeq)
	case *sinceV != "":
		now := time.Now()
		var err error
		if w.Since, err = parseSince(*sinceV, now); err != nil {
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
		if w.Until, err = parseUntil(*untilV, now); err != nil {
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
		if !w.Until.After(w.Since) {
			return fmt.Errorf("%w: replay --until %s is not after --since %s", ErrUsage, w.Until.Format(time.RFC3339), w.Since.Format(time.RFC3339))
		}
	}
	if *source != "" && !events.Source(*source).Valid() {
		return fmt.Errorf("%w: --source %q: want channels, vvtool or api", ErrUsage, *source)
	}
	if err := checkShop(*shop); err != nil {
		return err
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
	results, err := r.Replay(ctx, w)
	if err != nil {
		return err
	}
	return printResults(e.Stdout, results, *asJSON)
}

// printResults writes a re-drive report as a table or as JSON.
func printResults(w io.Writer, results []redrive.Result, asJSON bool) error {
	if asJSON {
		if results == nil {
			results = []redrive.Result{}
		}
		return writeJSON(w, results)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHOP\tORDER_ID\tSOURCE\tINPUT_STAGE\tACTION\tNEW_EVENT_ID\tREASON")
	counts := map[redrive.Action]int{}
	for _, r := range results {
		counts[r.Action]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Shop, r.OrderID, r.Source, r.Stage, r.Action, r.NewEventID, r.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s: %d re-driven, %d would be re-driven (dry run), %d already shipped, %d skipped\n",
		plural(len(results), "order"), counts[redrive.ActionRedrive], counts[redrive.ActionWouldDrive], counts[redrive.ActionSkipShipped], counts[redrive.ActionSkip])
	return err
}
