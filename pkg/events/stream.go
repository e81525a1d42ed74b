package events

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the stream and of the durable consumers.
const (
	StreamName       = "ORDERS"
	StreamSubjects   = "orders.>"
	ConsumerEnricher = "enricher"
	ConsumerShipper  = "shipper"
)

// DeadLetterSubject holds messages whose own subject is not of the grammar,
// so no orders.failed.<source>.<order_id> subject can be built for them.
const DeadLetterSubject = "orders.deadletter"

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id.
const DuplicateWindow = 2 * time.Minute

// StreamConfig is the ORDERS stream: limits retention so the history can be
// replayed (a work queue would delete it), file storage, de-duplication.
func StreamConfig(replicas int, maxAge time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Order-fulfillment events: orders.<stage>.<source>.<order_id>",
		Subjects:    []string{StreamSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxAge:      maxAge,
		Duplicates:  DuplicateWindow,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
	}
}

// AckWait is how long a consumer may hold a message before JetStream
// redelivers it; workers that need longer signal progress (InProgress).
const AckWait = 30 * time.Second

// ConsumerConfig is the durable pull consumer of one stage binary.
// maxAckPending bounds the messages in flight across all replicas.
func ConsumerConfig(name string, maxAckPending int) jetstream.ConsumerConfig {
	filter := FilterSubject(StageReceived)
	desc := "enricher: attaches waybills to received orders"
	if name == ConsumerShipper {
		filter = FilterSubject(StageEnriched)
		desc = "shipper: calls delivery/send for enriched orders"
	}
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   desc,
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		MaxWaiting:    512,
	}
}
