package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

// The Channels order events the pipeline acts on.
const (
	EventOrderNew          = "channels_ec_order_new"
	EventOrderPay          = "channels_ec_order_pay"
	EventOrderWaitShipping = "channels_ec_order_wait_shipping"
	EventOrderCancel       = "channels_ec_order_cancel"
	EventOrderDeliver      = "channels_ec_order_deliver"
	EventOrderExtInfo      = "channels_ec_order_ext_info_update"
)

// Pushes acts on the stored pushes (the durable consumer ingest-push):
// a paid order is fetched with order/get and taken in on the same
// once-per-order path as polling; a cancelled one that was not shipped ends
// failed, and is then never sent; one delivered outside the pipeline is
// recorded shipped elsewhere, and never sent. Other events are on the
// order's history already, being stored.
type Pushes struct {
	In *Ingester
	// Orders is the Channels order taker of a shop (its client, carrier
	// and the ingester), or an error when the shop is not served.
	Orders func(shop string) (*ChannelsPoller, error)
	// Workers handle pushes at once; Heartbeat keeps each alive.
	Workers   int
	Heartbeat time.Duration
	Log       zerolog.Logger
}

// Run consumes until ctx ends, then finishes what it holds.
func (p *Pushes) Run(ctx context.Context, cons jetstream.Consumer) error {
	var wg sync.WaitGroup
	for range max(p.Workers, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
				if err != nil {
					p.Log.Warn().Err(err).Msg("pull from ingest-push consumer")
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
					continue
				}
				for msg := range batch.Messages() {
					hold := pipeline.StartHold(p.Heartbeat, msg)
					p.handle(context.WithoutCancel(ctx), msg)
					hold.Stop()
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// handle settles one stored push: acked once acted on, naked with a delay
// when the platform or NATS failed for now, terminated when unusable.
func (p *Pushes) handle(ctx context.Context, msg jetstream.Msg) {
	env, data, err := pipeline.DecodeInput[events.Push](msg, events.StagePush)
	if err != nil {
		p.Log.Error().Err(err).Str("subject", msg.Subject()).Msg("stored push unusable; skipped")
		_ = msg.Term()
		return
	}
	log := p.Log.With().Str("shop", env.Shop).Str("order_id", env.OrderID).Str("event_id", env.ID).Str("event", data.Event).Logger()
	ctx, span := p.In.startPush(ctx, msg, env, data.Event)
	defer span.End()
	if err := p.act(ctx, env, data, log); err != nil {
		log.Warn().Err(err).Msg("push not acted on yet; retrying")
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = msg.Ack()
}

func (p *Pushes) act(ctx context.Context, env *events.Envelope, data *events.Push, log zerolog.Logger) error {
	switch data.Event {
	case EventOrderPay, EventOrderWaitShipping:
		orders, err := p.Orders(env.Shop)
		if err != nil {
			log.Warn().Err(err).Msg("push for a shop not served; skipped (polling would not find it either)")
			return nil
		}
		return orders.take(ctx, env.OrderID, events.ViaPush)
	case EventOrderCancel:
		return p.cancelled(ctx, env, data, log)
	case EventOrderDeliver:
		return p.deliveredElsewhere(ctx, env, log)
	}
	// channels_ec_order_new (unpaid), _confirm, _settle, _ext_info_update
	// and events not known yet: stored, on the order's history.
	log.Debug().Msg("push recorded")
	return nil
}

// cancelled ends an order the platform cancelled: unless it is shipped,
// with a failed event that says so (the shipper and the re-drive tools
// never send a cancelled order, whatever copy of it comes later). The
// event joins the order's chain when the order was received.
func (p *Pushes) cancelled(ctx context.Context, env *events.Envelope, data *events.Push, log zerolog.Logger) error {
	rec := p.In.record
	for range 5 {
		if shipped, err := rec.Shipped(ctx, env.Shop, env.OrderID); err != nil || shipped != nil {
			if shipped != nil {
				log.Info().Str("shipped_event_id", shipped.ID).Msg("order cancelled after it was shipped; nothing to stop (after-sale)")
			}
			return err
		}
		last, lastSeq, err := rec.Last(ctx, events.StageFailed, env.Shop, env.OrderID)
		if err != nil {
			return err
		}
		if last != nil {
			var f events.Failed
			if last.DecodeData(&f) == nil && f.Cancelled() {
				return nil // recorded before (a repeated push)
			}
		}
		cause, _, err := rec.Last(ctx, events.StageReceived, env.Shop, env.OrderID)
		if err != nil {
			return err
		}
		f := events.Failed{Stage: events.ComponentIngest, CancelType: max(data.CancelType, 1), Attempts: 1,
			Reason: fmt.Sprintf("cancelled on the platform (%s, cancel_type %d): not shipped, and never re-driven", cancelWhy(data.CancelType), data.CancelType)}
		var out *events.Envelope
		if cause != nil {
			out, err = pipeline.Failed(cause, f, p.In.now())
		} else {
			out, err = events.New(events.Fact{Stage: events.StageFailed, Source: env.Source, Shop: env.Shop, OrderID: env.OrderID, Key: "cancel", Data: f}, p.In.now())
		}
		if err != nil {
			return err
		}
		m, err := out.Msg()
		if err != nil {
			return err
		}
		filter, err := events.OrderFilter(events.StageFailed, env.Shop, env.OrderID)
		if err != nil {
			return err
		}
		pipeline.ExpectLast(m, filter, lastSeq)
		err = p.In.pub.PublishEach(ctx, m)[0]
		if errors.Is(err, pipeline.ErrDecided) {
			continue // another failure stored meanwhile: read again
		}
		if err == nil {
			log.Info().Str("failed_event_id", out.ID).Int("cancel_type", data.CancelType).Msg("order cancelled on the platform; it will not be sent")
		}
		return err
	}
	return errors.New("the order's record kept changing while the cancellation was recorded")
}

// cancelWhy names a cancel_type.
func cancelWhy(t int) string {
	switch t {
	case 1:
		return "by the buyer"
	case 2:
		return "unpaid in time"
	case 3:
		return "after-sale"
	}
	return "by the platform"
}

// deliveredElsewhere records an order the platform says was delivered
// (shipped by the merchant's back office or another system) as shipped
// elsewhere, unless the pipeline shipped it: the shipper then never sends
// it. JetStream keeps the one shipped event, whichever comes first.
func (p *Pushes) deliveredElsewhere(ctx context.Context, env *events.Envelope, log zerolog.Logger) error {
	rec := p.In.record
	if shipped, err := rec.Shipped(ctx, env.Shop, env.OrderID); err != nil || shipped != nil {
		return err
	}
	cause, _, err := rec.Last(ctx, events.StageReceived, env.Shop, env.OrderID)
	if err != nil {
		return err
	}
	data := events.Shipped{Elsewhere: true}
	var out *events.Envelope
	if cause != nil {
		out, err = cause.Next(events.StageShipped, data, p.In.now())
	} else {
		out, err = events.New(events.Fact{Stage: events.StageShipped, Source: env.Source, Shop: env.Shop, OrderID: env.OrderID, Key: "elsewhere", Data: data}, p.In.now())
	}
	if err != nil {
		return err
	}
	_, err = p.In.publishFirst(ctx, out)
	if errors.Is(err, pipeline.ErrDecided) {
		return nil // the pipeline shipped it meanwhile
	}
	if err == nil {
		log.Info().Str("shipped_event_id", out.ID).Msg("order delivered outside the pipeline; recorded shipped elsewhere, never sent")
	}
	return err
}
