package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
)

func dlq(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.Stdout, "Usage: fulfillctl dlq list|redrive [flags]   (fulfillctl dlq list --help)")
		if len(args) == 0 {
			return fmt.Errorf("%w: dlq needs list or redrive", ErrUsage)
		}
		return nil
	}
	switch args[0] {
	case "list":
		return dlqList(ctx, e, args[1:])
	case "redrive":
		return dlqRedrive(ctx, e, args[1:])
	}
	return fmt.Errorf("%w: unknown dlq command %q (want list or redrive)", ErrUsage, args[0])
}

// dlqFilter selects failed orders.
type dlqFilter struct {
	since   string
	source  string
	errcode string
}

func (f dlqFilter) match(o *tally.Order, since time.Time) bool {
	if !since.IsZero() && o.LastTerminalAt.Before(since) {
		return false
	}
	if f.source != "" && string(o.Source) != f.source {
		return false
	}
	if f.errcode != "" && (o.LastFailed == nil || strconv.Itoa(o.LastFailed.Errcode) != f.errcode) {
		return false
	}
	return true
}

// dlqEntry is one failed order in dlq list.
type dlqEntry struct {
	OrderID  string    `json:"order_id"`
	Source   string    `json:"source"`
	Stage    string    `json:"stage"`
	Errcode  int       `json:"errcode"`
	Errmsg   string    `json:"errmsg"`
	Attempts int       `json:"attempts"`
	Reason   string    `json:"reason"`
	EventID  string    `json:"event_id"`
	FailedAt time.Time `json:"failed_at"`
}

func failedOrders(ctx context.Context, e Env, f dlqFilter) ([]*tally.Order, error) {
	since, err := parseSince(f.since, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if f.errcode != "" {
		if _, err := strconv.Atoi(f.errcode); err != nil {
			return nil, fmt.Errorf("%w: --errcode %q is not a number", ErrUsage, f.errcode)
		}
	}
	nc, js, err := connect(ctx, e)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	tl, err := tally.Read(ctx, js)
	if err != nil {
		return nil, err
	}
	var out []*tally.Order
	for _, o := range tl.FailedOrders() {
		if f.match(o, since) {
			out = append(out, o)
		}
	}
	return out, nil
}

func dlqList(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "dlq list", "[--json] [--since D|T] [--source S] [--errcode C]")
	var f dlqFilter
	asJSON := fs.Bool("json", false, "print JSON")
	fs.StringVar(&f.since, "since", "", "only orders that failed since a duration ago (1h) or an RFC 3339 time")
	fs.StringVar(&f.source, "source", "", "only orders of this source (channels, vvtool, api)")
	fs.StringVar(&f.errcode, "errcode", "", "only orders that failed with this platform errcode")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	orders, err := failedOrders(ctx, e, f)
	if err != nil {
		return err
	}
	entries := make([]dlqEntry, 0, len(orders))
	for _, o := range orders {
		en := dlqEntry{OrderID: o.OrderID, Source: string(o.Source), FailedAt: o.LastTerminalAt}
		if o.LastFailed != nil {
			en.Stage, en.Errcode, en.Errmsg, en.Attempts, en.Reason = o.LastFailed.Stage, o.LastFailed.Errcode,
				o.LastFailed.Errmsg, o.LastFailed.Attempts, o.LastFailed.Reason
		}
		if o.LastFailedEvent != nil {
			en.EventID = o.LastFailedEvent.ID
		}
		entries = append(entries, en)
	}
	return printDLQ(e.Stdout, entries, *asJSON)
}

func printDLQ(w io.Writer, entries []dlqEntry, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER_ID\tSOURCE\tSTAGE\tERRCODE\tATTEMPTS\tFAILED_AT\tERRMSG")
	for _, en := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", en.OrderID, en.Source, en.Stage, en.Errcode, en.Attempts,
			en.FailedAt.UTC().Format(time.RFC3339), en.Errmsg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d failed orders\n", len(entries))
	return err
}

// inputStage is the stage whose events feed the stage that failed.
func inputStage(failedStage string) (events.Stage, bool) {
	switch failedStage {
	case "enricher":
		return events.StageReceived, true
	case "shipper":
		return events.StageEnriched, true
	}
	return "", false
}

func dlqRedrive(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "dlq redrive", "(--order-id ID… | --all) [--since D|T] [--source S] [--errcode C] [--dry-run] [--json]")
	var f dlqFilter
	var ids listFlag
	all := fs.Bool("all", false, "re-drive every failed order (that matches the filters)")
	dry := fs.Bool("dry-run", false, "print what would be re-driven, publish nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Var(&ids, "order-id", "re-drive this order (repeatable, or comma-separated)")
	fs.StringVar(&f.since, "since", "", "only orders that failed since a duration ago (1h) or an RFC 3339 time")
	fs.StringVar(&f.source, "source", "", "only orders of this source (channels, vvtool, api)")
	fs.StringVar(&f.errcode, "errcode", "", "only orders that failed with this platform errcode")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	if *all == (len(ids) > 0) {
		return fmt.Errorf("%w: dlq redrive needs exactly one of --order-id or --all", ErrUsage)
	}
	orders, err := failedOrders(ctx, e, f)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		var sel []*tally.Order
		for _, o := range orders {
			if want[o.OrderID] {
				sel = append(sel, o)
				delete(want, o.OrderID)
			}
		}
		for id := range want {
			fmt.Fprintf(e.Stderr, "order %s is not in the dead-letter list (not failed, or filtered out)\n", id)
		}
		orders = sel
	}
	nc, js, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer nc.Close()
	d, err := newDriver(ctx, js, *dry)
	if err != nil {
		return err
	}
	var results []driveResult
	for _, o := range orders {
		r, err := redriveOrder(ctx, d, o)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	return printResults(e.Stdout, results, *asJSON)
}

// redriveOrder sends a failed order through the stage that failed it again.
func redriveOrder(ctx context.Context, d *driver, o *tally.Order) (driveResult, error) {
	skip := driveResult{OrderID: o.OrderID, Source: string(o.Source), Action: actionSkip}
	if o.LastFailed == nil || o.LastFailedEvent == nil {
		skip.Reason = "the failed event could not be read"
		return skip, nil
	}
	skip.Stage = o.LastFailed.Stage
	if len(o.LastFailed.Raw) > 0 {
		skip.Reason = "unusable input (raw bytes kept in the failed event); fix the producer and publish the order again"
		return skip, nil
	}
	stage, ok := inputStage(o.LastFailed.Stage)
	if !ok {
		skip.Reason = "failed at " + o.LastFailed.Stage + "; post the order to POST /v1/orders to start it again"
		return skip, nil
	}
	orig, err := d.lastEvent(ctx, stage, o.OrderID)
	if err != nil {
		return skip, err
	}
	if orig == nil {
		skip.Reason = "its " + string(stage) + " event is no longer in the stream (older than STREAM_MAX_AGE?)"
		return skip, nil
	}
	return d.drive(ctx, orig, "redrive:"+o.LastFailedEvent.ID)
}
