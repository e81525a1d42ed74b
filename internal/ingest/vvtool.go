package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/clients/vvtool"
	"github.com/fulfill/pipeline/pkg/events"
)

// Shippings is what the vv-tool poller calls.
type Shippings interface {
	DetailAll(ctx context.Context, req vvtool.DetailRequest, fn func(vvtool.Shipping) error) error
}

// VVToolPoller publishes one order.logistics event per new (tid, status,
// modified) of each shop's logistics orders. The client's account-wide
// limiter keeps every shop and page under 10 requests a second.
type VVToolPoller struct {
	// Shop is the shop the vv-tool account belongs to.
	Shop     string
	Client   Shippings
	In       *Ingester
	ShopIDs  []string
	Lookback time.Duration
	Log      zerolog.Logger
}

// Poll reads every shop's logistics orders created in the last Lookback.
func (p *VVToolPoller) Poll(ctx context.Context) error {
	ctx, span := p.In.startPoll(ctx, p.Shop, events.SourceVVTool)
	defer span.End()
	now := p.In.now()
	for _, shop := range p.ShopIDs {
		req := vvtool.DetailRequest{ShopID: shop, StartCreated: now.Add(-p.Lookback), EndCreated: now, PageSize: 100}
		err := p.Client.DetailAll(ctx, req, func(s vvtool.Shipping) error { return p.shipping(ctx, shop, s) })
		if err != nil {
			return fmt.Errorf("vv-tool shop %s: %w", shop, err)
		}
	}
	return nil
}

func (p *VVToolPoller) shipping(ctx context.Context, shop string, s vvtool.Shipping) error {
	tid := string(s.Tid)
	if err := events.ValidateOrderID(tid); err != nil {
		p.Log.Error().Err(err).Str("shop_id", shop).Msg("vv-tool returned a tid that cannot be a subject; skipped")
		return nil
	}
	version := s.Status + "." + strconv.FormatInt(s.Modified.Unix(), 10)
	// The stream is the record: the tid's latest logistics event says
	// whether this (status, modified) is news.
	last, lastSeq, err := p.In.record.Last(ctx, events.StageLogistics, p.Shop, tid)
	if err != nil {
		return err
	}
	if last != nil {
		var was events.Logistics
		if err := last.DecodeData(&was); err == nil && was.Status == s.Status && !was.Modified.Before(s.Modified.Time) {
			return nil
		}
	}
	subTids := make([]string, len(s.SubTids))
	for i, t := range s.SubTids {
		subTids[i] = string(t)
	}
	env, err := events.New(events.Fact{Stage: events.StageLogistics, Source: events.SourceVVTool, Shop: p.Shop, OrderID: tid, Key: version,
		Data: events.Logistics{
			ShopID: shop, Tid: tid, OrderCode: s.OrderCode, Status: s.Status, CompanyName: s.CompanyName,
			OutSid: s.OutSid, ItemTitle: s.ItemTitle, SubTids: subTids, Created: s.Created.Time, Modified: s.Modified.Time,
		}}, p.In.now())
	if err != nil {
		return err
	}
	// Stored only if no other replica recorded a newer fact meanwhile.
	m, err := env.Msg()
	if err != nil {
		return err
	}
	filter, err := events.OrderFilter(events.StageLogistics, p.Shop, tid)
	if err != nil {
		return err
	}
	pipeline.ExpectLast(m, filter, lastSeq)
	p.In.metrics.In(events.StageLogistics, p.Shop)
	inject(ctx, m)
	if err := p.In.pub.PublishEach(ctx, m)[0]; errors.Is(err, pipeline.ErrDecided) {
		return nil
	} else if err != nil {
		return err
	}
	p.Log.Info().Str("order_id", tid).Str("event_id", env.ID).Str("correlation_id", env.CorrelationID).
		Str("shop_id", shop).Str("status", s.Status).Msg("logistics update")
	return nil
}
