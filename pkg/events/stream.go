package events

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the stream and of the durable consumers.
const (
	StreamName       = "ORDERS"
	StreamSubjects   = "orders.>"
	ConsumerEnricher = "enricher"
	ConsumerShipper  = "shipper"
	// ConsumerPush is ingest's consumer of stored pushes.
	ConsumerPush = "ingest-push"
)

// DeadLetterSubject holds messages whose own subject is not of the grammar,
// so no orders.failed.<source>.<order_id> subject can be built for them.
const DeadLetterSubject = "orders.deadletter"

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id.
const DuplicateWindow = 2 * time.Minute

// StreamLimits are the ORDERS stream's settings a deployment chooses.
type StreamLimits struct {
	// Replicas of the stream (3 in a cluster).
	Replicas int
	// MaxAge is how long events are kept: the replay horizon, and the
	// longest any order may wait in the pipeline.
	MaxAge time.Duration
	// MaxBytes bounds the storage; 0 means no bound. A full stream refuses
	// new events (DiscardNew) rather than dropping old ones, which may be
	// orders still in flight.
	MaxBytes int64
}

// StreamConfig is the ORDERS stream: limits retention so the history can be
// replayed (a work queue would delete it), file storage, de-duplication,
// and when full, new events refused rather than old ones discarded.
func StreamConfig(l StreamLimits) jetstream.StreamConfig {
	maxBytes := l.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Order-fulfillment events: orders.<stage>.<source>.<shop>.<order_id>",
		Subjects:    []string{StreamSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    max(l.Replicas, 1),
		MaxAge:      l.MaxAge,
		MaxBytes:    maxBytes,
		Duplicates:  DuplicateWindow,
		Discard:     jetstream.DiscardNew,
		AllowDirect: true,
	}
}

// AckWait is the default time a consumer may hold a message before
// JetStream redelivers it; workers that need longer signal progress
// (InProgress). The shipper sets its own (SHIP_ACK_WAIT).
const AckWait = 30 * time.Second

// ConsumerConfig is the durable pull consumer of one stage binary.
// maxAckPending bounds the messages in flight across all replicas; ackWait
// is the redelivery timeout (0: AckWait). An unknown name is refused: a
// typo must not silently create a second consumer on another stage's input.
func ConsumerConfig(name string, maxAckPending int, ackWait time.Duration) (jetstream.ConsumerConfig, error) {
	var filter, desc string
	switch name {
	case ConsumerEnricher:
		filter, desc = FilterSubject(StageReceived), "enricher: attaches waybills to received orders"
	case ConsumerShipper:
		filter, desc = FilterSubject(StageEnriched), "shipper: calls delivery/send for enriched orders"
	case ConsumerPush:
		filter, desc = FilterSubject(StagePush), "ingest: acts on the platform's stored order pushes (paid: take the order in; cancelled, delivered: record it)"
	default:
		return jetstream.ConsumerConfig{}, fmt.Errorf("unknown consumer %q: want %s, %s or %s", name, ConsumerEnricher, ConsumerShipper, ConsumerPush)
	}
	if ackWait <= 0 {
		ackWait = AckWait
	}
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   desc,
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		MaxWaiting:    512,
	}, nil
}
