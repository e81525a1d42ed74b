package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
)

func openLeases(t *testing.T, js jetstream.JetStream, ttl time.Duration) *pipeline.Leases {
	t.Helper()
	l, err := pipeline.OpenLeases(t.Context(), js, pipeline.LeaseConfig{Bucket: "TEST_LEASES", TTL: ttl, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// eventually retries try every 20 ms until it succeeds or 10 s pass: for
// what a server does on its own clock (expiring a key).
func eventually(t *testing.T, what string, try func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !try() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		<-time.After(20 * time.Millisecond)
	}
}

func TestLeaseOneHolderAtATime(t *testing.T) {
	_, js := startJS(t)
	a := openLeases(t, js, time.Minute)
	b := openLeases(t, js, 5*time.Second) // a second replica: the bucket's own TTL wins
	if b.TTL() != time.Minute {
		t.Fatalf("second opener sees TTL %s, want the bucket's 1m", b.TTL())
	}
	la, err := a.Acquire(t.Context(), "order-1")
	if err != nil {
		t.Fatal(err)
	}
	if !la.Valid() {
		t.Fatal("a fresh lease is not valid")
	}
	for name, l := range map[string]*pipeline.Leases{"same process": a, "other process": b} {
		if _, err := l.Acquire(t.Context(), "order-1"); !errors.Is(err, pipeline.ErrLeaseTaken) {
			t.Fatalf("%s: second Acquire = %v, want ErrLeaseTaken", name, err)
		}
	}
	if _, err := b.Acquire(t.Context(), "order-2"); err != nil {
		t.Fatalf("another key is not free: %v", err)
	}
	if err := la.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if la.Valid() {
		t.Fatal("a released lease is still valid")
	}
	lb, err := b.Acquire(t.Context(), "order-1")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	// A stale holder's release does not free the new holder's key.
	if err := la.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Acquire(t.Context(), "order-1"); !errors.Is(err, pipeline.ErrLeaseTaken) {
		t.Fatalf("Acquire after a stale release = %v, want ErrLeaseTaken", err)
	}
	if err := lb.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A holder that stops renewing (it died) frees the key after the TTL, and
// then learns on its next renewal that the lease is lost.
func TestLeaseExpiresWithoutRenewal(t *testing.T) {
	_, js := startJS(t)
	const ttl = 600 * time.Millisecond
	a := openLeases(t, js, ttl)
	la, err := a.Acquire(t.Context(), "order-1")
	if err != nil {
		t.Fatal(err)
	}
	// Renewed, the lease outlives several TTLs.
	renewFor := time.Now().Add(3 * ttl)
	for time.Now().Before(renewFor) {
		if err := la.Renew(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Acquire(t.Context(), "order-1"); !errors.Is(err, pipeline.ErrLeaseTaken) {
			t.Fatalf("renewed lease taken: %v", err)
		}
		<-time.After(ttl / 6)
	}
	// Not renewed, it expires and another takes it.
	var lb *pipeline.Lease
	eventually(t, "the unrenewed lease to expire", func() bool {
		lb, err = a.Acquire(t.Context(), "order-1")
		return err == nil
	})
	if la.Valid() {
		t.Fatal("the old holder's lease is valid after its TTL")
	}
	if err := la.Renew(t.Context()); !errors.Is(err, pipeline.ErrLeaseLost) {
		t.Fatalf("old holder's Renew = %v, want ErrLeaseLost", err)
	}
	if !lb.Valid() {
		t.Fatal("the new holder's lease is not valid")
	}
}

func TestOpenLeasesRefusesBucketWithoutTTL(t *testing.T) {
	_, js := startJS(t)
	if _, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "TEST_LEASES"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := pipeline.OpenLeases(ctx, js, pipeline.LeaseConfig{Bucket: "TEST_LEASES", TTL: time.Second}); err == nil {
		t.Fatal("a bucket without TTL was accepted: a dead holder's lease would never expire")
	}
}
