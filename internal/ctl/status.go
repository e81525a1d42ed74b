package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fulfill/pipeline/internal/tally"
)

func status(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "status", "[--shop S] [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	shop := fs.shopFlag("stage and order figures")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	if err := checkShop(*shop); err != nil {
		return err
	}
	nc, js, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer nc.Close()
	rep, err := tally.Status(ctx, js, *shop)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.Stdout, rep)
	}
	return printStatus(e.Stdout, rep)
}

// printStatus writes the report for people.
func printStatus(w io.Writer, r *tally.StatusReport) error {
	s := r.Stream
	leader := ""
	if s.Leader != "" {
		leader = ", leader " + s.Leader
	}
	fmt.Fprintf(w, "Stream %s: %d messages, %s, seq %d..%d, replicas %d%s, health: %s\n",
		s.Name, s.Messages, humanBytes(s.Bytes), s.FirstSeq, s.LastSeq, s.Replicas, leader, s.Health)
	if !s.LastTS.IsZero() {
		fmt.Fprintf(w, "  first %s, last %s\n", s.FirstTS.UTC().Format(time.RFC3339), s.LastTS.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tMESSAGES\tORDERS\tUNUSABLE")
	for _, st := range r.Stages {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", st.Stage, st.Messages, st.Orders, st.Unusable)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nOrders shipped more than once: %d\n", r.ShippedTwice)
	fmt.Fprintf(w, "At the shipper (enriched, no terminal event yet): %d, of them %d for more than %s (parked by the platform's waiting codes, or stuck)",
		r.AtShipper, r.ParkedCount, tally.ParkedAfter)
	if len(r.Parked) > 0 {
		fmt.Fprintf(w, ": %s (fulfillctl order ID says why)", strings.Join(r.Parked, " "))
	}
	fmt.Fprintln(w)
	var trouble []string
	for _, sh := range r.Shops {
		if sh.State != "ok" && sh.State != "" {
			trouble = append(trouble, sh.Shop+" ("+shopState(sh, time.Now())+")")
		}
	}
	if len(trouble) > 0 {
		fmt.Fprintf(w, "Shops backed off by the shippers: %s (fulfillctl shops)\n", strings.Join(trouble, ", "))
	}
	var quiet []string
	for _, sh := range r.Shops {
		if !sh.LastPush.IsZero() && time.Since(sh.LastPush) > tally.PushQuiet {
			quiet = append(quiet, fmt.Sprintf("%s (last %s ago)", sh.Shop, time.Since(sh.LastPush).Round(time.Minute)))
		}
	}
	if len(quiet) > 0 {
		fmt.Fprintf(w, "Pushes stopped arriving for: %s; polling still finds their orders, every INGEST_POLL_INTERVAL (check the shop's 消息推送 page)\n", strings.Join(quiet, ", "))
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONSUMER\tFILTER\tPENDING\tACK_PENDING\tREDELIVERED\tWAITING\tLAST_ACTIVE")
	for _, c := range r.Consumers {
		last := "never"
		if !c.LastActive.IsZero() {
			last = time.Since(c.LastActive).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", c.Name, c.Filter, c.Pending, c.AckPending, c.Redelivered, c.Waiting, last)
	}
	return tw.Flush()
}

func humanBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
