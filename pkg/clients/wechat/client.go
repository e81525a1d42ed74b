package wechat

import (
	"net/http"
	"strings"
	"time"
)

// DefaultTimeout is the timeout of the default HTTP client of Client and
// StableTokenSource.
const DefaultTimeout = 10 * time.Second

// Client calls the WeChat business APIs. It is safe for concurrent use; it keeps
// no goroutines of its own.
type Client struct {
	tokens  TokenSource
	baseURL string
	hc      *http.Client
	observe Observer
}

// Option configures a Client.
type Option func(*Client)

// Observer is told of every HTTP call the Client makes (for metrics): the endpoint,
// the errcode of the answer (0 ok), or -2 for a transport, HTTP-status or decoding
// failure, and how long the exchange took. A token replay is a second call and is
// reported again. It may be called concurrently and must not block.
type Observer func(ep Endpoint, code int, d time.Duration)

// ObservedFailure is the code an Observer receives for a call that failed without
// a platform errcode (transport error, non-2xx status, undecodable body).
const ObservedFailure = -2

// NewClient returns a Client that takes access tokens from tokens.
func NewClient(tokens TokenSource, opts ...Option) *Client {
	c := &Client{
		tokens:  tokens,
		baseURL: DefaultBaseURL,
		hc:      defaultHTTPClient(),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithBaseURL sets the API origin (scheme://host[:port][/prefix]); a trailing slash
// is ignored. Default DefaultBaseURL.
func WithBaseURL(u string) Option {
	return func(c *Client) { c.baseURL = strings.TrimRight(u, "/") }
}

// WithHTTPClient sets the HTTP client. Default: timeout DefaultTimeout and a clone
// of http.DefaultTransport with MaxIdleConnsPerHost 512.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithObserver sets an Observer told of every HTTP call.
func WithObserver(o Observer) Option {
	return func(c *Client) { c.observe = o }
}

// defaultHTTPClient returns an HTTP client with DefaultTimeout and a transport
// keeping up to 512 idle connections to the one API host.
func defaultHTTPClient() *http.Client {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	tr.MaxIdleConnsPerHost = 512
	return &http.Client{Timeout: DefaultTimeout, Transport: tr}
}
