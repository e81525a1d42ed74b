package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/shops"
	"github.com/fulfill/pipeline/internal/tracing"
	"github.com/fulfill/pipeline/pkg/clients/vvtool"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

// ErrUnknownShop marks a shop that is not in the registry (any more).
var ErrUnknownShop = errors.New("shop not in the shops registry")

// ErrNoAccount marks a shop without an account on the platform asked for.
var ErrNoAccount = errors.New("shop has no account on this platform")

// Shops is the registry of the shops a service serves, kept current: the
// shops file's (re-read on SIGHUP and when it changes; a refused file keeps
// the last good registry), or the one shop the environment defines. It also
// keeps one platform client per account across reloads, so each account's
// token cache and single-flight refresh outlive a reload that did not touch
// it.
type Shops struct {
	watcher *shops.Watcher // nil without SHOPS_FILE
	static  *shops.Registry
	cfg     *config.Config
	metrics *Metrics
	log     zerolog.Logger
	// hc is shared by every account's client: they call the same hosts,
	// and one pool of connections serves them all.
	hc *http.Client
	// tracer, if on, makes each platform call a span (Run sets it).
	tracer *tracing.Tracer

	mu      sync.Mutex
	subs    []func(*shops.Registry)
	wechats map[string]*wechatClient // by shop id
	vvtools map[string]*vvtoolClient
}

type wechatClient struct {
	account shops.Channels
	client  *wechat.Client
}

type vvtoolClient struct {
	token  string
	client *vvtool.Client
}

// OpenShops reads the registry the configuration names; a bad shops file is
// refused with its line and field.
func OpenShops(cfg *config.Config, getenv func(string) string, m *Metrics, log zerolog.Logger) (*Shops, error) {
	s := &Shops{cfg: cfg, metrics: m, log: log, wechats: map[string]*wechatClient{}, vvtools: map[string]*vvtoolClient{},
		hc: &http.Client{Timeout: 10 * time.Second, Transport: Transport()}}
	if cfg.ShopsFile == "" {
		reg, err := EnvShop(cfg)
		if err != nil {
			return nil, err
		}
		s.static = reg
		return s, nil
	}
	w, err := shops.NewWatcher(cfg.ShopsFile, getenv, log)
	if err != nil {
		return nil, fmt.Errorf("SHOPS_FILE: %w", err)
	}
	s.watcher = w
	return s, nil
}

// EnvShop is the one shop, events.DefaultShop, of a configuration without
// SHOPS_FILE: its accounts are the WECHAT_*, VVTOOL_* and
// INGEST_DELIVERY_ID variables.
func EnvShop(c *config.Config) (*shops.Registry, error) {
	s := shops.Shop{ID: events.DefaultShop}
	if c.WeChatAccessToken != "" || c.WeChatAppID != "" {
		ch := &shops.Channels{AppID: c.WeChatAppID, DeliveryID: c.IngestDeliveryID}
		// A fixed token wins over appid/secret, as it always has.
		if c.WeChatAccessToken != "" {
			ch.AccessToken = c.WeChatAccessToken
		} else {
			ch.Secret = c.WeChatAppSecret
		}
		ch.PushToken, ch.PushAESKey, ch.PushAESKeyPrevious = c.WeChatPushToken, c.WeChatPushAESKey, c.WeChatPushAESKeyPrevious
		s.Channels = ch
	}
	if c.VVToolToken != "" {
		s.VVTool = &shops.VVTool{Token: c.VVToolToken, ShopIDs: c.VVToolShopIDs}
	}
	return shops.Single(s)
}

// FromFile reports whether the shops come from SHOPS_FILE.
func (s *Shops) FromFile() bool { return s.watcher != nil }

// Current is the registry in force.
func (s *Shops) Current() *shops.Registry {
	if s.watcher != nil {
		return s.watcher.Current()
	}
	return s.static
}

// OnChange has fn called with each new registry, after Current returns it,
// from one goroutine (Run's), in order.
func (s *Shops) OnChange(fn func(*shops.Registry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
}

// Start keeps the registry current until ctx ends, and returns a func that
// waits for that to stop: SIGHUP re-reads the shops file at once (caught
// from the moment Start returns), and it is checked for changes every
// SHOPS_RELOAD_INTERVAL. Without a shops file there is nothing to do.
func (s *Shops) Start(ctx context.Context) (wait func()) {
	if s.watcher == nil {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	})
	wg.Go(func() { s.watcher.Run(ctx, reload, s.cfg.ShopsReloadInterval) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case reg := <-s.watcher.Changes():
				s.mu.Lock()
				subs := slices.Clone(s.subs)
				s.mu.Unlock()
				for _, fn := range subs {
					fn(reg)
				}
			}
		}
	})
	return wg.Wait
}

// Shop is the shop id's entry in the current registry.
func (s *Shops) Shop(id string) (*shops.Shop, error) {
	sh, ok := s.Current().Shop(id)
	if !ok {
		return nil, fmt.Errorf("shop %s: %w", id, ErrUnknownShop)
	}
	return sh, nil
}

// WeChat is the Channels client of shop id, built once per account and
// built again when the account's credentials change.
func (s *Shops) WeChat(id string) (*wechat.Client, error) {
	sh, err := s.Shop(id)
	if err != nil {
		return nil, err
	}
	if sh.Channels == nil {
		return nil, fmt.Errorf("shop %s has no WeChat Channels account: %w", id, ErrNoAccount)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.wechats[id]; ok && c.account.AppID == sh.Channels.AppID && c.account.Secret == sh.Channels.Secret &&
		c.account.AccessToken == sh.Channels.AccessToken {
		return c.client, nil
	}
	s.metrics.ExportTokenResults(id)
	c := newWeChat(s.cfg.WeChatAPIBase, s.httpClient(id), sh.Channels, id, s.metrics)
	s.wechats[id] = &wechatClient{account: *sh.Channels, client: c}
	return c, nil
}

// VVTool is the vv-tool client of shop id, built once per token; each has
// its own 10 requests/s limit, as vv-tool counts per account.
func (s *Shops) VVTool(id string) (*vvtool.Client, error) {
	sh, err := s.Shop(id)
	if err != nil {
		return nil, err
	}
	if sh.VVTool == nil {
		return nil, fmt.Errorf("shop %s has no vv-tool account: %w", id, ErrNoAccount)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.vvtools[id]; ok && c.token == sh.VVTool.Token {
		return c.client, nil
	}
	c := vvtool.NewClient(sh.VVTool.Token, vvtool.WithBaseURL(s.cfg.VVToolAPIBase),
		vvtool.WithHTTPClient(s.httpClient(id)),
		vvtool.WithObserver(func(code int, d time.Duration) { s.metrics.ObserveAPI(id, "vvtool/detail", code, d) }))
	s.vvtools[id] = &vvtoolClient{token: sh.VVTool.Token, client: c}
	return c, nil
}

// httpClient is the HTTP client of shop's platform clients: the shared one,
// or with tracing on one whose calls are spans naming the shop (over the
// same connections).
func (s *Shops) httpClient(shop string) *http.Client {
	if !s.tracer.On() {
		return s.hc
	}
	return &http.Client{Timeout: s.hc.Timeout, Transport: s.tracer.Transport(s.hc.Transport, shop)}
}

// newWeChat is the platform client of shop's Channels account: a fixed
// token, or stable_token with appid and secret; every call observed in
// metrics, stable_token's too, and every token refresh counted by result.
func newWeChat(base string, hc *http.Client, acct *shops.Channels, shop string, m *Metrics) *wechat.Client {
	var ts wechat.TokenSource
	if acct.AccessToken != "" {
		ts = wechat.StaticToken(acct.AccessToken)
	} else {
		ts = wechat.NewStableTokenSource(acct.AppID, acct.Secret,
			wechat.WithTokenBaseURL(base), wechat.WithTokenHTTPClient(hc), wechat.WithTokenObserver(m.ObserveToken(shop)))
	}
	return wechat.NewClient(countRefusals{ts, m, shop}, wechat.WithBaseURL(base), wechat.WithHTTPClient(hc),
		wechat.WithObserver(func(ep wechat.Endpoint, code int, d time.Duration) { m.ObserveAPI(shop, string(ep), code, d) }))
}
