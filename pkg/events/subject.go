package events

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Stage is the pipeline step an event reports.
type Stage string

// The stages of the subject grammar.
const (
	StageReceived  Stage = "received"
	StageEnriched  Stage = "enriched"
	StageShipped   Stage = "shipped"
	StageFailed    Stage = "failed"
	StageLogistics Stage = "logistics"
)

// Stages lists every valid stage, in pipeline order.
var Stages = []Stage{StageReceived, StageEnriched, StageShipped, StageFailed, StageLogistics}

// Valid reports whether s is one of Stages.
func (s Stage) Valid() bool {
	switch s {
	case StageReceived, StageEnriched, StageShipped, StageFailed, StageLogistics:
		return true
	}
	return false
}

// Type is the envelope type of events of this stage, e.g. "order.received".
func (s Stage) Type() string { return "order." + string(s) }

// Source is where an order entered the pipeline.
type Source string

// The sources of the subject grammar.
const (
	SourceChannels Source = "channels"
	SourceVVTool   Source = "vvtool"
	SourceAPI      Source = "api"
)

// Valid reports whether s is a known source.
func (s Source) Valid() bool {
	switch s {
	case SourceChannels, SourceVVTool, SourceAPI:
		return true
	}
	return false
}

// MaxOrderIDLen bounds an order id; the platforms' ids are far shorter, and a
// bound keeps subjects and KV keys small.
const MaxOrderIDLen = 128

// Errors returned by the validators; callers test them with errors.Is.
var (
	ErrInvalidOrderID = errors.New("invalid order id")
	ErrInvalidSubject = errors.New("invalid subject")
	ErrInvalidStage   = errors.New("invalid stage")
	ErrInvalidSource  = errors.New("invalid source")
)

// ValidateOrderID checks that id can be a subject token: 1 to MaxOrderIDLen
// characters of [A-Za-z0-9_-]. Anything else (a dot, a wildcard, a space, a
// float such as 3.7e18) is refused at the edge.
func ValidateOrderID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidOrderID)
	}
	if len(id) > MaxOrderIDLen {
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidOrderID, MaxOrderIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			continue
		}
		// Name the character, not a byte of it: 订 is one character, not
		// the three bytes of its UTF-8 form.
		r, _ := utf8.DecodeRuneInString(id[i:])
		return fmt.Errorf("%w: %q has %q at position %d; only [A-Za-z0-9_-] are allowed", ErrInvalidOrderID, id, r, utf8.RuneCountInString(id[:i]))
	}
	return nil
}

// Subject builds orders.<stage>.<source>.<order_id>, validating every token.
func Subject(stage Stage, source Source, orderID string) (string, error) {
	if !stage.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidStage, stage)
	}
	if !source.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidSource, source)
	}
	if err := ValidateOrderID(orderID); err != nil {
		return "", err
	}
	return "orders." + string(stage) + "." + string(source) + "." + orderID, nil
}

// ParseSubject splits a subject of the grammar into its parts.
func ParseSubject(subject string) (Stage, Source, string, error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != "orders" {
		return "", "", "", fmt.Errorf("%w: %q is not orders.<stage>.<source>.<order_id>", ErrInvalidSubject, subject)
	}
	stage, source, id := Stage(parts[1]), Source(parts[2]), parts[3]
	if !stage.Valid() {
		return "", "", "", fmt.Errorf("%w: %q: %w", ErrInvalidSubject, subject, ErrInvalidStage)
	}
	if !source.Valid() {
		return "", "", "", fmt.Errorf("%w: %q: %w", ErrInvalidSubject, subject, ErrInvalidSource)
	}
	if err := ValidateOrderID(id); err != nil {
		return "", "", "", fmt.Errorf("%w: %q: %w", ErrInvalidSubject, subject, err)
	}
	return stage, source, id, nil
}

// FilterSubject is the wildcard subject of one stage, e.g. orders.received.>.
func FilterSubject(stage Stage) string { return "orders." + string(stage) + ".>" }

// OrderFilter is the subject of one order's events of stage from any source,
// orders.<stage>.*.<order_id>: what the shipped and failed records of an
// order are read from, and what the server checks a terminal event against.
func OrderFilter(stage Stage, orderID string) (string, error) {
	if !stage.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidStage, stage)
	}
	if err := ValidateOrderID(orderID); err != nil {
		return "", err
	}
	return "orders." + string(stage) + ".*." + orderID, nil
}
