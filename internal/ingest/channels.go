package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
)

// Orders is what the Channels poller calls.
type Orders interface {
	ListOrders(ctx context.Context, req wechat.ListOrdersRequest) (*wechat.ListOrdersResponse, error)
	GetOrder(ctx context.Context, orderID string) (*wechat.Order, error)
}

// Order statuses and list limits of WeChat Channels.
const (
	StatusAwaitingShipment = 20
	maxWindow              = 7 * 24 * time.Hour
	pageSize               = 100
	// overlap re-reads the end of the last window, for orders whose
	// update_time lands on the boundary second or that the platform
	// indexed a little late; the stream's record drops repeats.
	overlap = 10 * time.Second
	// codeTooManyOrders asks for a shorter window.
	codeTooManyOrders = 31042
)

// ChannelsPoller finds orders awaiting shipment with order/list/get and
// publishes each once, with its products from order/get.
type ChannelsPoller struct {
	// Shop is the shop the polled Channels account belongs to.
	Shop        string
	Client      Orders
	In          *Ingester
	Ledger      *Ledger
	DeliveryID  string
	Lookback    time.Duration
	Concurrency int
	Log         zerolog.Logger
}

// checkpoint is the ledger key of the shop's Channels checkpoint; the
// default shop keeps the key of the single-shop versions, so an upgrade
// resumes where it stopped.
func (p *ChannelsPoller) checkpoint() string {
	if p.Shop == events.DefaultShop {
		return "channels"
	}
	return "channels." + p.Shop
}

// Poll reads every window from the checkpoint (or Lookback ago) to now and
// moves the checkpoint after each window whose orders were all published.
func (p *ChannelsPoller) Poll(ctx context.Context) error {
	ctx, span := p.In.startPoll(ctx, p.Shop, events.SourceChannels)
	defer span.End()
	now := p.In.now()
	cp, err := p.Ledger.Checkpoint(ctx, p.checkpoint())
	if err != nil {
		return err
	}
	start := now.Add(-p.Lookback)
	if cp > 0 {
		start = time.Unix(cp, 0).Add(-overlap)
	}
	for ws := start; ws.Before(now); ws = ws.Add(maxWindow) {
		we := ws.Add(maxWindow)
		if we.After(now) {
			we = now
		}
		if err := p.window(ctx, ws.Unix(), we.Unix(), nil); err != nil {
			return err
		}
		if err := p.Ledger.SetCheckpoint(ctx, p.checkpoint(), we.Unix()); err != nil {
			return err
		}
	}
	return nil
}

// window pages through one update_time window; on 31042 it halves the
// window and reads both halves. When one second of updates still holds too
// many orders (a flash sale), it splits that second by create_time too:
// the platform accepts both ranges at once. crt is nil until then.
func (p *ChannelsPoller) window(ctx context.Context, start, end int64, crt *wechat.TimeRange) error {
	status := StatusAwaitingShipment
	req := wechat.ListOrdersRequest{
		UpdateTimeRange: &wechat.TimeRange{StartTime: start, EndTime: end},
		CreateTimeRange: crt,
		Status:          &status,
		PageSize:        pageSize,
	}
	var f *fetcher
	for {
		resp, err := p.Client.ListOrders(ctx, req)
		if wechat.Code(err) == codeTooManyOrders {
			if werr := f.wait(); werr != nil {
				return werr
			}
			return p.split(ctx, start, end, crt, err)
		}
		if err != nil {
			return errors.Join(f.wait(), fmt.Errorf("order/list/get %d..%d: %w", start, end, err))
		}
		if len(resp.OrderIDList) > 0 {
			if f == nil {
				f = p.newFetcher(ctx)
			}
			f.page(ctx, resp.OrderIDList)
		}
		// A failed order ends the window once the pages under way are
		// done, as it would have without the overlap: the checkpoint
		// stays, and the next poll reads the window again.
		if !resp.HasMore || resp.NextKey == "" || f.hasFailed() {
			return f.wait()
		}
		// Every other parameter stays identical: the platform binds
		// next_key to them (606006 otherwise).
		req.NextKey = resp.NextKey
	}
}

// split reads a window that answered 31042 as two halves: of the update
// range while it spans more than a second, then of the create range (at
// most 7 days before the update, the platform's limit per range).
func (p *ChannelsPoller) split(ctx context.Context, start, end int64, crt *wechat.TimeRange, cause error) error {
	if end-start > 1 {
		mid := start + (end-start)/2
		p.Log.Info().Int64("start", start).Int64("end", end).Msg("window holds too many orders (31042); halving it")
		if err := p.window(ctx, start, mid, crt); err != nil {
			return err
		}
		return p.window(ctx, mid, end, crt)
	}
	if crt == nil {
		crt = &wechat.TimeRange{StartTime: end - int64(maxWindow/time.Second), EndTime: end}
	}
	if crt.EndTime-crt.StartTime <= 1 {
		return fmt.Errorf("order/list/get %d..%d created %d..%d: too many orders even for one second: %w",
			start, end, crt.StartTime, crt.EndTime, cause)
	}
	mid := crt.StartTime + (crt.EndTime-crt.StartTime)/2
	p.Log.Info().Int64("start", start).Int64("end", end).Int64("created_from", crt.StartTime).Int64("created_to", crt.EndTime).
		Msg("one second holds too many orders (31042); splitting it by create_time")
	if err := p.window(ctx, start, end, &wechat.TimeRange{StartTime: crt.StartTime, EndTime: mid}); err != nil {
		return err
	}
	return p.window(ctx, start, end, &wechat.TimeRange{StartTime: mid, EndTime: crt.EndTime})
}

// fetcher fetches and publishes the orders of a window's pages, Concurrency
// at a time across pages. A page's orders wait in a queue of one page, so
// the next page is listed, and its records read, while the orders of the
// one before are still being fetched: neither the list call nor a page's
// slowest order leaves the workers idle. With 20ms platform calls that
// takes a first poll of 1,000 orders from 866 to 1,345 orders/s
// (BenchmarkChannelsPollWithLatency).
//
// A few workers share the pages rather than a goroutine per order: decoding
// an order/get answer grows a goroutine's stack, and a fresh goroutine per
// order paid for that growth every time (a tenth of ingest's CPU).
type fetcher struct {
	p      *ChannelsPoller
	jobs   chan fetchJob
	wg     sync.WaitGroup
	errs   [][]error // per page, in page order
	failed atomic.Bool
}

// fetchJob is one order to settle and where its outcome goes.
type fetchJob struct {
	id string
	// missing: the page's records say the stream lacks it. Without them
	// (the read failed), the order's own record is read first (take).
	missing bool
	err     *error
}

// newFetcher starts Concurrency workers (at least one) that settle the
// queued orders under ctx until wait.
func (p *ChannelsPoller) newFetcher(ctx context.Context) *fetcher {
	f := &fetcher{p: p, jobs: make(chan fetchJob, pageSize)}
	for range max(p.Concurrency, 1) {
		f.wg.Go(func() {
			for j := range f.jobs {
				var err error
				if j.missing {
					err = p.fetch(ctx, j.id, events.ViaPoll)
				} else {
					err = p.take(ctx, j.id, events.ViaPoll)
				}
				if err != nil {
					*j.err = err
					f.failed.Store(true)
				}
			}
		})
	}
	return f
}

// page queues the orders of one page the stream does not have yet for the
// workers, returning once the last of them is queued. Which of them the
// stream has already is read for the whole page in one request: on a
// repeated poll that is all the page costs.
func (f *fetcher) page(ctx context.Context, ids []wechat.ID) {
	p := f.p
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := events.ValidateOrderID(string(id)); err != nil {
			p.Log.Error().Err(err).Msg("order/list/get returned an id that cannot be a subject; skipped")
			continue
		}
		valid = append(valid, string(id))
	}
	// If that read fails, each order asks on its own (take).
	known, err := p.In.KnownOrders(ctx, p.Shop, valid)
	if err != nil {
		p.Log.Warn().Err(err).Int("orders", len(valid)).Msg("reading the page's records failed; reading them one by one")
		known = nil
	}
	errs := make([]error, len(valid))
	f.errs = append(f.errs, errs)
	for i, id := range valid {
		if known != nil && known[i] != "" {
			continue
		}
		f.jobs <- fetchJob{id: id, missing: known != nil, err: &errs[i]}
	}
}

// hasFailed reports whether an order could not be settled so far.
func (f *fetcher) hasFailed() bool { return f != nil && f.failed.Load() }

// wait lets the workers finish and returns the error of every order that
// could not be settled, in page order, so the checkpoint does not move past
// any of them. One failed order does not stop the others of its page. A nil
// fetcher (a window without pages) has nothing to wait for.
func (f *fetcher) wait() error {
	if f == nil {
		return nil
	}
	close(f.jobs)
	f.wg.Wait()
	var all []error
	for _, errs := range f.errs {
		all = append(all, errs...)
	}
	return errors.Join(all...)
}

// take fetches an order with order/get and takes it in, once, unless the
// stream has it already: the one path of an order found by polling (via
// poll) and of one pushed (via push), so an order both find is one
// received event.
func (p *ChannelsPoller) take(ctx context.Context, id, via string) error {
	if err := events.ValidateOrderID(id); err != nil {
		p.Log.Error().Err(err).Msg("order/list/get returned an id that cannot be a subject; skipped")
		return nil
	}
	if known, err := p.In.Known(ctx, p.Shop, id); err != nil || known != "" {
		return err
	}
	return p.fetch(ctx, id, via)
}

// fetch is take of an order the stream did not have a moment ago. Should
// another source store it meanwhile, the server still keeps one received
// event.
func (p *ChannelsPoller) fetch(ctx context.Context, id, via string) error {
	ctx, span := p.In.startOrder(ctx, p.Shop, events.SourceChannels, via)
	defer span.End()
	o, err := p.Client.GetOrder(ctx, id)
	switch wechat.Classify(err) {
	case wechat.ClassOK:
	case wechat.ClassPermanent:
		return p.In.Failed(ctx, events.SourceChannels, p.Shop, id, events.Failed{
			Stage: events.ComponentIngest, Errcode: wechat.Code(err), Errmsg: err.Error(), Attempts: 1,
			Reason: "order/get refused the order, so its products are unknown; check the order in the shop back office, then post it to POST /v1/orders",
		})
	default:
		return fmt.Errorf("order/get %s: %w", id, err)
	}
	if o.Status != StatusAwaitingShipment {
		p.Log.Debug().Str("order_id", id).Int("status", o.Status).Msg("order no longer awaiting shipment; skipped")
		return nil
	}
	products := make([]events.Product, 0, len(o.OrderDetail.ProductInfos))
	for _, pi := range o.OrderDetail.ProductInfos {
		products = append(products, events.Product{ProductID: string(pi.ProductID), SkuID: string(pi.SkuID), ProductCnt: pi.SkuCnt})
	}
	data := events.Received{DeliveryID: p.DeliveryID, Products: products, OrderStatus: o.Status, UpdateTime: o.UpdateTime, Via: via}
	if err := data.Validate(); err != nil {
		return p.In.Failed(ctx, events.SourceChannels, p.Shop, id, events.Failed{
			Stage: events.ComponentIngest, Errmsg: err.Error(), Attempts: 1,
			Reason: "order/get returned an order that cannot be shipped as it is (" + err.Error() + "); check it in the shop back office",
		})
	}
	_, _, err = p.In.Received(ctx, events.SourceChannels, p.Shop, id, data)
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		// Posted to the API first with other content: that one stands.
		p.Log.Warn().Str("order_id", id).Str("received_event_id", conflict.EventID).Str("received_from", string(conflict.Source)).
			Msg("order already received from another source with other content; keeping the first")
		return nil
	}
	return err
}
