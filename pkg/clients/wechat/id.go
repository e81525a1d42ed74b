package wechat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidID is returned (wrapped) when a JSON value cannot be decoded into an ID:
// it is neither a string, an integer number nor null.
var ErrInvalidID = errors.New("wechat: id must be a JSON string or integer")

// ID is a platform id (order_id, product_id, sku_id) decoded from a JSON string or
// a JSON integer number and kept byte for byte: 19-digit ids above 2^53 survive
// because the number is never converted to float64. JSON null decodes to "".
// An ID always encodes as a JSON string.
type ID string

// String returns the id as it was received.
func (id ID) String() string { return string(id) }

// MarshalJSON encodes the id as a JSON string, as json.Marshal encodes a
// string.
func (id ID) MarshalJSON() ([]byte, error) {
	// Ids are digits or the like: quoting them is all json.Marshal would
	// do, in one allocation rather than its several (every request
	// carries a few ids).
	if plain(id) && !strings.ContainsAny(string(id), "<>&") { // json.Marshal escapes those for HTML
		b := make([]byte, 0, len(id)+2)
		b = append(b, '"')
		b = append(b, id...)
		return append(b, '"'), nil
	}
	return json.Marshal(string(id))
}

// UnmarshalJSON accepts a JSON string, a JSON integer number (kept as its digits)
// or null (""). Objects, arrays, booleans and numbers with a fraction or an
// exponent are rejected with an error wrapping ErrInvalidID.
func (id *ID) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return fmt.Errorf("%w: empty value", ErrInvalidID)
	case len(data) >= 2 && data[0] == '"' && data[len(data)-1] == '"' && plain(data[1:len(data)-1]):
		// The usual quoted id: its bytes are the value. Decoding it
		// again cost several allocations per id.
		*id = ID(data[1 : len(data)-1])
		return nil
	case data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidID, err)
		}
		*id = ID(s)
		return nil
	case string(data) == "null":
		*id = ""
		return nil
	case isJSONInteger(data):
		*id = ID(data)
		return nil
	default:
		return fmt.Errorf("%w: got %s", ErrInvalidID, describeJSON(data))
	}
}

// plain reports whether b is printable ASCII without quotes or backslashes:
// a JSON string's content that means itself, with nothing to unescape or
// replace.
func plain[T ~string | ~[]byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// isJSONInteger reports whether b is a JSON number without fraction or exponent:
// -?(0|[1-9][0-9]*).
func isJSONInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	if b[0] == '0' {
		return len(b) == 1
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// describeJSON names the kind of a rejected JSON value without echoing it whole.
func describeJSON(b []byte) string {
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a non-integer number"
	default:
		return "an invalid value"
	}
}
