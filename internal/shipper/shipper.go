package shipper

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

// Sender is the platform call the shipper makes.
type Sender interface {
	SendDelivery(ctx context.Context, req wechat.SendDeliveryRequest) error
}

// Senders finds the platform client of each shop; an error (the shop left
// the registry, or has no Channels account) ends its orders failed.
type Senders func(shop string) (Sender, error)

// Record is what the shipper reads of an order before every call: its
// latest event of a stage and that event's stream sequence.
type Record interface {
	Last(ctx context.Context, stage events.Stage, shop, orderID string) (*events.Envelope, uint64, error)
}

// Leases hands out the per-order leases that keep delivery/send calls for
// one order from overlapping across replicas; Acquire answers
// pipeline.ErrLeaseTaken when another holder has the order.
type Leases interface {
	Acquire(ctx context.Context, key string) (Lease, error)
}

// Lease is one order held by this shipper (a *pipeline.Lease).
type Lease interface {
	// Valid reports whether the lease is certainly still ours.
	Valid() bool
	// Renew writes it again so it lives another TTL.
	Renew(ctx context.Context) error
	// Release gives it up once the order's outcome is stored.
	Release(ctx context.Context) error
}

// WaitStarts tells when a message (by stream sequence) was first answered
// a waiting code, noting now if it never was (a *pipeline.WaitStarts).
type WaitStarts interface {
	FirstWait(ctx context.Context, seq uint64, now time.Time) (time.Time, error)
}

// LeaseTable adapts a *pipeline.Leases to Leases.
type LeaseTable struct{ *pipeline.Leases }

// Acquire takes the order's lease.
func (t LeaseTable) Acquire(ctx context.Context, key string) (Lease, error) {
	l, err := t.Leases.Acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Options tune the shipper; see the SHIP_* variables.
type Options struct {
	Concurrency int
	// ShopConcurrency is how many calls one shop may have under way at
	// once (nil: Concurrency), so that no shop starves the others.
	ShopConcurrency func(shop string) int
	BackoffInitial  time.Duration
	BackoffMax      time.Duration
	MaxElapsed      time.Duration
	WaitDelay       time.Duration
	WaitMaxAttempts int
	// Heartbeat is how often a held message is reported in progress and
	// its order's lease renewed.
	Heartbeat time.Duration
	// FetchWait bounds one pull request: how long an idle shipper waits
	// for work before asking again, and how long a shutdown may wait for
	// the pull in flight. Default 1s.
	FetchWait time.Duration
}

// Shipper consumes order.enriched and ships.
type Shipper struct {
	opts    Options
	senders Senders
	pub     *pipeline.Publisher
	record  Record
	leases  Leases
	log     zerolog.Logger
	metrics *service.Metrics
	now     func() time.Time
	done    chan completion
	release sync.WaitGroup // holds and leases being let go
	shops   *breaker
	// Tracer, if on, makes each handling of an order a span of its trace
	// (trace.go).
	Tracer *tracing.Tracer
	// Waits dates each order's first waiting answer; nil counts from when
	// the message was stored (tests of other things).
	Waits WaitStarts
	// Leader, if set, is the order's record as the stream's leader has it
	// (pipeline.LeaderRecord), read where a terminal event is likely to be
	// recent and a replica answering a direct get may not have it yet:
	// for a redelivered message, a re-drive copy, and after the server
	// refused a terminal event.
	Leader Record
}

// recordFor is where the order's record of msg is read before a call: the
// leader's for a message that may come after a recent outcome (another
// delivery of it, or a copy of an order that may have been decided), else
// the direct gets any replica answers, which is most of the orders.
func (s *Shipper) recordFor(env *events.Envelope, md *jetstream.MsgMetadata) Record {
	if s.Leader != nil && (md.NumDelivered > 1 || env.IsCopy()) {
		return s.Leader
	}
	return s.record
}

// New wires a shipper; changed, if set, is told of each change of a shop's
// state (logged here already).
func New(opts Options, senders Senders, pub *pipeline.Publisher, record Record, leases Leases, log zerolog.Logger, m *service.Metrics, changed func(string, ShopStatus)) *Shipper {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 750 * time.Millisecond
	}
	if opts.FetchWait <= 0 {
		opts.FetchWait = time.Second
	}
	if opts.ShopConcurrency == nil {
		opts.ShopConcurrency = func(string) int { return opts.Concurrency }
	}
	s := &Shipper{opts: opts, senders: senders, pub: pub, record: record, leases: leases,
		log: log, metrics: m, now: time.Now}
	s.shops = newBreaker(opts.BackoffInitial, opts.BackoffMax, func(shop string, st ShopStatus) {
		ev := log.Warn()
		if st.State == ShopOK {
			ev = log.Info()
		}
		ev.Str("shop", shop).Str("shop_state", string(st.State)).Int("errcode", st.Errcode).
			Msgf("shop %s: %s", shop, stateMessage(st))
		m.SetShopState(shop, string(st.State), ShopStates)
		if changed != nil {
			changed(shop, st)
		}
	})
	s.shops.first = m.ExportParked
	return s
}

// stateMessage is the log line of a shop's change of state.
func stateMessage(st ShopStatus) string {
	switch st.State {
	case ShopBackingOff:
		return "backing off as a whole: " + st.String() + "; its orders are parked and one probe call at a time goes out"
	case ShopTokenRefused:
		return "token refused: " + st.String() + "; its orders are parked until a token can be had (check the shop's secret or token)"
	}
	return "recovered; its orders go out again"
}

// slots is how many calls shop may have under way.
func (s *Shipper) slots(shop string) int {
	return max(min(s.opts.ShopConcurrency(shop), s.opts.Concurrency), 1)
}

// Run consumes until ctx ends, then stops pulling, naks what it has not
// started, lets calls in flight finish, and returns.
//
// It pulls only as many messages as it has free workers, and keeps each
// one alive (pipeline.Hold) from the moment it arrives: a message never
// waits in a buffer while its ack wait runs out, which would hand it to
// another replica while this one still holds it.
func (s *Shipper) Run(ctx context.Context, cons jetstream.Consumer) error {
	// Workers hand finished orders to the completer, which acks each
	// input once its terminal event is stored: the worker is free for the
	// next order while JetStream acknowledges the publish.
	s.done = make(chan completion, 4*s.opts.Concurrency)
	completerDone := make(chan struct{})
	go func() { defer close(completerDone); s.complete() }()
	defer func() { close(s.done); <-completerDone; s.release.Wait() }()

	type job struct {
		msg  jetstream.Msg
		hold *pipeline.Hold
	}
	// Held messages wait in one line per shop; workers take them in turn
	// from the shops with a call slot free. The shipper holds a quarter
	// more messages than it has workers, a shop its slots and a quarter
	// (waitingFor): a message of a shop with no room is parked (nak with
	// delay), so that no message waits long in the shipper while others
	// wait in the stream (another shop's, or a dead replica's, which then
	// reach a free worker soon after their ack wait).
	q := newFairQueue[job](s.slots)
	stopQueue := context.AfterFunc(ctx, q.close)
	defer stopQueue()
	var wg sync.WaitGroup
	for range s.opts.Concurrency {
		wg.Go(func() {
			for {
				shop, j, ok := q.pop()
				if !ok {
					return
				}
				s.handle(ctx, j.msg, j.hold)
				q.done(shop)
			}
		})
	}
	limit := s.opts.Concurrency + waitingFor(s.opts.Concurrency)
	for ctx.Err() == nil {
		n := q.room(limit)
		if n == 0 {
			break
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(s.opts.FetchWait))
		if err != nil {
			s.log.Warn().Err(err).Msg("pull from shipper consumer")
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		for msg := range batch.Messages() {
			shop := shopOf(msg.Subject())
			hold := pipeline.StartHold(s.opts.Heartbeat, msg)
			if !q.push(shop, job{msg: msg, hold: hold}) {
				s.metrics.Park(shop, service.ParkShopBusy)
				s.release.Go(hold.Stop)
				_ = msg.NakWithDelay(s.shops.Park(shop, s.slots(shop)))
			}
		}
		if err := batch.Error(); err != nil {
			s.log.Debug().Err(err).Msg("pull ended")
		}
	}
	q.close()
	wg.Wait()
	return nil
}

// shopOf is the shop of a message's subject; a subject not of the grammar
// has none ("", one line of its own), and is set aside by handle.
func shopOf(subject string) string {
	_, _, shop, _, err := events.ParseSubject(subject)
	if err != nil {
		return ""
	}
	return shop
}

// outcome is how one handling of a message ends.
type outcome struct {
	// event is the terminal event to store, with its server-side check.
	event *events.Envelope
	msg   *nats.Msg
	// retry > 0 asks for redelivery after that long.
	retry time.Duration
	// settled says the order needs nothing more from this message (it
	// was shipped, or decided after this message was stored): ack it.
	settled string
	// nak asks for redelivery now (shutting down).
	nak bool
}

// handle settles one message: it is acked only after its terminal event is
// stored, naked when it must come back, and terminated when unusable. It
// owns hold until it passes it on to the completer.
func (s *Shipper) handle(ctx context.Context, msg jetstream.Msg, hold *pipeline.Hold) {
	var lease Lease
	passed := false
	defer func() {
		if !passed {
			s.letGo(hold, lease)
		}
	}()
	s.metrics.In(events.StageEnriched, s.metrics.ShopOfSubject(msg.Subject()))
	md, err := msg.Metadata()
	if err != nil {
		s.log.Error().Err(err).Str("subject", msg.Subject()).Msg("message without metadata")
		return
	}
	if md.NumDelivered > 1 {
		s.metrics.Redelivered(events.StageEnriched, s.metrics.ShopOfSubject(msg.Subject()))
	}
	env, data, err := pipeline.DecodeInput[events.Enriched](msg, events.StageEnriched)
	if err != nil {
		s.pub.SetAside(context.Background(), msg, events.ComponentShipper, err, s.now(), s.log)
		return
	}
	log := s.log.With().Str("shop", env.Shop).Str("order_id", env.OrderID).Str("event_id", env.ID).
		Str("correlation_id", env.CorrelationID).Uint64("delivered", md.NumDelivered).Logger()
	ctx, span := s.startShip(ctx, msg, env, md)
	defer span.End()
	if ctx.Err() != nil {
		_ = msg.Nak()
		return
	}
	// A shop backing off as a whole parks its orders before they take a
	// lease: only its probe calls.
	if parked, wait, _ := s.shops.parked(env.Shop, s.slots(env.Shop)); parked && !s.tooOld(md) {
		s.metrics.Park(env.Shop, service.ParkShopBackingOff)
		_ = msg.NakWithDelay(wait)
		return
	}
	// The call itself is not cut short by shutdown: a half-made call leaves
	// the order's state unknown. Waits between attempts are.
	callCtx := context.WithoutCancel(ctx)

	// One delivery/send per order at a time across every replica: a copy
	// of the order (a replay, a re-drive, a redelivery) finding the lease
	// taken comes back later, when the holder has recorded the outcome.
	actx, cancel := context.WithTimeout(callCtx, s.opts.Heartbeat)
	lease, err = s.leases.Acquire(actx, env.Key())
	cancel()
	if errors.Is(err, pipeline.ErrLeaseTaken) {
		// The lease of a shipped order is left to expire (complete), so
		// the holder may be done already: the record says so. Reading it
		// without the lease only ever settles the message, never calls.
		// A direct get is enough here: a stale answer only parks the copy.
		if settled, _, cerr := s.checkIn(callCtx, s.record, env, md); cerr == nil && settled != "" {
			log.Info().Msg(settled)
			if err := msg.Ack(); err != nil {
				log.Warn().Err(err).Msg("ack")
			}
			return
		}
		s.metrics.Park(env.Shop, service.ParkLeaseTaken)
		log.Debug().Msg("another shipper holds the order; coming back later")
		_ = msg.NakWithDelay(s.leaseWait())
		return
	}
	if err != nil {
		log.Warn().Err(err).Msg("order lease unavailable; retrying later")
		_ = msg.NakWithDelay(time.Second)
		return
	}
	hold.Attach(lease)

	out := s.ship(ctx, callCtx, md, env, data, lease, log)
	traceOutcome(span, out)
	switch {
	case out.settled != "":
		log.Info().Msg(out.settled)
		if err := msg.Ack(); err != nil {
			log.Warn().Err(err).Msg("ack")
		}
	case out.retry > 0:
		_ = msg.NakWithDelay(out.retry)
	case out.msg != nil:
		passed = true
		tracing.Inject(ctx, out.msg.Header)
		s.done <- completion{pending: s.pub.StartMsg(out.msg), event: out.event, input: env, msg: msg,
			hold: hold, lease: lease, log: log, occurred: env.OccurredAt, received: data.ReceivedAt}
	default:
		_ = msg.Nak()
	}
}

// firstWait is when the platform first kept the order of this message
// waiting.
func (s *Shipper) firstWait(ctx context.Context, md *jetstream.MsgMetadata) (time.Time, error) {
	if s.Waits == nil {
		return md.Timestamp, nil
	}
	return s.Waits.FirstWait(ctx, md.Sequence.Stream, s.now())
}

// tooOld reports whether a message has waited in the stream longer than
// SHIP_MAX_ELAPSED: an order of a shop backing off ends failed then.
func (s *Shipper) tooOld(md *jetstream.MsgMetadata) bool {
	return s.now().Sub(md.Timestamp) > s.opts.MaxElapsed
}

// leaseWait is how long a copy waits for another holder: about a heartbeat,
// jittered so copies do not come back in step.
func (s *Shipper) leaseWait() time.Duration {
	return s.opts.Heartbeat/2 + rand.N(s.opts.Heartbeat)
}

// check reads the order's record before a call. It says whether the order
// is settled already (shipped by anyone; or failed, in this message's
// chain, after this message was stored: the outcome of a copy that ran
// first), and else the sequence of its latest failed event, which a failed
// event of ours must find unchanged to be stored.
func (s *Shipper) check(ctx context.Context, env *events.Envelope, md *jetstream.MsgMetadata) (settled string, lastFailed uint64, err error) {
	return s.checkIn(ctx, s.recordFor(env, md), env, md)
}

// stagesRecord is a Record that reads several stages of an order in one
// request (a *pipeline.OrderRecord with multi_last): the shipped and failed
// records of most orders then cost one request and one reply, not two each.
type stagesRecord interface {
	Stages(ctx context.Context, shop, orderID string, stages ...events.Stage) ([]pipeline.Event, error)
}

// terminals reads the order's shipped and failed records, and the failed
// one's sequence.
func terminals(ctx context.Context, record Record, env *events.Envelope) (shipped, failed *events.Envelope, seq uint64, err error) {
	if r, ok := record.(stagesRecord); ok {
		ev, err := r.Stages(ctx, env.Shop, env.OrderID, events.StageShipped, events.StageFailed)
		if err != nil {
			return nil, nil, 0, err
		}
		return ev[0].Env, ev[1].Env, ev[1].Seq, nil
	}
	shipped, _, err = record.Last(ctx, events.StageShipped, env.Shop, env.OrderID)
	if err != nil || shipped != nil {
		return shipped, nil, 0, err
	}
	failed, seq, err = record.Last(ctx, events.StageFailed, env.Shop, env.OrderID)
	return nil, failed, seq, err
}

// checkIn is check reading record.
func (s *Shipper) checkIn(ctx context.Context, record Record, env *events.Envelope, md *jetstream.MsgMetadata) (settled string, lastFailed uint64, err error) {
	shipped, failed, seq, err := terminals(ctx, record, env)
	if err != nil {
		return "", 0, err
	}
	if shipped != nil {
		return "order already shipped (event " + shipped.ID + "); not sending again", 0, nil
	}
	// A cancellation is final, whichever copy of the order this is.
	if failed != nil {
		var f events.Failed
		if failed.DecodeData(&f) == nil && f.Cancelled() {
			return fmt.Sprintf("order cancelled on the platform (cancel_type %d, event %s); not sending", f.CancelType, failed.ID), 0, nil
		}
	}
	if failed != nil && seq > md.Sequence.Stream && failed.CorrelationID == env.CorrelationID {
		return fmt.Sprintf("order failed after this message was stored (event %s at seq %d); not sending again", failed.ID, seq), 0, nil
	}
	return "", seq, nil
}

// ship calls delivery/send until the platform gives an answer that ends the
// order, checking the order's record before every call.
func (s *Shipper) ship(ctx, callCtx context.Context, md *jetstream.MsgMetadata, env *events.Envelope, data *events.Enriched, lease Lease, log zerolog.Logger) outcome {
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
	attempts := int(md.NumDelivered)
	sender, senderErr := s.senders(env.Shop)
	for calls := 1; ; calls++ {
		settled, lastFailed, err := s.check(callCtx, env, md)
		if err != nil {
			log.Warn().Err(err).Msg("order record lookup failed; retrying later")
			return outcome{retry: time.Second}
		}
		if settled != "" {
			return outcome{settled: settled}
		}
		if !lease.Valid() {
			rctx, cancel := context.WithTimeout(callCtx, s.opts.Heartbeat)
			err := lease.Renew(rctx)
			cancel()
			if err != nil || !lease.Valid() {
				log.Warn().Err(err).Msg("order lease not renewed in time; not calling, retrying later")
				return outcome{retry: s.leaseWait()}
			}
		}
		if senderErr != nil {
			return s.failed(env, 0, senderErr, attempts, calls-1, fmt.Sprintf(
				"this deployment cannot reach the platform for the order's shop (%v); add the shop back to SHOPS_FILE, then run %s",
				senderErr, pipeline.RedriveCommand(env)), lastFailed, log)
		}
		if ok, wait, st := s.shops.allow(env.Shop, s.slots(env.Shop)); !ok {
			// The shop backs off as a whole: park the order, unless it
			// has waited in the stream longer than SHIP_MAX_ELAPSED.
			if s.tooOld(md) {
				return s.failed(env, st.Errcode, nil, attempts, calls-1, fmt.Sprintf(
					"the order's shop has been backing off as a whole (%s) and the order waited longer than SHIP_MAX_ELAPSED (%s); run %s once it recovers",
					st, s.opts.MaxElapsed, pipeline.RedriveCommand(env)), lastFailed, log)
			}
			s.metrics.Park(env.Shop, service.ParkShopBackingOff)
			return outcome{retry: wait}
		}
		start := s.now()
		err = sender.SendDelivery(callCtx, req)
		code, class := wechat.Code(err), wechat.Classify(err)
		s.shops.record(env.Shop, class, code, s.now().Sub(start))
		switch class {
		case wechat.ClassOK, wechat.ClassAlreadyDone:
			shipped := events.Shipped{DeliveryID: data.DeliveryID, WaybillID: data.WaybillID,
				Attempts: attempts, Calls: calls, AlreadyShipped: class == wechat.ClassAlreadyDone}
			out, err := env.Next(events.StageShipped, shipped, s.now())
			if err != nil {
				return s.failed(env, code, err, attempts, calls, "could not build the shipped event: "+err.Error(), lastFailed, log)
			}
			log.Info().Int("attempts", attempts).Int("calls", calls).Bool("already_shipped", shipped.AlreadyShipped).Msg("shipped")
			// The server stores it only if the order has no shipped event
			// yet, whichever replica or copy gets there first.
			return s.terminal(out, events.StageShipped, 0, log)
		case wechat.ClassWait:
			// By time since the first waiting answer, not by deliveries
			// (parks while the shop was busy or backing off are
			// deliveries too) nor since the message was stored (a backlog
			// or a slow platform is not waiting on the merchant). The
			// order has had its SHIP_WAIT_MAX_ATTEMPTS when another wait
			// would pass them.
			first, ferr := s.firstWait(callCtx, md)
			if ferr != nil {
				// Unknown: wait once more rather than fail an order early.
				log.Warn().Err(ferr).Msg("first wait of the order unknown; waiting again")
			} else if waited := s.now().Sub(first); waited >= time.Duration(s.opts.WaitMaxAttempts-1)*s.opts.WaitDelay {
				return s.failed(env, code, err, attempts, calls, fmt.Sprintf(
					"the platform kept the order waiting on the merchant (errcode %d: %s) for %s, the SHIP_WAIT_MAX_ATTEMPTS (%d) waits of SHIP_WAIT_DELAY; resolve it in the shop back office, then run %s",
					code, wechat.Hint(code), waited.Round(time.Second), s.opts.WaitMaxAttempts, pipeline.RedriveCommand(env)), lastFailed, log)
			}
			log.Info().Int("errcode", code).Dur("retry_in", s.opts.WaitDelay).Msg("waiting on the merchant or platform")
			s.metrics.Retry(env.Shop, fmt.Sprint(code))
			return outcome{retry: s.opts.WaitDelay}
		case wechat.ClassPermanent:
			return s.failed(env, code, err, attempts, calls, fmt.Sprintf(
				"delivery/send refused the order (%s); fix the cause, then run %s",
				describe(code, err), pipeline.RedriveCommand(env)), lastFailed, log)
		}
		// Transient, or a token the client could not renew: back off.
		s.metrics.Retry(env.Shop, fmt.Sprint(code))
		d := b.NextBackOff()
		if d == backoff.Stop {
			return s.failed(env, code, err, attempts, calls, fmt.Sprintf(
				"the platform answered transient errors for longer than SHIP_MAX_ELAPSED (%s, %d calls, last errcode %d); run %s once it recovers",
				s.opts.MaxElapsed, calls, code, pipeline.RedriveCommand(env)), lastFailed, log)
		}
		log.Debug().Err(err).Int("errcode", code).Dur("retry_in", d).Msg("transient error; retrying")
		if !s.wait(ctx, d) {
			return outcome{nak: true}
		}
	}
}

// terminal prepares the terminal event out, to be stored only if the last
// event on orders.<stage>.*.<order_id> is still at sequence last.
func (s *Shipper) terminal(out *events.Envelope, stage events.Stage, last uint64, log zerolog.Logger) outcome {
	m, err := out.Msg()
	if err == nil {
		var filter string
		if filter, err = events.OrderFilter(stage, out.Shop, out.OrderID); err == nil {
			pipeline.ExpectLast(m, filter, last)
			return outcome{event: out, msg: m}
		}
	}
	log.Error().Err(err).Msg("build terminal event")
	return outcome{nak: true}
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

// failed is the order.failed outcome; lastFailed is the sequence of the
// order's latest failed event when the record was read, which must still be
// the latest for this one to be stored.
func (s *Shipper) failed(env *events.Envelope, code int, err error, attempts, calls int, reason string, lastFailed uint64, log zerolog.Logger) outcome {
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
	out, berr := pipeline.Failed(env, events.Failed{Stage: events.ComponentShipper, Errcode: code, Errmsg: errmsg,
		Attempts: attempts, Calls: calls, Reason: reason}, s.now())
	if berr != nil {
		log.Error().Err(berr).Msg("build failed event")
		return outcome{nak: true}
	}
	log.Warn().Int("errcode", code).Str("errmsg", errmsg).Int("attempts", attempts).Int("calls", calls).Str("reason", reason).Msg("order failed")
	return s.terminal(out, events.StageFailed, lastFailed, log)
}

// completion is a terminal event being stored for an input message.
type completion struct {
	pending  *pipeline.Pending
	event    *events.Envelope // the terminal event being stored
	input    *events.Envelope // the message's envelope
	msg      jetstream.Msg
	hold     *pipeline.Hold
	lease    Lease
	log      zerolog.Logger
	occurred time.Time
	received time.Time // the order's received event's occurred_at, if carried
}

// complete acks each input once its terminal event is stored, in order; if
// the event cannot be stored the input is naked and the same event (same
// Nats-Msg-Id) will be made again. Then it ends the message's hold and
// releases the order's lease: the outcome is on record for the next holder.
//
// The lease of an order whose shipped event is stored is not deleted but
// left to expire (its TTL, under the ack wait): no copy of a shipped order
// calls again whoever holds it, and a copy finding it taken reads the
// record first (handle). That spares a KV write per order, a sixth of the
// shipper's NATS traffic. A failed order's lease is deleted, so that a
// re-drive is not held up.
func (s *Shipper) complete() {
	for c := range s.done {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := c.pending.Wait(ctx)
		if err == nil && c.event.Stage() == events.StageShipped {
			s.metrics.ObserveShipped(c.event.Shop, c.received, s.now())
			c.lease = nil
		}
		if errors.Is(err, pipeline.ErrDecided) {
			err = s.decided(ctx, c)
		}
		cancel()
		if err != nil {
			c.log.Error().Err(err).Msg("publish terminal event; the order will be redelivered")
			_ = c.msg.Nak()
		} else {
			if err := c.msg.Ack(); err != nil {
				c.log.Warn().Err(err).Msg("ack")
			}
			s.metrics.Processed("shipper", c.event.Shop, s.now().Sub(c.occurred))
		}
		s.letGo(c.hold, c.lease)
	}
}

// decided handles a terminal event the server refused because the order's
// record changed since it was read. It returns nil when the input is
// settled: the stored event is this very one (an earlier send of it was
// stored but its answer lost), or another in this order's chain; and an
// error (redeliver, decide again) when it belongs to another chain.
func (s *Shipper) decided(ctx context.Context, c completion) error {
	record := s.record
	if s.Leader != nil {
		record = s.Leader // the event the server just found may be that recent
	}
	stored, seq, err := record.Last(ctx, c.event.Stage(), c.event.Shop, c.event.OrderID)
	if err != nil {
		return err
	}
	switch {
	case stored == nil:
		return fmt.Errorf("the server refused %s but the order has no %s event", c.event.ID, c.event.Stage())
	case stored.ID == c.event.ID:
		return nil
	case c.event.Stage() == events.StageShipped || stored.CorrelationID == c.input.CorrelationID:
		c.log.Info().Str("recorded_event_id", stored.ID).Uint64("recorded_seq", seq).
			Msgf("order already %s by another copy or replica; not recording it again", c.event.Stage())
		return nil
	}
	return fmt.Errorf("another chain of the order failed meanwhile (event %s): %w", stored.ID, pipeline.ErrDecided)
}

// letGo ends a settled message's hold and deletes its order's lease (if l
// is not nil), in the background: stopping a hold waits for a lease renewal
// under way, and neither may hold up the completer acking the next order.
// The bucket's TTL frees the lease anyway if the delete fails.
func (s *Shipper) letGo(h *pipeline.Hold, l Lease) {
	if l == nil && h.TryStop() {
		return // most orders: shipped before their first heartbeat
	}
	s.release.Go(func() {
		h.Stop()
		if l == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Release(ctx); err != nil {
			s.log.Debug().Err(err).Msg("release order lease; it expires by itself")
		}
	})
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
