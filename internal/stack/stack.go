// Package stack runs the whole pipeline in one process: an embedded
// JetStream server, the platform sandbox on loopback, and ingest, enricher
// and shipper running their real Run functions. fulfillctl up, the bench
// and the end-to-end tests are built on it.
package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/enricher"
	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/shipper"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// Options configure a stack.
type Options struct {
	// DataDir holds JetStream's files; empty means a fresh temporary
	// directory removed by Close.
	DataDir string
	// NATSPort and SandboxAddr pick fixed listeners; zero values pick free
	// loopback ports.
	NATSPort    int
	SandboxAddr string
	// Sandbox configures the fake platform (orders, faults, latency).
	Sandbox sandbox.Config
	// Env overrides the services' environment (e.g. SHIP_CONCURRENCY).
	Env map[string]string
	// MaxPayload is the NATS server's max_payload; 0 means embednats'.
	MaxPayload int32
	// NATSToken, or NATSUser and NATSPassword, make NATS require
	// authentication; NATSURL then carries them.
	NATSToken, NATSUser, NATSPassword string
	// Shops, if set, makes a deployment of that many shops: the sandbox
	// serves one app per shop (Sandbox.Apps, or sandbox.DerivedApp k with
	// Sandbox.Orders and Sandbox.Faults each), and the services read a
	// shops file (ShopsFile) naming them ShopID(k), secrets by reference.
	Shops int
	// Push makes every shop push its orders to ingest: the sandbox's apps
	// get ingest's callback URL (on a free port), ingest each app's push
	// Token and EncodingAESKey. The sandbox sends once StartPushes is
	// called.
	Push bool
}

// ShopID is the id of the k-th shop (from 0) of a stack of several shops.
func ShopID(k int) string { return "shop-" + strconv.Itoa(k+1) }

// Stack is a running NATS server and sandbox.
type Stack struct {
	Server     *server.Server
	NATSURL    string
	Sandbox    *sandbox.Sandbox
	SandboxURL string
	DataDir    string

	// ShopsFile is the shops file of a stack of several shops.
	ShopsFile string
	// IngestURL is ingest's HTTP API (with Options.Push).
	IngestURL string

	env     map[string]string
	shopOf  map[string]string // appid → shop id
	apps    []sandbox.App
	httpSrv *http.Server
	tempDir bool
	wg      sync.WaitGroup
}

// Start runs the NATS server and the sandbox.
func Start(o Options) (*Stack, error) {
	st := &Stack{DataDir: o.DataDir}
	if st.DataDir == "" {
		d, err := os.MkdirTemp("", "fulfill-*")
		if err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		st.DataDir, st.tempDir = d, true
	}
	srv, err := embednats.Start(embednats.Options{StoreDir: st.DataDir, Port: o.NATSPort, MaxPayload: o.MaxPayload,
		Token: o.NATSToken, User: o.NATSUser, Password: o.NATSPassword})
	if err != nil {
		st.Close()
		return nil, err
	}
	st.Server, st.NATSURL = srv, srv.ClientURL()
	if u, err := url.Parse(st.NATSURL); err == nil && (o.NATSToken != "" || o.NATSUser != "") {
		u.User = url.User(o.NATSToken)
		if o.NATSUser != "" {
			u.User = url.UserPassword(o.NATSUser, o.NATSPassword)
		}
		st.NATSURL = u.String()
	}

	addr := o.SandboxAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("sandbox listen on %s: %w", addr, err)
	}
	sbCfg := o.Sandbox
	var ingestAddr string
	if o.Push {
		port, err := embednats.FreePort()
		if err != nil {
			st.Close()
			return nil, err
		}
		ingestAddr = "127.0.0.1:" + strconv.Itoa(port)
	}
	if o.Shops > 0 {
		if len(sbCfg.Apps) == 0 {
			for k := range o.Shops {
				a := sandbox.DerivedApp(k)
				a.Orders, a.Faults = sbCfg.Orders, sbCfg.Faults
				sbCfg.Apps = append(sbCfg.Apps, a)
			}
			sbCfg.Orders, sbCfg.Faults = 0, sandbox.FaultMix{}
		}
		if len(sbCfg.Apps) != o.Shops {
			st.Close()
			return nil, fmt.Errorf("stack: %d shops but %d sandbox apps", o.Shops, len(sbCfg.Apps))
		}
		if o.Push {
			for k := range sbCfg.Apps {
				sbCfg.Apps[k].PushURL = "http://" + ingestAddr + "/v1/wechat/push/" + ShopID(k)
			}
		}
	} else if o.Push {
		sbCfg.PushURL = "http://" + ingestAddr + "/v1/wechat/push/" + events.DefaultShop
	}
	st.Sandbox = sandbox.New(sbCfg)
	st.SandboxURL = "http://" + ln.Addr().String()
	st.httpSrv = &http.Server{Handler: st.Sandbox, ReadHeaderTimeout: 5 * time.Second}
	st.wg.Go(func() { _ = st.httpSrv.Serve(ln) })

	appID, secret := o.Sandbox.AppID, o.Sandbox.AppSecret
	if appID == "" {
		appID = sandbox.DefaultAppID
	}
	if secret == "" {
		secret = sandbox.DefaultAppSecret
	}
	vvToken, shops := o.Sandbox.VVToken, o.Sandbox.VVShops
	if vvToken == "" {
		vvToken = sandbox.DefaultVVToken
	}
	if len(shops) == 0 {
		shops = sandbox.DefaultVVShops
	}
	st.env = map[string]string{
		"NATS_URL":             st.NATSURL,
		"ADMIN_ADDR":           "127.0.0.1:0",
		"WECHAT_API_BASE":      st.SandboxURL,
		"WECHAT_APPID":         appID,
		"WECHAT_APPSECRET":     secret,
		"INGEST_SOURCES":       "channels",
		"INGEST_DELIVERY_ID":   sandbox.DefaultDeliveryID,
		"INGEST_POLL_INTERVAL": "1s",
		// A free port: several stacks (and up next to a service of yours)
		// must not fight over :8080.
		"INGEST_HTTP_ADDR":     "127.0.0.1:0",
		"VVTOOL_API_BASE":      st.SandboxURL,
		"VVTOOL_TOKEN":         vvToken,
		"VVTOOL_SHOP_IDS":      strings.Join(shops, ","),
		"SHIP_BACKOFF_INITIAL": "50ms",
		"SHIP_BACKOFF_MAX":     "1s",
		"SHIP_WAIT_DELAY":      "1s",
	}
	if o.Sandbox.DeliveryID != "" {
		st.env["INGEST_DELIVERY_ID"] = o.Sandbox.DeliveryID
	}
	st.shopOf = map[string]string{}
	if o.Push {
		st.env["INGEST_HTTP_ADDR"] = ingestAddr
		st.IngestURL = "http://" + ingestAddr
		if o.Shops == 0 {
			a := st.Sandbox.Apps()[0]
			st.env["WECHAT_PUSH_TOKEN"], st.env["WECHAT_PUSH_AES_KEY"] = a.PushToken, a.PushAESKey
		}
	}
	if o.Shops > 0 {
		if err := st.multiShop(st.Sandbox.Apps()); err != nil {
			st.Close()
			return nil, err
		}
	}
	for k, v := range o.Env {
		st.env[k] = v
	}
	return st, nil
}

// multiShop writes the shops file of the sandbox's apps, one shop each, and
// sets the environment for it: SHOPS_FILE, and each secret the file names.
func (st *Stack) multiShop(apps []sandbox.App) error {
	st.apps = apps
	for _, name := range []string{"WECHAT_APPID", "WECHAT_APPSECRET", "INGEST_DELIVERY_ID", "VVTOOL_TOKEN", "VVTOOL_SHOP_IDS"} {
		delete(st.env, name)
	}
	ids := make([]int, len(apps))
	for k, a := range apps {
		ids[k] = k
		st.shopOf[a.AppID] = ShopID(k)
		st.env[secretVar(k, "WECHAT_SECRET")] = a.AppSecret
		if a.VVToken != "" {
			st.env[secretVar(k, "VV_TOKEN")] = a.VVToken
		}
		if a.PushURL != "" {
			st.env[secretVar(k, "PUSH_TOKEN")], st.env[secretVar(k, "PUSH_AES_KEY")] = a.PushToken, a.PushAESKey
		}
	}
	st.ShopsFile = filepath.Join(st.DataDir, "shops.yaml")
	st.env["SHOPS_FILE"] = st.ShopsFile
	return st.WriteShops(ids...)
}

// secretVar is the environment variable of the k-th shop's secret what.
func secretVar(k int, what string) string {
	return "SHOP_" + strconv.Itoa(k+1) + "_" + what
}

// WriteShops writes the shops file of a stack of several shops with the
// shops k (from 0) only: the services pick it up at their next reload.
func (st *Stack) WriteShops(ks ...int) error {
	var b strings.Builder
	b.WriteString("# Written by the stack: one shop per sandbox app, secrets from the environment.\nshops:\n")
	for _, k := range ks {
		a := st.apps[k]
		delivery := a.DeliveryID
		if delivery == "" {
			delivery = sandbox.DefaultDeliveryID
		}
		fmt.Fprintf(&b, "  - id: %s\n    channels:\n      appid: %s\n      secret_env: %s\n      delivery_id: %s\n",
			ShopID(k), a.AppID, secretVar(k, "WECHAT_SECRET"), delivery)
		if a.PushURL != "" {
			fmt.Fprintf(&b, "      push_token_env: %s\n      push_aes_key_env: %s\n", secretVar(k, "PUSH_TOKEN"), secretVar(k, "PUSH_AES_KEY"))
		}
		if a.VVToken != "" {
			fmt.Fprintf(&b, "    vvtool:\n      token_env: %s\n      shop_ids: [%s]\n", secretVar(k, "VV_TOKEN"), strings.Join(a.VVShops, ", "))
		}
	}
	// Written aside and renamed, so a reload never reads half a file.
	tmp := st.ShopsFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, st.ShopsFile)
}

// ShopOf is the shop of a sandbox app: events.DefaultShop on a stack of one.
func (st *Stack) ShopOf(appID string) string {
	if shop, ok := st.shopOf[appID]; ok {
		return shop
	}
	return events.DefaultShop
}

// Key is the tally key (events.OrderKey) of a scenario order.
func (st *Stack) Key(o sandbox.ScenarioOrder) string {
	return events.OrderKey(st.ShopOf(o.AppID), o.OrderID)
}

// Keys are the tally keys of orders.
func (st *Stack) Keys(orders []sandbox.ScenarioOrder) []string {
	keys := make([]string, len(orders))
	for i, o := range orders {
		keys[i] = st.Key(o)
	}
	return keys
}

// Getenv is the environment of a service of this stack, with extra
// overrides on top (e.g. a shipper replica's ADMIN_ADDR).
func (st *Stack) Getenv(extra map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return st.env[k]
	}
}

// RunFunc is the signature of the services' Run functions.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Services are the stage binaries by name.
var Services = map[string]RunFunc{
	"ingest":   ingest.Run,
	"enricher": enricher.Run,
	"shipper":  shipper.Run,
}

// Group is a set of services running until their context ends.
type Group struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	failed chan struct{} // closed at the first service that fails
	// admins are the services' admin addresses, in the order they were
	// started ("" until one listens); changed is closed and replaced at
	// each news for Admins.
	admins  []Admin
	ended   int
	changed chan struct{}
}

// Admin is where one service of a group serves /healthz, /readyz and
// /metrics.
type Admin struct {
	Service string // ingest, enricher, shipper
	Addr    string // host:port
}

// Failed is closed when a service of the group stopped with an error
// before its context ended.
func (g *Group) Failed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed == nil {
		g.failed = make(chan struct{})
	}
	return g.failed
}

// Go runs service name in the group with the stack's environment plus extra.
func (st *Stack) Go(ctx context.Context, g *Group, name string, logs io.Writer, extra map[string]string) {
	run := Services[name]
	g.mu.Lock()
	i := len(g.admins)
	g.admins = append(g.admins, Admin{Service: name})
	g.mu.Unlock()
	ctx = service.NotifyAdmin(ctx, func(_, addr string) {
		g.news(func() { g.admins[i].Addr = addr })
	})
	g.wg.Go(func() {
		err := run(ctx, []string{name}, st.Getenv(extra), logs, logs)
		if err != nil {
			// A binary's main prints this to stderr; in process it goes to
			// the logs, so a service that ended early says why there.
			line, _ := json.Marshal(map[string]string{"level": "error", "service": name, "error": err.Error(), "message": "service ended"})
			fmt.Fprintf(logs, "%s\n", line)
		}
		g.news(func() {
			g.ended++
			if err == nil {
				return
			}
			g.errs = append(g.errs, err)
			if g.failed == nil {
				g.failed = make(chan struct{})
			}
			if len(g.errs) == 1 {
				close(g.failed)
			}
		})
	})
}

// news changes the group under its lock and wakes Admins.
func (g *Group) news(change func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	change()
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// Admins waits until every service started in the group listens on its
// admin address and returns the addresses, in the order the services were
// started; it fails if a service ended first or ctx ends.
func (g *Group) Admins(ctx context.Context) ([]Admin, error) {
	for {
		g.mu.Lock()
		if g.ended > 0 {
			err := errors.Join(g.errs...)
			g.mu.Unlock()
			return nil, fmt.Errorf("a service ended before every admin server listened: %w", err)
		}
		done := true
		for _, a := range g.admins {
			done = done && a.Addr != ""
		}
		if done {
			out := append([]Admin(nil), g.admins...)
			g.mu.Unlock()
			return out, nil
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

// Wait waits for every service and returns their errors.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.errs...)
}

// RunPipeline starts one ingest, one enricher and shippers shipper replicas.
func (st *Stack) RunPipeline(ctx context.Context, logs io.Writer, shippers int) *Group {
	g := &Group{}
	st.Go(ctx, g, "ingest", logs, nil)
	st.Go(ctx, g, "enricher", logs, nil)
	for range max(shippers, 1) {
		st.Go(ctx, g, "shipper", logs, nil)
	}
	return g
}

// Close stops the sandbox and the NATS server and removes a temporary data
// directory.
func (st *Stack) Close() {
	if st.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = st.httpSrv.Shutdown(ctx)
		cancel()
		st.wg.Wait()
	}
	if st.Server != nil {
		st.Server.Shutdown()
		st.Server.WaitForShutdown()
	}
	if st.tempDir {
		_ = os.RemoveAll(st.DataDir)
	}
}
