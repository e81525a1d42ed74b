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
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, &transportError{op: "send request", err: redactURLError(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return resp.StatusCode, nil, &transportError{op: fmt.Sprintf("read body (HTTP status %d)", resp.StatusCode), err: redactURLError(err)}
	}
	return resp.StatusCode, raw, nil
}
