package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rawStream is the stream of the raw-limit phase; it is deleted afterwards.
const rawStream = "RAWBENCH"

// rawLimit measures what plain nats.go/jetstream does on the same server
// with the pipeline's shape and no platform calls: publish received →
// consume, publish enriched → consume, publish shipped, with explicit acks
// sent only after the next publish was acknowledged, as the pipeline does.
// The result is orders/s from the first publish to the last shipped ack.
func rawLimit(ctx context.Context, url string, n, payload int) (float64, error) {
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
		Name: rawStream, Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return 0, err
	}
	defer func() { _ = js.DeleteStream(context.Background(), rawStream) }()
	body := bytes.Repeat([]byte("x"), payload)

	var shipped atomic.Int64
	done := make(chan struct{})
	onShipped := func() {
		if shipped.Add(1) == int64(n) {
			close(done)
		}
	}
	stopA, err := rawHop{js: js, body: body, filter: "raw.received.>", next: "raw.enriched."}.start(ctx, s, "rawA")
	if err != nil {
		return 0, err
	}
	defer stopA()
	stopB, err := rawHop{js: js, body: body, filter: "raw.enriched.>", next: "raw.shipped.", acked: onShipped}.start(ctx, s, "rawB")
	if err != nil {
		return 0, err
	}
	defer stopB()

	start := time.Now()
	if err := publishReceived(js, n, body); err != nil {
		return 0, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("raw limit: only %d of %d orders shipped in 5 minutes", shipped.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// publishReceived publishes n received messages of body, ids 0 to n-1,
// without waiting for their acks.
func publishReceived(js jetstream.JetStream, n int, body []byte) error {
	for i := range n {
		m := nats.NewMsg("raw.received." + strconv.Itoa(i))
		m.Data = body
		m.Header.Set(jetstream.MsgIDHeader, strconv.Itoa(i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			return fmt.Errorf("raw publish: %w", err)
		}
	}
	return nil
}

// rawHop is one hop of the raw limit: it consumes filter (which ends in ">")
// and republishes each message as next plus the rest of its subject, with
// body, acking the consumed message only once the republished one is stored.
type rawHop struct {
	js           jetstream.JetStream
	body         []byte
	filter, next string
	acked        func() // if set, called after each ack
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
	wg.Go(func() { h.forward(it, q) })
	wg.Go(func() { h.ack(q) })
	return func() { it.Stop(); wg.Wait() }, nil
}

// forward republishes each consumed message until the iterator stops, then
// closes q.
func (h rawHop) forward(it jetstream.MessagesContext, q chan<- rawPending) {
	defer close(q)
	for {
		m, err := it.Next()
		if err != nil {
			return
		}
		out := nats.NewMsg(h.next + m.Subject()[len(h.filter)-1:])
		out.Data = h.body
		out.Header.Set(jetstream.MsgIDHeader, h.next+m.Headers().Get(jetstream.MsgIDHeader))
		f, err := h.js.PublishMsgAsync(out)
		if err != nil {
			continue
		}
		q <- rawPending{f, m}
	}
}

// ack acks each consumed message once its republished one is stored; one
// whose republish failed stays unacked.
func (h rawHop) ack(q <-chan rawPending) {
	for p := range q {
		select {
		case <-p.f.Ok():
			_ = p.msg.Ack()
			if h.acked != nil {
				h.acked()
			}
		case <-p.f.Err():
		}
	}
}
