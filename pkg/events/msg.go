package events

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names the pipeline sets besides Nats-Msg-Id, so operators can filter
// with the nats CLI without parsing bodies.
const (
	HeaderEventType     = "Fulfill-Event-Type"
	HeaderCorrelationID = "Fulfill-Correlation-Id"
	// HeaderRedriveOf marks a copy made by fulfillctl replay or dlq
	// redrive and names the event it copies.
	HeaderRedriveOf = "Fulfill-Redrive-Of"
	// HeaderTraceparent and HeaderTracestate carry the W3C Trace Context
	// (www.w3.org/TR/trace-context) of the span that published the
	// message, so the stage that handles it continues the order's trace.
	// They are set only by a service with tracing on; a consumer must not
	// rely on them.
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Msg is the NATS message for the envelope: subject, body and headers.
func (e *Envelope) Msg() (*nats.Msg, error) {
	if e.Stage() == "" {
		return nil, fmt.Errorf("%w: type %q", ErrInvalidStage, e.Type)
	}
	body, err := e.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	m := nats.NewMsg(e.Subject())
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, e.MsgID())
	m.Header.Set(HeaderEventType, e.Type)
	m.Header.Set(HeaderCorrelationID, e.CorrelationID)
	return m, nil
}
