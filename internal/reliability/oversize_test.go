package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestOversizedOrderFailsAlone (fault 12): one order of a batch whose
// enriched event can never be stored — the platform answers a print_html
// larger than the NATS server's max payload — ends failed with a reason,
// and its batch-mates ship: before, the enricher naked the whole batch 40
// times and then failed all of it.
func TestOversizedOrderFailsAlone(t *testing.T) {
	start := time.Now()
	const n, maxPayload = 100, 64 << 10
	st := faulttest.StartStack(t, stack.Options{MaxPayload: maxPayload,
		Sandbox: sandbox.Config{Seed: 61, Orders: n, MaxOrdersPerWindow: 300},
		Env:     fastEnv(map[string]string{"ENRICH_BATCH_SIZE": "100", "ENRICH_MAX_WAIT": "500ms"})})
	sb := st.Sandbox
	want := sb.Scenario()
	big := want[n/2].OrderID
	if !sb.SetWaybillPrintHTML(big, strings.Repeat("A", maxPayload+1024)) {
		t.Fatalf("order %s has no waybill", big)
	}
	logs := &faulttest.SyncBuffer{}
	p := startPipeline(t, st, logs, 1, nil)
	_, js := faulttest.Connect(t, st.NATSURL)
	tl := faulttest.WaitTerminal(t, js, want, 2*time.Minute, logs)

	var reason string
	for _, o := range want {
		s := tl.Orders[faulttest.Key(o)]
		switch {
		case o.OrderID == big:
			if s.Latest != events.StageFailed || s.LastFailed == nil || s.LastFailed.Stage != events.ComponentEnricher ||
				!strings.Contains(s.LastFailed.Reason, "max payload") || sb.Sends(o.OrderID) != 0 {
				t.Errorf("the oversized order ended %q with %+v, %d sends; want failed at the enricher naming the max payload", s.Latest, s.LastFailed, sb.Sends(o.OrderID))
			} else {
				reason = s.LastFailed.Reason
			}
		case s.Latest != events.StageShipped || sb.Sends(o.OrderID) != 1 || len(s.Terminals) != 1:
			t.Errorf("batch-mate %s ended %q with %d sends, %d terminal events; want shipped once", o.OrderID, s.Latest, sb.Sends(o.OrderID), len(s.Terminals))
		}
	}
	faulttest.CheckChains(t, js, faulttest.OrderKeys(want))
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
	res := faulttest.Count(sb, tl, want)
	record(t, 12, "oversized input: one order's event larger than the server's max payload", res, start, fmt.Sprintf(
		"max_payload %d KiB; order %s's waybill print_html %d KiB: it failed alone (%q), its %d batch-mates shipped once each; the order API bounds every field (order id ≤ %d, delivery_id and waybill_id ≤ %d, ≤ %d products of 1…%d) and answers 400/413 before storing (TestDecodeOrderRequest)",
		maxPayload>>10, big, (maxPayload+1024)>>10, reason, n-1, events.MaxOrderIDLen, events.MaxDeliveryIDLen, events.MaxProducts, events.MaxProductCnt))
}
