package wechat

import (
	"bytes"
	"fmt"

	gojson "github.com/goccy/go-json"
)

// envelope is the errcode/errmsg pair every answer may carry; absent means 0/"".
type envelope struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
}

// decodeEnvelope decodes the errcode and errmsg of a body, which must be one JSON
// object. Errors wrap ErrBadResponse.
func decodeEnvelope(ep Endpoint, raw []byte) (envelope, error) {
	var env envelope
	if len(raw) > MaxResponseBytes {
		return env, fmt.Errorf("wechat %s: %w: body exceeds %d bytes", ep, ErrBadResponse, MaxResponseBytes)
	}
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 {
		return env, fmt.Errorf("wechat %s: %w: empty body", ep, ErrBadResponse)
	}
	if trimmed[0] != '{' {
		return env, fmt.Errorf("wechat %s: %w: body is not a JSON object (starts with %q)", ep, ErrBadResponse, firstRune(trimmed))
	}
	if err := gojson.Unmarshal(raw, &env); err != nil {
		return env, fmt.Errorf("wechat %s: %w: %w", ep, ErrBadResponse, err)
	}
	return env, nil
}

// decodeResponse turns an HTTP answer into an error or, with errcode 0, decodes
// the body into out (a pointer, or nil to only check the errcode).
//
// A non-2xx status gives an *APIError with HTTPStatus set (and the errcode, if the
// body carries one). A non-zero errcode gives an *APIError. A body that is not a
// JSON object of the expected shape gives an error wrapping ErrBadResponse.
func decodeResponse(ep Endpoint, status int, raw []byte, out any) error {
	if !is2xx(status) {
		env, err := decodeEnvelope(ep, raw)
		if err != nil || env.Errcode == 0 {
			return &APIError{Endpoint: ep, HTTPStatus: status}
		}
		return &APIError{Endpoint: ep, Code: env.Errcode, Msg: Redact(env.Errmsg), HTTPStatus: status}
	}
	env, err := decodeEnvelope(ep, raw)
	if err != nil {
		return err
	}
	if env.Errcode != 0 {
		return &APIError{Endpoint: ep, Code: env.Errcode, Msg: Redact(env.Errmsg), HTTPStatus: status}
	}
	if out == nil {
		return nil
	}
	if err := gojson.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("wechat %s: %w: %w", ep, ErrBadResponse, err)
	}
	return nil
}

// firstRune returns the first character of b for an error message.
func firstRune(b []byte) string {
	r := []rune(string(b[:min(len(b), 4)]))
	if len(r) == 0 {
		return ""
	}
	return string(r[0])
}
