package vvtool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Platform response codes of /tool/erps/detail (seed page 003, 响应代码).
const (
	CodeOK                = 0   // success
	CodeBadParams         = 100 // request parameters wrong
	CodeTimeout           = 101 // platform-side timeout, retry
	CodeNoAccount         = 103 // shop account (旺旺) does not exist
	CodeSystemError       = 200 // system error, contact support
	CodeBusy              = 202 // system error, retry later (also the rate-limit answer)
	CodeUnsupported       = 203 // API not supported
	CodeNoQuota           = 204 // no permission for the API, or no calls left
	CodeShopNotAuthorised = 302 // shop not authorised for this account
	CodeTokenInvalid      = 401 // bad or expired token
	CodeNotFound          = 404 // wrong path or method
	CodeInvalidTradeID    = 614 // trade id invalid (not shipped yet, older than 3 months…)
)

// CodeFailure is the code an Observer is told when a call produced no platform
// code: a transport error, a non-2xx HTTP status without a code, an undecodable body.
const CodeFailure = -2

// ErrBadResponse marks a response body that could not be decoded: not JSON (an
// HTML error page), truncated, fields of impossible types, no "code", or larger
// than MaxResponseBytes. It is wrapped with the detail; Classify treats it as
// transient.
var ErrBadResponse = errors.New("vvtool: bad response")

// ErrHTTPStatus matches (errors.Is) an *APIError that reports a non-2xx HTTP status
// whose body carried no platform code.
var ErrHTTPStatus = errors.New("vvtool: unexpected HTTP status")

// ErrInvalidRequest marks a request refused before any HTTP call (for example no
// shop id, or an unusable base URL). Classify treats it as permanent.
var ErrInvalidRequest = errors.New("vvtool: invalid request")

// APIError is a failure answered by the platform: a non-zero code in the body, or
// (Code 0) a non-2xx HTTP status without one. Msg and Data are as sent by the
// platform (Data: the "data" member of an error answer if it is a string, for
// example the authorisation link of code 302), with the token redacted.
type APIError struct {
	Code       int
	Msg        string
	HTTPStatus int
	Data       string
}

// Error returns the code, what it means and what the operator should do, and the
// platform's own message.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("vvtool: ")
	if e.Code != 0 {
		fmt.Fprintf(&b, "code %d", e.Code)
		if e.HTTPStatus != 0 && e.HTTPStatus != http.StatusOK {
			fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
		}
	} else {
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
		if t := http.StatusText(e.HTTPStatus); t != "" {
			b.WriteString(" " + t)
		}
	}
	if h := e.hint(); h != "" {
		b.WriteString(": " + h)
	}
	if e.Msg != "" {
		fmt.Fprintf(&b, " (server: %s)", e.Msg)
	}
	if e.Data != "" {
		fmt.Fprintf(&b, " (data: %s)", e.Data)
	}
	return b.String()
}

// Is reports whether target is ErrHTTPStatus and e reports an HTTP status only.
func (e *APIError) Is(target error) bool {
	return target == ErrHTTPStatus && e.Code == 0
}

// hint says what a code means and what to do about it.
func (e *APIError) hint() string {
	switch e.Code {
	case CodeTokenInvalid:
		return "token invalid: renew VVTOOL_TOKEN (vv-tool rejected the Bearer token)"
	case CodeShopNotAuthorised:
		return "shop not authorised: have the shop owner (re)authorise the shop in vv-tool using the returned link, or remove it from VVTOOL_SHOP_IDS"
	case CodeNoQuota:
		return "no quota/permission: enable the erps/detail API or top up API calls on vv-tool.com"
	case CodeInvalidTradeID:
		return "invalid trade id: query only trades already shipped and less than 3 months old"
	case CodeBadParams:
		return "invalid request parameters: check the request (shop_id, fields, dates)"
	case CodeTimeout:
		return "vv-tool request timed out: will be retried"
	case CodeNoAccount:
		return "shop account does not exist: check the shop id in VVTOOL_SHOP_IDS"
	case CodeSystemError:
		return "vv-tool system error: check VVTOOL_API_BASE, otherwise contact vv-tool support"
	case CodeBusy:
		return "vv-tool busy or rate limit exceeded: will be retried"
	case CodeUnsupported:
		return "API not supported for this account: contact vv-tool support"
	case CodeNotFound:
		return "wrong path or method: check VVTOOL_API_BASE"
	case 0:
	default:
		return "unknown vv-tool code"
	}
	switch s := e.HTTPStatus; {
	case s == http.StatusTooManyRequests:
		return "rate limited: will be retried"
	case s >= 500:
		return "vv-tool unavailable: will be retried"
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return "access refused: check VVTOOL_TOKEN"
	case s == http.StatusNotFound || s == http.StatusMethodNotAllowed:
		return "wrong path or method: check VVTOOL_API_BASE"
	}
	return ""
}

// TransportError reports a request that got no (complete) HTTP response: DNS,
// connect, TLS, a reset connection, a timeout, a cancelled context. Its message is
// the transport's, with the token redacted; the original error is not kept, so
// nothing reachable through errors.Unwrap can leak the token. Unwrap yields
// context.Canceled or context.DeadlineExceeded when one of them caused it.
type TransportError struct {
	msg     string
	timeout bool
	cause   error
}

// Error returns the redacted transport message.
func (e *TransportError) Error() string { return e.msg }

// Unwrap returns context.Canceled or context.DeadlineExceeded if the request ended
// because of one of them, else nil.
func (e *TransportError) Unwrap() error { return e.cause }

// Timeout reports whether the request timed out (net.Error).
func (e *TransportError) Timeout() bool { return e.timeout }

// Temporary reports true: a transport failure is worth retrying (net.Error).
func (e *TransportError) Temporary() bool { return true }

var _ net.Error = (*TransportError)(nil)

// newTransportError converts err (from http.Client.Do or reading a body) to a
// *TransportError whose message went through redact.
func newTransportError(err error, redact func(string) string) *TransportError {
	te := &TransportError{msg: redact(err.Error())}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		te.timeout = true
	}
	switch {
	case errors.Is(err, context.Canceled):
		te.cause = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		te.cause = context.DeadlineExceeded
		te.timeout = true
	}
	return te
}

// Class tells the caller what to do with an error.
type Class int

// The classes Classify returns.
const (
	// ClassOK is a nil error.
	ClassOK Class = iota
	// ClassTransient: retry later with backoff (codes 101, 202; HTTP 5xx and 429;
	// transport errors and timeouts; ErrBadResponse; cancelled or expired contexts).
	ClassTransient
	// ClassPermanent: retrying will not help until an operator acts (codes 401,
	// 302, 204, 614, 100, 103, 200, 203, 404 and unknown codes; other HTTP
	// statuses; ErrInvalidRequest).
	ClassPermanent
)

// String returns "ok", "transient" or "permanent".
func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassTransient:
		return "transient"
	case ClassPermanent:
		return "permanent"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Classify maps an error returned by this package to a Class. Errors it does not
// know are permanent.
func Classify(err error) Class {
	if err == nil {
		return ClassOK
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return classifyAPIError(ae)
	}
	var te *TransportError
	var ne net.Error
	switch {
	case errors.Is(err, ErrBadResponse),
		errors.As(err, &te),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.As(err, &ne):
		return ClassTransient
	}
	return ClassPermanent
}

func classifyAPIError(e *APIError) Class {
	switch e.Code {
	case CodeTimeout, CodeBusy:
		return ClassTransient
	case 0:
		if e.HTTPStatus >= 500 || e.HTTPStatus == http.StatusTooManyRequests {
			return ClassTransient
		}
	}
	return ClassPermanent
}

// Code returns the platform code carried by err (an *APIError in its chain), or 0.
func Code(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}
