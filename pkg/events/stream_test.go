package events_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/pkg/events"
)

func TestStreamConfig(t *testing.T) {
	c := events.StreamConfig(events.StreamLimits{Replicas: 3, MaxAge: 72 * time.Hour, MaxBytes: 1 << 30})
	if c.Name != "ORDERS" || events.StreamName != "ORDERS" {
		t.Errorf("Name = %q, want ORDERS", c.Name)
	}
	if len(c.Subjects) != 1 || c.Subjects[0] != "orders.>" {
		t.Errorf("Subjects = %v, want [orders.>]", c.Subjects)
	}
	if c.Retention != jetstream.LimitsPolicy {
		t.Errorf("Retention = %v, want limits (replay must stay possible)", c.Retention)
	}
	if c.Storage != jetstream.FileStorage {
		t.Errorf("Storage = %v, want file", c.Storage)
	}
	if c.Duplicates < 2*time.Minute {
		t.Errorf("Duplicates = %v, want >= 2m", c.Duplicates)
	}
	if c.Replicas != 3 || c.MaxAge != 72*time.Hour {
		t.Errorf("Replicas, MaxAge = %d, %v; want the arguments 3, 72h", c.Replicas, c.MaxAge)
	}
	if c.Discard != jetstream.DiscardNew || c.MaxBytes != 1<<30 {
		t.Errorf("Discard = %v, MaxBytes %d; want new and 1 GiB: a full stream refuses new events, it never drops stored orders", c.Discard, c.MaxBytes)
	}
	if c := events.StreamConfig(events.StreamLimits{MaxAge: time.Hour}); c.MaxBytes != -1 || c.Replicas != 1 {
		t.Errorf("no bound: MaxBytes %d, Replicas %d; want -1 (unlimited) and 1", c.MaxBytes, c.Replicas)
	}
	// Dead letters and every subject of the grammar are inside the stream.
	if !subjectMatches(c.Subjects[0], events.DeadLetterSubject) {
		t.Errorf("dead-letter subject %q is outside %v", events.DeadLetterSubject, c.Subjects)
	}
}

func TestConsumerConfig(t *testing.T) {
	tests := []struct {
		name   string
		filter string
	}{
		{events.ConsumerEnricher, "orders.received.>"},
		{events.ConsumerShipper, "orders.enriched.>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := events.ConsumerConfig(tt.name, 500, 0)
			if err != nil {
				t.Fatal(err)
			}
			if c.Durable != tt.name {
				t.Errorf("Durable = %q, want %q (replicas share the durable)", c.Durable, tt.name)
			}
			if c.FilterSubject != tt.filter {
				t.Errorf("FilterSubject = %q, want %q", c.FilterSubject, tt.filter)
			}
			if c.AckPolicy != jetstream.AckExplicitPolicy {
				t.Errorf("AckPolicy = %v, want explicit", c.AckPolicy)
			}
			if c.DeliverPolicy != jetstream.DeliverAllPolicy {
				t.Errorf("DeliverPolicy = %v, want all", c.DeliverPolicy)
			}
			if c.MaxAckPending != 500 {
				t.Errorf("MaxAckPending = %d, want the argument 500", c.MaxAckPending)
			}
			if c.AckWait != events.AckWait {
				t.Errorf("AckWait = %v, want the default %v", c.AckWait, events.AckWait)
			}
			if c.MaxDeliver != -1 {
				t.Errorf("MaxDeliver = %d, want unlimited (nothing dropped silently)", c.MaxDeliver)
			}
			if c.Name != "" && c.Name != tt.name {
				t.Errorf("Name = %q", c.Name)
			}
		})
	}
	if events.ConsumerEnricher != "enricher" || events.ConsumerShipper != "shipper" {
		t.Errorf("durable names %q, %q; want enricher, shipper", events.ConsumerEnricher, events.ConsumerShipper)
	}
}

func TestConsumerConfigAckWaitAndUnknownName(t *testing.T) {
	c, err := events.ConsumerConfig(events.ConsumerShipper, 10, 4*time.Second)
	if err != nil || c.AckWait != 4*time.Second {
		t.Fatalf("ConsumerConfig(shipper, 10, 4s) = AckWait %v, %v; want 4s", c.AckWait, err)
	}
	for _, name := range []string{"", "Shipper", "shipper2", "ingest"} {
		if c, err := events.ConsumerConfig(name, 10, 0); err == nil {
			t.Errorf("ConsumerConfig(%q) = %+v, want an error", name, c)
		}
	}
}

func mustConsumerConfig(t *testing.T, name string, maxAckPending int) jetstream.ConsumerConfig {
	t.Helper()
	c, err := events.ConsumerConfig(name, maxAckPending, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The definitions are accepted by a real server, and applying them twice
// (every replica does it at start) is not an error.
func TestStreamAndConsumersOnServer(t *testing.T) {
	js := startJetStream(t)
	ctx := t.Context()
	for range 2 {
		s, err := js.CreateOrUpdateStream(ctx, events.StreamConfig(events.StreamLimits{Replicas: 1, MaxAge: 168 * time.Hour}))
		if err != nil {
			t.Fatalf("CreateOrUpdateStream: %v", err)
		}
		for _, name := range []string{events.ConsumerEnricher, events.ConsumerShipper} {
			if _, err := s.CreateOrUpdateConsumer(ctx, mustConsumerConfig(t, name, 256)); err != nil {
				t.Fatalf("CreateOrUpdateConsumer(%s): %v", name, err)
			}
		}
	}
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Retention != jetstream.LimitsPolicy || c.Storage != jetstream.FileStorage || c.Duplicates < 2*time.Minute || c.MaxAge != 168*time.Hour {
		t.Errorf("server kept %+v", c)
	}
	for name, filter := range map[string]string{events.ConsumerEnricher: "orders.received.>", events.ConsumerShipper: "orders.enriched.>"} {
		ci, err := s.Consumer(ctx, name)
		if err != nil {
			t.Fatalf("consumer %s: %v", name, err)
		}
		got := ci.CachedInfo().Config
		if got.Durable != name || got.FilterSubject != filter || got.AckPolicy != jetstream.AckExplicitPolicy {
			t.Errorf("consumer %s on server: durable %q filter %q ack %v", name, got.Durable, got.FilterSubject, got.AckPolicy)
		}
	}

	// The same envelope published twice is stored once (Nats-Msg-Id).
	e := mustNew(t, events.StageReceived, events.SourceAPI, "3704612354559743232", received(), nil, "", t0)
	for range 2 {
		m, err := e.Msg()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	info, err = s.Info(ctx, jetstream.WithSubjectFilter(e.Subject()))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[e.Subject()]; n != 1 {
		t.Errorf("%d messages on %s after publishing one event twice, want 1", n, e.Subject())
	}
	// The enricher's filter sees it; the shipper's does not. A consumer
	// counts a new message a moment after the publish is acknowledged, so
	// the count is read until it settles (or 10 s pass).
	for name, want := range map[string]uint64{events.ConsumerEnricher: 1, events.ConsumerShipper: 0} {
		c, err := s.Consumer(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var pending uint64
		for deadline := time.Now().Add(10 * time.Second); ; {
			ci, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pending = ci.NumPending; pending == want || time.Now().After(deadline) {
				break
			}
			<-time.After(10 * time.Millisecond)
		}
		if pending != want {
			t.Errorf("consumer %s pending = %d, want %d", name, pending, want)
		}
	}
}

func startJetStream(t *testing.T) jetstream.JetStream {
	_, js := jstest.Start(t)
	return js
}

// subjectMatches reports whether subject is matched by the NATS pattern.
func subjectMatches(pattern, subject string) bool {
	pt, st := splitTokens(pattern), splitTokens(subject)
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

func splitTokens(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
