package faulttest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
)

// Chains is what CheckChains found: how many orders were decided more than
// once, each time after a new input (a re-drive or replay copy of an order
// that had already failed), and how many input copies the stream holds.
type Chains struct {
	Orders        int
	Copies        int
	Redecided     int
	MaxShipped    int
	MaxTerminals  int
	TerminalsSeen int
}

// CheckChains reads every event of the orders keys (events.OrderKey) from
// the stream, in
// stream order, and asserts the exactly-once promise as the stream shows
// it: no order has more than one order.shipped event, and every terminal
// event after an order's first one follows an input event (received or
// enriched, an original or a copy) stored after the terminal before it. A
// copy of an order that was still in flight when the copy was made must
// add no terminal event; a copy of an order that had failed is a new
// attempt and adds exactly one.
func CheckChains(t testing.TB, js jetstream.JetStream, ids []string) Chains {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	type step struct {
		seq   uint64
		stage events.Stage
		copy  bool
	}
	chains := map[string][]step{}
	err = tally.Scan(ctx, s, nil, time.Time{}, time.Time{}, func(m jetstream.Msg, md *jetstream.MsgMetadata) {
		stage, _, shop, id, err := events.ParseSubject(m.Subject())
		key := events.OrderKey(shop, id)
		if err != nil || !want[key] {
			return
		}
		chains[key] = append(chains[id], step{md.Sequence.Stream, stage, m.Headers().Get(events.HeaderRedriveOf) != ""})
	})
	if err != nil {
		t.Fatal(err)
	}
	c := Chains{Orders: len(ids)}
	var problems []string
	for id, steps := range chains {
		shipped, terminals, inputSince := 0, 0, false
		var trail []string
		for _, st := range steps {
			trail = append(trail, fmt.Sprintf("%s@%d", st.stage, st.seq))
			switch st.stage {
			case events.StageReceived, events.StageEnriched:
				inputSince = true
				if st.copy {
					c.Copies++
				}
			case events.StageShipped, events.StageFailed:
				if terminals > 0 && !inputSince {
					problems = append(problems, fmt.Sprintf("%s: %s@%d follows the previous terminal event with no new input: %s", id, st.stage, st.seq, strings.Join(trail, " ")))
				}
				if st.stage == events.StageShipped {
					shipped++
				}
				terminals++
				inputSince = false
			}
		}
		if shipped > 1 {
			problems = append(problems, fmt.Sprintf("%s: %d shipped events: %s", id, shipped, strings.Join(trail, " ")))
		}
		if terminals > 1 {
			c.Redecided++
		}
		c.TerminalsSeen += terminals
		c.MaxShipped = max(c.MaxShipped, shipped)
		c.MaxTerminals = max(c.MaxTerminals, terminals)
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
		}
		t.Errorf("%d orders broke exactly once in the stream:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	return c
}
