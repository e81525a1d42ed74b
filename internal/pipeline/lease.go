package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors of the lease table.
var (
	// ErrLeaseTaken is returned by Acquire when another holder has the key.
	ErrLeaseTaken = errors.New("lease held by another")
	// ErrLeaseLost is returned by Renew when the lease expired and was
	// taken, or deleted, while its holder still counted on it.
	ErrLeaseLost = errors.New("lease lost")
)

// LeaseConfig describes the KV bucket of a lease table.
type LeaseConfig struct {
	// Bucket is the KV bucket's name.
	Bucket string
	// Description is shown by nats kv info.
	Description string
	// TTL is how long a lease lives after its last write; a holder that
	// dies frees its keys after at most this long.
	TTL time.Duration
	// Replicas of the bucket (as the stream's).
	Replicas int
}

// leaseBucketBytes bounds the lease bucket: a lease is one small message
// per order under way, so this is room for about a million at once.
const leaseBucketBytes = 256 << 20

// Leases hands out per-key leases kept in a JetStream KV bucket, so every
// replica of a stage agrees on who may act on a key (an order) right now. A
// lease is a key created only if absent (the server decides, atomically),
// renewed while its holder works, and deleted (or left to expire) when the
// work is settled; the bucket's TTL frees the keys of a holder that died.
type Leases struct {
	kv     jetstream.KeyValue
	ttl    time.Duration
	holder string
	seq    atomic.Uint64
}

// OpenLeases binds the bucket, creating it if it is missing. An existing
// bucket is used as it is, with its own TTL (TTL tells which): replicas
// started with other settings must still agree on how long a lease lives.
// Replicas starting together race to create it; on a cluster the loser can
// see the new bucket as missing for a moment, so every step is retried
// until ctx ends.
func OpenLeases(ctx context.Context, js jetstream.JetStream, cfg LeaseConfig) (*Leases, error) {
	var kv jetstream.KeyValue
	var st jetstream.KeyValueStatus
	b := backoff.WithContext(&backoff.ExponentialBackOff{
		InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.3, Multiplier: 1.5, MaxInterval: time.Second,
		Stop: backoff.Stop, Clock: backoff.SystemClock,
	}, ctx)
	err := backoff.Retry(func() error {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		kv, err = bindBucket(actx, js, jetstream.KeyValueConfig{
			Bucket:      cfg.Bucket,
			Description: cfg.Description,
			History:     1,
			TTL:         cfg.TTL,
			Storage:     jetstream.FileStorage,
			Replicas:    max(cfg.Replicas, 1),
			MaxBytes:    leaseBucketBytes,
		})
		if err != nil {
			return err // another replica's create under way, an election: try again
		}
		st, err = kv.Status(actx)
		return err
	}, b)
	if err != nil {
		return nil, fmt.Errorf("open lease bucket %s: %w", cfg.Bucket, err)
	}
	if st.TTL() <= 0 {
		return nil, fmt.Errorf("lease bucket %s has no TTL: a dead holder's leases would never expire", cfg.Bucket)
	}
	host, _ := os.Hostname()
	return &Leases{kv: kv, ttl: st.TTL(), holder: host + "/" + strconv.Itoa(os.Getpid()) + "/" + uuid.NewString()[:8]}, nil
}

// TTL is how long a lease lives after its last write.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Acquire takes key for this holder, or returns ErrLeaseTaken.
func (l *Leases) Acquire(ctx context.Context, key string) (*Lease, error) {
	token := []byte(l.holder + "/" + strconv.FormatUint(l.seq.Add(1), 10))
	sent := time.Now()
	rev, err := l.kv.Create(ctx, key, token)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("%w: %s", ErrLeaseTaken, key)
	}
	if err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	return &Lease{l: l, key: key, token: token, rev: rev, written: sent}, nil
}

// Lease is one key held by this process.
type Lease struct {
	l     *Leases
	key   string
	token []byte

	mu      sync.Mutex
	rev     uint64
	written time.Time // when the last write that the server stored was sent
	lost    bool
}

// Valid reports whether the lease is certainly still ours: not lost, and
// written less than half its TTL ago, which leaves the other half for a call
// started now to be covered by the renewals that follow.
func (ls *Lease) Valid() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return !ls.lost && time.Since(ls.written) < ls.l.ttl/2
}

// Renew writes the lease again so it lives another TTL. It returns
// ErrLeaseLost if someone else holds the key now.
func (ls *Lease) Renew(ctx context.Context) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.lost {
		return fmt.Errorf("%w: %s", ErrLeaseLost, ls.key)
	}
	for range 2 {
		sent := time.Now()
		rev, err := ls.l.kv.Update(ctx, ls.key, ls.token, ls.rev)
		if err == nil {
			ls.rev, ls.written = rev, sent
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("renew lease %s: %w", ls.key, err)
		}
		// The last write may have been stored without its answer reaching
		// us: the key still holding our token at another revision is ours.
		e, gerr := ls.l.kv.Get(ctx, ls.key)
		if gerr != nil || !bytes.Equal(e.Value(), ls.token) {
			ls.lost = true
			return fmt.Errorf("%w: %s", ErrLeaseLost, ls.key)
		}
		ls.rev = e.Revision()
	}
	return fmt.Errorf("renew lease %s: revision kept changing", ls.key)
}

// Release deletes the key if it still holds this lease; a lease that
// expired or was taken meanwhile is left alone.
func (ls *Lease) Release(ctx context.Context) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.lost {
		return nil
	}
	ls.lost = true // whatever the answer, this holder stops counting on it
	err := ls.l.kv.Delete(ctx, ls.key, jetstream.LastRevision(ls.rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !conflict(err) {
		return fmt.Errorf("release lease %s: %w", ls.key, err)
	}
	return nil
}
