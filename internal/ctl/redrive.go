package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

// Actions a re-drive reports per order.
const (
	actionRedrive     = "redrive"
	actionWouldDrive  = "would-redrive"
	actionSkipShipped = "skip: already shipped"
	actionSkip        = "skip"
)

// driveResult is one line of a replay or re-drive report.
type driveResult struct {
	OrderID     string `json:"order_id"`
	Source      string `json:"source"`
	Stage       string `json:"stage"`
	Action      string `json:"action"`
	Reason      string `json:"reason,omitempty"`
	Original    string `json:"original_event_id,omitempty"`
	NewEventID  string `json:"new_event_id,omitempty"`
	OriginalSeq uint64 `json:"original_seq,omitempty"`
}

// driver publishes new copies of input events so a stage processes them
// again. The copies point back at the originals (causation_id) and keep the
// correlation id, so the stream holds the whole history.
type driver struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	record *pipeline.OrderRecord
	pub    *pipeline.Publisher
	dryRun bool
	now    time.Time
}

func newDriver(ctx context.Context, js jetstream.JetStream, dryRun bool) (*driver, error) {
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	return &driver{js: js, stream: s, record: pipeline.NewOrderRecord(s), pub: pipeline.NewPublisher(js),
		dryRun: dryRun, now: time.Now()}, nil
}

// drive re-publishes orig unless its order is already shipped. key makes the
// copy's Nats-Msg-Id deterministic, so running the same command twice in a
// row publishes it once.
func (d *driver) drive(ctx context.Context, orig *events.Envelope, key string) (driveResult, error) {
	r := driveResult{OrderID: orig.OrderID, Source: string(orig.Source), Stage: string(orig.Stage()), Original: orig.ID}
	rec, err := d.record.Shipped(ctx, orig.OrderID)
	if err != nil {
		return r, err
	}
	if rec != nil {
		r.Action, r.Reason = actionSkipShipped, "shipped by event "+rec.ID
		return r, nil
	}
	cp, err := events.New(orig.Stage(), orig.Source, orig.OrderID, json.RawMessage(orig.Data), orig, key, d.now)
	if err != nil {
		return r, err
	}
	r.NewEventID = cp.ID
	if last, err := d.lastEvent(ctx, orig.Stage(), orig.OrderID); err != nil {
		return r, err
	} else if last != nil && last.ID == cp.ID {
		r.Action, r.Reason = actionSkip, "already re-driven by an earlier run of the same command"
		return r, nil
	}
	if d.dryRun {
		r.Action = actionWouldDrive
		return r, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := cp.Msg()
	if err != nil {
		return r, err
	}
	m.Header.Set(events.HeaderRedriveOf, orig.ID)
	if err := d.pub.PublishMsgs(pctx, m); err != nil {
		return r, fmt.Errorf("re-drive %s: %w", orig.OrderID, err)
	}
	r.Action = actionRedrive
	return r, nil
}

// lastEvent is the order's latest event of stage, or nil.
func (d *driver) lastEvent(ctx context.Context, stage events.Stage, orderID string) (*events.Envelope, error) {
	env, _, err := d.record.Last(ctx, stage, orderID)
	return env, err
}

// printResults writes the report as a table or as JSON.
func printResults(w io.Writer, results []driveResult, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if results == nil {
			results = []driveResult{}
		}
		return enc.Encode(results)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER_ID\tSOURCE\tSTAGE\tACTION\tNEW_EVENT_ID\tREASON")
	counts := map[string]int{}
	for _, r := range results {
		counts[r.Action]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.OrderID, r.Source, r.Stage, r.Action, r.NewEventID, r.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d orders: %d re-driven, %d would be re-driven (dry run), %d already shipped, %d skipped\n",
		len(results), counts[actionRedrive], counts[actionWouldDrive], counts[actionSkipShipped], counts[actionSkip])
	return err
}
