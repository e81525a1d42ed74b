package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket holding the pollers' checkpoints.
const Bucket = "FULFILL_INGEST"

// ledgerBytes bounds the bucket: one small key per poller and shop.
const ledgerBytes = 64 << 20

// Ledger is ingest's memory in JetStream KV: where each poller got to.
// What was published is not kept here: the ORDERS stream is that record.
type Ledger struct {
	kv jetstream.KeyValue
}

// OpenLedger creates or updates the bucket, bounded in size.
func OpenLedger(ctx context.Context, js jetstream.JetStream, replicas int) (*Ledger, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "ingest: the pollers' checkpoints",
		History:     1,
		MaxBytes:    ledgerBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", Bucket, err)
	}
	return &Ledger{kv: kv}, nil
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
