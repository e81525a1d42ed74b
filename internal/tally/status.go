package tally

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/pkg/events"
)

// StatusReport is what fulfillctl status prints.
type StatusReport struct {
	Stream    StreamStatus     `json:"stream"`
	Stages    []StageStatus    `json:"stages"`
	Consumers []ConsumerStatus `json:"consumers"`
}

// StreamStatus is the ORDERS stream's state and health.
type StreamStatus struct {
	Name     string    `json:"name"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	FirstTS  time.Time `json:"first_ts"`
	LastTS   time.Time `json:"last_ts"`
	Replicas int       `json:"replicas"`
	Leader   string    `json:"leader,omitempty"`
	// Healthy is false when a replica is offline or lagging.
	Healthy bool   `json:"healthy"`
	Health  string `json:"health"`
}

// StageStatus counts a stage's messages and distinct orders.
type StageStatus struct {
	Stage    string `json:"stage"`
	Messages uint64 `json:"messages"`
	Orders   int    `json:"orders"`
}

// ConsumerStatus is one durable consumer's figures.
type ConsumerStatus struct {
	Name        string    `json:"name"`
	Filter      string    `json:"filter"`
	Pending     uint64    `json:"pending"`
	AckPending  int       `json:"ack_pending"`
	Redelivered int       `json:"redelivered"`
	Waiting     int       `json:"waiting"`
	LastActive  time.Time `json:"last_active,omitzero"`
}

// Status reads the stream's and the consumers' state: what fulfillctl
// status shows.
func Status(ctx context.Context, js jetstream.JetStream) (*StatusReport, error) {
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w (has a service started yet?)", events.StreamName, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	rep := &StatusReport{Stream: StreamStatus{
		Name: info.Config.Name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
		FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, FirstTS: info.State.FirstTime, LastTS: info.State.LastTime,
		Replicas: info.Config.Replicas, Healthy: true, Health: "ok",
	}}
	if c := info.Cluster; c != nil {
		rep.Stream.Leader = c.Leader
		for _, p := range c.Replicas {
			if !p.Current || p.Offline {
				rep.Stream.Healthy, rep.Stream.Health = false, fmt.Sprintf("replica %s offline or behind", p.Name)
			}
		}
		if c.Leader == "" {
			rep.Stream.Healthy, rep.Stream.Health = false, "no leader"
		}
	}
	subjects := append([]string{}, stageFilters()...)
	for _, f := range subjects {
		si, err := s.Info(ctx, jetstream.WithSubjectFilter(f))
		if err != nil {
			return nil, fmt.Errorf("stream %s subjects %s: %w", events.StreamName, f, err)
		}
		st := StageStatus{Stage: stageName(f), Orders: len(si.State.Subjects)}
		for _, n := range si.State.Subjects {
			st.Messages += n
		}
		if f == events.DeadLetterSubject {
			st.Orders = 0
		}
		rep.Stages = append(rep.Stages, st)
	}
	for _, name := range []string{events.ConsumerEnricher, events.ConsumerShipper} {
		c, err := s.Consumer(ctx, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
		cs := ConsumerStatus{Name: name, Filter: ci.Config.FilterSubject, Pending: ci.NumPending,
			AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting}
		if ci.Delivered.Last != nil {
			cs.LastActive = *ci.Delivered.Last
		}
		rep.Consumers = append(rep.Consumers, cs)
	}
	return rep, nil
}

func stageFilters() []string {
	out := make([]string, 0, len(events.Stages)+1)
	for _, st := range events.Stages {
		out = append(out, events.FilterSubject(st))
	}
	return append(out, events.DeadLetterSubject)
}

func stageName(filter string) string {
	for _, st := range events.Stages {
		if events.FilterSubject(st) == filter {
			return string(st)
		}
	}
	return "deadletter"
}
