package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	gojson "github.com/goccy/go-json"
)

// decoder turns one HTTP answer (status and body) into the caller's result or an
// error (*APIError, ErrBadResponse).
type decoder func(status int, raw []byte) error

// call performs one business call: token, POST, decode; on a rejected token it
// refreshes once and replays once.
func (c *Client) call(ctx context.Context, ep Endpoint, in any, decode decoder) error {
	if c.tokens == nil {
		return fmt.Errorf("wechat %s: client has no TokenSource", ep)
	}
	body, err := gojson.Marshal(in)
	if err != nil {
		return fmt.Errorf("wechat %s: encode request: %w", ep, err)
	}
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return fmt.Errorf("wechat %s: %w", ep, &tokenError{err})
	}
	err = c.attempt(ctx, ep, tok, body, decode)
	if err == nil {
		return nil
	}
	var ae *APIError
	if !errors.As(err, &ae) || !isTokenCode(ae.Code) {
		return scrub(err, tok)
	}
	fresh, rerr := c.tokens.Refresh(ctx, tok)
	if rerr != nil {
		return scrub(fmt.Errorf("%w (token refresh failed: %w)", err, rerr), tok)
	}
	err = c.attempt(ctx, ep, fresh, body, decode)
	return scrub(scrub(err, fresh), tok)
}

// attempt is one HTTP call of a business endpoint with the given token.
func (c *Client) attempt(ctx context.Context, ep Endpoint, tok string, body []byte, decode decoder) error {
	u := c.baseURL + ep.Path() + "?access_token=" + url.QueryEscape(tok)
	start := time.Now()
	status, raw, err := exchange(ctx, c.hc, u, body)
	if err != nil {
		c.report(ep, ObservedFailure, time.Since(start))
		return fmt.Errorf("wechat %s: %w", ep, err)
	}
	d := time.Since(start)
	// A platform (or a proxy before it) may echo the URL in an errmsg or
	// an error page: nothing decoded from the answer may carry the token.
	raw = scrubBody(raw, tok)
	err = decode(status, raw)
	c.report(ep, observedCode(err), d)
	return err
}

// report tells the observer, if any, of one HTTP call.
func (c *Client) report(ep Endpoint, code int, d time.Duration) {
	if c.observe != nil {
		c.observe(ep, code, d)
	}
}

// observedCode is the code an Observer is given for the outcome of a decoded call.
func observedCode(err error) int {
	if err == nil {
		return 0
	}
	if code := Code(err); code != 0 {
		return code
	}
	return ObservedFailure
}
