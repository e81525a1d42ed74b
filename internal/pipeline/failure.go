package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/pkg/events"
)

// Failed is the terminal failed event answering cause.
func Failed(cause *events.Envelope, f events.Failed, now time.Time) (*events.Envelope, error) {
	return cause.Next(events.StageFailed, f, now)
}

// MaxRawBytes bounds the raw bytes a failed record keeps: base64 inside
// JSON grows them by a third, and the record must stay under the server's
// max_payload (1 MiB by default) or it could never be stored.
const MaxRawBytes = 256 << 10

// PoisonMsg turns a message that cannot be processed (not JSON, a wrong
// version, a bad order id) into the terminal record that keeps its raw
// bytes: orders.failed.<source>.<order_id> when its subject names an order,
// or the dead-letter subject when even the subject is unusable. The result
// is a function of the message's stream sequence, so a redelivery produces
// the same Nats-Msg-Id.
func PoisonMsg(msg jetstream.Msg, stage events.Component, cause error, now time.Time) (*nats.Msg, error) {
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	raw := msg.Data()
	rawSize := len(raw)
	if len(raw) > MaxRawBytes {
		raw = raw[:MaxRawBytes]
	}
	f := events.Failed{
		Stage:           stage,
		Errcode:         0,
		Errmsg:          cause.Error(),
		Reason:          "the message could not be processed and was set aside; its raw bytes are kept here. Fix the producer, then re-publish the order",
		Raw:             raw,
		RawSize:         rawSize,
		OriginalSubject: msg.Subject(),
		OriginalSeq:     seq,
	}
	_, source, shop, orderID, err := events.ParseSubject(msg.Subject())
	if err == nil {
		env, err := events.New(events.Fact{Stage: events.StageFailed, Source: source, Shop: shop, OrderID: orderID,
			Key: "poison-" + strconv.FormatUint(seq, 10), Data: f}, now)
		if err != nil {
			return nil, err
		}
		return env.Msg()
	}
	body, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode dead letter: %w", err)
	}
	m := nats.NewMsg(events.DeadLetterSubject)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, "deadletter:"+string(stage)+":"+strconv.FormatUint(seq, 10))
	m.Header.Set(events.HeaderEventType, "order.deadletter")
	return m, nil
}

// SetAside records msg as unusable (PoisonMsg), publishes the record and
// terminates msg so it is never redelivered; if the record cannot be
// stored, msg is left for redelivery instead, so nothing is lost.
func (p *Publisher) SetAside(ctx context.Context, msg jetstream.Msg, stage events.Component, cause error, now time.Time, log zerolog.Logger) {
	log.Error().Err(cause).Str("subject", msg.Subject()).Msg("unusable message; recording it as failed")
	pm, err := PoisonMsg(msg, stage, cause, now)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err = p.PublishMsgs(pctx, pm)
	}
	if err != nil {
		log.Error().Err(err).Msg("record unusable message; leaving it for redelivery")
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = msg.Term()
}

// RedriveCommand is the fulfillctl command that re-drives the order of e,
// for the reason of its failed event: the shop is named unless it is the
// default one.
func RedriveCommand(e *events.Envelope) string {
	cmd := "fulfillctl dlq redrive --order-id " + e.OrderID
	if e.Shop != events.DefaultShop {
		cmd += " --shop " + e.Shop
	}
	return cmd
}
