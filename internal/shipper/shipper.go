package shipper

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

// Sender is the platform call the shipper makes.
type Sender interface {
	SendDelivery(ctx context.Context, req wechat.SendDeliveryRequest) error
}

// Options tune the shipper; see the SHIP_* variables.
type Options struct {
	Concurrency     int
	BackoffInitial  time.Duration
	BackoffMax      time.Duration
	MaxElapsed      time.Duration
	WaitDelay       time.Duration
	WaitMaxAttempts int
}

// Shipper consumes order.enriched and ships.
type Shipper struct {
	opts    Options
	sender  Sender
	pub     *pipeline.Publisher
	record  *pipeline.ShippedRecord
	locks   *pipeline.KeyLock
	log     zerolog.Logger
	metrics *service.Metrics
	now     func() time.Time
	done    chan completion
}

// New wires a shipper.
func New(opts Options, sender Sender, pub *pipeline.Publisher, record *pipeline.ShippedRecord, log zerolog.Logger, m *service.Metrics) *Shipper {
	return &Shipper{opts: opts, sender: sender, pub: pub, record: record, locks: pipeline.NewKeyLock(),
		log: log, metrics: m, now: time.Now}
}

// Run consumes until ctx ends, then stops pulling, naks what it has not
// started, lets calls in flight finish, and returns.
func (s *Shipper) Run(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(s.opts.Concurrency))
	if err != nil {
		return fmt.Errorf("consume %s: %w", events.ConsumerShipper, err)
	}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			it.Drain()
		case <-stopped:
		}
	}()
	defer close(stopped)

	// Workers hand finished orders to the completer, which acks each
	// input once its terminal event is stored: the worker is free for the
	// next order while JetStream acknowledges the publish.
	s.done = make(chan completion, 4*s.opts.Concurrency)
	completerDone := make(chan struct{})
	go func() { defer close(completerDone); s.complete() }()
	defer func() { close(s.done); <-completerDone }()

	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range s.opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range work {
				s.handle(ctx, msg)
			}
		}()
	}
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			break
		}
		if err != nil {
			// Heartbeats missed while NATS is away: the iterator re-pulls
			// by itself; pause so this loop does not spin.
			s.log.Warn().Err(err).Msg("pull from shipper consumer")
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		work <- msg
	}
	close(work)
	wg.Wait()
	return nil
}

// handle settles one message: it is acked only after its terminal event is
// stored, naked when it must come back, and terminated when unusable.
func (s *Shipper) handle(ctx context.Context, msg jetstream.Msg) {
	s.metrics.EventsIn.WithLabelValues(string(events.StageEnriched)).Inc()
	md, err := msg.Metadata()
	if err != nil {
		s.log.Error().Err(err).Str("subject", msg.Subject()).Msg("message without metadata")
		return
	}
	if md.NumDelivered > 1 {
		s.metrics.Redelivers.WithLabelValues(string(events.StageEnriched)).Inc()
	}
	env, data, err := decode(msg)
	if err != nil {
		s.pub.SetAside(context.Background(), msg, "shipper", err, s.now(), s.log)
		return
	}
	log := s.log.With().Str("order_id", env.OrderID).Str("event_id", env.ID).
		Str("correlation_id", env.CorrelationID).Uint64("delivered", md.NumDelivered).Logger()
	// Platform calls (up to the client's timeout each) and backoff can
	// outlast the ack wait: keep the message ours until it is settled.
	stopKeepAlive := pipeline.KeepAlive(msg, events.AckWait/3)
	defer stopKeepAlive()
	if ctx.Err() != nil {
		_ = msg.Nak()
		return
	}
	unlock, err := s.locks.Lock(ctx, env.OrderID)
	if err != nil {
		_ = msg.Nak()
		return
	}
	// The order stays locked until its outcome is settled (by the
	// completer, for a terminal event): a copy of the order arriving
	// meanwhile must see the shipped record, not race it.
	settled := false
	defer func() {
		if !settled {
			unlock()
		}
	}()

	// The call itself is not cut short by shutdown: a half-made call leaves
	// the order's state unknown. Waits between attempts are.
	callCtx := context.WithoutCancel(ctx)
	rec, err := s.record.Lookup(callCtx, env.OrderID)
	if err != nil {
		log.Warn().Err(err).Msg("shipped-record lookup failed; retrying later")
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if rec != nil {
		log.Info().Str("shipped_event_id", rec.ID).Msg("order already shipped; not sending again")
		if err := msg.Ack(); err != nil {
			log.Warn().Err(err).Msg("ack")
		}
		return
	}
	out, retry := s.ship(ctx, callCtx, md, env, data, log)
	if retry > 0 {
		_ = msg.NakWithDelay(retry)
		return
	}
	if out == nil {
		_ = msg.Nak()
		return
	}
	settled = true
	s.done <- completion{pending: s.pub.Start(out), msg: msg, unlock: unlock, log: log, occurred: env.OccurredAt}
}

// ship calls delivery/send until the platform gives an answer that ends the
// order, and returns the terminal event, or a redelivery delay, or neither
// (nak now: shutting down).
func (s *Shipper) ship(ctx, callCtx context.Context, md *jetstream.MsgMetadata, env *events.Envelope, data *events.Enriched, log zerolog.Logger) (*events.Envelope, time.Duration) {
	req := request(env.OrderID, data)
	b := &backoff.ExponentialBackOff{
		InitialInterval:     s.opts.BackoffInitial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         s.opts.BackoffMax,
		MaxElapsedTime:      s.opts.MaxElapsed,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	prior := int(md.NumDelivered) - 1
	for calls := 1; ; calls++ {
		attempts := prior + calls
		err := s.sender.SendDelivery(callCtx, req)
		code, class := wechat.Code(err), wechat.Classify(err)
		switch class {
		case wechat.ClassOK, wechat.ClassAlreadyDone:
			shipped := events.Shipped{DeliveryID: data.DeliveryID, WaybillID: data.WaybillID,
				Attempts: attempts, AlreadyShipped: class == wechat.ClassAlreadyDone}
			out, err := events.New(events.StageShipped, env.Source, env.OrderID, shipped, env, "", s.now())
			if err != nil {
				return s.failed(env, code, err, attempts, "could not build the shipped event: "+err.Error(), log), 0
			}
			log.Info().Int("attempts", attempts).Bool("already_shipped", shipped.AlreadyShipped).Msg("shipped")
			return out, 0
		case wechat.ClassWait:
			if int(md.NumDelivered) >= s.opts.WaitMaxAttempts {
				return s.failed(env, code, err, attempts, fmt.Sprintf(
					"the platform kept the order waiting on the merchant (errcode %d: %s) for %d attempts; resolve it in the shop back office, then run fulfillctl dlq redrive --order-id %s",
					code, hint(code), attempts, env.OrderID), log), 0
			}
			log.Info().Int("errcode", code).Dur("retry_in", s.opts.WaitDelay).Msg("waiting on the merchant or platform")
			s.metrics.Retries.WithLabelValues(fmt.Sprint(code)).Inc()
			return nil, s.opts.WaitDelay
		case wechat.ClassPermanent:
			return s.failed(env, code, err, attempts, fmt.Sprintf(
				"delivery/send refused the order (%s); fix the cause, then run fulfillctl dlq redrive --order-id %s",
				describe(code, err), env.OrderID), log), 0
		}
		// Transient, or a token the client could not renew: back off.
		s.metrics.Retries.WithLabelValues(fmt.Sprint(code)).Inc()
		d := b.NextBackOff()
		if d == backoff.Stop {
			return s.failed(env, code, err, attempts, fmt.Sprintf(
				"the platform answered transient errors for longer than SHIP_MAX_ELAPSED (%s, %d attempts, last errcode %d); run fulfillctl dlq redrive --order-id %s once it recovers",
				s.opts.MaxElapsed, attempts, code, env.OrderID), log), 0
		}
		log.Debug().Err(err).Int("errcode", code).Dur("retry_in", d).Msg("transient error; retrying")
		if !s.wait(ctx, d) {
			return nil, 0
		}
	}
}

// wait sleeps d between attempts (the message is kept alive meanwhile);
// it returns false when ctx ended first.
func (s *Shipper) wait(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

func (s *Shipper) failed(env *events.Envelope, code int, err error, attempts int, reason string, log zerolog.Logger) *events.Envelope {
	errmsg := ""
	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) {
		errmsg = apiErr.Msg
	}
	if errmsg == "" && err != nil {
		// An answer without an errcode (an HTTP error page): the error
		// itself says what came back, e.g. "HTTP 403".
		errmsg = err.Error()
	}
	out, berr := pipeline.Failed(env, events.Failed{Stage: "shipper", Errcode: code, Errmsg: errmsg,
		Attempts: attempts, Reason: reason}, s.now())
	if berr != nil {
		log.Error().Err(berr).Msg("build failed event")
		return nil
	}
	log.Warn().Int("errcode", code).Str("errmsg", errmsg).Int("attempts", attempts).Str("reason", reason).Msg("order failed")
	return out
}

// completion is a terminal event being stored for an input message.
type completion struct {
	pending  *pipeline.Pending
	msg      jetstream.Msg
	unlock   func()
	log      zerolog.Logger
	occurred time.Time
}

// complete acks each input once its terminal event is stored, in order; if
// the event cannot be stored the input is naked and the same event (same
// Nats-Msg-Id) will be made again.
func (s *Shipper) complete() {
	for c := range s.done {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := c.pending.Wait(ctx)
		cancel()
		if err != nil {
			c.log.Error().Err(err).Msg("publish terminal event; the order will be redelivered")
			_ = c.msg.Nak()
		} else {
			if err := c.msg.Ack(); err != nil {
				c.log.Warn().Err(err).Msg("ack")
			}
			s.metrics.Latency.WithLabelValues("shipper").Observe(s.now().Sub(c.occurred).Seconds())
		}
		c.unlock()
	}
}

func decode(msg jetstream.Msg) (*events.Envelope, *events.Enriched, error) {
	env, err := events.Decode(msg.Data())
	if err != nil {
		return nil, nil, err
	}
	if env.Stage() != events.StageEnriched {
		return nil, nil, fmt.Errorf("%w: %s event on the shipper's input", events.ErrMalformed, env.Type)
	}
	if env.Subject() != msg.Subject() {
		return nil, nil, fmt.Errorf("%w: envelope says %s, message was on %s", events.ErrMalformed, env.Subject(), msg.Subject())
	}
	var data events.Enriched
	if err := env.DecodeData(&data); err != nil {
		return nil, nil, err
	}
	return env, &data, nil
}

func request(orderID string, d *events.Enriched) wechat.SendDeliveryRequest {
	products := make([]wechat.DeliveryProduct, len(d.Products))
	for i, p := range d.Products {
		products[i] = wechat.DeliveryProduct{ProductID: wechat.ID(p.ProductID), SkuID: wechat.ID(p.SkuID), ProductCnt: p.ProductCnt}
	}
	return wechat.SendDeliveryRequest{
		OrderID: wechat.ID(orderID),
		DeliveryList: []wechat.DeliveryItem{{
			DeliveryID:   d.DeliveryID,
			WaybillID:    d.WaybillID,
			DeliverType:  wechat.DeliverTypeExpress,
			ProductInfos: products,
		}},
	}
}
