package bench

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/pkg/events"
)

// TestCounters: a counter counts each subject of its stages once, ignores the
// other stages, and is done at want, running atWant once just before.
func TestCounters(t *testing.T) {
	publish := []string{
		"orders.received.api.default.A",
		"orders.enriched.api.default.A",
		"orders.shipped.api.default.A",
		"orders.shipped.api.default.A", // again: counted once
		"orders.received.vvtool.default.B",
		"orders.failed.vvtool.default.B",
		"orders.logistics.vvtool.default.B",
		"orders.received.channels.default.C",
		"orders.shipped.channels.default.C",
	}
	tests := []struct {
		name  string
		count func(nc *nats.Conn, want int) (*counter, error)
		want  []string
	}{
		{"terminal", countTerminal,
			[]string{"orders.shipped.api.default.A", "orders.failed.vvtool.default.B", "orders.shipped.channels.default.C"}},
		{"received", func(nc *nats.Conn, want int) (*counter, error) {
			return countSubjects(nc, want, events.FilterSubject(events.StageReceived))
		}, []string{"orders.received.api.default.A", "orders.received.vvtool.default.B", "orders.received.channels.default.C"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, _ := jstest.Start(t)
			c, err := tt.count(nc, len(tt.want))
			if err != nil {
				t.Fatal(err)
			}
			// atWant runs under c.mu, in the subscription's goroutine.
			var atWant []int
			c.whenDone(func() {
				select {
				case <-c.done:
					t.Error("atWant ran after done was closed")
				default:
				}
				atWant = append(atWant, len(c.seen))
			})
			for _, subj := range publish {
				if err := nc.Publish(subj, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.wait(context.Background(), time.Minute); err != nil { // a failsafe
				t.Fatal(err)
			}
			// Other subjects come before the last wanted one: a counter that
			// counted them would be done before it saw all of want.
			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.seen) != len(tt.want) {
				t.Errorf("counted %v, want %v", c.seen, tt.want)
			}
			if len(atWant) != 1 || atWant[0] != len(tt.want) {
				t.Errorf("atWant ran at counts %v, want once at %d", atWant, len(tt.want))
			}
			for _, s := range tt.want {
				if !c.seen[s] {
					t.Errorf("%s not counted", s)
				}
			}
		})
	}
}

// TestStoredAt reads when the stream stored an order's event of one stage,
// whatever its source, and not another order's.
func TestStoredAt(t *testing.T) {
	_, js, s := jstest.StartStream(t)
	ctx := context.Background()
	for _, subj := range []string{"orders.received.channels.default.A1", "orders.received.api.default.A2", "orders.shipped.channels.default.A1"} {
		if _, err := js.Publish(ctx, subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		stage   events.Stage
		id      string
		subject string // whose stored time is wanted; "" for an error
	}{
		{events.StageReceived, "A1", "orders.received.channels.default.A1"},
		{events.StageReceived, "A2", "orders.received.api.default.A2"},
		{events.StageShipped, "A1", "orders.shipped.channels.default.A1"},
		{events.StageShipped, "A2", ""},
		{events.StageShipped, "A.1", ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.stage)+" "+tt.id, func(t *testing.T) {
			got, err := storedAt(ctx, s, tt.stage, tt.id)
			if tt.subject == "" {
				if err == nil {
					t.Errorf("storedAt = %v, want an error", got)
				}
				return
			}
			m, merr := s.GetLastMsgForSubject(ctx, tt.subject)
			if err != nil || merr != nil || !got.Equal(m.Time) {
				t.Errorf("storedAt = %v, %v; want %v (%v)", got, err, m.Time, merr)
			}
		})
	}
}
