package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

func serveSandbox(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "sandbox", "[--addr A] [--orders N] [--shops N] [--faults default|none] [--seed S] [--latency D] [--state FILE]\n"+
		"          [--push-url URL [--push-rate R] [--push-duplicates F] [--push-reorder F] [--cancel N] [--forged N] [--push-time-scale F]]")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	orders := fs.Int("orders", 500, "orders awaiting shipment (per shop)")
	shops := fs.Int("shops", 1, fmt.Sprintf("shops (WeChat Channels apps) to serve, 1 to %d: the first with the default appid, the others with derived appids, secrets and vv-tool accounts (printed)", maxSandboxShops))
	faults := fs.String("faults", "default", "fault mix: default or none")
	seed := fs.Int64("seed", 1, "scenario seed")
	latency := fs.Duration("latency", 0, "latency added to every business call")
	state := fs.String("state", "", "remember the scenario's dates here: restarted with it, the sandbox serves the same orders at the same times (a poller sees nothing new) and dates extra orders at its start, after the poller's checkpoint")
	var po pushOptions
	po.flags(fs)
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	mix, err := faultMix(*faults)
	if err != nil {
		return err
	}
	if *shops < 1 || *shops > maxSandboxShops {
		return fmt.Errorf("%w: --shops must be 1 to %d", ErrUsage, maxSandboxShops)
	}
	if err := po.check(*shops); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("sandbox listen on %s: %w", *addr, err)
	}
	cfg := sandbox.Config{Seed: *seed, Orders: *orders, Faults: mix, Latency: *latency}
	if err := applySandboxState(*state, &cfg, time.Now()); err != nil {
		ln.Close()
		return err
	}
	if *shops > 1 {
		cfg = withShops(cfg, *shops)
	}
	cfg = po.apply(cfg)
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	sb := sandbox.New(cfg)
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 5 * time.Second}
	if *shops == 1 {
		fmt.Fprintf(e.Stdout, "sandbox serving %d orders (faults %s) on http://%s; what it saw: GET http://%s%s\n", *orders, *faults, ln.Addr(), ln.Addr(), sandbox.StatsPath)
	} else {
		fmt.Fprintf(e.Stdout, "sandbox serving %d shops, %d orders each (faults %s) on http://%s; what it saw: GET http://%s%s\n", *shops, *orders, *faults, ln.Addr(), ln.Addr(), sandbox.StatsPath)
	}
	if *state == "" {
		fmt.Fprintln(e.Stdout, "  orders are dated up to 23 h before now: a restarted sandbox dates them anew (use --state FILE to keep them and date extra orders after ingest's checkpoint)")
	}
	if *shops == 1 {
		fmt.Fprintf(e.Stdout, "  WECHAT_API_BASE=http://%s WECHAT_APPID=%s WECHAT_APPSECRET=%s\n", ln.Addr(), sandbox.DefaultAppID, sandbox.DefaultAppSecret)
		fmt.Fprintf(e.Stdout, "  VVTOOL_API_BASE=http://%s VVTOOL_TOKEN=%s VVTOOL_SHOP_IDS=%s,%s INGEST_DELIVERY_ID=%s\n",
			ln.Addr(), sandbox.DefaultVVToken, sandbox.DefaultVVShops[0], sandbox.DefaultVVShops[1], sandbox.DefaultDeliveryID)
	} else {
		fmt.Fprintf(e.Stdout, "  WECHAT_API_BASE=http://%s VVTOOL_API_BASE=http://%s INGEST_DELIVERY_ID=%s; per shop:\n", ln.Addr(), ln.Addr(), sandbox.DefaultDeliveryID)
		for k, a := range sb.Apps() {
			fmt.Fprintf(e.Stdout, "  shop %d: appid %s secret %s, %d orders; vv-tool token %s shops %s\n",
				k+1, a.AppID, a.AppSecret, a.Orders, a.VVToken, strings.Join(a.VVShops, ","))
		}
	}
	po.describe(e.Stdout, sb.Apps())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if err := sb.StartPushes(ctx); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer sb.StopPushes()
	select {
	case err := <-errc:
		return fmt.Errorf("sandbox: %w", err)
	case <-ctx.Done():
	}
	sb.StopPushes()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("sandbox shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sandbox: %w", err)
	}
	st := sb.Stats()
	fmt.Fprintf(e.Stdout, "sandbox: %d successful delivery/send calls; mistakes the platform would punish: %s\n", st.SuccessfulSends, st.Mistakes())
	if po.url != "" {
		p := st.Pushes
		fmt.Fprintf(e.Stdout, "sandbox: pushes: %d sent, %d answered success, %d retried, %d given up, %d orders cancelled; forged: %d sent, %d refused, %d accepted\n",
			p.Sent, p.Succeeded, p.Retried, p.GivenUp, p.Cancelled, p.ForgedSent, p.ForgedRefused, p.ForgedAccepted)
	}
	return nil
}

// pushOptions are the push flags of fulfillctl sandbox.
type pushOptions struct {
	url                 string
	rate, scale         float64
	duplicates, reorder float64
	cancel, forged      int
}

// shopPlaceholder in --push-url is replaced by each shop's name.
const shopPlaceholder = "{shop}"

func (po *pushOptions) flags(fs *flagSet) {
	fs.StringVar(&po.url, "push-url", "", "push each order's WeChat Channels messages (channels_ec_order_pay, signed and encrypted with the shop's push token and EncodingAESKey, printed) to this callback URL, retried on WeChat's schedule (0s, 0s, 10s, 1m, 5m, 30m, 1h, 1h, 1h: 10 pushes in 3.6 h) until answered success; "+shopPlaceholder+" becomes shop-1, shop-2… (required with --shops > 1), e.g. http://127.0.0.1:8080/v1/wechat/push/"+shopPlaceholder+" (one shop configured by environment: …/push/default); empty: no pushes")
	fs.Float64Var(&po.rate, "push-rate", 50, "pay pushes per second per shop, in the orders' update_time order; 0: all at once")
	fs.Float64Var(&po.duplicates, "push-duplicates", 0, "share of the orders (0 to 1) whose pay push is delivered twice")
	fs.Float64Var(&po.reorder, "push-reorder", 0, "share of the orders (0 to 1) whose channels_ec_order_wait_shipping push comes before the pay push, and again after it")
	fs.IntVar(&po.cancel, "cancel", 0, "orders per shop the buyer cancels right after their pay push was answered: status 250, delivery/send refused (101100), then a channels_ec_order_cancel push")
	fs.IntVar(&po.forged, "forged", 0, "forged pushes per shop (bad msg_signature, wrong appid, plaintext body in turn): the receiver must refuse them")
	fs.Float64Var(&po.scale, "push-time-scale", 1, "scale of the retry schedule (0.01: 3.6 h in about 2 min)")
}

// check refuses push flags without --push-url, and one URL for several shops.
func (po *pushOptions) check(shops int) error {
	switch {
	case po.url == "" && (po.duplicates != 0 || po.reorder != 0 || po.cancel != 0 || po.forged != 0):
		return fmt.Errorf("%w: --push-duplicates, --push-reorder, --cancel and --forged need --push-url", ErrUsage)
	case po.url != "" && shops > 1 && !strings.Contains(po.url, shopPlaceholder):
		return fmt.Errorf("%w: --push-url needs %s with --shops > 1 (each shop has its own callback URL)", ErrUsage, shopPlaceholder)
	case po.scale <= 0:
		return fmt.Errorf("%w: --push-time-scale must be above 0", ErrUsage)
	}
	return nil
}

// apply sets the push settings of cfg (one app, or cfg.Apps).
func (po *pushOptions) apply(cfg sandbox.Config) sandbox.Config {
	if po.url == "" {
		return cfg
	}
	if len(cfg.Apps) == 0 {
		cfg.PushURL = strings.ReplaceAll(po.url, shopPlaceholder, "shop-1")
	}
	for k := range cfg.Apps {
		cfg.Apps[k].PushURL = strings.ReplaceAll(po.url, shopPlaceholder, "shop-"+strconv.Itoa(k+1))
	}
	cfg.PushRate, cfg.PushTimeScale = po.rate, po.scale
	cfg.PushDuplicates, cfg.PushReorder = po.duplicates, po.reorder
	cfg.CancelBeforeShipping, cfg.ForgedPushes = po.cancel, po.forged
	return cfg
}

// describe prints where each shop's pushes go and the keys to give ingest.
func (po *pushOptions) describe(w io.Writer, apps []sandbox.App) {
	if po.url == "" {
		return
	}
	if len(apps) == 1 {
		fmt.Fprintf(w, "  pushes to %s: WECHAT_PUSH_TOKEN=%s WECHAT_PUSH_AES_KEY=%s\n", apps[0].PushURL, apps[0].PushToken, apps[0].PushAESKey)
		return
	}
	for k, a := range apps {
		fmt.Fprintf(w, "  shop %d pushes to %s: push token %s, EncodingAESKey %s\n", k+1, a.PushURL, a.PushToken, a.PushAESKey)
	}
}

// maxSandboxShops bounds --shops: each shop holds --orders orders in memory.
const maxSandboxShops = 10_000

// withShops is cfg serving n shops (Channels apps): sandbox.DerivedApp(0…n-1),
// app 0 as a single-shop sandbox's, each with cfg's Orders and Faults.
func withShops(cfg sandbox.Config, n int) sandbox.Config {
	cfg.Apps = make([]sandbox.App, n)
	for k := range cfg.Apps {
		cfg.Apps[k] = sandbox.DerivedApp(k)
		cfg.Apps[k].Orders, cfg.Apps[k].Faults = cfg.Orders, cfg.Faults
	}
	cfg.Orders, cfg.Faults = 0, sandbox.FaultMix{}
	return cfg
}
