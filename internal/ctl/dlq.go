package ctl

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fulfill/pipeline/internal/redrive"
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

// dlqFilter is the filter flags of dlq list and dlq redrive.
type dlqFilter struct {
	shop    string
	since   string
	source  string
	errcode string
}

// parse turns the flags into a redrive.Filter, or a usage error.
func (f dlqFilter) parse(now time.Time) (redrive.Filter, error) {
	var out redrive.Filter
	since, err := parseSince(f.since, now)
	if err != nil {
		return out, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if f.source != "" && !events.Source(f.source).Valid() {
		return out, fmt.Errorf("%w: --source %q: want channels, vvtool or api", ErrUsage, f.source)
	}
	if err := checkShop(f.shop); err != nil {
		return out, err
	}
	out.Since, out.Source, out.Shop = since, events.Source(f.source), f.shop
	if f.errcode != "" {
		code, err := strconv.Atoi(f.errcode)
		if err != nil {
			return out, fmt.Errorf("%w: --errcode %q is not a number", ErrUsage, f.errcode)
		}
		out.Errcode = &code
	}
	return out, nil
}

// dlqEntry is one failed order in dlq list.
type dlqEntry struct {
	Shop     string           `json:"shop"`
	OrderID  string           `json:"order_id"`
	Source   string           `json:"source"`
	FailedIn events.Component `json:"failed_in"`
	Errcode  int              `json:"errcode"`
	Errmsg   string           `json:"errmsg"`
	Attempts int              `json:"attempts"`
	Reason   string           `json:"reason"`
	EventID  string           `json:"event_id"`
	FailedAt time.Time        `json:"failed_at"`
}

func dlqList(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "dlq list", "[--json] [--shop S] [--since D|T] [--source S] [--errcode C]")
	var f dlqFilter
	asJSON := fs.Bool("json", false, "print JSON")
	fs.StringVar(&f.shop, "shop", "", "only orders of this shop (default: every shop)")
	fs.StringVar(&f.since, "since", "", "only orders that failed since a duration ago (1h) or an RFC 3339 time")
	fs.StringVar(&f.source, "source", "", "only orders of this source (channels, vvtool, api)")
	fs.StringVar(&f.errcode, "errcode", "", "only orders that failed with this platform errcode")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	filter, err := f.parse(time.Now())
	if err != nil {
		return err
	}
	nc, js, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer nc.Close()
	orders, err := redrive.Failed(ctx, js, filter)
	if err != nil {
		return err
	}
	entries := make([]dlqEntry, 0, len(orders))
	for _, o := range orders {
		en := dlqEntry{Shop: o.Shop, OrderID: o.OrderID, Source: string(o.Source), FailedAt: o.LastTerminalAt}
		if o.LastFailed != nil {
			en.FailedIn, en.Errcode, en.Errmsg, en.Attempts, en.Reason = o.LastFailed.Stage, o.LastFailed.Errcode,
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
		return writeJSON(w, entries)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHOP\tORDER_ID\tSOURCE\tFAILED_IN\tERRCODE\tATTEMPTS\tFAILED_AT\tERRMSG")
	for _, en := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", en.Shop, en.OrderID, en.Source, en.FailedIn, en.Errcode, en.Attempts,
			en.FailedAt.UTC().Format(time.RFC3339), en.Errmsg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", plural(len(entries), "failed order"))
	return err
}

func dlqRedrive(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "dlq redrive", "(--order-id ID… | --all) [--shop S] [--since D|T] [--source S] [--errcode C] [--dry-run] [--json]")
	var f dlqFilter
	var ids listFlag
	all := fs.Bool("all", false, "re-drive every failed order (that matches the filters)")
	dry := fs.Bool("dry-run", false, "print what would be re-driven, publish nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Var(&ids, "order-id", "re-drive this order (repeatable, or comma-separated)")
	fs.StringVar(&f.shop, "shop", "", "only orders of this shop (default: every shop)")
	fs.StringVar(&f.since, "since", "", "only orders that failed since a duration ago (1h) or an RFC 3339 time")
	fs.StringVar(&f.source, "source", "", "only orders of this source (channels, vvtool, api)")
	fs.StringVar(&f.errcode, "errcode", "", "only orders that failed with this platform errcode")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	if *all == (len(ids) > 0) {
		return fmt.Errorf("%w: dlq redrive needs exactly one of --order-id or --all", ErrUsage)
	}
	for _, id := range ids {
		if err := events.ValidateOrderID(id); err != nil {
			return fmt.Errorf("%w: --order-id: %v", ErrUsage, err)
		}
	}
	filter, err := f.parse(time.Now())
	if err != nil {
		return err
	}
	filter.OrderIDs = ids
	nc, js, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer nc.Close()
	orders, err := redrive.Failed(ctx, js, filter)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !slices.ContainsFunc(orders, func(o *tally.Order) bool { return o.OrderID == id }) {
			fmt.Fprintf(e.Stderr, "order %s is not in the dead-letter list (not failed, or filtered out)\n", id)
		}
	}
	r, err := redrive.New(ctx, js)
	if err != nil {
		return err
	}
	results, err := r.RedriveFailed(ctx, orders, *dry)
	if err != nil {
		return err
	}
	if err := printResults(e.Stdout, results, *asJSON); err != nil {
		return err
	}
	// Every order named must have been re-driven: a script re-driving a
	// list hears it when one was not.
	var missed []string
	for _, id := range ids {
		if !slices.ContainsFunc(results, func(r redrive.Result) bool {
			return r.OrderID == id && (r.Action == redrive.ActionRedrive || r.Action == redrive.ActionWouldDrive)
		}) {
			missed = append(missed, id)
		}
	}
	if len(missed) > 0 {
		return fmt.Errorf("%w: %s not re-driven: %s", ErrNotDone, plural(len(missed), "named order"), strings.Join(missed, ", "))
	}
	return nil
}
