package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	gojson "github.com/goccy/go-json"
)

// Version is the envelope version this package writes and accepts.
const Version = 1

// Errors returned by Decode and Envelope.Validate.
var (
	ErrMalformed          = errors.New("malformed event")
	ErrUnsupportedVersion = errors.New("unsupported event version")
)

// Envelope is the JSON document every message of the stream carries.
type Envelope struct {
	// ID identifies the event; it is derived from the event's MsgID, so the
	// same logical event published twice carries the same id.
	ID string `json:"id"`
	// Type is "order.<stage>".
	Type string `json:"type"`
	// Version is the envelope version (Version).
	Version int `json:"version"`
	// Source is where the order entered the pipeline.
	Source Source `json:"source"`
	// Shop is the shop the order belongs to ("default" for a deployment
	// configured by environment variables alone).
	Shop string `json:"shop"`
	// OrderID is the platform's order id, always a string.
	OrderID string `json:"order_id"`
	// OccurredAt is when the fact happened, RFC 3339.
	OccurredAt time.Time `json:"occurred_at"`
	// CorrelationID is the id of the first event of this order's chain.
	CorrelationID string `json:"correlation_id"`
	// CausationID is the id of the event that caused this one; empty for
	// the first event of a chain.
	CausationID string `json:"causation_id,omitempty"`
	// Data is the stage's own payload (Received, Enriched, Shipped, Failed,
	// Logistics).
	Data json.RawMessage `json:"data"`
}

// Fact names one logical event of an order: what New builds an envelope
// for.
type Fact struct {
	Stage   Stage
	Source  Source
	Shop    string
	OrderID string
	// Key tells logical events of the same stage and order apart: empty
	// for facts that happen once per order (an order received), the
	// causing event's id for a stage's answer to it (what Cause supplies
	// when Key is empty), or a run id for a replay.
	Key string
	// Cause is the event this one answers; nil for the first event of a
	// chain. The new event keeps its correlation id.
	Cause *Envelope
	// Data is the stage's payload (Received, Enriched, Shipped, Failed,
	// Logistics), encoded as JSON.
	Data any
}

// New builds the envelope of f, stamped now. Its MsgID and ID are functions
// of (stage, source, order, key), so a crash followed by a re-publish is
// de-duplicated by JetStream.
func New(f Fact, now time.Time) (*Envelope, error) {
	if err := checkSubject(f.Stage, f.Source, f.Shop, f.OrderID); err != nil {
		return nil, err
	}
	raw, err := gojson.Marshal(f.Data)
	if err != nil {
		return nil, fmt.Errorf("encode %s data: %w", f.Stage, err)
	}
	key := f.Key
	if key == "" && f.Cause != nil {
		key = f.Cause.ID
	}
	e := &Envelope{
		ID:         eventID(f.Stage, f.Source, f.Shop, f.OrderID, key),
		Type:       f.Stage.Type(),
		Version:    Version,
		Source:     f.Source,
		Shop:       f.Shop,
		OrderID:    f.OrderID,
		OccurredAt: now.UTC(),
		Data:       raw,
	}
	if f.Cause != nil {
		e.CorrelationID = f.Cause.CorrelationID
		e.CausationID = f.Cause.ID
	}
	if e.CorrelationID == "" {
		e.CorrelationID = e.ID
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// Next is the event of stage that answers e: same source and order, caused
// by e, in e's correlation chain. Answering the same e twice gives the
// same id, so a redelivered input re-publishes the same event.
func (e *Envelope) Next(stage Stage, data any, now time.Time) (*Envelope, error) {
	return New(Fact{Stage: stage, Source: e.Source, Shop: e.Shop, OrderID: e.OrderID, Cause: e, Data: data}, now)
}

// Copy is a re-drive copy of e (same stage, source, order and payload),
// caused by e; key (e.g. "replay:"+e.ID) makes its id deterministic, so the
// same re-drive made twice publishes it once.
func (e *Envelope) Copy(key string, now time.Time) (*Envelope, error) {
	return New(Fact{Stage: e.Stage(), Source: e.Source, Shop: e.Shop, OrderID: e.OrderID, Key: key, Cause: e, Data: json.RawMessage(e.Data)}, now)
}

// IsCopy reports whether e was made with a key other than its cause's id:
// a re-drive copy (Copy) rather than a stage's answer to its cause (Next)
// or the first event of a chain.
func (e *Envelope) IsCopy() bool {
	if e.CausationID == "" {
		return false
	}
	return e.ID != eventID(e.Stage(), e.Source, e.Shop, e.OrderID, e.CausationID)
}

// Stage is the stage named by the envelope's type, or "" if the type is not
// of the form order.<stage>.
func (e *Envelope) Stage() Stage {
	s, ok := strings.CutPrefix(e.Type, "order.")
	if !ok || !Stage(s).Valid() {
		return ""
	}
	return Stage(s)
}

// Subject is the subject the envelope is published on.
func (e *Envelope) Subject() string {
	return "orders." + string(e.Stage()) + "." + string(e.Source) + "." + e.Shop + "." + e.OrderID
}

// Key names the envelope's order across shops (events.OrderKey).
func (e *Envelope) Key() string { return OrderKey(e.Shop, e.OrderID) }

// MsgID is the Nats-Msg-Id header value: the event id, which New derives
// from (stage, source, order, key), so it is the same for a re-published
// event whether it was built again or decoded from the wire.
func (e *Envelope) MsgID() string { return e.ID }

// Validate checks every field a consumer relies on.
func (e *Envelope) Validate() error {
	if e.Version == 0 {
		return fmt.Errorf("%w: version missing", ErrMalformed)
	}
	if e.Version != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrUnsupportedVersion, e.Version, Version)
	}
	if _, err := uuid.Parse(e.ID); err != nil {
		return fmt.Errorf("%w: id %q is not a UUID", ErrMalformed, e.ID)
	}
	if e.Stage() == "" {
		return fmt.Errorf("%w: type %q is not order.<stage>", ErrMalformed, e.Type)
	}
	if !e.Source.Valid() {
		return fmt.Errorf("%w: source %q: %w", ErrMalformed, e.Source, ErrInvalidSource)
	}
	if err := ValidateShopID(e.Shop); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := ValidateOrderID(e.OrderID); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if e.OccurredAt.IsZero() {
		return fmt.Errorf("%w: occurred_at missing", ErrMalformed)
	}
	if e.CorrelationID == "" {
		return fmt.Errorf("%w: correlation_id missing", ErrMalformed)
	}
	if d := bytes.TrimSpace(e.Data); len(d) == 0 || d[0] != '{' {
		return fmt.Errorf("%w: data must be a JSON object", ErrMalformed)
	}
	return nil
}

// Decode parses and validates one message body.
func Decode(b []byte) (*Envelope, error) {
	var e Envelope
	if err := gojson.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// Encode is the message body of the envelope.
func (e *Envelope) Encode() ([]byte, error) { return gojson.Marshal(e) }

// DecodeData unmarshals the payload into v, e.g. a *Received.
func (e *Envelope) DecodeData(v any) error {
	if err := gojson.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("%w: %s data: %w", ErrMalformed, e.Type, err)
	}
	if c, ok := v.(interface{ Validate() error }); ok {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%w: %s data: %w", ErrMalformed, e.Type, err)
		}
	}
	return nil
}
