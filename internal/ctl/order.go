package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
)

// order is fulfillctl order ID: where is this order? Its whole history from
// the stream, its state, and what to do next.
func order(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "order", "ORDER_ID [--shop S] [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	shop := fs.String("shop", "", "the order's shop (needed only when several shops use the id)")
	// The id comes first, as people type it; flags may follow.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("%w: order needs an order id", ErrUsage)
	}
	if err := events.ValidateOrderID(id); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if err := checkShop(*shop); err != nil {
		return err
	}
	nc, js, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer nc.Close()
	h, err := tally.ReadHistory(ctx, js, *shop, id)
	if err != nil {
		return err
	}
	next := nextStep(h)
	if *asJSON {
		if err := writeJSON(e.Stdout, struct {
			*tally.History
			Next string `json:"next"`
		}{h, next}); err != nil {
			return err
		}
	} else if err := printHistory(e.Stdout, h, next); err != nil {
		return err
	}
	if h.State == tally.StateUnknown {
		return fmt.Errorf("%w: order %s has no event in the stream", ErrNotDone, id)
	}
	return nil
}

// printHistory writes the history as a table, the state and the next step.
func printHistory(w io.Writer, h *tally.History, next string) error {
	if h.Shop != "" {
		fmt.Fprintf(w, "Order %s of shop %s: %s\n", h.OrderID, h.Shop, h.State)
	} else {
		fmt.Fprintf(w, "Order %s: %s\n", h.OrderID, h.State)
	}
	if len(h.Steps) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tOCCURRED_AT\tSTAGE\tSOURCE\tEVENT_ID\tDETAIL")
		for _, s := range h.Steps {
			at, id := "", ""
			if s.Event != nil {
				at, id = s.Event.OccurredAt.UTC().Format(time.RFC3339), s.Event.ID
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.Seq, at, s.Stage, s.Source, id, detail(s))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\nNext: %s\n", next)
	return err
}

// detail is what a step says beyond its stage.
func detail(s tally.Step) string {
	var parts []string
	if s.Unreadable != "" {
		parts = append(parts, "unreadable: "+s.Unreadable)
	}
	if s.CopyOf != "" {
		parts = append(parts, "copy of "+s.CopyOf)
	}
	switch {
	case s.Failed != nil:
		f := s.Failed
		parts = append(parts, fmt.Sprintf("in %s, errcode %d, %s: %s", f.Stage, f.Errcode, plural(f.Attempts, "attempt"), f.Reason))
	case s.Shipped != nil && s.Shipped.Elsewhere:
		parts = append(parts, "delivered outside the pipeline (a channels_ec_order_deliver push): not sent by it")
	case s.Shipped != nil:
		sh := s.Shipped
		d := fmt.Sprintf("waybill %s of %s, %s", sh.WaybillID, sh.DeliveryID, plural(sh.Attempts, "attempt"))
		if sh.AlreadyShipped {
			d += ", already shipped (109001)"
		}
		parts = append(parts, d)
	case s.Event != nil && s.Stage == events.StageEnriched:
		var d events.Enriched
		if s.Event.DecodeData(&d) == nil {
			parts = append(parts, fmt.Sprintf("waybill %s of %s", d.WaybillID, d.DeliveryID))
		}
	case s.Event != nil && s.Stage == events.StageReceived:
		var d events.Received
		if s.Event.DecodeData(&d) == nil {
			p := fmt.Sprintf("carrier %s, %s", d.DeliveryID, plural(len(d.Products), "product"))
			if d.Via != "" {
				p += ", by " + d.Via
			}
			parts = append(parts, p)
		}
	case s.Event != nil && s.Stage == events.StagePush:
		var d events.Push
		if s.Event.DecodeData(&d) == nil {
			parts = append(parts, pushDetail(d))
		}
	}
	return strings.Join(parts, "; ")
}

// pushDetail says what a pushed order message was.
func pushDetail(d events.Push) string {
	switch d.Event {
	case "channels_ec_order_cancel":
		return fmt.Sprintf("pushed: cancelled (cancel_type %d)", d.CancelType)
	case "channels_ec_order_ext_info_update":
		switch d.ExtType {
		case 2:
			return "pushed: the buyer changed the address (ext_info_update type 2)"
		case 7:
			return "pushed: the buyer urges shipment (ext_info_update type 7)"
		}
		return fmt.Sprintf("pushed: order information changed (ext_info_update type %d)", d.ExtType)
	}
	return "pushed: " + strings.TrimPrefix(d.Event, "channels_ec_order_")
}

// nextStep says what an operator does about an order in its state.
func nextStep(h *tally.History) string {
	// The order's id, with its shop when that is not the default one, as
	// the commands below take it.
	id := h.OrderID
	if h.Shop != "" && h.Shop != events.DefaultShop {
		id += " --shop " + h.Shop
	}
	var lastFailed *events.Failed
	var firstAt time.Time
	for _, s := range h.Steps {
		if s.Failed != nil {
			lastFailed = s.Failed
		}
		if firstAt.IsZero() && s.Event != nil {
			firstAt = s.StoredAt
		}
	}
	since := firstAt.UTC().Format(time.RFC3339)
	switch h.State {
	case tally.StateShipped:
		return "nothing: the order is shipped."
	case tally.StateFailed:
		if lastFailed.Cancelled() {
			return fmt.Sprintf("nothing: the order was cancelled on the platform (%s); it is never sent.", lastFailed.Reason)
		}
		reason := "see the failed event above"
		if lastFailed != nil && lastFailed.Reason != "" {
			reason = lastFailed.Reason
		}
		if !strings.Contains(reason, "dlq redrive") {
			reason += "; once the cause is fixed: fulfillctl dlq redrive --order-id " + id
		}
		return fmt.Sprintf("it failed in %s: %s.", failedIn(lastFailed), reason)
	case tally.StateRedriven:
		return "it failed and was re-driven: the copy is on its way; run fulfillctl order " + id + " again to follow it."
	case tally.StateReceived:
		return fmt.Sprintf("it waits for the enricher (fulfillctl status shows its lag). If it stays here: fulfillctl replay --stage enricher --order-id %s --since %s", id, since)
	case tally.StateEnriched:
		return fmt.Sprintf("it waits for the shipper: a delivery/send under way, backing off, or parked while the platform waits on the merchant (errcodes 45009, 108009, 606049, 10020115, 10020276). If it stays here longer than SHIP_WAIT_DELAY: fulfillctl replay --stage shipper --order-id %s --since %s", id, since)
	}
	return "no event of this order is in the stream: it was never received, or it is older than the stream's max age. Check it in the shop back office, or post it to POST /v1/orders."
}

func failedIn(f *events.Failed) string {
	if f == nil || f.Stage == "" {
		return "the pipeline"
	}
	return string(f.Stage)
}
