package enricher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

// Waybills is the platform call the enricher makes.
type Waybills interface {
	BatchGetOrder(ctx context.Context, orders []wechat.WaybillQuery) ([]wechat.Waybill, error)
}

// Clients finds the platform client of each shop; an error (the shop left
// the registry, or has no Channels account) ends its orders failed.
type Clients func(shop string) (Waybills, error)

// Options tune the enricher; see the ENRICH_* variables.
type Options struct {
	BatchSize int
	MaxWait   time.Duration
	// Workers is how many batches are in flight at once, so a slow
	// batchGetOrder does not stop the next batch from being fetched.
	Workers int
	// MaxDeliveries ends an order failed after this many transient
	// failures of its batch (with the delays of retryDelay: 40 deliveries
	// take about 36 minutes).
	MaxDeliveries int
	// Heartbeat is how often a batch being processed is reported in
	// progress; a quarter of the ack wait.
	Heartbeat time.Duration
}

// Record is what the enricher reads of an order before recording it
// failed: its latest event of a stage and that event's stream sequence.
type Record interface {
	Last(ctx context.Context, stage events.Stage, shop, orderID string) (*events.Envelope, uint64, error)
}

// Enricher consumes order.received and attaches waybills.
type Enricher struct {
	opts    Options
	clients Clients
	record  Record
	pub     *pipeline.Publisher
	log     zerolog.Logger
	metrics *service.Metrics
	now     func() time.Time
	// Tracer, if on, makes each order's handling a span of its trace
	// (trace.go).
	Tracer *tracing.Tracer
}

// New wires an enricher.
func New(opts Options, clients Clients, record Record, pub *pipeline.Publisher, log zerolog.Logger, m *service.Metrics) *Enricher {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.MaxDeliveries <= 0 {
		opts.MaxDeliveries = defaultMaxDeliveries
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = events.AckWait / 4
	}
	return &Enricher{opts: opts, clients: clients, record: record, pub: pub, log: log, metrics: m, now: time.Now}
}

// Run fetches batches until ctx ends, then finishes the batches it holds.
// Each worker pulls its own batch when it is free and holds it (InProgress)
// until every message of it is settled, so no batch waits unheld for a
// worker while its ack wait runs out.
func (e *Enricher) Run(ctx context.Context, cons jetstream.Consumer) error {
	var wg sync.WaitGroup
	for range e.opts.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				batch := e.fetch(ctx, cons)
				if len(batch) == 0 {
					continue
				}
				hold := pipeline.StartHold(e.opts.Heartbeat, batch...)
				e.process(context.WithoutCancel(ctx), batch)
				hold.Stop()
			}
		})
	}
	wg.Wait()
	return nil
}

// fetch pulls up to BatchSize messages, waiting at most MaxWait for them.
func (e *Enricher) fetch(ctx context.Context, cons jetstream.Consumer) []jetstream.Msg {
	mb, err := cons.Fetch(e.opts.BatchSize, jetstream.FetchMaxWait(e.opts.MaxWait))
	if err != nil {
		e.log.Warn().Err(err).Msg("fetch from enricher consumer")
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		return nil
	}
	var batch []jetstream.Msg
	for m := range mb.Messages() {
		batch = append(batch, m)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		e.log.Debug().Err(err).Msg("fetch ended")
	}
	return batch
}

// item is one usable received event of a batch.
type item struct {
	msg  jetstream.Msg
	md   *jetstream.MsgMetadata
	env  *events.Envelope
	data *events.Received
	log  zerolog.Logger
	// ctx carries the order's span (trace.go).
	ctx  context.Context
	span trace.Span
}

// settlement is an event to store for one message, which is acked once it
// is stored.
type settlement struct {
	it  item
	out *events.Envelope
}

// process makes one batchGetOrder call for the batch and settles every
// message: acked once its enriched/failed event is stored, naked with a
// delay when the platform failed transiently, terminated when unusable.
func (e *Enricher) process(ctx context.Context, batch []jetstream.Msg) {
	var items []item
	var outs []settlement
	var open spans
	defer open.end()
	for _, m := range batch {
		it, err := decode(m)
		e.metrics.In(events.StageReceived, e.metrics.ShopOfSubject(m.Subject()))
		if err != nil {
			e.pub.SetAside(ctx, m, events.ComponentEnricher, err, e.now(), e.log)
			continue
		}
		it.log = e.log.With().Str("order_id", it.env.OrderID).Str("event_id", it.env.ID).
			Str("correlation_id", it.env.CorrelationID).Logger()
		e.startItem(ctx, &it)
		open.add(it.span)
		if it.md.NumDelivered > 1 {
			e.metrics.Redelivered(events.StageReceived, it.env.Shop)
		}
		if int(it.md.NumDelivered) > e.opts.MaxDeliveries {
			outs = append(outs, settlement{it, e.failed(it, 0, "", fmt.Sprintf(
				"batchGetOrder kept failing transiently for %d deliveries; run %s once the platform recovers",
				it.md.NumDelivered-1, pipeline.RedriveCommand(it.env)))})
			continue
		}
		items = append(items, it)
	}
	outs = append(outs, e.enrichByShop(ctx, items)...)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// An event the server can never take (its waybill data too large for
	// the max payload) ends that order failed, once, with a reason.
	if unstorable := e.store(pctx, outs); len(unstorable) > 0 {
		e.store(pctx, unstorable)
	}
}

// store publishes each settlement's event (a failed one checked against
// the order's record first) and acks its message once stored: one that
// cannot be stored comes back alone, its batch-mates go on. It returns, as
// failed settlements, the orders whose event was refused for good.
func (e *Enricher) store(ctx context.Context, outs []settlement) []settlement {
	var msgs []*nats.Msg
	var stored []settlement
	for _, o := range outs {
		m, err := e.message(ctx, o)
		if err != nil {
			o.it.log.Warn().Err(err).Msg("order record unavailable; the order will be redelivered")
			_ = o.it.msg.NakWithDelay(time.Second)
			continue
		}
		if m == nil { // the order's outcome is on record already
			e.ack(o.it)
			continue
		}
		msgs, stored = append(msgs, m), append(stored, o)
	}
	var unstorable []settlement
	for i, err := range e.pub.PublishEach(ctx, msgs...) {
		o := stored[i]
		switch {
		case err == nil:
			e.ack(o.it)
		case errors.Is(err, pipeline.ErrDecided):
			o.it.log.Info().Err(err).Msg("the order's outcome was recorded meanwhile; deciding again")
			_ = o.it.msg.Nak()
		case errors.Is(err, nats.ErrMaxPayload) && o.out.Stage() != events.StageFailed:
			unstorable = append(unstorable, settlement{o.it, e.failed(o.it, 0, "event too large", fmt.Sprintf(
				"the %s event is %d bytes, more than the NATS server's max payload takes (the platform's waybill data, print_html, is too large to carry); raise max_payload or fix the waybill, then run %s",
				o.out.Type, len(msgs[i].Data), pipeline.RedriveCommand(o.it.env)))})
		default:
			o.it.log.Error().Err(err).Str("event", o.out.Type).Msg("publish; the order will be redelivered")
			_ = o.it.msg.Nak()
		}
	}
	return unstorable
}

// message is the NATS message of a settlement. A failed event is terminal,
// so it is checked against the order's record first: nil when the order was
// shipped, or failed in this chain after this message was stored (a copy
// of it ran first); else the event, to be stored only if no other failed
// event was stored meanwhile.
func (e *Enricher) message(ctx context.Context, o settlement) (*nats.Msg, error) {
	m, err := o.out.Msg()
	if err == nil {
		tracing.Inject(o.it.ctx, m.Header)
	}
	if err != nil || o.out.Stage() != events.StageFailed {
		return m, err
	}
	id := o.it.env.OrderID
	shipped, _, err := e.record.Last(ctx, events.StageShipped, o.it.env.Shop, id)
	if err != nil {
		return nil, err
	}
	if shipped != nil {
		o.it.log.Info().Str("shipped_event_id", shipped.ID).Msg("order already shipped; not recording a failure")
		return nil, nil
	}
	failed, seq, err := e.record.Last(ctx, events.StageFailed, o.it.env.Shop, id)
	if err != nil {
		return nil, err
	}
	if failed != nil && seq > o.it.md.Sequence.Stream && failed.CorrelationID == o.it.env.CorrelationID {
		o.it.log.Info().Str("failed_event_id", failed.ID).Msg("order failed after this message was stored; not recording it again")
		return nil, nil
	}
	filter, err := events.OrderFilter(events.StageFailed, o.it.env.Shop, id)
	if err != nil {
		return nil, err
	}
	pipeline.ExpectLast(m, filter, seq)
	return m, nil
}

func (e *Enricher) ack(it item) {
	if err := it.msg.Ack(); err != nil {
		it.log.Warn().Err(err).Msg("ack")
	}
}

// enrichByShop asks each shop's platform for its orders of the batch, all
// shops at once: one shop's slow or failing platform holds up none of the
// others' orders beyond the time of its own call.
func (e *Enricher) enrichByShop(ctx context.Context, items []item) []settlement {
	byShop := map[string][]item{}
	var order []string
	for _, it := range items {
		if _, ok := byShop[it.env.Shop]; !ok {
			order = append(order, it.env.Shop)
		}
		byShop[it.env.Shop] = append(byShop[it.env.Shop], it)
	}
	results := make([][]settlement, len(order))
	var wg sync.WaitGroup
	for i, shop := range order {
		wg.Go(func() {
			client, err := e.clients(shop)
			if err != nil {
				for _, it := range byShop[shop] {
					results[i] = append(results[i], settlement{it, e.failed(it, 0, "shop not served", fmt.Sprintf(
						"this deployment cannot reach the platform for the order's shop (%v); add the shop back to SHOPS_FILE, then run %s",
						err, pipeline.RedriveCommand(it.env)))})
				}
				return
			}
			results[i] = e.enrich(ctx, client, byShop[shop])
		})
	}
	wg.Wait()
	var outs []settlement
	for _, r := range results {
		outs = append(outs, r...)
	}
	return outs
}

// enrich calls batchGetOrder once and returns the events to publish with
// the messages they settle; messages to retry are naked here.
func (e *Enricher) enrich(ctx context.Context, client Waybills, items []item) []settlement {
	queries := make([]wechat.WaybillQuery, len(items))
	for i, it := range items {
		queries[i] = wechat.WaybillQuery{OrderID: it.env.OrderID, DeliveryID: it.data.DeliveryID, WaybillID: it.data.WaybillID}
	}
	e.metrics.BatchSize.Observe(float64(len(queries)))
	call := e.startCall(ctx, items)
	results, err := client.BatchGetOrder(call.ctx, queries)
	call.end(e.Tracer, items, err)
	var outs []settlement
	if err != nil {
		code, class := wechat.Code(err), wechat.Classify(err)
		if class != wechat.ClassPermanent {
			e.metrics.Retry(items[0].env.Shop, fmt.Sprint(code))
			e.log.Warn().Err(err).Str("shop", items[0].env.Shop).Int("orders", len(items)).Msg("batchGetOrder failed; batch will be retried")
			for _, it := range items {
				tracing.SetOutcome(it.span, "retry", code)
				_ = it.msg.NakWithDelay(retryDelay(it.md.NumDelivered))
			}
			return nil
		}
		if len(items) > 1 {
			// One order can make the whole call fail (a malformed field):
			// ask again in halves, so only the culprits fail.
			e.log.Warn().Err(err).Int("orders", len(items)).Msg("batchGetOrder refused the whole call; asking again in halves to find the orders it refuses")
			half := len(items) / 2
			return append(e.enrich(ctx, client, items[:half]), e.enrich(ctx, client, items[half:])...)
		}
		for _, it := range items {
			outs = append(outs, settlement{it, e.failed(it, code, errText(err), fmt.Sprintf(
				"batchGetOrder refused the call (errcode %d); fix the cause, then run %s", code, pipeline.RedriveCommand(it.env)))})
		}
		return outs
	}
	byOrder := make(map[string][]*wechat.Waybill, len(results))
	for i := range results {
		id := string(results[i].OrderID)
		byOrder[id] = append(byOrder[id], &results[i])
	}
	for _, it := range items {
		var w *wechat.Waybill
		if ws := byOrder[it.env.OrderID]; len(ws) > 0 {
			w, byOrder[it.env.OrderID] = ws[0], ws[1:]
			if len(byOrder[it.env.OrderID]) == 0 {
				byOrder[it.env.OrderID] = ws[:1] // answer repeated ids with the same waybill
			}
		}
		out, retry := e.one(it, w)
		if retry {
			traceRetry(it.span, w.Err())
			_ = it.msg.NakWithDelay(retryDelay(it.md.NumDelivered))
			continue
		}
		outs = append(outs, settlement{it, out})
	}
	return outs
}

// one turns an order's waybill into its event; retry asks for redelivery.
func (e *Enricher) one(it item, w *wechat.Waybill) (*events.Envelope, bool) {
	if w == nil {
		return e.failed(it, 0, "", fmt.Sprintf(
			"batchGetOrder returned no waybill for order %s; check the waybill exists for carrier %s, then re-drive",
			it.env.OrderID, it.data.DeliveryID)), false
	}
	if err := w.Err(); err != nil {
		code := wechat.Code(err)
		if c := wechat.Classify(err); c == wechat.ClassTransient || c == wechat.ClassToken {
			e.metrics.Retry(it.env.Shop, fmt.Sprint(code))
			return nil, true
		}
		return e.failed(it, code, w.Errmsg, fmt.Sprintf(
			"batchGetOrder answered errcode %d for this order (%s); fix the waybill, then run %s",
			code, w.Errmsg, pipeline.RedriveCommand(it.env))), false
	}
	if w.OrderStatus == wechat.WaybillStatusCancelled {
		return e.failed(it, 0, "waybill cancelled", fmt.Sprintf(
			"waybill %s of carrier %s is cancelled (order_status 1); create a new waybill, then re-drive", w.WaybillID, w.DeliveryID)), false
	}
	if w.WaybillID == "" {
		return e.failed(it, 0, "no waybill_id", "batchGetOrder returned the order without a waybill_id; create the waybill, then re-drive"), false
	}
	fields := make([]events.WaybillField, len(w.WaybillData))
	for i, f := range w.WaybillData {
		fields[i] = events.WaybillField{Key: f.Key, Value: f.Value}
	}
	deliveryID := w.DeliveryID
	if deliveryID == "" {
		deliveryID = it.data.DeliveryID
	}
	out, err := it.env.Next(events.StageEnriched, events.Enriched{
		DeliveryID: deliveryID, WaybillID: w.WaybillID, WaybillData: fields, PrintHTML: w.PrintHTML,
		OrderStatus: w.OrderStatus, Products: it.data.Products, ReceivedAt: it.env.OccurredAt,
	}, e.now())
	if err != nil {
		return e.failed(it, 0, err.Error(), "could not build the enriched event"), false
	}
	e.metrics.Processed("enricher", it.env.Shop, e.now().Sub(it.env.OccurredAt))
	tracing.SetOutcome(it.span, "enriched", 0)
	return out, false
}

func (e *Enricher) failed(it item, code int, errmsg, reason string) *events.Envelope {
	out, err := pipeline.Failed(it.env, events.Failed{Stage: events.ComponentEnricher, Errcode: code, Errmsg: errmsg,
		Attempts: int(it.md.NumDelivered), Reason: reason}, e.now())
	if err != nil { // the input envelope was validated, so this cannot happen
		panic(fmt.Sprintf("build failed event: %v", err))
	}
	it.log.Warn().Int("errcode", code).Str("errmsg", errmsg).Str("reason", reason).Msg("order failed")
	tracing.SetOutcome(it.span, "failed", code)
	return out
}

func decode(m jetstream.Msg) (item, error) {
	md, err := m.Metadata()
	if err != nil {
		return item{}, fmt.Errorf("message metadata: %w", err)
	}
	env, data, err := pipeline.DecodeInput[events.Received](m, events.StageReceived)
	if err != nil {
		return item{}, err
	}
	return item{msg: m, md: md, env: env, data: data}, nil
}

// defaultMaxDeliveries is Options.MaxDeliveries unless set.
const defaultMaxDeliveries = 40

// RetryHorizon is the longest a received event waits in the stream when
// its batchGetOrder keeps failing transiently for maxDeliveries
// deliveries: the redelivery delays plus an ack wait for each handling.
func RetryHorizon(maxDeliveries int, ackWait time.Duration) time.Duration {
	var d time.Duration
	for n := 1; n < maxDeliveries; n++ {
		d += retryDelay(uint64(n)) + ackWait
	}
	return d + ackWait
}

// retryDelay grows with each delivery: 2 s after the first, 4 s after the
// second, 8 s … capped at a minute.
func retryDelay(delivered uint64) time.Duration {
	d := time.Second << min(delivered, 6)
	return min(d, time.Minute)
}

func errText(err error) string {
	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Msg
	}
	return err.Error()
}
