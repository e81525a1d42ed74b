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
	fs := newFlags(e, "sandbox", "[--addr A] [--orders N] [--faults default|none] [--seed S]")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	orders := fs.Int("orders", 500, "orders awaiting shipment")
	faults := fs.String("faults", "default", "fault mix: default or none")
	seed := fs.Int64("seed", 1, "scenario seed")
	latency := fs.Duration("latency", 0, "latency added to every business call")
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
	sb := sandbox.New(sandbox.Config{Seed: *seed, Orders: *orders, Faults: mix, Latency: *latency})
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(e.Stdout, "sandbox serving %d orders (faults %s) on http://%s\n", *orders, *faults, ln.Addr())
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
	return nil
}
