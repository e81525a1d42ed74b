package wechat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// MaxResponseBytes is the most of a response body that is read (4 MiB); a longer
// body is an ErrBadResponse.
const MaxResponseBytes = 4 << 20

// exchange POSTs body as JSON to rawURL and returns the status and the body, read
// up to MaxResponseBytes+1 bytes. Errors are *transportError with any URL redacted.
func exchange(ctx context.Context, hc *http.Client, rawURL string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		// A malformed base URL: a configuration error, not a network failure, so
		// the cause is kept out of the chain (and its URL redacted).
		return 0, nil, fmt.Errorf("build request: %s", redactURLError(err).Error())
	}
	if hc.Jar == nil {
		// Nothing writes to a request's headers on its way out but a
		// cookie jar: every request can carry the same two, rather than
		// a map of its own (a few allocations a call).
		req.Header = jsonHeader
	} else {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, &transportError{op: "send request", err: redactURLError(err)}
	}
	defer resp.Body.Close()
	raw, err := readBody(resp)
	if err != nil {
		return resp.StatusCode, nil, &transportError{op: fmt.Sprintf("read body (HTTP status %d)", resp.StatusCode), err: redactURLError(err)}
	}
	return resp.StatusCode, raw, nil
}

// jsonHeader is the header of every request, shared: see exchange.
var jsonHeader = http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}

// readBody reads the body of resp, up to MaxResponseBytes+1 bytes: into one
// buffer of its length when the answer states one (the platforms' and the
// sandbox's do), rather than one io.ReadAll grows several times.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= MaxResponseBytes {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
}
