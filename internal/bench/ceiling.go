package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/procfs"

	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// The ceiling's shape: the calls the platforms force per order, and how many
// goroutines a hop makes them on (the shipper's default SHIP_CONCURRENCY).
const (
	ceilingWorkers = 32
	ceilingBatch   = 100 // batchGetOrder's limit
)

// HopsFigures are one in-process three-hop measurement: the raw limit or the
// platform-inclusive ceiling. Everything runs in the bench process.
type HopsFigures struct {
	Orders       int
	OrdersPerSec float64
	// CPUPerOrder is the bench process's CPU (NATS server, sandbox, hops and
	// clients) per order.
	CPUPerOrder time.Duration
	// NATSMsgsPerOrder is messages in and out of the NATS server per order,
	// as the server counts them.
	NATSMsgsPerOrder float64
	// SyscallsPerOrder and CtxSwitchesPerOrder are the read/write system
	// calls and the context switches of every process of the phase per
	// order, counted as the pipeline's processes are (usage); NaN when
	// /proc could not be read.
	SyscallsPerOrder, CtxSwitchesPerOrder float64
	// HopsCPUPerOrder is the hops' own process's part of CPUPerOrder when
	// they ran apart from the NATS server and the sandbox (ceilingApart);
	// 0 when they ran in the bench process.
	HopsCPUPerOrder time.Duration
	// CallsPerOrder is what the sandbox answered, per endpoint, per order
	// (ceiling only).
	CallsPerOrder map[string]float64
}

// ceilingPhase measures the platform-inclusive ceiling on a fresh stack whose
// sandbox holds orders orders: the raw limit's three hops (same stream shape,
// same payload, one connection, async publishes, acks after the next
// PubAck) plus exactly the platform calls the pipeline cannot avoid, made
// with this module's WeChat client over HTTP on loopback as the services
// make them: order/get for each order before it is published as received,
// one batchGetOrder for every 100 received orders before they are
// published as enriched, delivery/send for each enriched order before it is
// published as shipped; 32 goroutines a hop. Nothing else: no KV, no
// lookups, no leases, no envelopes (the messages are the raw hops' bodies;
// what a later call needs of an earlier answer stays in memory).
func ceilingPhase(ctx context.Context, orders, payload int) (HopsFigures, error) {
	var f HopsFigures
	err := withStack(stack.Options{Sandbox: benchSandbox(orders)}, func(st *stack.Stack) error {
		var err error
		f, err = ceiling(ctx, st, payload, ceilingWorkers)
		return err
	})
	return f, err
}

// ceiling runs every order of st's sandbox through the ceiling's chain and
// reads its figures.
func ceiling(ctx context.Context, st *stack.Stack, payload, workers int) (HopsFigures, error) {
	scenario := st.Sandbox.Scenario()
	env := st.Getenv(nil)
	p := newPlatform(env("WECHAT_API_BASE"), env("WECHAT_APPID"), env("WECHAT_APPSECRET"), scenario)
	defer p.close()
	c := ceilingChain(p, scenario, payload, workers)
	f, err := measureHops(ctx, st, c)
	if err != nil {
		return f, fmt.Errorf("ceiling: %w", err)
	}
	f.CallsPerOrder = callsPerOrder(st.Sandbox.Stats(), len(c.ids))
	return f, nil
}

// ceilingChain is the ceiling's chain of the scenario's orders: the raw
// hops, payload bytes a message, with p's calls on workers goroutines a hop.
func ceilingChain(p *platform, scenario []sandbox.ScenarioOrder, payload, workers int) chain {
	ids := make([]string, len(scenario))
	for i, o := range scenario {
		ids[i] = o.OrderID
	}
	return chain{stream: ceilingStream, prefix: "ceil", ids: ids, body: bytes.Repeat([]byte("x"), payload), calls: &chainCalls{
		received: p.orderGet, enriched: p.batchGetOrder, shipped: p.deliverySend, batch: ceilingBatch, workers: workers,
	}}
}

// measureHops runs c on st's server and reads its throughput, the bench
// process's CPU, system calls and context switches, and the server's
// messages, per order.
func measureHops(ctx context.Context, st *stack.Stack, c chain) (HopsFigures, error) {
	n := max(len(c.ids), 1)
	f := HopsFigures{Orders: len(c.ids)}
	fs, _ := procfs.NewDefaultFS() // without /proc the syscalls and switches are NaN
	u0, msgs0 := readSelfUsage(fs), serverMsgs(st)
	v, err := c.run(ctx, st.NATSURL)
	if err != nil {
		return f, err
	}
	u := readSelfUsage(fs).perOrder(u0, n)
	f.OrdersPerSec = v
	f.CPUPerOrder, f.SyscallsPerOrder, f.CtxSwitchesPerOrder = u.cpu, u.syscalls, u.ctxSwitches
	f.NATSMsgsPerOrder = float64(serverMsgs(st)-msgs0) / float64(n)
	return f, nil
}

// serverMsgs is the messages in and out of st's NATS server so far.
func serverMsgs(st *stack.Stack) int64 {
	v, err := st.Server.Varz(nil)
	if err != nil {
		return 0
	}
	return v.InMsgs + v.OutMsgs
}

// platform makes the ceiling's platform calls with this module's WeChat
// client, built as the services build theirs (service.Transport, a 10 s
// timeout, a stable_token source of its own): one client a hop, as each
// service process has its own. It keeps what a later call needs of an
// earlier answer (order/get's products, batchGetOrder's waybill) in memory.
type platform struct {
	get, enrich, ship *wechat.Client
	delivery          map[string]string // carrier of each order (ingest's INGEST_DELIVERY_ID)
	hcs               []*http.Client

	mu       sync.Mutex
	products map[string][]wechat.DeliveryProduct
	waybills map[string]string
}

func newPlatform(baseURL, appID, secret string, scenario []sandbox.ScenarioOrder) *platform {
	var hcs []*http.Client
	client := func() *wechat.Client {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: service.Transport()}
		hcs = append(hcs, hc)
		ts := wechat.NewStableTokenSource(appID, secret,
			wechat.WithTokenBaseURL(baseURL), wechat.WithTokenHTTPClient(hc))
		return wechat.NewClient(ts, wechat.WithBaseURL(baseURL), wechat.WithHTTPClient(hc))
	}
	p := &platform{get: client(), enrich: client(), ship: client(), delivery: make(map[string]string, len(scenario)),
		hcs:      hcs,
		products: make(map[string][]wechat.DeliveryProduct, len(scenario)), waybills: make(map[string]string, len(scenario))}
	for _, o := range scenario {
		p.delivery[o.OrderID] = o.DeliveryID
	}
	return p
}

// close closes the clients' idle connections, so the sandbox's server can
// shut down at once.
func (p *platform) close() {
	for _, hc := range p.hcs {
		hc.CloseIdleConnections()
	}
}

// orderGet calls order/get for each id and keeps the products to ship.
func (p *platform) orderGet(ctx context.Context, ids []string) error {
	for _, id := range ids {
		o, err := p.get.GetOrder(ctx, id)
		if err != nil {
			return fmt.Errorf("order/get %s: %w", id, err)
		}
		products := make([]wechat.DeliveryProduct, len(o.OrderDetail.ProductInfos))
		for i, pi := range o.OrderDetail.ProductInfos {
			products[i] = wechat.DeliveryProduct{ProductID: pi.ProductID, SkuID: pi.SkuID, ProductCnt: pi.SkuCnt}
		}
		p.mu.Lock()
		p.products[id] = products
		p.mu.Unlock()
	}
	return nil
}

// batchGetOrder calls batchGetOrder once for ids and keeps each waybill id.
func (p *platform) batchGetOrder(ctx context.Context, ids []string) error {
	qs := make([]wechat.WaybillQuery, len(ids))
	for i, id := range ids {
		qs[i] = wechat.WaybillQuery{OrderID: id, DeliveryID: p.delivery[id]}
	}
	ws, err := p.enrich.BatchGetOrder(ctx, qs)
	if err != nil {
		return fmt.Errorf("batchGetOrder of %d orders: %w", len(ids), err)
	}
	if len(ws) != len(ids) {
		return fmt.Errorf("batchGetOrder of %d orders answered %d", len(ids), len(ws))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range ws {
		if err := w.Err(); err != nil {
			return fmt.Errorf("batchGetOrder item %s: %w", w.OrderID, err)
		}
		p.waybills[string(w.OrderID)] = w.WaybillID
	}
	return nil
}

// deliverySend calls delivery/send for each id with its products and
// waybill, as the shipper does.
func (p *platform) deliverySend(ctx context.Context, ids []string) error {
	for _, id := range ids {
		p.mu.Lock()
		products, waybill := p.products[id], p.waybills[id]
		p.mu.Unlock()
		err := p.ship.SendDelivery(ctx, wechat.SendDeliveryRequest{
			OrderID: wechat.ID(id),
			DeliveryList: []wechat.DeliveryItem{{
				DeliveryID: p.delivery[id], WaybillID: waybill, DeliverType: wechat.DeliverTypeExpress, ProductInfos: products,
			}},
		})
		if err != nil {
			return fmt.Errorf("delivery/send %s: %w", id, err)
		}
	}
	return nil
}
