package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
)

// wireID is a platform id as a request carries it: a JSON string, or a JSON integer
// number kept byte for byte (never through float64, so 19-digit ids stay exact).
// null decodes as "". Fractions, exponents, negative numbers, booleans, objects and
// arrays are rejected (the platform's 47001).
type wireID string

// errBadID is the error for an id that is neither a string nor a plain integer.
var errBadID = errors.New("id must be a JSON string or a non-negative integer")

// UnmarshalJSON implements json.Unmarshaler.
func (id *wireID) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*id = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = wireID(s)
		return nil
	case isDigits(b):
		*id = wireID(b)
		return nil
	}
	return fmt.Errorf("%w, got %.32s", errBadID, b)
}

// isDigits reports whether b is a non-empty run of ASCII digits.
func isDigits[T string | []byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := range len(b) {
		if b[i] < '0' || b[i] > '9' {
			return false
		}
	}
	return true
}

// idJSON renders an id for a response: a bare JSON number when numeric is set and the
// id is a valid JSON integer (exact, whatever its length), else a JSON string.
func idJSON(id string, numeric bool) json.RawMessage {
	if numeric && isDigits(id) && (id == "0" || id[0] != '0') {
		return json.RawMessage(id)
	}
	b, _ := json.Marshal(id) // a string always marshals
	return b
}
