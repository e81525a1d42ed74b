package ctl

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fulfill/pipeline/internal/tally"
)

// shopsCmd is fulfillctl shops: each shop's orders by stage, its lag and its
// state at the shippers.
func shopsCmd(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "shops", "[--shop S] [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	shop := fs.shopFlag("the figures")
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
	shops := rep.Shops
	if shops == nil {
		shops = []tally.ShopStatus{}
	}
	if *asJSON {
		return writeJSON(e.Stdout, shops)
	}
	return printShops(e.Stdout, shops, time.Now())
}

// printShops writes one line per shop.
func printShops(w io.Writer, shops []tally.ShopStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHOP\tRECEIVED\tSHIPPED\tFAILED\tIN_FLIGHT\tLAST_PUSH\tSTATE")
	trouble := 0
	for _, s := range shops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Shop, s.Received, s.Shipped, s.Failed, s.InFlight, lastPush(s, now), shopState(s, now))
		if s.State != "ok" {
			trouble++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s, %d backed off by the shippers (their orders are parked and go out once the platform answers again)\n",
		plural(len(shops), "shop"), trouble)
	return err
}

// lastPush says how long ago a shop's last push came, "-" for none.
func lastPush(s tally.ShopStatus, now time.Time) string {
	if s.LastPush.IsZero() {
		return "-"
	}
	return now.Sub(s.LastPush).Round(time.Second).String() + " ago"
}

// shopState says a shop's state for people.
func shopState(s tally.ShopStatus, now time.Time) string {
	if s.State == "ok" || s.State == "" {
		return "ok"
	}
	what := "backing off"
	if s.State == "token_refused" {
		what = "token refused"
	}
	return fmt.Sprintf("%s for %s (errcode %d, %s)", what, now.Sub(s.Since).Round(time.Second), s.Errcode, plural(s.Replicas, "shipper"))
}
