// Package events is the event contract of the order-fulfillment pipeline: the
// JSON envelope every message carries, the subject grammar
// orders.<stage>.<source>.<order_id>, the typed payload of each stage, the
// deterministic Nats-Msg-Id that de-duplicates a re-published fact, and the
// JetStream stream and consumer definitions as code.
//
// Downstream teams may import it to read the stream; everything here is the
// contract described in DESIGN.md, so changes to it are breaking changes.
package events
