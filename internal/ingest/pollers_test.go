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

func startPollEnv(t testing.TB, cfg sandbox.Config) *pollEnv {
	t.Helper()
	nc, js, stream := jstest.StartStream(t)
	sb := sandbox.New(cfg)
	hs := httptest.NewServer(sb)
	t.Cleanup(hs.Close)
	return &pollEnv{nc: nc, js: js, stream: stream, sb: sb, url: hs.URL}
}

// ingester is a fresh ingester, with nothing remembered, as a restarted
// process has; it reads a page's records at once, as cmd/ingest's does.
func (e *pollEnv) ingester(t testing.TB) *ingest.Ingester {
	t.Helper()
	in := ingest.NewIngester(e.stream, pipeline.NewPublisher(e.js), time.Hour, zerolog.Nop(), service.NewMetrics())
	in.ReadRecordsThrough(pipeline.NewMultiLast(e.nc, events.StreamName))
	return in
}

// ledger opens the checkpoints' bucket.
func (e *pollEnv) ledger(t testing.TB) *ingest.Ledger {
	t.Helper()
	ledger, err := ingest.OpenLedger(t.Context(), e.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ledger
}

func (e *pollEnv) count(t testing.TB, filter string) (msgs uint64, subjects int) {
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

// pagedOrders lists pages of ids, one page per next_key, and answers
// order/get like fakeOrders (an order no longer awaiting shipment). The
// order/get of a page's last order waits until the page after it has been
// listed, so a poller that lists a page only once every order of the one
// before is done never gets there: the test's failsafe ends it.
type pagedOrders struct {
	pages  [][]wechat.ID
	listed []chan struct{} // listed[i] is closed when page i has been listed
	page   map[string]int
	last   map[string]bool // the last id of each page

	mu       sync.Mutex
	inFlight int
	most     int
	calls    int
}

func newPagedOrders(pages, perPage int) *pagedOrders {
	f := &pagedOrders{page: map[string]int{}, last: map[string]bool{}}
	for i := range pages {
		var ids []wechat.ID
		for j := range perPage {
			id := fmt.Sprintf("ORD-%d-%d", i, j)
			ids = append(ids, wechat.ID(id))
			f.page[id] = i
		}
		f.last[string(ids[len(ids)-1])] = true
		f.pages = append(f.pages, ids)
		f.listed = append(f.listed, make(chan struct{}))
	}
	return f
}

func (f *pagedOrders) ListOrders(_ context.Context, req wechat.ListOrdersRequest) (*wechat.ListOrdersResponse, error) {
	i := 0
	if req.NextKey != "" {
		if _, err := fmt.Sscan(req.NextKey, &i); err != nil {
			return nil, err
		}
	}
	close(f.listed[i])
	resp := &wechat.ListOrdersResponse{OrderIDList: f.pages[i]}
	if i+1 < len(f.pages) {
		resp.HasMore, resp.NextKey = true, fmt.Sprint(i+1)
	}
	return resp, nil
}

func (f *pagedOrders) GetOrder(ctx context.Context, id string) (*wechat.Order, error) {
	f.mu.Lock()
	f.calls++
	f.inFlight++
	f.most = max(f.most, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if next := f.page[id] + 1; f.last[id] && next < len(f.pages) {
		select {
		case <-f.listed[next]:
		case <-ctx.Done():
			return nil, fmt.Errorf("order/get %s waited for page %d to be listed: %w", id, next, ctx.Err())
		}
	}
	return &wechat.Order{OrderID: wechat.ID(id), Status: StatusShipped}, nil
}

// TestChannelsPollerListsTheNextPageWhileFetching: the next page is listed
// (and its records read, and its orders fetched) while the last orders of
// the page before are still being fetched, so a page's slowest order and
// the list call do not leave the other workers idle; across pages there are still never more than Concurrency
// order/get calls at once, and each order is asked for once.
func TestChannelsPollerListsTheNextPageWhileFetching(t *testing.T) {
	e := startPollEnv(t, sandbox.Config{Seed: 1})
	f := newPagedOrders(4, 10)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // a failsafe, not a wait
	defer cancel()
	p := &ingest.ChannelsPoller{Shop: events.DefaultShop, Client: f, In: e.ingester(t), Ledger: e.ledger(t), DeliveryID: "SF",
		Lookback: time.Hour, Concurrency: 4, Log: zerolog.Nop()}
	if err := p.Poll(ctx); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.most > 4 {
		t.Errorf("%d order/get calls at once, want at most 4", f.most)
	}
	if f.calls != 40 {
		t.Errorf("%d order/get calls, want one per order (40)", f.calls)
	}
}

// BenchmarkChannelsPollWithLatency polls 1,000 new orders (10 pages) from a
// platform that takes 20ms a call, 32 order/get calls at once, as cmd/ingest
// does: how long a first poll of a busy shop takes (orders/s).
func BenchmarkChannelsPollWithLatency(b *testing.B) {
	const orders = 1000
	for b.Loop() {
		b.StopTimer()
		e := startPollEnv(b, sandbox.Config{Seed: 1, Latency: 20 * time.Millisecond})
		for range orders {
			e.sb.AddOrder(sandbox.ScenarioOrder{}, 1)
		}
		client := wechat.NewClient(wechat.StaticToken(e.sb.IssueToken()), wechat.WithBaseURL(e.url))
		p := &ingest.ChannelsPoller{Shop: events.DefaultShop, Client: client, In: e.ingester(b), Ledger: e.ledger(b), DeliveryID: "SF",
			Lookback: time.Hour, Concurrency: 32, Log: zerolog.Nop()}
		b.StartTimer()
		if err := p.Poll(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if msgs, _ := e.count(b, events.FilterSubject(events.StageReceived)); msgs != orders {
			b.Fatalf("%d received events, want %d", msgs, orders)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(orders*b.N)/b.Elapsed().Seconds(), "orders/s")
}
