package service

import (
	"net/http"
	"time"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
)

// WeChat builds the platform client the configuration asks for: a fixed
// token, or stable_token with appid/secret; every call observed in metrics.
func (b *Base) WeChat() *wechat.Client {
	c := b.Cfg
	hc := &http.Client{Timeout: 10 * time.Second, Transport: Transport()}
	var ts wechat.TokenSource
	if c.WeChatAccessToken != "" {
		ts = wechat.StaticToken(c.WeChatAccessToken)
	} else {
		ts = wechat.NewStableTokenSource(c.WeChatAppID, c.WeChatAppSecret,
			wechat.WithTokenBaseURL(c.WeChatAPIBase), wechat.WithTokenHTTPClient(hc))
	}
	return wechat.NewClient(ts,
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
