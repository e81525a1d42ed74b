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
		Name: "RAWBENCH", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return 0, err
	}
	defer func() { _ = js.DeleteStream(context.Background(), "RAWBENCH") }()
	body := bytes.Repeat([]byte("x"), payload)

	var shipped atomic.Int64
	done := make(chan struct{})
	hop := func(name, filter, next string) (func(), error) {
		cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: name, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 20000,
		})
		if err != nil {
			return nil, err
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(1000))
		if err != nil {
			return nil, err
		}
		type pending struct {
			f   jetstream.PubAckFuture
			msg jetstream.Msg
		}
		q := make(chan pending, 4096)
		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(q)
			for {
				m, err := it.Next()
				if err != nil {
					return
				}
				out := nats.NewMsg(next + m.Subject()[len(filter)-1:])
				out.Data = body
				out.Header.Set(jetstream.MsgIDHeader, next+m.Headers().Get(jetstream.MsgIDHeader))
				f, err := js.PublishMsgAsync(out)
				if err != nil {
					continue
				}
				q <- pending{f, m}
			}
		})
		wg.Go(func() {
			for p := range q {
				select {
				case <-p.f.Ok():
					_ = p.msg.Ack()
					if next == "raw.shipped." && shipped.Add(1) == int64(n) {
						close(done)
					}
				case <-p.f.Err():
				}
			}
		})
		return func() { it.Stop(); wg.Wait() }, nil
	}
	stopA, err := hop("rawA", "raw.received.>", "raw.enriched.")
	if err != nil {
		return 0, err
	}
	defer stopA()
	stopB, err := hop("rawB", "raw.enriched.>", "raw.shipped.")
	if err != nil {
		return 0, err
	}
	defer stopB()

	start := time.Now()
	for i := range n {
		m := nats.NewMsg("raw.received." + strconv.Itoa(i))
		m.Data = body
		m.Header.Set(jetstream.MsgIDHeader, strconv.Itoa(i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			return 0, fmt.Errorf("raw publish: %w", err)
		}
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
