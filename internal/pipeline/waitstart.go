package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WaitStartBucket is the KV bucket where shippers note when the platform
// first kept an order waiting on the merchant: key <stream sequence> of the
// enriched message (each copy of an order its own), value the unix
// milliseconds of the first waiting answer. `nats kv ls FULFILL_SHIP_WAITS`
// lists the orders waiting now.
const WaitStartBucket = "FULFILL_SHIP_WAITS"

// waitStartBytes bounds the bucket: a key per waiting order.
const waitStartBytes = 64 << 20

// WaitStarts remembers, across replicas and restarts, when each message
// was first answered a waiting code, so that SHIP_WAIT_MAX_ATTEMPTS ×
// SHIP_WAIT_DELAY counts from then: not from when the message was stored
// (an order that sat in a backlog or behind a slow platform has not waited
// on the merchant yet), nor in deliveries (parks of a busy shop or a taken
// lease are deliveries too).
type WaitStarts struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// OpenWaitStarts binds the bucket, creating it with ttl if it is missing;
// an existing bucket keeps its own (TTL tells which).
func OpenWaitStarts(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*WaitStarts, error) {
	kv, err := bindBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      WaitStartBucket,
		Description: "shipper: when the platform first kept each order waiting on the merchant",
		History:     1,
		TTL:         ttl,
		MaxBytes:    waitStartBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", WaitStartBucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", WaitStartBucket, err)
	}
	return &WaitStarts{kv: kv, ttl: st.TTL()}, nil
}

// TTL is how long an entry lives: a wait that began longer ago is
// forgotten, and the order's waiting counts again from its next answer.
func (w *WaitStarts) TTL() time.Duration { return w.ttl }

// FirstWait returns when the message at stream sequence seq was first
// answered a waiting code, noting now as that moment if it never was.
func (w *WaitStarts) FirstWait(ctx context.Context, seq uint64, now time.Time) (time.Time, error) {
	key := strconv.FormatUint(seq, 10)
	for range 3 {
		e, err := w.kv.Get(ctx, key)
		if err == nil {
			ms, perr := strconv.ParseInt(string(e.Value()), 10, 64)
			if perr != nil {
				return time.Time{}, fmt.Errorf("bucket %s key %s: %q is not unix milliseconds", WaitStartBucket, key, e.Value())
			}
			return time.UnixMilli(ms), nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return time.Time{}, fmt.Errorf("bucket %s: %w", WaitStartBucket, err)
		}
		_, err = w.kv.Create(ctx, key, []byte(strconv.FormatInt(now.UnixMilli(), 10)))
		if err == nil {
			return time.UnixMilli(now.UnixMilli()), nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return time.Time{}, fmt.Errorf("bucket %s: %w", WaitStartBucket, err)
		}
		// Another replica noted it first: read theirs.
	}
	return time.Time{}, fmt.Errorf("bucket %s key %s: created and deleted under us", WaitStartBucket, key)
}
