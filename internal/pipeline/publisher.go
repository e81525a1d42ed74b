package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/pkg/events"
)

// Publisher publishes events and returns only once JetStream has stored
// them, so a stage can ack its input afterwards and never lose an order.
type Publisher struct {
	js jetstream.JetStream
	// OnPublished is told of each event JetStream acknowledged (metrics).
	OnPublished func(stage events.Stage)
	// RetryWait is the pause between attempts after a failed publish.
	RetryWait time.Duration
}

// NewPublisher publishes through js.
func NewPublisher(js jetstream.JetStream) *Publisher {
	return &Publisher{js: js, RetryWait: 250 * time.Millisecond}
}

// Publish sends every envelope asynchronously (in parallel), waits for all
// acknowledgements, and re-sends those that failed, with their same
// Nats-Msg-Id so JetStream keeps one copy, until ctx ends.
func (p *Publisher) Publish(ctx context.Context, envs ...*events.Envelope) error {
	msgs := make([]*nats.Msg, len(envs))
	for i, e := range envs {
		m, err := e.Msg()
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	return p.PublishMsgs(ctx, msgs...)
}

// PublishMsgs is Publish for prepared messages (which must carry a
// Nats-Msg-Id header so re-sending is safe).
func (p *Publisher) PublishMsgs(ctx context.Context, msgs ...*nats.Msg) error {
	pending := msgs
	for attempt := 1; ; attempt++ {
		failed, lastErr := p.round(ctx, pending)
		if len(failed) == 0 {
			return nil
		}
		if permanent(lastErr) {
			return fmt.Errorf("publish %d events: %w", len(failed), lastErr)
		}
		pending = failed
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish %d events (attempt %d): %w (last error: %v)", len(pending), attempt, ctx.Err(), lastErr)
		case <-time.After(p.RetryWait):
		}
	}
}

// round publishes msgs once and returns the ones that were not acknowledged.
func (p *Publisher) round(ctx context.Context, msgs []*nats.Msg) ([]*nats.Msg, error) {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	var failed []*nats.Msg
	var lastErr error
	for i, m := range msgs {
		f, err := p.js.PublishMsgAsync(m)
		if err != nil {
			failed, lastErr = append(failed, m), err
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
			p.published(msgs[i])
		case err := <-f.Err():
			failed, lastErr = append(failed, msgs[i]), err
		case <-ctx.Done():
			return append(failed, msgs[i:]...), ctx.Err()
		}
	}
	return failed, lastErr
}

// permanent errors would fail the same way on every attempt.
func permanent(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrInvalidMsg)
}

// Pending is a publish in flight, started by Start.
type Pending struct {
	p   *Publisher
	msg *nats.Msg
	f   jetstream.PubAckFuture
	err error
}

// Start sends env without waiting for JetStream's acknowledgement, so the
// caller can go on with other work; Wait then waits for it.
func (p *Publisher) Start(env *events.Envelope) *Pending {
	m, err := env.Msg()
	if err != nil {
		return &Pending{p: p, err: err}
	}
	pd := &Pending{p: p, msg: m}
	pd.f, pd.err = p.js.PublishMsgAsync(m)
	return pd
}

// Wait returns once JetStream stored the event; if the first send failed it
// re-sends (same Nats-Msg-Id) as Publish does, until ctx ends.
func (pd *Pending) Wait(ctx context.Context) error {
	if pd.msg == nil {
		return pd.err
	}
	if pd.err == nil {
		select {
		case <-pd.f.Ok():
			pd.p.published(pd.msg)
			return nil
		case <-pd.f.Err():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return pd.p.PublishMsgs(ctx, pd.msg)
}

// published tells OnPublished, if set, of a stored message.
func (p *Publisher) published(m *nats.Msg) {
	if p.OnPublished != nil {
		stage, _, _, _ := events.ParseSubject(m.Subject)
		p.OnPublished(stage)
	}
}
