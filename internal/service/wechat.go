package service

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
)

// Transport is an HTTP transport sized for many concurrent platform calls:
// idle connections per host at least the shipper's concurrency, so
// connections are reused instead of re-dialled under load.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// countRefusals counts the refreshes that end without a new token and
// without a failed stable_token call of their own (which ObserveToken
// counts): a fixed token the platform rejected, or force_refresh throttled.
type countRefusals struct {
	wechat.TokenSource
	m    *Metrics
	shop string
}

// Refresh refreshes through the wrapped source, counting a refusal.
func (c countRefusals) Refresh(ctx context.Context, stale string) (string, error) {
	tok, err := c.TokenSource.Refresh(ctx, stale)
	if errors.Is(err, wechat.ErrStaticToken) || errors.Is(err, wechat.ErrRefreshThrottled) {
		c.m.TokenRefreshes.WithLabelValues(TokenRefused, c.m.Shop(c.shop)).Inc()
	}
	return tok, err
}
