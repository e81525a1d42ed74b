package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
)

// The streams of the in-process phases; each is deleted afterwards.
const (
	rawStream     = "RAWBENCH"
	ceilingStream = "CEILBENCH"
)

// rawChain is the raw limit of n orders: what plain nats.go/jetstream does
// on the same server with the pipeline's shape and no platform calls:
// publish received → consume, publish enriched → consume, publish shipped,
// with explicit acks sent only after the next publish was acknowledged, as
// the pipeline does, payload bytes a message. Its run is orders/s from the
// first publish to the last shipped ack.
func rawChain(n, payload int) chain {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	return chain{stream: rawStream, prefix: "raw", ids: ids, body: bytes.Repeat([]byte("x"), payload)}
}

// chain is three JetStream hops on a stream of their own, subjects
// prefix.<stage>.<id>: ids are published as received, consumed and
// republished as enriched, consumed and republished as shipped, each
// consumed message acked once its republished one is stored. Every message
// carries body and a Nats-Msg-Id. With calls, each hop makes the platform
// calls the pipeline is forced to make before it publishes (the ceiling);
// without, nothing else happens (the raw limit).
type chain struct {
	stream, prefix string
	ids            []string
	body           []byte
	calls          *chainCalls
	// contract adds the contract's bookkeeping to the shipped hop's calls
	// (calls must be set): see bookkeeping.
	contract bool
}

// chainCalls are the platform calls of the ceiling, one function a hop, each
// given the ids of the orders it is about to publish: one id for received
// and shipped, up to batch ids for enriched. Workers goroutines make them in
// each hop.
type chainCalls struct {
	received, enriched, shipped func(ctx context.Context, ids []string) error
	batch, workers              int
}

// run runs the chain and returns orders/s from the first publish to the
// last shipped ack; a failed platform call or publish of the ceiling ends it
// with that error.
func (c chain) run(ctx context.Context, url string) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, err
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: c.stream, Subjects: []string{c.prefix + ".>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Duplicates: 2 * time.Minute, AllowDirect: c.contract,
	})
	if err != nil {
		return 0, err
	}
	defer func() { _ = js.DeleteStream(context.Background(), c.stream) }()

	n := len(c.ids)
	var shipped atomic.Int64
	done := make(chan struct{})
	onShipped := func() {
		if shipped.Add(1) == int64(n) {
			close(done)
		}
	}
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	hopA := rawHop{js: js, body: c.body, filter: c.prefix + ".received.>", next: c.prefix + ".enriched."}
	hopB := rawHop{js: js, body: c.body, filter: c.prefix + ".enriched.>", next: c.prefix + ".shipped.", acked: onShipped}
	if c.calls != nil {
		hopA.calling = &calling{call: c.calls.enriched, batch: c.calls.batch, workers: c.calls.workers, want: n, fail: fail}
		hopB.calling = &calling{call: c.calls.shipped, batch: 1, workers: c.calls.workers, want: n, fail: fail}
	}
	if c.contract {
		b, err := newBookkeeping(ctx, nc, js, c.stream, c.prefix)
		if err != nil {
			return 0, err
		}
		defer b.close()
		hopB.calling.call = b.before(hopB.calling.call)
		hopB.expectNone = true
	}
	stopA, err := hopA.start(ctx, s, c.prefix+"A")
	if err != nil {
		return 0, err
	}
	defer stopA()
	stopB, err := hopB.start(ctx, s, c.prefix+"B")
	if err != nil {
		return 0, err
	}
	defer stopB()

	start := time.Now()
	if c.calls == nil {
		err = publishReceived(js, c.prefix, c.ids, c.body)
	} else {
		err = publishCalling(ctx, js, c.prefix, c.ids, c.body, &calling{call: c.calls.received, batch: 1, workers: c.calls.workers, want: n, fail: fail})
	}
	if err != nil {
		return 0, err
	}
	select {
	case <-done:
	case err := <-failed:
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("%s: only %d of %d orders shipped in 5 minutes", c.stream, shipped.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// publishReceived publishes a received message of body for each id without
// waiting for their acks.
func publishReceived(js jetstream.JetStream, prefix string, ids []string, body []byte) error {
	for _, id := range ids {
		m := nats.NewMsg(prefix + ".received." + id)
		m.Data = body
		m.Header.Set(jetstream.MsgIDHeader, id)
		if _, err := publishStalling(js, m); err != nil {
			return fmt.Errorf("raw publish: %w", err)
		}
	}
	return nil
}

// publishCalling publishes a received message for each id, as
// publishReceived, once c's call for that id returned; c.workers goroutines
// do it. A failed call or publish is reported to c.fail and that order is
// not published.
func publishCalling(ctx context.Context, js jetstream.JetStream, prefix string, ids []string, body []byte, c *calling) error {
	work := make(chan string)
	acks := make(chan jetstream.PubAckFuture, 4096)
	var wg, watch sync.WaitGroup
	watch.Go(func() {
		for f := range acks {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				c.fail(fmt.Errorf("publish %s: %w", f.Msg().Subject, err))
			}
		}
	})
	for range c.workers {
		wg.Go(func() {
			for id := range work {
				if err := c.call(ctx, []string{id}); err != nil {
					c.fail(err)
					continue
				}
				m := nats.NewMsg(prefix + ".received." + id)
				m.Data = body
				m.Header.Set(jetstream.MsgIDHeader, id)
				f, err := publishStalling(js, m)
				if err != nil {
					c.fail(fmt.Errorf("publish %s: %w", m.Subject, err))
					continue
				}
				acks <- f
			}
		})
	}
	defer func() { close(work); wg.Wait(); close(acks); watch.Wait() }()
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// publishStalling publishes m asynchronously, waiting while too many
// publishes are outstanding (for up to a minute) instead of failing: on a
// busy machine the server may take longer than nats.go's stall wait
// (200ms) to catch up, and a publish given up would end the raw phase, or
// leave its consumed message to be redelivered after the ack wait (a
// ceiling order would call the platform twice).
func publishStalling(js jetstream.JetStream, m *nats.Msg) (jetstream.PubAckFuture, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		f, err := js.PublishMsgAsync(m)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || time.Now().After(deadline) {
			return f, err
		}
	}
}

// rawHop is one hop of a chain: it consumes filter (which ends in ">") and
// republishes each message as next plus the rest of its subject, with body,
// acking the consumed message only once the republished one is stored.
type rawHop struct {
	js           jetstream.JetStream
	body         []byte
	filter, next string
	acked        func() // if set, called after each ack
	calling      *calling
	// expectNone makes the server store a republished message only if its
	// subject has none yet (the contract's refusal of a second shipped
	// event).
	expectNone bool
}

// calling is how a hop of the ceiling calls the platform: call for every
// batch consumed messages (the last batch is what remains of want), on
// workers goroutines; errors go to fail.
type calling struct {
	call                 func(ctx context.Context, ids []string) error
	batch, workers, want int
	fail                 func(error)
}

// rawPending is a republished message whose consumed message waits for its
// PubAck.
type rawPending struct {
	f   jetstream.PubAckFuture
	msg jetstream.Msg
}

// start creates the hop's durable consumer on s and runs the hop until stop.
func (h rawHop) start(ctx context.Context, s jetstream.Stream, durable string) (stop func(), err error) {
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: durable, FilterSubject: h.filter, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 20000,
	})
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return nil, err
	}
	q := make(chan rawPending, 4096)
	var wg sync.WaitGroup
	if h.calling != nil {
		wg.Go(func() { h.forwardCalling(ctx, it, q) })
	} else {
		wg.Go(func() { h.forward(it, q) })
	}
	wg.Go(func() { h.ack(q) })
	return func() { it.Stop(); wg.Wait() }, nil
}

// republished is m's next message: next plus the rest of m's subject, body,
// and next plus m's Nats-Msg-Id.
func (h rawHop) republished(m jetstream.Msg) *nats.Msg {
	return h.message(h.id(m), m.Headers().Get(jetstream.MsgIDHeader))
}

// message is the next message of the order id whose consumed message had
// Nats-Msg-Id msgID.
func (h rawHop) message(id, msgID string) *nats.Msg {
	out := nats.NewMsg(h.next + id)
	out.Data = h.body
	out.Header.Set(jetstream.MsgIDHeader, h.next+msgID)
	if h.expectNone {
		pipeline.ExpectLast(out, out.Subject, 0)
	}
	return out
}

// id is the order id of a consumed message: its subject after the filter's
// prefix.
func (h rawHop) id(m jetstream.Msg) string { return m.Subject()[len(h.filter)-1:] }

// forward republishes each consumed message until the iterator stops, then
// closes q.
func (h rawHop) forward(it jetstream.MessagesContext, q chan<- rawPending) {
	defer close(q)
	for {
		m, err := it.Next()
		if err != nil {
			return
		}
		f, err := publishStalling(h.js, h.republished(m))
		if err != nil {
			continue
		}
		q <- rawPending{f, m}
	}
}

// forwardCalling groups consumed messages into batches of h.calling.batch
// (the last one what remains of want), and on h.calling.workers goroutines
// calls the platform for each batch, then republishes its messages; it
// closes q when the iterator stops and the workers are done.
func (h rawHop) forwardCalling(ctx context.Context, it jetstream.MessagesContext, q chan<- rawPending) {
	c := h.calling
	batches := make(chan []jetstream.Msg)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			for b := range batches {
				ids := make([]string, len(b))
				for i, m := range b {
					ids[i] = h.id(m)
				}
				if err := c.call(ctx, ids); err != nil {
					c.fail(err)
					continue
				}
				for _, m := range b {
					out := h.republished(m)
					f, err := publishStalling(h.js, out)
					if err != nil {
						c.fail(fmt.Errorf("publish %s: %w", out.Subject, err))
						continue
					}
					q <- rawPending{f, m}
				}
			}
		})
	}
	defer func() { close(batches); wg.Wait(); close(q) }()
	var cur []jetstream.Msg
	for taken := 0; ; {
		m, err := it.Next()
		if err != nil {
			return
		}
		cur = append(cur, m)
		if taken++; len(cur) == c.batch || taken == c.want {
			batches <- cur
			cur = nil
		}
	}
}

// ack acks each consumed message once its republished one is stored; one
// whose republish failed stays unacked (the ceiling reports it).
func (h rawHop) ack(q <-chan rawPending) {
	for p := range q {
		select {
		case <-p.f.Ok():
			_ = p.msg.Ack()
			if h.acked != nil {
				h.acked()
			}
		case err := <-p.f.Err():
			if h.calling != nil {
				h.calling.fail(fmt.Errorf("publish %s: %w", p.f.Msg().Subject, err))
			}
		}
	}
}
