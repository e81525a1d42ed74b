package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

func serveSandbox(ctx context.Context, e Env, args []string) error {
	fs := newFlags(e, "sandbox", "[--addr A] [--orders N] [--faults default|none] [--seed S] [--latency D] [--state FILE]")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	orders := fs.Int("orders", 500, "orders awaiting shipment")
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("sandbox listen on %s: %w", *addr, err)
	}
	cfg := sandbox.Config{Seed: *seed, Orders: *orders, Faults: mix, Latency: *latency}
	if err := applySandboxState(*state, &cfg, time.Now()); err != nil {
		ln.Close()
		return err
	}
	sb := sandbox.New(cfg)
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(e.Stdout, "sandbox serving %d orders (faults %s) on http://%s; what it saw: GET http://%s%s\n", *orders, *faults, ln.Addr(), ln.Addr(), sandbox.StatsPath)
	if *state == "" {
		fmt.Fprintln(e.Stdout, "  orders are dated up to 23 h before now: a restarted sandbox dates them anew (use --state FILE to keep them and date extra orders after ingest's checkpoint)")
	}
	fmt.Fprintf(e.Stdout, "  WECHAT_API_BASE=http://%s WECHAT_APPID=%s WECHAT_APPSECRET=%s\n", ln.Addr(), sandbox.DefaultAppID, sandbox.DefaultAppSecret)
	fmt.Fprintf(e.Stdout, "  VVTOOL_API_BASE=http://%s VVTOOL_TOKEN=%s VVTOOL_SHOP_IDS=%s,%s INGEST_DELIVERY_ID=%s\n",
		ln.Addr(), sandbox.DefaultVVToken, sandbox.DefaultVVShops[0], sandbox.DefaultVVShops[1], sandbox.DefaultDeliveryID)
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
