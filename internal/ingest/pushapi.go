package ingest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/clients/wechat/push"
	"github.com/fulfill/pipeline/pkg/events"
)

// PushStoreTimeout bounds the wait for JetStream to store a push: well
// inside the 5 s the platform waits for an answer, so a push that cannot be
// stored is answered an error (and retried by the platform) rather than
// timed out.
const PushStoreTimeout = 3 * time.Second

// Results of a push, as fulfill_pushes_total counts them.
const (
	PushStored        = "stored"
	PushDuplicate     = "duplicate"
	PushURLCheck      = "url_check"
	PushBadSignature  = "bad_signature"
	PushNotEncrypted  = "not_encrypted"
	PushBadCiphertext = "bad_ciphertext"
	PushWrongAppID    = "wrong_appid"
	PushMalformed     = "malformed"
	PushTooLarge      = "too_large"
	PushUnusable      = "unusable"
	PushStoreFailed   = "store_failed"
	PushNotConfigured = "not_configured"
)

// SetPush sets the shops whose pushes the API takes, with each one's keys;
// it is called again on every registry reload.
func (a *API) SetPush(keys map[string]push.Keys) {
	a.push.Store(&keys)
}

func (a *API) pushKeys(shop string) (push.Keys, bool) {
	m := a.push.Load()
	if m == nil {
		return push.Keys{}, false
	}
	k, ok := (*m)[shop]
	return k, ok
}

// pushURLCheck answers the platform's check of the callback URL (the
// 消息推送 page's "save"): the echostr back when the signature is the
// shop's.
func (a *API) pushURLCheck(w http.ResponseWriter, r *http.Request) {
	shop := r.PathValue("shop")
	keys, ok := a.pushKeys(shop)
	if !ok {
		a.In.metrics.Push(shop, PushNotConfigured)
		http.Error(w, "push is not configured for this shop", http.StatusNotFound)
		return
	}
	echo, err := keys.VerifyURL(push.ParseQuery(r.URL.Query()))
	if err != nil {
		a.refusePush(w, shop, err)
		return
	}
	a.In.metrics.Push(shop, PushURLCheck)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, echo)
}

// pushMessage verifies a pushed order message, stores it, and only then
// answers success: a push that cannot be stored in PushStoreTimeout is
// answered 503, so the platform sends it again.
func (a *API) pushMessage(w http.ResponseWriter, r *http.Request) {
	shop := r.PathValue("shop")
	keys, ok := a.pushKeys(shop)
	if !ok {
		a.In.metrics.Push(shop, PushNotConfigured)
		http.Error(w, "push is not configured for this shop", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, push.MaxBody+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.In.metrics.Push(shop, PushTooLarge)
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "the body could not be read", http.StatusBadRequest)
		return
	}
	msg, err := keys.Open(push.ParseQuery(r.URL.Query()), body)
	if err != nil {
		a.refusePush(w, shop, err)
		return
	}
	if err := events.ValidateOrderID(msg.OrderID); err != nil {
		// Verified, but about nothing the pipeline can name: answered
		// success so the platform does not retry it for hours.
		a.In.metrics.Push(shop, PushUnusable)
		a.In.log.Warn().Str("shop", shop).Str("event", msg.Event).Err(err).Msg("push without a usable order id; not stored")
		_, _ = io.WriteString(w, "success")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), PushStoreTimeout)
	defer cancel()
	dup, err := a.In.StorePush(ctx, shop, msg)
	if err != nil {
		a.In.metrics.Push(shop, PushStoreFailed)
		a.In.log.Error().Err(err).Str("shop", shop).Str("order_id", msg.OrderID).Str("event", msg.Event).
			Msg("push not stored; answered an error so the platform sends it again")
		http.Error(w, "not stored; send it again", http.StatusServiceUnavailable)
		return
	}
	result := PushStored
	if dup {
		result = PushDuplicate
	}
	a.In.metrics.Push(shop, result)
	_, _ = io.WriteString(w, "success")
}

// refusePush answers an invalid push: 401 when it is not the shop's (its
// signature or appid), 400 when it is malformed. The body is never
// logged.
func (a *API) refusePush(w http.ResponseWriter, shop string, err error) {
	result, status := PushMalformed, http.StatusBadRequest
	switch {
	case errors.Is(err, push.ErrBadSignature):
		result, status = PushBadSignature, http.StatusUnauthorized
	case errors.Is(err, push.ErrWrongAppID):
		result, status = PushWrongAppID, http.StatusUnauthorized
	case errors.Is(err, push.ErrNotEncrypted):
		result = PushNotEncrypted
	case errors.Is(err, push.ErrBadCiphertext):
		result = PushBadCiphertext
	case errors.Is(err, push.ErrTooLarge):
		result, status = PushTooLarge, http.StatusRequestEntityTooLarge
	}
	a.In.metrics.Push(shop, result)
	a.In.log.Warn().Str("shop", shop).Str("result", result).Err(err).Msg("push refused")
	http.Error(w, result, status)
}

// StorePush stores a verified push as an order.push event, whose id (and
// Nats-Msg-Id) is derived from the push's de-duplication key, so the same
// push sent again within the duplicate window is stored once; dup says
// whether it was.
func (in *Ingester) StorePush(ctx context.Context, shop string, msg *push.Message) (dup bool, err error) {
	env, err := events.New(events.Fact{Stage: events.StagePush, Source: events.SourceChannels, Shop: shop, OrderID: msg.OrderID,
		Key: msg.DedupKey(), Data: events.Push{Event: msg.Event, CreateTime: msg.CreateTime, CancelType: msg.CancelType,
			FinishDelivery: msg.FinishDelivery, ExtType: msg.ExtType, Message: msg.Raw}}, in.now())
	if err != nil {
		return false, err
	}
	m, err := env.Msg()
	if err != nil {
		return false, err
	}
	inject(ctx, m)
	ack, err := in.pub.PublishAck(ctx, m)
	if err != nil {
		return false, err
	}
	in.metrics.LastPush.WithLabelValues(in.metrics.Shop(shop)).SetToCurrentTime()
	in.log.Info().Str("shop", shop).Str("order_id", msg.OrderID).Str("event_id", env.ID).Str("event", msg.Event).
		Bool("duplicate", ack.Duplicate).Msg("push stored")
	return ack.Duplicate, nil
}

var _ = pipeline.ErrDecided
