package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// ShopStateBucket is the KV bucket where shippers say which shops they are
// backing off: key <shop>.<replica>, one entry per replica that sees the
// shop in trouble; no entry means the shop is fine. `nats kv ls
// FULFILL_SHOP_STATE` lists them; fulfillctl shops and status show them.
const ShopStateBucket = "FULFILL_SHOP_STATE"

// shopStateTTL is how long an entry lives after its last write: a replica
// that died stops vouching for its entries, which then go away.
const shopStateTTL = 2 * time.Minute

// ShopStateRefresh is how often a replica writes again the entries it
// keeps, well within shopStateTTL.
const ShopStateRefresh = 30 * time.Second

// ShopState is one replica's view of a shop in trouble.
type ShopState struct {
	Shop  string `json:"shop"`
	State string `json:"state"`
	// Since is when the failures began; Errcode is the platform's last
	// answer (-2: none).
	Since   time.Time `json:"since"`
	Errcode int       `json:"errcode"`
	Replica string    `json:"replica"`
	Updated time.Time `json:"updated"`
}

// ShopStates is the bucket, as one replica writes it.
type ShopStates struct {
	kv      jetstream.KeyValue
	replica string
}

// OpenShopStates binds the bucket, creating it if it is missing.
func OpenShopStates(ctx context.Context, js jetstream.JetStream, replicas int) (*ShopStates, error) {
	kv, err := bindBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      ShopStateBucket,
		Description: "shipper: shops backed off as a whole (their platform fails, or no token can be had), by replica",
		History:     1,
		TTL:         shopStateTTL,
		MaxBytes:    64 << 20,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", ShopStateBucket, err)
	}
	host, _ := os.Hostname()
	replica := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, host) + "-" + uuid.NewString()[:8]
	return &ShopStates{kv: kv, replica: replica}, nil
}

func (s *ShopStates) key(shop string) string { return shop + "." + s.replica }

// Put says this replica sees shop in trouble.
func (s *ShopStates) Put(ctx context.Context, st ShopState) error {
	st.Replica, st.Updated = s.replica, time.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.kv.Put(ctx, s.key(st.Shop), b)
	return err
}

// Delete says this replica sees shop fine again.
func (s *ShopStates) Delete(ctx context.Context, shop string) error {
	err := s.kv.Delete(ctx, s.key(shop))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// ReadShopStates reads every entry of the bucket: the shops some replica
// backs off. A missing bucket is no entry.
func ReadShopStates(ctx context.Context, js jetstream.JetStream) ([]ShopState, error) {
	kv, err := js.KeyValue(ctx, ShopStateBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", ShopStateBucket, err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", ShopStateBucket, err)
	}
	var out []ShopState
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // expired or deleted meanwhile
		}
		var st ShopState
		if json.Unmarshal(e.Value(), &st) == nil && st.Shop != "" {
			out = append(out, st)
		}
	}
	return out, nil
}
