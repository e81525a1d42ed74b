package vvtool

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The lenient scalar types below decode the plain members of a response whatever
// JSON scalar the platform chose for them, so that one member of an unexpected
// type does not make a whole page undecodable (which would stall the ingest on a
// "transient" error forever). Objects and arrays where a scalar is expected are
// still errors.

// lenientString decodes a JSON string, number or boolean (as its literal text);
// null is "".
type lenientString string

func (s *lenientString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("vvtool: empty value")
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = lenientString(v)
	case isNull(b):
		*s = ""
	case b[0] == '-' || isDigit(b[0]) || string(b) == "true" || string(b) == "false":
		*s = lenientString(b)
	default:
		return fmt.Errorf("vvtool: want a string, got %s", snippet(string(b)))
	}
	return nil
}

// lenientInt decodes a JSON number or numeric string (fractions are truncated
// toward zero) or a boolean (1 or 0); null and "" are 0.
type lenientInt int64

func (n *lenientInt) UnmarshalJSON(b []byte) error {
	var lit string
	switch {
	case len(b) == 0:
		return fmt.Errorf("vvtool: empty value")
	case isNull(b):
		*n = 0
		return nil
	case string(b) == "true":
		*n = 1
		return nil
	case string(b) == "false":
		*n = 0
		return nil
	case b[0] == '"':
		if err := json.Unmarshal(b, &lit); err != nil {
			return err
		}
		lit = strings.TrimSpace(lit)
		if lit == "" {
			*n = 0
			return nil
		}
	case b[0] == '-' || isDigit(b[0]):
		lit = string(b)
	default:
		return fmt.Errorf("vvtool: want a number, got %s", snippet(string(b)))
	}
	v, err := parseInt(lit)
	if err != nil {
		return err
	}
	*n = lenientInt(v)
	return nil
}

// parseInt parses a decimal integer, or a number with a fraction or exponent
// truncated toward zero; out-of-range values and NaN/Inf are errors.
func parseInt(s string) (int64, error) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f >= math.MaxInt64 || f <= math.MinInt64 {
		return 0, fmt.Errorf("vvtool: want an integer, got %s", snippet(s))
	}
	return int64(f), nil
}

// lenientBool decodes true/false, a number (non-zero is true), or a string
// "true"/"false", "1"/"0", "yes"/"no", "y"/"n" (any case); null and "" are false.
type lenientBool bool

func (v *lenientBool) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("vvtool: empty value")
	case string(b) == "true":
		*v = true
	case string(b) == "false" || isNull(b):
		*v = false
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1", "yes", "y":
			*v = true
		case "false", "0", "no", "n", "":
			*v = false
		default:
			return fmt.Errorf("vvtool: want a boolean, got %s", snippet(string(b)))
		}
	case b[0] == '-' || isDigit(b[0]):
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return fmt.Errorf("vvtool: want a boolean, got %s", snippet(string(b)))
		}
		*v = f != 0
	default:
		return fmt.Errorf("vvtool: want a boolean, got %s", snippet(string(b)))
	}
	return nil
}

func isNull(b []byte) bool { return string(b) == "null" }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
