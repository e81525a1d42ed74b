package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
)

// ErrBadResponse marks a response body that could not be decoded: truncated JSON,
// an HTML error page, wrong field types, or a body over MaxResponseBytes. It is
// always wrapped with the endpoint and detail. Classify treats it as transient.
var ErrBadResponse = errors.New("bad response")

// ErrHTTPStatus marks a non-2xx HTTP status. errors.Is(err, ErrHTTPStatus) holds
// for an *APIError whose HTTPStatus is not 2xx; the status is in the APIError.
var ErrHTTPStatus = errors.New("unexpected HTTP status")

// ErrBatchTooLarge is returned by BatchGetOrder for more than MaxBatchGetOrder
// queries, before any HTTP call.
var ErrBatchTooLarge = fmt.Errorf("wechat %s: more than %d orders in one call", EndpointBatchGetOrder, MaxBatchGetOrder)

// ErrStaticToken is returned by the Refresh method of a StaticToken source: a fixed
// token cannot be refreshed.
var ErrStaticToken = errors.New("wechat: a static access token cannot be refreshed")

// ErrRefreshThrottled is returned by StableTokenSource.Refresh when the platform
// hands back the rejected token again and force_refresh was already used less
// than ForceRefreshInterval ago.
var ErrRefreshThrottled = errors.New("wechat: token refresh throttled: force_refresh used less than 30s ago")

// APIError is an answer of the platform with a non-zero errcode, or a non-2xx HTTP
// status (then Code is 0 unless the body carried an errcode). Its message never
// contains the access token.
type APIError struct {
	// Endpoint is the API that answered.
	Endpoint Endpoint
	// Code is the platform errcode; 0 for a bare non-2xx HTTP status.
	Code int
	// Msg is the platform errmsg (redacted).
	Msg string
	// HTTPStatus is the HTTP status of the answer (0 when not known, e.g. per-item
	// errors of batchGetOrder).
	HTTPStatus int
}

// Error returns e.g. "wechat delivery/send: errcode 100003: <msg>".
func (e *APIError) Error() string {
	s := "wechat " + string(e.Endpoint) + ": "
	if e.Code == 0 && !is2xx(e.HTTPStatus) {
		return s + "HTTP status " + strconv.Itoa(e.HTTPStatus) + " " + http.StatusText(e.HTTPStatus)
	}
	s += "errcode " + strconv.Itoa(e.Code)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if !is2xx(e.HTTPStatus) {
		s += " (HTTP status " + strconv.Itoa(e.HTTPStatus) + ")"
	}
	return s
}

// Is reports whether target is ErrHTTPStatus and the answer had a non-2xx status.
func (e *APIError) Is(target error) bool {
	return target == ErrHTTPStatus && !is2xx(e.HTTPStatus)
}

// is2xx reports whether status is a success status; 0 (unknown) counts as success.
func is2xx(status int) bool {
	return status == 0 || (status >= 200 && status < 300)
}

// ErrNoToken marks a business call that was not made because no access
// token could be had: stable_token refused the appid or secret (40013,
// 40125, 41002, …) or could not be reached. Classify says ClassToken, or
// ClassTransient when the token call itself failed transiently.
var ErrNoToken = errors.New("no access token")

// tokenError is a failure to get an access token, wrapping its cause.
type tokenError struct{ err error }

func (e *tokenError) Error() string        { return ErrNoToken.Error() + ": " + e.err.Error() }
func (e *tokenError) Unwrap() error        { return e.err }
func (e *tokenError) Is(target error) bool { return target == ErrNoToken }

// Class says what a caller should do after an error.
type Class int

// The classes returned by Classify.
const (
	// ClassOK: no error.
	ClassOK Class = iota
	// ClassTransient: retry with backoff (busy, rate limited, HTTP 5xx/429,
	// network failures, timeouts, undecodable answers).
	ClassTransient
	// ClassToken: the access token was rejected (40001, 40014, 42001) and the
	// client's one refresh and replay did not help: the refresh failed (for
	// example a StaticToken, or force_refresh throttled) or the replay was
	// rejected too. Retry later; alert if it persists.
	ClassToken
	// ClassAlreadyDone: the platform says the work is already done (109001 already
	// shipped): treat as success.
	ClassAlreadyDone
	// ClassWait: blocked on a person or the platform (after-sale open, address or
	// SKU change pending, risk hold, daily quota): retry much later, not in a loop.
	ClassWait
	// ClassPermanent: retrying will not help.
	ClassPermanent
)

// String returns "ok", "transient", "token", "already_done", "wait" or "permanent".
func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassTransient:
		return "transient"
	case ClassToken:
		return "token"
	case ClassAlreadyDone:
		return "already_done"
	case ClassWait:
		return "wait"
	case ClassPermanent:
		return "permanent"
	default:
		return "class(" + strconv.Itoa(int(c)) + ")"
	}
}

// Classify maps an error returned by this package to a Class:
//
//   - nil: ClassOK
//   - errcode -1, 45011, 100003, 268545009: ClassTransient
//   - errcode 40001, 40014, 42001: ClassToken
//   - ErrNoToken (no token could be had): ClassToken, or ClassTransient
//     when stable_token failed transiently
//   - errcode 109001: ClassAlreadyDone
//   - errcode 108009, 10020115, 10020276, 606049, 45009: ClassWait
//   - any other errcode: ClassPermanent
//   - HTTP 5xx and 429, ErrBadResponse, network errors, timeouts, context deadline
//     or cancellation: ClassTransient
//   - other HTTP 4xx (and anything else): ClassPermanent
func Classify(err error) Class {
	if err == nil {
		return ClassOK
	}
	// A business call never made for want of a token is about the account,
	// not the order: whatever stable_token answered.
	var te *tokenError
	if errors.As(err, &te) {
		if Classify(te.err) == ClassTransient {
			return ClassTransient
		}
		return ClassToken
	}
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.Code != 0 {
			return classifyCode(ae.Code)
		}
		if ae.HTTPStatus >= 500 || ae.HTTPStatus == http.StatusTooManyRequests {
			return ClassTransient
		}
		return ClassPermanent
	}
	if errors.Is(err, ErrBadResponse) || isTransportError(err) {
		return ClassTransient
	}
	return ClassPermanent
}

// classifyCode maps a non-zero platform errcode to its class.
func classifyCode(code int) Class {
	switch code {
	case -1, 45011, 100003, 268545009:
		return ClassTransient
	case 40001, 40014, 42001:
		return ClassToken
	case 109001:
		return ClassAlreadyDone
	case 108009, 10020115, 10020276, 606049, 45009:
		return ClassWait
	default:
		return ClassPermanent
	}
}

// isTokenCode reports whether the platform rejected the access token.
func isTokenCode(code int) bool { return classifyCode(code) == ClassToken }

// isTransportError reports whether err is a network-level failure: a failed
// exchange of this package, a *url.Error or net.Error, a timeout, a cut connection,
// or a context deadline/cancellation.
func isTransportError(err error) bool {
	var te *transportError
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &te), errors.As(err, &ue), errors.As(err, &ne):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// Code returns the platform errcode carried by err (an *APIError in its chain),
// or 0.
func Code(err error) int {
	if err == nil {
		return 0 // before the target escapes: most calls succeed
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// transportError is a failed HTTP exchange: the request could not be sent or the
// response body could not be read. Its cause has any URL redacted.
type transportError struct {
	op  string
	err error
}

func (e *transportError) Error() string { return e.op + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }
