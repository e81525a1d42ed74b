package ctl

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/redrive"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestShopFlagsTouchOnlyThatShop (issue 16): with every order of two shops
// failed, dlq list --shop lists one shop's, dlq redrive --all --shop
// re-drives only that shop's orders, and replay --shop only the other's;
// fulfillctl shops and order --shop tell the shops apart.
func TestShopFlagsTouchOnlyThatShop(t *testing.T) {
	const perShop = 30
	st := faulttest.StartStack(t, stack.Options{Shops: 2, Sandbox: sandbox.Config{Seed: 5, Orders: perShop},
		Env: map[string]string{
			"SHIP_MAX_ELAPSED":     "500ms",
			"SHIP_BACKOFF_INITIAL": "20ms",
			"SHIP_BACKOFF_MAX":     "100ms",
			"INGEST_POLL_INTERVAL": "200ms",
			"ENRICH_MAX_WAIT":      "20ms",
		}})
	st.Sandbox.Inject(sandbox.Fault{Endpoint: sandbox.EndpointDeliverySend, Code: -1, Times: -1})
	ctx, cancel := context.WithCancel(context.Background())
	logs := &faulttest.SyncBuffer{}
	g := st.RunPipeline(ctx, logs, 1)
	t.Cleanup(func() { cancel(); _ = g.Wait() })
	_, js := faulttest.Connect(t, st.NATSURL)

	want := st.Sandbox.Scenario()
	keys := map[string][]string{}
	for _, o := range want {
		shop := st.ShopOf(o.AppID)
		keys[shop] = append(keys[shop], st.Key(o))
	}
	one, two := stack.ShopID(0), stack.ShopID(1)
	faulttest.WaitStream(t, js, 2*time.Minute, logs, "every order of both shops to fail", func(tl *tally.Tally) bool {
		return tl.AllTerminal(st.Keys(want)) && tl.Terminal(events.StageFailed) == 2*perShop
	})
	st.Sandbox.ClearFaults()

	var listed []dlqEntry
	if err := json.Unmarshal([]byte(fulfillctl(t, st, "dlq", "list", "--shop", one, "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != perShop {
		t.Fatalf("dlq list --shop %s: %d orders, want %d", one, len(listed), perShop)
	}
	for _, en := range listed {
		if en.Shop != one {
			t.Fatalf("dlq list --shop %s lists an order of %s", one, en.Shop)
		}
	}

	redriven := results(t, fulfillctl(t, st, "dlq", "redrive", "--all", "--shop", one, "--json"))
	if len(redriven) != perShop {
		t.Fatalf("dlq redrive --all --shop %s re-drove %d orders, want %d", one, len(redriven), perShop)
	}
	tl := watch(t, js, "shop-1's orders to ship", func(tl *tally.Tally) bool {
		for _, k := range keys[one] {
			if o := tl.Orders[k]; o == nil || o.Latest != events.StageShipped {
				return false
			}
		}
		return true
	})
	for _, k := range keys[two] {
		if o := tl.Orders[k]; o.Latest != events.StageFailed || o.Enriched != 1 || o.Received != 1 {
			t.Errorf("%s after re-driving %s: %+v; want untouched (failed, one input of each stage)", k, one, o)
		}
	}

	replayed := results(t, fulfillctl(t, st, "replay", "--stage", "shipper", "--since", "1h", "--shop", two, "--json"))
	for _, r := range replayed {
		if r.Shop != two {
			t.Errorf("replay --shop %s touched %s's order %s (%s)", two, r.Shop, r.OrderID, r.Action)
		}
	}
	tl = watch(t, js, "shop-2's orders to ship after the replay", func(tl *tally.Tally) bool {
		return tl.Terminal(events.StageShipped) == 2*perShop
	})
	for _, k := range keys[one] {
		if o := tl.Orders[k]; o.Enriched != 2 || len(o.Terminals) != 2 {
			t.Errorf("%s after replaying %s: %d enriched events, %d terminal ones; want 2 and 2 (its re-drive only)", k, two, o.Enriched, len(o.Terminals))
		}
	}
	for _, o := range want {
		if n := st.Sandbox.Sends(o.OrderID); n != 1 {
			t.Errorf("order %s: %d successful sends, want 1", st.Key(o), n)
		}
	}

	out := fulfillctl(t, st, "shops")
	for _, shop := range []string{one, two} {
		if !strings.Contains(out, shop+"  ") {
			t.Errorf("fulfillctl shops does not list %s:\n%s", shop, out)
		}
	}
	id := want[0].OrderID
	if out := fulfillctl(t, st, "order", id, "--shop", st.ShopOf(want[0].AppID)); !strings.Contains(out, "of shop "+st.ShopOf(want[0].AppID)+": shipped") {
		t.Errorf("fulfillctl order %s --shop:\n%s", id, out)
	}
}

// results decodes a --json re-drive report.
func results(t *testing.T, out string) []redrive.Result {
	t.Helper()
	var rs []redrive.Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return rs
}
