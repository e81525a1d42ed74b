package vvtool

import (
	"net/http"
	"strings"
	"time"
)

// Option configures a Client.
type Option func(*Client)

// Observer is told of every HTTP call the client makes (for metrics): code is the
// platform code (0 for success), or CodeFailure when the call produced none
// (transport error, HTTP status without a code, undecodable body); d is the time
// from sending the request to having read the response, without the wait for the
// Limiter.
type Observer func(code int, d time.Duration)

// WithBaseURL sets the scheme and host the client calls (default DefaultBaseURL),
// for example a sandbox's httptest.Server URL. A trailing slash is ignored.
func WithBaseURL(u string) Option {
	return func(c *Client) { c.baseURL = strings.TrimRight(u, "/") }
}

// WithHTTPClient sets the HTTP client (default: timeout DefaultTimeout, a clone of
// http.DefaultTransport). nil keeps the default.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithLimiter sets the rate limiter. The platform's limit is per account: give the
// Clients of every shop of one account the same Limiter. The default is a Limiter
// of MaxRequestsPerSecond per second for this Client alone. nil keeps the default.
func WithLimiter(l *Limiter) Option {
	return func(c *Client) {
		if l != nil {
			c.limiter = l
		}
	}
}

// WithObserver sets a function told of every HTTP call (see Observer).
func WithObserver(o Observer) Option {
	return func(c *Client) { c.observe = o }
}
