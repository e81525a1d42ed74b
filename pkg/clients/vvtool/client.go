package vvtool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// DefaultBaseURL is the vv-tool API host.
const DefaultBaseURL = "http://api.vv-tool.com"

// DetailPath is the path of the logistics order detail endpoint.
const DetailPath = "/tool/erps/detail"

// MaxRequestsPerSecond is the platform's rate limit per account.
const MaxRequestsPerSecond = 10

// DefaultTimeout bounds one HTTP call of the default HTTP client (the platform
// takes more than a second to answer a page).
const DefaultTimeout = 30 * time.Second

// Client calls the vv-tool API with one account's token. It is safe for
// concurrent use. It does not retry: Classify tells the caller whether to.
type Client struct {
	token    string
	redactor redactor
	baseURL  string
	hc       *http.Client
	limiter  *Limiter
	observe  Observer
}

// NewClient returns a Client sending token as "Authorization: Bearer <token>".
func NewClient(token string, opts ...Option) *Client {
	c := &Client{
		token:    token,
		redactor: newRedactor(token),
		baseURL:  DefaultBaseURL,
		hc:       defaultHTTPClient(),
		limiter:  NewLimiter(MaxRequestsPerSecond, time.Second),
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

func defaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * MaxRequestsPerSecond
	return &http.Client{Timeout: DefaultTimeout, Transport: tr}
}

// Detail fetches one page of logistics orders (POST /tool/erps/detail), after
// waiting for the Limiter. A non-zero code is an *APIError; see Classify for the
// other errors.
func (c *Client) Detail(ctx context.Context, req DetailRequest) (*DetailResponse, error) {
	resp, err := c.detail(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("vvtool: detail shop %s page %d: %w", c.redactor.redact(req.ShopID), max(req.PageNo, 1), err)
	}
	return resp, nil
}

func (c *Client) detail(ctx context.Context, req DetailRequest) (*DetailResponse, error) {
	body, contentType, err := req.encode()
	if err != nil {
		return nil, err
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+DetailPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidRequest, c.redactor.redact(err.Error()))
	}
	httpReq.Header.Set("Content-Type", contentType)
	httpReq.Header.Set("Accept", "application/json")
	httpReq.Header.Set("Authorization", "Bearer "+c.token)

	done, err := c.limiter.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("waiting for the rate limiter: %w", err)
	}
	start := time.Now()
	status, raw, err := c.roundTrip(httpReq)
	done()
	if err != nil {
		c.report(CodeFailure, start)
		return nil, err
	}
	resp, err := c.decode(status, raw)
	code := CodeFailure
	if ae := (*APIError)(nil); errors.As(err, &ae) && ae.Code != 0 {
		code = ae.Code
	} else if err == nil {
		code = resp.Code
	}
	c.report(code, start)
	return resp, err
}

// roundTrip sends req and reads at most MaxResponseBytes+1 of the body.
func (c *Client) roundTrip(req *http.Request) (status int, body []byte, err error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, newTransportError(err, c.redactor.redact)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return 0, nil, newTransportError(fmt.Errorf("read body: %w", err), c.redactor.redact)
	}
	if len(body) > MaxResponseBytes {
		return 0, nil, fmt.Errorf("%w: body exceeds %d bytes (HTTP %d)", ErrBadResponse, MaxResponseBytes, resp.StatusCode)
	}
	return resp.StatusCode, body, nil
}

// decode turns a response into a DetailResponse or an error.
func (c *Client) decode(status int, body []byte) (*DetailResponse, error) {
	// Nothing decoded from the answer (a msg, a shipping field) may carry
	// the token, even if the server echoes it.
	body = []byte(c.redactor.redact(string(body)))
	if status >= 200 && status < 300 {
		return decodeDetail(body, status, c.redactor)
	}
	// Not 2xx: a platform code in the body says more than the status.
	if env, err := decodeEnvelope(body); err == nil && *env.Code != CodeOK {
		return nil, &APIError{Code: int(*env.Code), Msg: snippet(c.redactor.redact(string(env.Msg))),
			HTTPStatus: status, Data: errorData(env.Data, c.redactor)}
	}
	return nil, &APIError{HTTPStatus: status, Msg: snippet(c.redactor.redact(string(bytes.TrimSpace(body))))}
}

func (c *Client) report(code int, start time.Time) {
	if c.observe != nil {
		c.observe(code, time.Since(start))
	}
}

// DetailAll walks every page of req, from req.PageNo (default 1), calling fn for
// each shipping in order. It stops after a page with fewer than req.PageSize items
// (DefaultPageSize is sent when req.PageSize is 0), at the first error of Detail
// or fn (returned wrapped), or when a page repeats the tids of the previous one (a
// server ignoring page_no; ErrBadResponse), so that it never loops on paid calls.
func (c *Client) DetailAll(ctx context.Context, req DetailRequest, fn func(Shipping) error) error {
	if req.PageSize <= 0 {
		req.PageSize = DefaultPageSize
	}
	if req.PageNo <= 0 {
		req.PageNo = 1
	}
	var prev []ID
	for {
		resp, err := c.Detail(ctx, req)
		if err != nil {
			return err
		}
		// Compare pages by tid; without tids (not in Fields) the check is off.
		tids := make([]ID, 0, len(resp.Data))
		for _, s := range resp.Data {
			if s.Tid == "" {
				tids = nil
				break
			}
			tids = append(tids, s.Tid)
		}
		if len(tids) > 0 && slices.Equal(tids, prev) {
			return fmt.Errorf("vvtool: detail shop %s page %d: %w: page repeats page %d (page_no ignored?)",
				c.redactor.redact(req.ShopID), req.PageNo, ErrBadResponse, req.PageNo-1)
		}
		for _, s := range resp.Data {
			if err := fn(s); err != nil {
				return fmt.Errorf("vvtool: detail shop %s page %d: %w", c.redactor.redact(req.ShopID), req.PageNo, err)
			}
		}
		if len(resp.Data) < req.PageSize {
			return nil
		}
		prev = tids
		req.PageNo++
	}
}
