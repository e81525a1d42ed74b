package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/pkg/events"
)

// Publisher publishes events and returns only once JetStream has stored
// them, so a stage can ack its input afterwards and never lose an order.
type Publisher struct {
	js jetstream.JetStream
	// OnPublished is told of each event JetStream acknowledged (metrics).
	OnPublished func(stage events.Stage, shop string)
	// OnStored, if set, is told of each message JetStream acknowledged,
	// body included (metrics that read the payload: failed events by
	// errcode).
	OnStored func(m *nats.Msg)
	// RetryWait is the first pause after a failed publish; the pauses grow
	// (with jitter) to MaxRetryWait, so a long NATS outage is not hammered
	// and a short one is left quickly.
	RetryWait    time.Duration
	MaxRetryWait time.Duration
	// GiveUpWhenFull answers ErrStreamFull at once when the stream is full,
	// for a caller that has someone to tell (the order API answers 503);
	// otherwise a full stream is waited out like any passing failure.
	GiveUpWhenFull bool
}

// NewPublisher publishes through js.
func NewPublisher(js jetstream.JetStream) *Publisher {
	return &Publisher{js: js, RetryWait: 250 * time.Millisecond, MaxRetryWait: 2 * time.Second}
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
// Nats-Msg-Id header so re-sending is safe). It fails if any of them could
// not be stored; PublishEach says which.
func (p *Publisher) PublishMsgs(ctx context.Context, msgs ...*nats.Msg) error {
	var failed []error
	for _, err := range p.PublishEach(ctx, msgs...) {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("publish %d of %d events: %w", len(failed), len(msgs), errors.Join(failed...))
	}
	return nil
}

// PublishEach sends every message asynchronously (in parallel), waits for
// the acknowledgements and re-sends those that failed, with their same
// Nats-Msg-Id, until ctx ends. It returns one error per message: nil once
// JetStream stored it; a refusal that would repeat on every attempt (over
// max payload, a bad subject, ErrDecided for an ExpectLast conflict) at
// once; the last error otherwise.
func (p *Publisher) PublishEach(ctx context.Context, msgs ...*nats.Msg) []error {
	errs := make([]error, len(msgs))
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval: p.RetryWait, RandomizationFactor: 0.2, Multiplier: 2,
		MaxInterval: max(p.MaxRetryWait, p.RetryWait), Stop: backoff.Stop, Clock: backoff.SystemClock,
	}
	b.Reset()
	for attempt := 1; ; attempt++ {
		pending = p.round(ctx, msgs, pending, errs)
		if len(pending) == 0 {
			return errs
		}
		select {
		case <-ctx.Done():
			for _, i := range pending {
				errs[i] = fmt.Errorf("publish %s (attempt %d): %w (last error: %w)", msgs[i].Subject, attempt, ctx.Err(), errs[i])
			}
			return errs
		case <-time.After(b.NextBackOff()):
		}
	}
}

// PublishAck publishes one message and waits for its acknowledgement,
// re-sending it (same Nats-Msg-Id) after failures that may pass, until ctx
// ends. Its PubAck says whether JetStream had stored it already
// (Duplicate).
func (p *Publisher) PublishAck(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	b := backoff.WithContext(&backoff.ExponentialBackOff{
		InitialInterval: p.RetryWait, RandomizationFactor: 0.2, Multiplier: 2,
		MaxInterval: max(p.MaxRetryWait, p.RetryWait), Stop: backoff.Stop, Clock: backoff.SystemClock,
	}, ctx)
	var ack *jetstream.PubAck
	err := backoff.Retry(func() error {
		var err error
		ack, err = p.js.PublishMsg(ctx, m)
		switch {
		case err == nil:
			return nil
		case conflict(err):
			return backoff.Permanent(fmt.Errorf("%w: %w", ErrDecided, err))
		case full(err) && p.GiveUpWhenFull:
			return backoff.Permanent(fmt.Errorf("%w: %w", ErrStreamFull, err))
		case permanent(err):
			return backoff.Permanent(err)
		}
		return err
	}, b)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	p.published(m)
	return ack, nil
}

// round publishes msgs[i] once for every i of pending, records the outcome
// in errs and returns the indexes worth sending again.
func (p *Publisher) round(ctx context.Context, msgs []*nats.Msg, pending []int, errs []error) []int {
	futures := make([]jetstream.PubAckFuture, len(pending))
	var again []int
	settle := func(i int, err error) {
		switch {
		case err == nil:
			errs[i] = nil
			p.published(msgs[i])
		case conflict(err):
			errs[i] = fmt.Errorf("%w: %w", ErrDecided, err)
		case full(err) && p.GiveUpWhenFull:
			errs[i] = fmt.Errorf("%w: %w", ErrStreamFull, err)
		case permanent(err):
			errs[i] = err
		default:
			errs[i] = err
			again = append(again, i)
		}
	}
	for k, i := range pending {
		f, err := p.js.PublishMsgAsync(msgs[i])
		if err != nil {
			settle(i, err)
			continue
		}
		futures[k] = f
	}
	for k, f := range futures {
		if f == nil {
			continue
		}
		i := pending[k]
		select {
		case <-f.Ok():
			settle(i, nil)
		case err := <-f.Err():
			settle(i, err)
		case <-ctx.Done():
			errs[i] = ctx.Err()
			again = append(again, i)
		}
	}
	return again
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
	return p.StartMsg(m)
}

// StartMsg is Start for a prepared message (e.g. one with ExpectLast).
func (p *Publisher) StartMsg(m *nats.Msg) *Pending {
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
		case err := <-pd.f.Err():
			if conflict(err) {
				return fmt.Errorf("%w: %w", ErrDecided, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return pd.p.PublishEach(ctx, pd.msg)[0]
}

// published tells OnPublished and OnStored, if set, of a stored message.
func (p *Publisher) published(m *nats.Msg) {
	if p.OnPublished != nil {
		stage, _, shop, _, _ := events.ParseSubject(m.Subject)
		p.OnPublished(stage, shop)
	}
	if p.OnStored != nil {
		p.OnStored(m)
	}
}
