package service

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
)

// WeChat builds the platform client the configuration asks for: a fixed
// token, or stable_token with appid/secret; every call observed in metrics,
// stable_token's too, and every token refresh counted by result.
func (b *Base) WeChat() *wechat.Client {
	c := b.Cfg
	hc := &http.Client{Timeout: 10 * time.Second, Transport: Transport()}
	var ts wechat.TokenSource
	if c.WeChatAccessToken != "" {
		ts = wechat.StaticToken(c.WeChatAccessToken)
	} else {
		ts = wechat.NewStableTokenSource(c.WeChatAppID, c.WeChatAppSecret,
			wechat.WithTokenBaseURL(c.WeChatAPIBase), wechat.WithTokenHTTPClient(hc),
			wechat.WithTokenObserver(b.Metrics.ObserveToken))
	}
	return wechat.NewClient(countRefusals{ts, b.Metrics},
		wechat.WithBaseURL(c.WeChatAPIBase),
		wechat.WithHTTPClient(hc),
		wechat.WithObserver(func(ep wechat.Endpoint, code int, d time.Duration) {
			b.Metrics.ObserveAPI(string(ep), code, d)
		}),
	)
}

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
	m *Metrics
}

// Refresh refreshes through the wrapped source, counting a refusal.
func (c countRefusals) Refresh(ctx context.Context, stale string) (string, error) {
	tok, err := c.TokenSource.Refresh(ctx, stale)
	if errors.Is(err, wechat.ErrStaticToken) || errors.Is(err, wechat.ErrRefreshThrottled) {
		c.m.TokenRefreshes.WithLabelValues(TokenRefused).Inc()
	}
	return tok, err
}
