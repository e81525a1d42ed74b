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
	// StagePush is a message the platform pushed about the order (a
	// Channels order event), stored as it came, before anything acts on it.
	StagePush Stage = "push"
)

// Stages lists every valid stage, in pipeline order.
var Stages = []Stage{StageReceived, StageEnriched, StageShipped, StageFailed, StageLogistics, StagePush}

// Valid reports whether s is one of Stages.
func (s Stage) Valid() bool {
	switch s {
	case StageReceived, StageEnriched, StageShipped, StageFailed, StageLogistics, StagePush:
		return true
	}
	return false
}

// Type is the envelope type of events of this stage, e.g. "order.received".
func (s Stage) Type() string {
	switch s { // constants: every event built asks for one
	case StageReceived:
		return "order.received"
	case StageEnriched:
		return "order.enriched"
	case StageShipped:
		return "order.shipped"
	case StageFailed:
		return "order.failed"
	case StageLogistics:
		return "order.logistics"
	case StagePush:
		return "order.push"
	}
	return "order." + string(s)
}

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

// MaxShopIDLen bounds a shop id.
const MaxShopIDLen = 32

// DefaultShop is the shop of a deployment configured by environment
// variables alone (no shops file).
const DefaultShop = "default"

// MaxOrderIDLen bounds an order id; the platforms' ids are far shorter, and a
// bound keeps subjects and KV keys small.
const MaxOrderIDLen = 128

// Errors returned by the validators; callers test them with errors.Is.
var (
	ErrInvalidOrderID = errors.New("invalid order id")
	ErrInvalidSubject = errors.New("invalid subject")
	ErrInvalidStage   = errors.New("invalid stage")
	ErrInvalidSource  = errors.New("invalid source")
	ErrInvalidShop    = errors.New("invalid shop id")
)

// ValidateShopID checks a shop id: [a-z0-9][a-z0-9_-]{0,31}, a subject
// token that reads the same in every log, URL and metrics label.
func ValidateShopID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidShop)
	}
	if len(id) > MaxShopIDLen {
		return fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidShop, id, MaxShopIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-') {
			continue
		}
		r, _ := utf8.DecodeRuneInString(id[i:])
		return fmt.Errorf("%w: %q has %q at position %d; want [a-z0-9][a-z0-9_-]{0,31}", ErrInvalidShop, id, r, utf8.RuneCountInString(id[:i]))
	}
	return nil
}

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

// Subject builds orders.<stage>.<source>.<shop>.<order_id>, validating
// every token.
func Subject(stage Stage, source Source, shop, orderID string) (string, error) {
	if err := checkSubject(stage, source, shop, orderID); err != nil {
		return "", err
	}
	return "orders." + string(stage) + "." + string(source) + "." + shop + "." + orderID, nil
}

// checkSubject is Subject's check of the parts, without building it.
func checkSubject(stage Stage, source Source, shop, orderID string) error {
	if !stage.Valid() {
		return fmt.Errorf("%w: %q", ErrInvalidStage, stage)
	}
	if !source.Valid() {
		return fmt.Errorf("%w: %q", ErrInvalidSource, source)
	}
	if err := ValidateShopID(shop); err != nil {
		return err
	}
	return ValidateOrderID(orderID)
}

// ParseSubject splits a subject of the grammar into its parts.
func ParseSubject(subject string) (Stage, Source, string, string, error) {
	// Cut rather than Split: every service parses a subject or two per
	// order, and Split allocates the parts' slice.
	rest, ok := strings.CutPrefix(subject, "orders.")
	st, rest, ok1 := strings.Cut(rest, ".")
	src, rest, ok2 := strings.Cut(rest, ".")
	shop, id, ok3 := strings.Cut(rest, ".")
	if !ok || !ok1 || !ok2 || !ok3 || strings.Contains(id, ".") {
		return "", "", "", "", fmt.Errorf("%w: %q is not orders.<stage>.<source>.<shop>.<order_id>", ErrInvalidSubject, subject)
	}
	stage, source := Stage(st), Source(src)
	if !stage.Valid() {
		return "", "", "", "", fmt.Errorf("%w: %q: %w", ErrInvalidSubject, subject, ErrInvalidStage)
	}
	if !source.Valid() {
		return "", "", "", "", fmt.Errorf("%w: %q: %w", ErrInvalidSubject, subject, ErrInvalidSource)
	}
	if err := ValidateShopID(shop); err != nil {
		return "", "", "", "", fmt.Errorf("%w: %q: %w", ErrInvalidSubject, subject, err)
	}
	if err := ValidateOrderID(id); err != nil {
		return "", "", "", "", fmt.Errorf("%w: %q: %w", ErrInvalidSubject, subject, err)
	}
	return stage, source, shop, id, nil
}

// FilterSubject is the wildcard subject of one stage, every shop's, e.g.
// orders.received.>.
func FilterSubject(stage Stage) string { return "orders." + string(stage) + ".>" }

// ShopFilter is the subject of one shop's events of stage from any source,
// orders.<stage>.*.<shop>.*.
func ShopFilter(stage Stage, shop string) (string, error) {
	if !stage.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidStage, stage)
	}
	if err := ValidateShopID(shop); err != nil {
		return "", err
	}
	return "orders." + string(stage) + ".*." + shop + ".*", nil
}

// OrderFilter is the subject of one order's events of stage from any source,
// orders.<stage>.*.<shop>.<order_id>: what the shipped and failed records of
// an order are read from, and what the server checks a terminal event
// against. An order is known by its shop and id: two shops may use one id.
func OrderFilter(stage Stage, shop, orderID string) (string, error) {
	if !stage.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidStage, stage)
	}
	if err := ValidateShopID(shop); err != nil {
		return "", err
	}
	if err := ValidateOrderID(orderID); err != nil {
		return "", err
	}
	return "orders." + string(stage) + ".*." + shop + "." + orderID, nil
}

// AnyShopFilter is the subject of the events of stage of every shop's
// order with this id, orders.<stage>.*.*.<order_id>: for finding an order
// when its shop is not known.
func AnyShopFilter(stage Stage, orderID string) (string, error) {
	if !stage.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidStage, stage)
	}
	if err := ValidateOrderID(orderID); err != nil {
		return "", err
	}
	return "orders." + string(stage) + ".*.*." + orderID, nil
}

// OrderKey is the one string that names an order across shops:
// <shop>.<order_id> (both are subject tokens, so it is a valid KV key and
// subject suffix too).
func OrderKey(shop, orderID string) string { return shop + "." + orderID }
