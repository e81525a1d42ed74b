package pipeline

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// bindBucket binds the KV bucket cfg names, creating it with cfg if it is
// missing. An existing bucket keeps its own settings: replicas started with
// other settings share it as it is. Replicas starting together race to
// create it; the loser binds the winner's.
func bindBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	return kv, err
}
