package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestAlreadyShippedAndBatchRetry covers two answers the big scenario
// meets only by chance: an order shipped behind the pipeline's back (the
// platform says 109001) ends shipped with already_shipped and no second
// shipment, and a whole batchGetOrder call failing transiently is retried
// rather than failing its orders.
func TestAlreadyShippedAndBatchRetry(t *testing.T) {
	port, err := embednats.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", port)
	st := faulttest.StartStack(t, stack.Options{
		Sandbox: sandbox.Config{Seed: 21, Orders: 40},
		Env: map[string]string{"INGEST_POLL_INTERVAL": "100ms", "ENRICH_MAX_WAIT": "20ms",
			"INGEST_API_TOKEN": "e2e-token", "INGEST_HTTP_ADDR": apiAddr},
	})
	want := st.Sandbox.Scenario()
	first := want[0]

	// Ship the first order directly, as a crashed earlier attempt would have.
	view, ok := st.Sandbox.Order(first.OrderID)
	if !ok {
		t.Fatalf("order %s not in the sandbox", first.OrderID)
	}
	products := make([]wechat.DeliveryProduct, len(view.Products))
	for i, p := range view.Products {
		products[i] = wechat.DeliveryProduct{ProductID: wechat.ID(p.ProductID), SkuID: wechat.ID(p.SkuID), ProductCnt: p.SkuCnt}
	}
	client := wechat.NewClient(wechat.StaticToken(st.Sandbox.IssueToken()), wechat.WithBaseURL(st.SandboxURL))
	err = client.SendDelivery(context.Background(), wechat.SendDeliveryRequest{OrderID: wechat.ID(first.OrderID),
		DeliveryList: []wechat.DeliveryItem{{DeliveryID: first.DeliveryID, WaybillID: first.WaybillID,
			DeliverType: wechat.DeliverTypeExpress, ProductInfos: products}}})
	if err != nil {
		t.Fatalf("direct send: %v", err)
	}
	// The first two batchGetOrder calls fail as a whole.
	st.Sandbox.Inject(sandbox.Fault{Endpoint: sandbox.EndpointBatchGetOrder, Code: -1, Times: 2})

	logs := &faulttest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	g := st.RunPipeline(ctx, logs, 1)
	t.Cleanup(func() { cancel(); _ = g.Wait() })
	_, js := faulttest.Connect(t, st.NATSURL)

	// Shipped already, the order no longer shows as awaiting shipment, so
	// a merchant's system posts it; the platform then answers 109001.
	lines := make([]events.Product, len(view.Products))
	for i, p := range view.Products {
		lines[i] = events.Product{ProductID: p.ProductID, SkuID: p.SkuID, ProductCnt: p.SkuCnt}
	}
	body, _ := json.Marshal(map[string]any{"order_id": first.OrderID, "delivery_id": first.DeliveryID, "products": lines})
	// The API listens once ingest is connected: retry the connection until then.
	var resp *http.Response
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(20 * time.Second); ; <-tick.C {
		req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/orders", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer e2e-token")
		if resp, err = http.DefaultClient.Do(req); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/orders: %v %v", resp, err)
	}
	resp.Body.Close()
	tl := faulttest.WaitTerminal(t, js, want, time.Minute, logs)

	for _, o := range want {
		s := tl.Orders[faulttest.Key(o)]
		if s.Latest != events.StageShipped || len(s.Terminals) != 1 {
			t.Fatalf("order %s: latest %q with %d terminal events; want shipped once (batch errors must be retried)", o.OrderID, s.Latest, len(s.Terminals))
		}
	}
	var shipped events.Shipped
	if err := tl.Orders[faulttest.Key(first)].Terminals[0].DecodeData(&shipped); err != nil {
		t.Fatal(err)
	}
	if !shipped.AlreadyShipped || st.Sandbox.Sends(first.OrderID) != 1 {
		t.Errorf("pre-shipped order: already_shipped=%v, %d successful sends; want true and 1", shipped.AlreadyShipped, st.Sandbox.Sends(first.OrderID))
	}
	if n := st.Sandbox.Stats().ErrCodes[sandbox.EndpointBatchGetOrder][-1]; n != 2 {
		t.Errorf("%d batchGetOrder calls answered -1, want the 2 injected", n)
	}
}
