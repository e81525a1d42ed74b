package ctl

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/tally"
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
	stage, ok := inputStage(*stageName)
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
	d, err := newDriver(ctx, js, *dry)
	if err != nil {
		return err
	}
	filters := []string{events.FilterSubject(stage)}
	if len(ids) > 0 {
		filters = filters[:0]
		for _, id := range ids {
			f, err := events.OrderFilter(stage, id)
			if err != nil {
				return fmt.Errorf("%w: --order-id: %v", ErrUsage, err)
			}
			filters = append(filters, f)
		}
	}
	// The latest input event of each order in the window is re-driven once.
	latest := map[string]*events.Envelope{}
	var order []string
	err = scan(ctx, d.stream, filters, since, until, func(env *events.Envelope, redrive bool) {
		if redrive {
			return // replay re-drives original events, so running it twice is a no-op
		}
		if *source != "" && string(env.Source) != *source {
			return
		}
		if _, ok := latest[env.OrderID]; !ok {
			order = append(order, env.OrderID)
		}
		latest[env.OrderID] = env
	})
	if err != nil {
		return err
	}
	results := make([]driveResult, 0, len(order))
	for _, id := range order {
		orig := latest[id]
		r, err := d.drive(ctx, orig, "replay:"+orig.ID)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	return printResults(e.Stdout, results, *asJSON)
}

// scan delivers every decodable event on filters stored within [since,
// until]; redrive tells copies made by replay or re-drive from originals.
func scan(ctx context.Context, s jetstream.Stream, filters []string, since, until time.Time, fn func(env *events.Envelope, redrive bool)) error {
	return tally.Scan(ctx, s, filters, since, until, func(m jetstream.Msg, _ *jetstream.MsgMetadata) {
		if env, err := events.Decode(m.Data()); err == nil {
			fn(env, m.Headers().Get(events.HeaderRedriveOf) != "")
		}
	})
}
