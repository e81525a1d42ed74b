package vvtool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// TimeLayout is the platform's date format, "yyyy-MM-dd HH:mm:ss", always in
// Asia/Shanghai (UTC+8, no daylight saving time).
const TimeLayout = "2006-01-02 15:04:05"

// shanghai is Asia/Shanghai as a fixed zone, so that decoding does not depend on
// the tz database of the host.
var shanghai = time.FixedZone("CST", 8*3600)

// zeroDate is the "no date" value of MySQL-backed services; it decodes as zero.
const zeroDate = "0000-00-00 00:00:00"

// ID is a platform id (trade id, sub trade id) decoded from a JSON string or a JSON
// integer number, kept byte for byte: 19-digit ids exceed 2^53 and never pass
// through float64. Strings are kept as sent (surrounding spaces trimmed), since
// the ids of some platforms are not numeric. null decodes as "". An ID encodes as a
// JSON string.
type ID string

// UnmarshalJSON accepts a string, a non-negative integer number or null; anything
// else (fractions, exponents, booleans, objects, arrays) is an error.
func (id *ID) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("vvtool: id: empty value")
	case isNull(b):
		*id = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("vvtool: id: %w", err)
		}
		*id = ID(strings.TrimSpace(s))
	case isDigit(b[0]):
		for _, c := range b {
			if !isDigit(c) {
				return fmt.Errorf("vvtool: id: want an integer, got %s", snippet(string(b)))
			}
		}
		*id = ID(b)
	default:
		return fmt.Errorf("vvtool: id: want a string or an integer, got %s", snippet(string(b)))
	}
	return nil
}

// MarshalJSON encodes the id as a JSON string.
func (id ID) MarshalJSON() ([]byte, error) {
	return json.Marshal(string(id))
}

// String returns the id.
func (id ID) String() string { return string(id) }

// IDList is a list of ids decoded tolerantly from any shape the platform uses:
// an array of strings and/or integers ([1,"2"]), an object wrapping one
// ({"number":["1","2"]}, the shape the seed's example shows; a single key of
// another name is accepted too), a comma-separated string ("1,2,3"), a single
// integer, or null. Empty entries are dropped and an empty list decodes as nil.
// It encodes as a JSON array of strings.
type IDList []ID

// UnmarshalJSON decodes any of the shapes listed on IDList.
func (l *IDList) UnmarshalJSON(b []byte) error {
	ids, err := parseIDList(b, true)
	if err != nil {
		return fmt.Errorf("vvtool: id list: %w", err)
	}
	*l = ids
	return nil
}

// parseIDList decodes b; wrapperOK permits one level of object wrapping.
func parseIDList(b []byte, wrapperOK bool) (IDList, error) {
	b = bytes.TrimSpace(b)
	var out IDList
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("empty value")
	case isNull(b):
		return nil, nil
	case b[0] == '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(b, &elems); err != nil {
			return nil, err
		}
		for _, e := range elems {
			var id ID
			if err := id.UnmarshalJSON(bytes.TrimSpace(e)); err != nil {
				return nil, err
			}
			if id != "" {
				out = append(out, id)
			}
		}
	case b[0] == '{' && wrapperOK:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		inner, ok := m["number"]
		if !ok {
			switch len(m) {
			case 0:
				return nil, nil
			case 1:
				for _, v := range m {
					inner = v
				}
			default:
				return nil, fmt.Errorf("want {\"number\":[…]}, got %s", snippet(string(b)))
			}
		}
		return parseIDList(inner, false)
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, err
		}
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, ID(part))
			}
		}
	case isDigit(b[0]):
		var id ID
		if err := id.UnmarshalJSON(b); err != nil {
			return nil, err
		}
		out = IDList{id}
	default:
		return nil, fmt.Errorf("want a list of ids, got %s", snippet(string(b)))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Time is a platform date, "yyyy-MM-dd HH:mm:ss" (TimeLayout) in Asia/Shanghai.
// "", null and "0000-00-00 00:00:00" decode as the zero Time; fractional seconds,
// if sent, are dropped. Decoded values carry the fixed zone CST (UTC+8). The zero
// Time encodes as "", others in TimeLayout in Asia/Shanghai.
type Time struct{ time.Time }

// UnmarshalJSON decodes a JSON string in TimeLayout or null; anything else, and a
// string that is not a valid date in that layout, is an error.
func (t *Time) UnmarshalJSON(b []byte) error {
	switch {
	case isNull(b):
		*t = Time{}
		return nil
	case len(b) == 0 || b[0] != '"':
		return fmt.Errorf("vvtool: time: want a string %q, got %s", "yyyy-MM-dd HH:mm:ss", snippet(string(b)))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("vvtool: time: %w", err)
	}
	parsed, err := ParseTime(s)
	if err != nil {
		return err
	}
	*t = parsed
	return nil
}

// MarshalJSON encodes the zero Time as "" and others in TimeLayout in
// Asia/Shanghai.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte(`""`), nil
	}
	return json.Marshal(t.In(shanghai).Format(TimeLayout))
}

// ParseTime parses s as a platform date (see Time): TimeLayout in Asia/Shanghai,
// "" and "0000-00-00 00:00:00" being the zero Time.
func ParseTime(s string) (Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == zeroDate {
		return Time{}, nil
	}
	v, err := time.ParseInLocation(TimeLayout, s, shanghai)
	if err != nil {
		return Time{}, fmt.Errorf("vvtool: time: want %q, got %q", "yyyy-MM-dd HH:mm:ss", snippet(s))
	}
	v = v.Add(-time.Duration(v.Nanosecond()))
	if v.IsZero() {
		return Time{}, nil
	}
	return Time{v}, nil
}

// FormatTime formats t as the platform expects dates in requests: TimeLayout in
// Asia/Shanghai.
func FormatTime(t time.Time) string {
	return t.In(shanghai).Format(TimeLayout)
}

// Location is the receiver's address of a Shipping. The platform returns it only
// when the request's fields name "receiver_location".
type Location struct {
	Zip      string `json:"zip"`
	Address  string `json:"address"`
	City     string `json:"city"`
	State    string `json:"state"`
	Country  string `json:"country"`
	District string `json:"district"`
}

// locationWire is Location as decoded, with lenient members.
type locationWire struct {
	Zip      lenientString `json:"zip"`
	Address  lenientString `json:"address"`
	City     lenientString `json:"city"`
	State    lenientString `json:"state"`
	Country  lenientString `json:"country"`
	District lenientString `json:"district"`
}

// UnmarshalJSON decodes an object whose members may be strings or numbers (a zip
// code sent as a number); null and an empty array (PHP's empty object) leave the
// Location empty.
func (loc *Location) UnmarshalJSON(b []byte) error {
	if isEmptyJSON(b) {
		*loc = Location{}
		return nil
	}
	var w locationWire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("vvtool: location: %w", err)
	}
	*loc = Location{
		Zip: string(w.Zip), Address: string(w.Address), City: string(w.City),
		State: string(w.State), Country: string(w.Country), District: string(w.District),
	}
	return nil
}

// isEmptyJSON reports whether b is null, [], "" or nothing.
func isEmptyJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || isNull(b) || string(b) == `""` {
		return true
	}
	if b[0] == '[' {
		var elems []json.RawMessage
		return json.Unmarshal(b, &elems) == nil && len(elems) == 0
	}
	return false
}

// Shipping is one logistics order (物流订单) of /tool/erps/detail. The platform
// fills only the members named in the request's fields. Members arrive with
// whatever JSON type the platform chose; UnmarshalJSON accepts strings for
// numbers and booleans and numbers for strings (see ID, IDList, Time).
type Shipping struct {
	Tid              ID        `json:"tid"`
	OrderCode        string    `json:"order_code"`
	Status           string    `json:"status"`
	IsQuickCodOrder  bool      `json:"is_quick_cod_order"`
	SellerNick       string    `json:"seller_nick"`
	BuyerNick        string    `json:"buyer_nick"`
	DeliveryStart    Time      `json:"delivery_start"`
	DeliveryEnd      Time      `json:"delivery_end"`
	OutSid           string    `json:"out_sid"`
	ItemTitle        string    `json:"item_title"`
	ReceiverName     string    `json:"receiver_name"`
	ReceiverPhone    string    `json:"receiver_phone"`
	ReceiverMobile   string    `json:"receiver_mobile"`
	Location         *Location `json:"location"`
	Type             string    `json:"type"`
	FreightPayer     string    `json:"freight_payer"`
	SellerConfirm    string    `json:"seller_confirm"`
	CompanyName      string    `json:"company_name"`
	Created          Time      `json:"created"`
	Modified         Time      `json:"modified"`
	SubTids          IDList    `json:"sub_tids"`
	IsSplit          int       `json:"is_split"`
	WithholdingMoney int       `json:"withholding_money"`
}

// shippingWire is Shipping as decoded, with lenient members.
type shippingWire struct {
	Tid              ID              `json:"tid"`
	OrderCode        lenientString   `json:"order_code"`
	Status           lenientString   `json:"status"`
	IsQuickCodOrder  lenientBool     `json:"is_quick_cod_order"`
	SellerNick       lenientString   `json:"seller_nick"`
	BuyerNick        lenientString   `json:"buyer_nick"`
	DeliveryStart    Time            `json:"delivery_start"`
	DeliveryEnd      Time            `json:"delivery_end"`
	OutSid           lenientString   `json:"out_sid"`
	ItemTitle        lenientString   `json:"item_title"`
	ReceiverName     lenientString   `json:"receiver_name"`
	ReceiverPhone    lenientString   `json:"receiver_phone"`
	ReceiverMobile   lenientString   `json:"receiver_mobile"`
	Location         json.RawMessage `json:"location"`
	Type             lenientString   `json:"type"`
	FreightPayer     lenientString   `json:"freight_payer"`
	SellerConfirm    lenientString   `json:"seller_confirm"`
	CompanyName      lenientString   `json:"company_name"`
	Created          Time            `json:"created"`
	Modified         Time            `json:"modified"`
	SubTids          IDList          `json:"sub_tids"`
	IsSplit          lenientInt      `json:"is_split"`
	WithholdingMoney lenientInt      `json:"withholding_money"`
}

// UnmarshalJSON decodes a Shipping tolerantly (see the type's comment). A location
// that is null, [] or "" leaves Location nil.
func (s *Shipping) UnmarshalJSON(b []byte) error {
	var w shippingWire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("vvtool: shipping: %w", err)
	}
	var loc *Location
	if !isEmptyJSON(w.Location) {
		loc = new(Location)
		if err := loc.UnmarshalJSON(w.Location); err != nil {
			return fmt.Errorf("vvtool: shipping: %w", err)
		}
	}
	*s = Shipping{
		Tid:              w.Tid,
		OrderCode:        string(w.OrderCode),
		Status:           string(w.Status),
		IsQuickCodOrder:  bool(w.IsQuickCodOrder),
		SellerNick:       string(w.SellerNick),
		BuyerNick:        string(w.BuyerNick),
		DeliveryStart:    w.DeliveryStart,
		DeliveryEnd:      w.DeliveryEnd,
		OutSid:           string(w.OutSid),
		ItemTitle:        string(w.ItemTitle),
		ReceiverName:     string(w.ReceiverName),
		ReceiverPhone:    string(w.ReceiverPhone),
		ReceiverMobile:   string(w.ReceiverMobile),
		Location:         loc,
		Type:             string(w.Type),
		FreightPayer:     string(w.FreightPayer),
		SellerConfirm:    string(w.SellerConfirm),
		CompanyName:      string(w.CompanyName),
		Created:          w.Created,
		Modified:         w.Modified,
		SubTids:          w.SubTids,
		IsSplit:          int(w.IsSplit),
		WithholdingMoney: int(w.WithholdingMoney),
	}
	return nil
}
