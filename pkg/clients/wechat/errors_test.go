package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"
)

// listedCodes is every errcode the spec, API-NOTES and the seed pages name, with
// its class.
var listedCodes = []struct {
	code int
	want Class
}{
	{-1, ClassTransient}, {45011, ClassTransient}, {100003, ClassTransient}, {268545009, ClassTransient},
	{40001, ClassToken}, {40014, ClassToken}, {42001, ClassToken},
	{109001, ClassAlreadyDone},
	{108009, ClassWait}, {10020115, ClassWait}, {10020276, ClassWait}, {606049, ClassWait}, {45009, ClassWait},
	// permanent: 004's table (other than the above), 002's table, global codes.
	{40097, ClassPermanent}, {47001, ClassPermanent}, {48001, ClassPermanent}, {100002, ClassPermanent},
	{101100, ClassPermanent}, {109000, ClassPermanent}, {109002, ClassPermanent}, {109205, ClassPermanent},
	{606003, ClassPermanent}, {606004, ClassPermanent}, {606005, ClassPermanent}, {606008, ClassPermanent},
	{606031, ClassPermanent}, {606034, ClassPermanent}, {606036, ClassPermanent}, {606037, ClassPermanent},
	{606038, ClassPermanent}, {606045, ClassPermanent}, {606046, ClassPermanent}, {606048, ClassPermanent},
	{606051, ClassPermanent}, {606060, ClassPermanent}, {606061, ClassPermanent}, {6060479, ClassPermanent},
	{268545000, ClassPermanent}, {268545001, ClassPermanent}, {268545002, ClassPermanent}, {268545003, ClassPermanent},
	{268545004, ClassPermanent}, {268545005, ClassPermanent}, {268545006, ClassPermanent}, {268545007, ClassPermanent},
	{268545008, ClassPermanent}, {268545010, ClassPermanent}, {268545011, ClassPermanent}, {268545012, ClassPermanent},
	{268545013, ClassPermanent}, {268545014, ClassPermanent}, {268545015, ClassPermanent},
	{31042, ClassPermanent}, {606006, ClassPermanent}, {40013, ClassPermanent}, {40125, ClassPermanent},
	{9300507, ClassPermanent}, {1, ClassPermanent},
}

func TestClassifyAPIErrorCodes(t *testing.T) {
	for _, tt := range listedCodes {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			err := fmt.Errorf("ship order: %w", &APIError{Endpoint: EndpointDeliverySend, Code: tt.code, Msg: "m", HTTPStatus: 200})
			if got := Classify(err); got != tt.want {
				t.Errorf("Classify(errcode %d) = %v, want %v", tt.code, got, tt.want)
			}
			if got := Code(err); got != tt.code {
				t.Errorf("Code = %d, want %d", got, tt.code)
			}
		})
	}
}

func TestClassifyOtherErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassOK},
		{"bad response", fmt.Errorf("wechat x: %w: truncated", ErrBadResponse), ClassTransient},
		{"HTTP 500", &APIError{Endpoint: EndpointOrderGet, HTTPStatus: 500}, ClassTransient},
		{"HTTP 503", &APIError{Endpoint: EndpointOrderGet, HTTPStatus: 503}, ClassTransient},
		{"HTTP 429", &APIError{Endpoint: EndpointOrderGet, HTTPStatus: 429}, ClassTransient},
		{"HTTP 400", &APIError{Endpoint: EndpointOrderGet, HTTPStatus: 400}, ClassPermanent},
		{"HTTP 404", &APIError{Endpoint: EndpointOrderGet, HTTPStatus: 404}, ClassPermanent},
		{"errcode wins over HTTP 503", &APIError{Endpoint: EndpointOrderGet, Code: 109001, HTTPStatus: 503}, ClassAlreadyDone},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), ClassTransient},
		{"canceled", context.Canceled, ClassTransient},
		{"url error", &url.Error{Op: "Post", URL: "u", Err: io.EOF}, ClassTransient},
		{"net op error", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ClassTransient},
		{"conn reset", fmt.Errorf("read: %w", syscall.ECONNRESET), ClassTransient},
		{"unexpected EOF", io.ErrUnexpectedEOF, ClassTransient},
		{"token rejected, refresh failed", fmt.Errorf("%w (token refresh failed: %w)", &APIError{Code: 40001}, ErrStaticToken), ClassToken},
		{"no token: secret refused", fmt.Errorf("wechat x: %w", &tokenError{&APIError{Endpoint: EndpointStableToken, Code: 40125}}), ClassToken},
		{"no token: appid refused", fmt.Errorf("wechat x: %w", &tokenError{&APIError{Endpoint: EndpointStableToken, Code: 40013}}), ClassToken},
		{"no token: platform busy", fmt.Errorf("wechat x: %w", &tokenError{&APIError{Endpoint: EndpointStableToken, Code: -1}}), ClassTransient},
		{"no token: network", fmt.Errorf("wechat x: %w", &tokenError{syscall.ECONNRESET}), ClassTransient},
		{"batch too large", fmt.Errorf("%w: got 101", ErrBatchTooLarge), ClassPermanent},
		{"unknown", errors.New("something else"), ClassPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestClassString(t *testing.T) {
	want := map[Class]string{
		ClassOK: "ok", ClassTransient: "transient", ClassToken: "token", ClassAlreadyDone: "already_done",
		ClassWait: "wait", ClassPermanent: "permanent", Class(42): "class(42)",
	}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), c.String(), s)
		}
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 0},
		{&APIError{Code: 100003}, 100003},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", &APIError{Code: -1})), -1},
		{&APIError{HTTPStatus: 502}, 0},
	}
	for _, tt := range tests {
		if got := Code(tt.err); got != tt.want {
			t.Errorf("Code(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	// The code of a successful call, asked after every call, is free.
	if n := testing.AllocsPerRun(10, func() { _ = Code(nil) }); n != 0 {
		t.Errorf("Code(nil) allocates %v times", n)
	}
}

func TestAPIError(t *testing.T) {
	tests := []struct {
		err        *APIError
		want       string
		httpStatus bool
	}{
		{&APIError{Endpoint: EndpointDeliverySend, Code: 100003, Msg: "order update too frequent", HTTPStatus: 200},
			"wechat delivery/send: errcode 100003: order update too frequent", false},
		{&APIError{Endpoint: EndpointOrderGet, Code: 40001}, "wechat order/get: errcode 40001", false},
		{&APIError{Endpoint: EndpointOrderGet, HTTPStatus: 502}, "wechat order/get: HTTP status 502 Bad Gateway", true},
		{&APIError{Endpoint: EndpointOrderGet, Code: -1, Msg: "system busy", HTTPStatus: 503},
			"wechat order/get: errcode -1: system busy (HTTP status 503)", true},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if got := errors.Is(tt.err, ErrHTTPStatus); got != tt.httpStatus {
			t.Errorf("errors.Is(%q, ErrHTTPStatus) = %v, want %v", tt.want, got, tt.httpStatus)
		}
	}
}

func TestWaybillErr(t *testing.T) {
	if err := (&Waybill{}).Err(); err != nil {
		t.Errorf("Err() of errcode 0 = %v", err)
	}
	w := Waybill{Errcode: 9300507, Errmsg: "waybill not found"}
	var ae *APIError
	if err := w.Err(); !errors.As(err, &ae) || ae.Endpoint != EndpointBatchGetOrder || ae.Code != 9300507 || ae.Msg != "waybill not found" {
		t.Errorf("Err() = %#v", err)
	}
}

// failingTokens is a TokenSource that cannot give a token.
type failingTokens struct{ err error }

func (f failingTokens) Token(context.Context) (string, error)           { return "", f.err }
func (f failingTokens) Refresh(context.Context, string) (string, error) { return "", f.err }

// TestNoTokenIsAboutTheAccount: a call made impossible by stable_token's
// refusal says so (ErrNoToken) and is ClassToken, not a permanent refusal
// of the order; a transient stable_token failure stays transient.
func TestNoTokenIsAboutTheAccount(t *testing.T) {
	for _, tt := range []struct {
		cause error
		want  Class
	}{
		{&APIError{Endpoint: EndpointStableToken, Code: 40013, Msg: "invalid appid"}, ClassToken},
		{&APIError{Endpoint: EndpointStableToken, HTTPStatus: 502}, ClassTransient},
	} {
		c := NewClient(failingTokens{tt.cause}, WithBaseURL("http://127.0.0.1:1"))
		err := c.SendDelivery(t.Context(), SendDeliveryRequest{OrderID: "1"})
		if !errors.Is(err, ErrNoToken) || Classify(err) != tt.want {
			t.Errorf("cause %v: error %v (ErrNoToken %v), class %v; want ErrNoToken and %v", tt.cause, err, errors.Is(err, ErrNoToken), Classify(err), tt.want)
		}
	}
}
