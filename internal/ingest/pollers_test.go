package ingest_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/clients/vvtool"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// pollEnv is a real JetStream and the sandbox over HTTP.
type pollEnv struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	sb     *sandbox.Sandbox
	url    string
}

func startPollEnv(t *testing.T, cfg sandbox.Config) *pollEnv {
	t.Helper()
	nc, js, stream := jstest.StartStream(t)
	sb := sandbox.New(cfg)
	hs := httptest.NewServer(sb)
	t.Cleanup(hs.Close)
	return &pollEnv{nc: nc, js: js, stream: stream, sb: sb, url: hs.URL}
}

// ingester is a fresh ingester, with nothing remembered, as a restarted
// process has; it reads a page's records at once, as cmd/ingest's does.
func (e *pollEnv) ingester(t *testing.T) *ingest.Ingester {
	t.Helper()
	in := ingest.NewIngester(e.stream, pipeline.NewPublisher(e.js), time.Hour, zerolog.Nop(), service.NewMetrics())
	in.ReadRecordsThrough(pipeline.NewMultiLast(e.nc, events.StreamName))
	return in
}

// ledger opens the checkpoints' bucket.
func (e *pollEnv) ledger(t *testing.T) *ingest.Ledger {
	t.Helper()
	ledger, err := ingest.OpenLedger(t.Context(), e.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ledger
}

func (e *pollEnv) count(t *testing.T, filter string) (msgs uint64, subjects int) {
	t.Helper()
	info, err := e.stream.Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range info.State.Subjects {
		msgs += n
	}
	return msgs, len(info.State.Subjects)
}

// TestChannelsPollerPublishesEachOrderOnce polls a 10-day lookback (two
// windows of at most 7 days), with windows that hold too many orders
// (31042, so they are halved), ids sent as JSON numbers, twice and across
// a "restart" (a fresh ledger): every order is published exactly once, with
// its products, and the platform saw no parameter it would refuse.
func TestChannelsPollerPublishesEachOrderOnce(t *testing.T) {
	const orders = 450
	e := startPollEnv(t, sandbox.Config{Seed: 5, Orders: orders, MaxOrdersPerWindow: 120,
		Faults: sandbox.FaultMix{NumericIDs: 0.3}})
	client := wechat.NewClient(wechat.StaticToken(e.sb.IssueToken()), wechat.WithBaseURL(e.url))
	for run := range 3 {
		p := &ingest.ChannelsPoller{Shop: events.DefaultShop, Client: client, In: e.ingester(t), Ledger: e.ledger(t), DeliveryID: "SF",
			Lookback: 10 * 24 * time.Hour, Concurrency: 8, Log: zerolog.Nop()}
		if err := p.Poll(t.Context()); err != nil {
			t.Fatalf("poll %d: %v", run, err)
		}
		msgs, ids := e.count(t, events.FilterSubject(events.StageReceived))
		if msgs != orders || ids != orders {
			t.Fatalf("after poll %d: %d received events for %d orders, want %d each", run, msgs, ids, orders)
		}
	}
	st := e.sb.Stats()
	if st.ListWindowTooLong != 0 || st.NextKeyMismatch != 0 {
		t.Errorf("the platform would refuse: %d windows over 7 days, %d next_key mismatches", st.ListWindowTooLong, st.NextKeyMismatch)
	}
	if st.ErrCodes[sandbox.EndpointOrderList][31042] == 0 {
		t.Errorf("no window was halved: the test did not exercise 31042")
	}
	if got := st.Calls[sandbox.EndpointOrderGet]; got != orders {
		t.Errorf("%d order/get calls, want one per order (%d): later polls must skip known orders", got, orders)
	}
	m, err := e.stream.GetLastMsgForSubject(t.Context(), "orders.received.channels.default."+e.sb.Scenario()[0].OrderID)
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Decode(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	var rcv events.Received
	if err := env.DecodeData(&rcv); err != nil || rcv.DeliveryID != "SF" || len(rcv.Products) == 0 {
		t.Errorf("received data %+v (%v): want delivery SF and products", rcv, err)
	}
}

// TestChannelsPollerReadsAPageOfRecordsAtOnce polls orders the stream
// has already, with nothing remembered (a restart): the poll asks the
// stream once per list page, not once per order, and calls order/get for
// none of them. Without the multi_last reader it asks once per order.
func TestChannelsPollerReadsAPageOfRecordsAtOnce(t *testing.T) {
	const orders = 250 // three list pages
	for _, multi := range []bool{true, false} {
		t.Run(fmt.Sprintf("multi_last=%v", multi), func(t *testing.T) {
			e := startPollEnv(t, sandbox.Config{Seed: 6, Orders: orders})
			client := wechat.NewClient(wechat.StaticToken(e.sb.IssueToken()), wechat.WithBaseURL(e.url))
			poll := func() {
				in := e.ingester(t)
				if !multi {
					in = ingest.NewIngester(e.stream, pipeline.NewPublisher(e.js), time.Hour, zerolog.Nop(), service.NewMetrics())
				}
				p := &ingest.ChannelsPoller{Shop: events.DefaultShop, Client: client, In: in, Ledger: e.ledger(t), DeliveryID: "SF",
					Lookback: 24 * time.Hour, Concurrency: 8, Log: zerolog.Nop()}
				if err := p.Poll(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			poll()
			// Forget the checkpoints too, so the poll reads every page again.
			if err := e.js.DeleteKeyValue(t.Context(), ingest.Bucket); err != nil {
				t.Fatal(err)
			}
			// A direct get is a request on $JS.API.DIRECT.GET.ORDERS (a
			// multi_last) or on ...ORDERS.<subject> (one subject).
			watch, err := e.nc.SubscribeSync("$JS.API.DIRECT.GET." + events.StreamName + ".>")
			if err != nil {
				t.Fatal(err)
			}
			watchMulti, err := e.nc.SubscribeSync("$JS.API.DIRECT.GET." + events.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			lists, gets := e.sb.Stats().Calls[sandbox.EndpointOrderList], e.sb.Stats().Calls[sandbox.EndpointOrderGet]
			poll()
			// The copies of our requests reach the subscriptions before
			// the answer to a flush that follows them.
			if err := e.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			single, _, _ := watch.Pending()
			many, _, _ := watchMulti.Pending()
			st := e.sb.Stats()
			pages := st.Calls[sandbox.EndpointOrderList] - lists
			if got := st.Calls[sandbox.EndpointOrderGet] - gets; got != 0 {
				t.Errorf("the second poll made %d order/get calls, want 0", got)
			}
			if multi && (many != pages || single != 0) {
				t.Errorf("second poll: %d multi_last and %d single direct gets for %d pages, want one multi_last per page", many, single, pages)
			}
			if !multi && (single != orders || many != 0) {
				t.Errorf("second poll without multi_last: %d single direct gets and %d multi_last, want %d single", single, many, orders)
			}
			t.Logf("second poll: %d pages, %d multi_last, %d single direct gets", pages, many, single)
		})
	}
}

// TestVVToolPollerStaysUnderTenPerSecond polls many shops at once through
// one account limiter: the sandbox never counts more than 10 requests in a
// sliding second, and each (tid, status, modified) is published once.
func TestVVToolPollerStaysUnderTenPerSecond(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds of real time by design")
	}
	shops := []string{"1001", "1002", "1003", "1004"}
	e := startPollEnv(t, sandbox.Config{Seed: 9, VVShops: shops, VVShippingsPerShop: 120})
	client := vvtool.NewClient(sandbox.DefaultVVToken, vvtool.WithBaseURL(e.url))
	in := e.ingester(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	errs := make(chan error, 3)
	for range 3 { // three pollers of one account at once
		go func() {
			p := &ingest.VVToolPoller{Shop: events.DefaultShop, Client: client, In: in, ShopIDs: shops, Lookback: 90 * 24 * time.Hour, Log: zerolog.Nop()}
			errs <- p.Poll(ctx)
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := e.sb.Stats()
	if st.VVRateViolations != 0 || st.VVMaxPerSecond > 10 {
		t.Errorf("vv-tool saw %d requests in one second (%d violations)", st.VVMaxPerSecond, st.VVRateViolations)
	}
	msgs, subjects := e.count(t, events.FilterSubject(events.StageLogistics))
	if msgs == 0 || msgs != uint64(subjects) {
		t.Errorf("%d logistics events on %d subjects: want one per tid", msgs, subjects)
	}
}

// TestChannelsPollerSplitsAFlashSaleSecond: more orders updated in one
// second than a window may hold (31042 even for one second) are read by
// splitting that second by create_time, so the poller neither stalls nor
// loses any of them.
func TestChannelsPollerSplitsAFlashSaleSecond(t *testing.T) {
	now := time.Now()
	e := startPollEnv(t, sandbox.Config{Seed: 11, MaxOrdersPerWindow: 100, Now: func() time.Time { return now }})
	for range 301 {
		e.sb.AddOrder(sandbox.ScenarioOrder{}, 1)
	}
	client := wechat.NewClient(wechat.StaticToken(e.sb.IssueToken()), wechat.WithBaseURL(e.url))
	p := &ingest.ChannelsPoller{Shop: events.DefaultShop, Client: client, In: e.ingester(t), Ledger: e.ledger(t), DeliveryID: "SF",
		Lookback: time.Hour, Concurrency: 8, Log: zerolog.Nop()}
	if err := p.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if msgs, ids := e.count(t, events.FilterSubject(events.StageReceived)); msgs != 301 || ids != 301 {
		t.Fatalf("%d received events for %d orders, want 301 each", msgs, ids)
	}
	if st := e.sb.Stats(); st.ListWindowTooLong != 0 || st.NextKeyMismatch != 0 {
		t.Errorf("the platform would refuse: %+v", st)
	}
}

// fakeOrders lists ids in one page and answers order/get with an order no
// longer awaiting shipment (so nothing is published), or with a transient
// errcode for the ids in fail. Each order/get waits until limit calls are in
// flight at once (or all ids are), so the test sees the limit reached.
type fakeOrders struct {
	ids   []wechat.ID
	fail  map[string]bool
	limit int

	full     chan struct{} // closed when min(limit, len(ids)) calls are in flight
	fullOnce sync.Once
	inFlight atomic.Int32
	most     atomic.Int32 // the most calls in flight at once
	calls    atomic.Int32
}

func (f *fakeOrders) ListOrders(context.Context, wechat.ListOrdersRequest) (*wechat.ListOrdersResponse, error) {
	return &wechat.ListOrdersResponse{OrderIDList: f.ids}, nil
}

func (f *fakeOrders) GetOrder(ctx context.Context, id string) (*wechat.Order, error) {
	f.calls.Add(1)
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
	}
	if int(n) == min(f.limit, len(f.ids)) {
		f.fullOnce.Do(func() { close(f.full) })
	}
	select {
	case <-f.full:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.fail[id] {
		return nil, &wechat.APIError{Endpoint: wechat.EndpointOrderGet, Code: -1, Msg: "system busy " + id}
	}
	return &wechat.Order{OrderID: wechat.ID(id), Status: StatusShipped}, nil
}

// StatusShipped is an order status other than ingest.StatusAwaitingShipment.
const StatusShipped = 30

// TestChannelsPollerFetchesAFewOrdersAtATime: order/get runs Concurrency calls
// at once (at least one), never more; a failed order stops neither the others
// nor the page, and the poll's error names every failed order.
func TestChannelsPollerFetchesAFewOrdersAtATime(t *testing.T) {
	tests := []struct {
		name        string
		concurrency int
		orders      int
		fail        []string
		wantMost    int32
	}{
		{"eight at a time", 8, 40, nil, 8},
		{"zero is one at a time", 0, 5, nil, 1},
		{"fewer orders than the limit", 8, 3, nil, 3},
		{"failures are all reported", 4, 20, []string{"ORD-3", "ORD-11", "ORD-19"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startPollEnv(t, sandbox.Config{Seed: 1})
			f := &fakeOrders{fail: map[string]bool{}, limit: max(tt.concurrency, 1), full: make(chan struct{})}
			for i := range tt.orders {
				f.ids = append(f.ids, wechat.ID(fmt.Sprint("ORD-", i)))
			}
			for _, id := range tt.fail {
				f.fail[id] = true
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a failsafe, not a wait
			defer cancel()
			p := &ingest.ChannelsPoller{Shop: events.DefaultShop, Client: f, In: e.ingester(t), Ledger: e.ledger(t), DeliveryID: "SF",
				Lookback: time.Hour, Concurrency: tt.concurrency, Log: zerolog.Nop()}
			err := p.Poll(ctx)
			if got := f.most.Load(); got != tt.wantMost {
				t.Errorf("%d order/get calls at once, want %d", got, tt.wantMost)
			}
			if got := int(f.calls.Load()); got != tt.orders {
				t.Errorf("%d order/get calls, want one per order (%d)", got, tt.orders)
			}
			if len(tt.fail) == 0 {
				if err != nil {
					t.Fatalf("Poll: %v", err)
				}
				return
			}
			if wechat.Code(err) != -1 {
				t.Errorf("Poll: %v; want the platform's errcode -1 kept", err)
			}
			for _, id := range tt.fail {
				if err == nil || !strings.Contains(err.Error(), "order/get "+id+":") {
					t.Errorf("Poll: %v; want an error for %s", err, id)
				}
			}
		})
	}
}
