package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket holding the pollers' checkpoints and the set of
// facts already published.
const Bucket = "FULFILL_INGEST"

// Ledger is ingest's memory in JetStream KV: checkpoints of the pollers and
// the keys of facts already published (value: the event id).
type Ledger struct {
	kv     jetstream.KeyValue
	recent *recent
}

// OpenLedger creates or updates the bucket. Entries live twice as long as
// the stream's events, so a fact is never re-published while its event can
// still be replayed.
func OpenLedger(ctx context.Context, js jetstream.JetStream, replicas int, maxAge time.Duration) (*Ledger, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "ingest checkpoints and published-fact set",
		History:     1,
		TTL:         2 * maxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", Bucket, err)
	}
	return &Ledger{kv: kv, recent: newRecent(100_000)}, nil
}

// Seen returns the event id recorded under key, or "" if none.
func (l *Ledger) Seen(ctx context.Context, key string) (string, error) {
	if v := l.recent.get(key); v != "" {
		return v, nil
	}
	e, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("ledger get %s: %w", key, err)
	}
	l.recent.put(key, string(e.Value()))
	return string(e.Value()), nil
}

// Remember records that key was published as eventID.
func (l *Ledger) Remember(ctx context.Context, key, eventID string) error {
	if _, err := l.kv.Put(ctx, key, []byte(eventID)); err != nil {
		return fmt.Errorf("ledger put %s: %w", key, err)
	}
	l.recent.put(key, eventID)
	return nil
}

// Checkpoint returns the unix time stored under name, or 0.
func (l *Ledger) Checkpoint(ctx context.Context, name string) (int64, error) {
	// Read from the bucket, not the cache: another replica may have moved it.
	e, err := l.kv.Get(ctx, "checkpoint."+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ledger get checkpoint.%s: %w", name, err)
	}
	v := string(e.Value())
	t, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %q is not a unix time: %w", name, v, err)
	}
	return t, nil
}

// SetCheckpoint stores unix time t under name.
func (l *Ledger) SetCheckpoint(ctx context.Context, name string, t int64) error {
	if _, err := l.kv.Put(ctx, "checkpoint."+name, []byte(strconv.FormatInt(t, 10))); err != nil {
		return fmt.Errorf("ledger put checkpoint.%s: %w", name, err)
	}
	return nil
}

// OrderKey is the ledger key of an order's received event, whatever its
// source, so an order posted to the API and polled from Channels is one
// event.
func OrderKey(orderID string) string { return "order." + orderID }
