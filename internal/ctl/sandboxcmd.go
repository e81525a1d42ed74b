package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

func serveSandbox(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "sandbox", "[--addr A] [--orders N] [--shops N] [--faults default|none] [--seed S] [--latency D] [--state FILE]")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	orders := fs.Int("orders", 500, "orders awaiting shipment (per shop)")
	shops := fs.Int("shops", 1, fmt.Sprintf("shops (WeChat Channels apps) to serve, 1 to %d: the first with the default appid, the others with derived appids, secrets and vv-tool accounts (printed)", maxSandboxShops))
	faults := fs.String("faults", "default", "fault mix: default or none")
	seed := fs.Int64("seed", 1, "scenario seed")
	latency := fs.Duration("latency", 0, "latency added to every business call")
	state := fs.String("state", "", "remember the scenario's dates here: restarted with it, the sandbox serves the same orders at the same times (a poller sees nothing new) and dates extra orders at its start, after the poller's checkpoint")
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
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("sandbox: %w", err)
	case <-ctx.Done():
	}
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
	return nil
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
