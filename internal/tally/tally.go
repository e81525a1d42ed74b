// Package tally reads the ORDERS stream and says where every order is:
// the figures behind fulfillctl's progress, status, dlq and summaries, and
// the end-to-end tests' assertions. It reads the stream, not any process's
// counters, so it shows the same for one process and for a cluster.
package tally

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/pkg/events"
)

// Order is what the stream says of one order.
type Order struct {
	Shop    string
	OrderID string
	Source  events.Source
	// Counts of events per stage.
	Received, Enriched, Shipped, Failed, Pushes int
	// Via is how the order's first received event came in (events.ViaPoll,
	// ViaPush, ViaAPI; "" for events that predate it).
	Via string
	// Latest is the stage of the latest terminal event ("" if none).
	Latest events.Stage
	// LastFailed is the payload of the latest failed event, and
	// LastFailedEvent its envelope.
	LastFailed      *events.Failed
	LastFailedEvent *events.Envelope
	// LastTerminalAt is when the latest terminal event was stored.
	LastTerminalAt time.Time
	// Terminals lists the terminal events in stream order.
	Terminals []*events.Envelope
}

// Tally is the state of every order found.
type Tally struct {
	// Orders are keyed by events.OrderKey(shop, order id): two shops may
	// use one order id.
	Orders map[string]*Order
	// Messages counts messages per stage; DeadLetters those on the
	// dead-letter subject; Undecodable those whose body did not parse.
	Messages    map[events.Stage]int
	DeadLetters int
	Undecodable int
	// FirstReceivedAt and LastTerminalAt are the stream timestamps of the
	// first received event and of the last terminal event.
	FirstReceivedAt, LastTerminalAt time.Time
	LastSeq                         uint64
}

// Terminal counts orders whose latest terminal event is of stage.
func (t *Tally) Terminal(stage events.Stage) int {
	n := 0
	for _, o := range t.Orders {
		if o.Latest == stage {
			n++
		}
	}
	return n
}

// FailedOrders lists orders whose latest terminal event is failed, oldest
// failure first.
func (t *Tally) FailedOrders() []*Order {
	var out []*Order
	for _, o := range t.Orders {
		if o.Latest == events.StageFailed {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastTerminalAt.Before(out[j].LastTerminalAt) })
	return out
}

// Read scans the whole stream, up to the last message present when it
// starts.
func Read(ctx context.Context, js jetstream.JetStream) (*Tally, error) {
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	t := &Tally{Orders: map[string]*Order{}, Messages: map[events.Stage]int{}}
	err = Scan(ctx, s, nil, time.Time{}, time.Time{}, func(m jetstream.Msg, md *jetstream.MsgMetadata) {
		t.add(m.Subject(), m.Data(), md.Timestamp)
		t.LastSeq = md.Sequence.Stream
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Scan delivers the messages on filters (all when empty) stored within
// [since, until] (zero values: unbounded), up to the last message present
// when it starts, in stream order.
func Scan(ctx context.Context, s jetstream.Stream, filters []string, since, until time.Time, fn func(jetstream.Msg, *jetstream.MsgMetadata)) error {
	return scan(ctx, s, Window{Since: since, Until: until}, filters, fn)
}

// Window bounds a scan by stream time or by stream sequence (zero values:
// unbounded).
type Window struct {
	Since, Until   time.Time
	FromSeq, ToSeq uint64
}

// ScanWindow is Scan over a time or sequence window.
func ScanWindow(ctx context.Context, s jetstream.Stream, filters []string, w Window, fn func(jetstream.Msg, *jetstream.MsgMetadata)) error {
	return scan(ctx, s, w, filters, fn)
}

func scan(ctx context.Context, s jetstream.Stream, w Window, filters []string, fn func(jetstream.Msg, *jetstream.MsgMetadata)) error {
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	if w.ToSeq > 0 {
		last = min(last, w.ToSeq)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case w.FromSeq > 0:
		if w.FromSeq > last {
			return nil
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, w.FromSeq
	case !w.Since.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &w.Since
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	// An ordered consumer with nothing left to deliver just waits: ask
	// how much there is first and stop there.
	cinfo, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	defer it.Stop()
	for remaining := cinfo.NumPending; remaining > 0; remaining-- {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("read stream: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read stream: %w", err)
		}
		if md.Sequence.Stream > last || (!w.Until.IsZero() && md.Timestamp.After(w.Until)) {
			return nil
		}
		fn(m, md)
		if md.Sequence.Stream == last {
			return nil
		}
	}
	return nil
}

func (t *Tally) add(subject string, data []byte, at time.Time) {
	if subject == events.DeadLetterSubject {
		t.DeadLetters++
		return
	}
	stage, source, shop, orderID, err := events.ParseSubject(subject)
	if err != nil {
		t.Undecodable++
		return
	}
	t.Messages[stage]++
	key := events.OrderKey(shop, orderID)
	o := t.Orders[key]
	if o == nil {
		o = &Order{Shop: shop, OrderID: orderID, Source: source}
		t.Orders[key] = o
	}
	switch stage {
	case events.StageReceived:
		o.Received++
		if o.Via == "" {
			o.Via = viaOf(data)
		}
		if t.FirstReceivedAt.IsZero() || at.Before(t.FirstReceivedAt) {
			t.FirstReceivedAt = at
		}
	case events.StageEnriched:
		o.Enriched++
	case events.StagePush:
		o.Pushes++
	case events.StageShipped, events.StageFailed:
		env, err := events.Decode(data)
		if err != nil {
			t.Undecodable++
		}
		if stage == events.StageShipped {
			o.Shipped++
		} else {
			o.Failed++
			if env != nil {
				var f events.Failed
				if env.DecodeData(&f) == nil {
					o.LastFailed, o.LastFailedEvent = &f, env
				}
			}
		}
		o.Latest, o.LastTerminalAt = stage, at
		if env != nil {
			o.Terminals = append(o.Terminals, env)
		}
		if at.After(t.LastTerminalAt) {
			t.LastTerminalAt = at
		}
	}
}

// viaOf finds a received event's via without decoding it: the tally reads
// every event, often. Inside a JSON string a quote is escaped, so the
// literal can only be the field itself.
func viaOf(data []byte) string {
	for _, via := range []string{events.ViaPoll, events.ViaPush, events.ViaAPI} {
		if bytes.Contains(data, []byte(`"via":"`+via+`"`)) {
			return via
		}
	}
	return ""
}

// Watch reads the stream every interval until cond holds for a reading,
// and returns that reading; it returns the last reading and ctx's error if
// ctx ends first. The stream is the only place every replica's outcome is
// visible, so watching it is how an operator or a test waits for orders.
func Watch(ctx context.Context, js jetstream.JetStream, interval time.Duration, cond func(*Tally) bool) (*Tally, error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last *Tally
	for {
		t, err := Read(ctx, js)
		if err == nil {
			last = t
			if cond(t) {
				return t, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-tick.C:
		}
	}
}

// Order is what the stream says of the shop's order id, or nil.
func (t *Tally) Order(shop, orderID string) *Order { return t.Orders[events.OrderKey(shop, orderID)] }

// AllTerminal reports whether every one of the orders (events.OrderKey
// keys) has a terminal event.
func (t *Tally) AllTerminal(keys []string) bool {
	for _, id := range keys {
		if o := t.Orders[id]; o == nil || o.Latest == "" {
			return false
		}
	}
	return true
}
