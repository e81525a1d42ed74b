package vvtool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxResponseBytes is the most of a response body the client reads; a longer body
// is ErrBadResponse.
const MaxResponseBytes = 4 << 20

// DetailResponse is the answer of /tool/erps/detail: code 0 and the page of
// shippings in Data (Msec: the platform's processing time in ms; Time: its Unix
// time in seconds).
type DetailResponse struct {
	Code int        `json:"code"`
	Msg  string     `json:"msg"`
	Msec int64      `json:"msec"`
	Time int64      `json:"time"`
	Data []Shipping `json:"data"`
}

// envelope is DetailResponse as decoded: lenient scalars, data kept raw until the
// code says whether it is a page of shippings.
type envelope struct {
	Code *lenientInt     `json:"code"`
	Msg  lenientString   `json:"msg"`
	Msec lenientInt      `json:"msec"`
	Time lenientInt      `json:"time"`
	Data json.RawMessage `json:"data"`
}

// errNoCode is the decoding error of a JSON object without "code".
var errNoCode = errors.New(`vvtool: response has no "code"`)

// UnmarshalJSON decodes a response tolerantly: code, msec and time may be numbers
// or numeric strings, msg any scalar. "code" is required. With code 0, data must
// be null, an empty object or string, or an array of shippings (an empty page is
// nil); with another code, data is ignored.
func (r *DetailResponse) UnmarshalJSON(b []byte) error {
	env, err := decodeEnvelope(b)
	if err != nil {
		return err
	}
	out := DetailResponse{Code: int(*env.Code), Msg: string(env.Msg), Msec: int64(env.Msec), Time: int64(env.Time)}
	if out.Code == CodeOK {
		if out.Data, err = decodeShippings(env.Data); err != nil {
			return err
		}
	}
	*r = out
	return nil
}

func decodeEnvelope(b []byte) (*envelope, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("vvtool: response: %w", err)
	}
	if env.Code == nil {
		return nil, errNoCode
	}
	return &env, nil
}

// decodeShippings decodes the data member of a successful response.
func decodeShippings(raw json.RawMessage) ([]Shipping, error) {
	raw = bytes.TrimSpace(raw)
	if isEmptyJSON(raw) || string(raw) == "{}" {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, fmt.Errorf("vvtool: response: data is not a list: %s", snippet(string(raw)))
	}
	var data []Shipping
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, fmt.Errorf("vvtool: response: data: %w", err)
	}
	if len(data) == 0 {
		return nil, nil
	}
	return data, nil
}

// decodeDetail decodes a response body, which came with HTTP status httpStatus
// (0: unknown), with r redacting every string that goes into an error. An
// undecodable body is an error wrapping ErrBadResponse; a non-zero code is an
// *APIError, returned with the decoded response (Data nil).
func decodeDetail(body []byte, httpStatus int, r redactor) (*DetailResponse, error) {
	env, err := decodeEnvelope(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s; body: %s", ErrBadResponse, r.redact(err.Error()), snippet(r.redact(string(body))))
	}
	resp := &DetailResponse{Code: int(*env.Code), Msg: string(env.Msg), Msec: int64(env.Msec), Time: int64(env.Time)}
	if resp.Code != CodeOK {
		return resp, &APIError{Code: resp.Code, Msg: snippet(r.redact(resp.Msg)), HTTPStatus: httpStatus, Data: errorData(env.Data, r)}
	}
	if resp.Data, err = decodeShippings(env.Data); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadResponse, r.redact(err.Error()))
	}
	return resp, nil
}

// errorData returns the data member of an error answer if it is a non-empty
// string (for code 302, the authorisation link), redacted and bounded.
func errorData(raw json.RawMessage, r redactor) string {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return snippet(r.redact(s))
}
