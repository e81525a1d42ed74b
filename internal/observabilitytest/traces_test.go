package observabilitytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tracing/otlptest"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

const apiToken = "traces-api-token-5e1d"

// The client's own trace, which the order posted to the API continues.
const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
)

// runTraced runs ingest, enricher and shipper in process, one after the
// other once ready, with env on top of the stack's, until every order of
// the sandbox is terminal (after post, if set, ran once the three are up),
// then stops them: stopping flushes their spans. It returns the orders and
// the services' logs.
func runTraced(t *testing.T, st *stack.Stack, env map[string]string, post func()) ([]sandbox.ScenarioOrder, string) {
	t.Helper()
	logs := &faulttest.SyncBuffer{}
	_, stop := startInOrder(t, st, logs, env)
	if post != nil {
		post()
	}
	want := st.Sandbox.Scenario()
	_, js := faulttest.Connect(t, st.NATSURL)
	faulttest.WaitTerminal(t, js, want, 2*time.Minute, logs)
	stop()
	return want, logs.String()
}

// correlations maps each order id to its chain's correlation id, from the
// received events in the stream.
func correlations(t *testing.T, js jetstream.JetStream) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"orders.received.>"}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			env, err := events.Decode(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			out[env.OrderID] = env.CorrelationID
		}
		if n == 0 {
			return out
		}
	}
}

// TestTracesFollowEachOrder runs the pipeline with tracing on, exporting to
// an OTLP/HTTP receiver, over orders found by the Channels poll and one
// posted to the order API by a client that traces its own calls (and whose
// delivery/send the platform refuses transiently at first). Each order
// must be one trace holding its ingest, enricher and shipper spans, each
// the child of the one before through the traceparent header, and its
// platform calls; and no span may carry a token, a secret or an order id.
func TestTracesFollowEachOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	rcv := otlptest.Start()
	defer rcv.Close()
	st := faulttest.StartStack(t, stack.Options{
		Sandbox: sandbox.Config{Seed: 18, Orders: 4, Faults: sandbox.NoFaults()},
		Env:     faulttest.FastEnv(nil),
	})
	port, err := embednats.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := "127.0.0.1:" + strconv.Itoa(port)
	var apiOrder sandbox.ScenarioOrder
	want, logs := runTraced(t, st, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
		// One poll, at start: the order added later comes through the API
		// only.
		"INGEST_POLL_INTERVAL": "1h",
		"INGEST_API_TOKEN":     apiToken, "INGEST_HTTP_ADDR": apiAddr,
	}, func() {
		// Once the poll's orders are done, the poll is over.
		_, js := faulttest.Connect(t, st.NATSURL)
		faulttest.WaitTerminal(t, js, st.Sandbox.Scenario(), time.Minute, nil)
		st.Sandbox.AddOrder(sandbox.ScenarioOrder{Fault: sandbox.FaultTransient, Code: 100003}, 1)
		sc := st.Sandbox.Scenario()
		apiOrder = sc[len(sc)-1]
		postTraced(t, "http://"+apiAddr, st.Sandbox, apiOrder)
	})
	if len(want) != 5 {
		t.Fatalf("%d orders, want 5", len(want))
	}
	if errs := rcv.Errors(); len(errs) > 0 {
		t.Fatalf("the receiver could not read what was exported: %v", errs)
	}
	spans := rcv.Spans()
	byID := map[string]otlptest.Span{}
	byTrace := map[string][]otlptest.Span{}
	services := map[string]bool{}
	for _, s := range spans {
		byID[s.SpanID] = s
		byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
		services[s.Service] = true
	}
	for _, svc := range []string{"fulfill-ingest", "fulfill-enricher", "fulfill-shipper"} {
		if !services[svc] {
			t.Errorf("no span from %s (services %v)", svc, services)
		}
	}

	_, js := faulttest.Connect(t, st.NATSURL)
	cids := correlations(t, js)
	for _, o := range want {
		t.Run(o.OrderID, func(t *testing.T) {
			cid := cids[o.OrderID]
			if cid == "" {
				t.Fatal("no received event")
			}
			var mine []otlptest.Span
			for _, s := range spans {
				if s.Attrs["fulfill.correlation_id"] == cid {
					mine = append(mine, s)
				}
			}
			one := func(name string) otlptest.Span {
				t.Helper()
				var found []otlptest.Span
				for _, s := range mine {
					if s.Name == name {
						found = append(found, s)
					}
				}
				if len(found) != 1 {
					t.Fatalf("%d %q spans of the order, want 1 (its spans: %v)", len(found), name, names(mine))
				}
				return found[0]
			}
			pub, enr, ship := one("ingest publish"), one("enricher enrich"), one("shipper ship")
			trace := pub.TraceID
			for _, s := range mine {
				if s.TraceID != trace {
					t.Errorf("span %s of the order is in trace %s, its publish in %s: want one trace per order", s.Name, s.TraceID, trace)
				}
			}
			if pub.Service != "fulfill-ingest" || enr.Service != "fulfill-enricher" || ship.Service != "fulfill-shipper" {
				t.Errorf("services %s, %s, %s", pub.Service, enr.Service, ship.Service)
			}
			if enr.ParentID != pub.SpanID || ship.ParentID != enr.SpanID {
				t.Errorf("enricher's parent %s (publish %s), shipper's parent %s (enricher %s): want each stage the child of the one before",
					enr.ParentID, pub.SpanID, ship.ParentID, enr.SpanID)
			}
			if enr.Attrs["fulfill.outcome"] != "enriched" || ship.Attrs["fulfill.outcome"] != "shipped" || pub.Attrs["fulfill.outcome"] != "stored" {
				t.Errorf("outcomes: publish %q, enrich %q, ship %q", pub.Attrs["fulfill.outcome"], enr.Attrs["fulfill.outcome"], ship.Attrs["fulfill.outcome"])
			}
			for _, s := range []otlptest.Span{pub, enr, ship} {
				if s.Attrs["fulfill.shop"] != events.DefaultShop || s.Attrs["fulfill.event_id"] == "" {
					t.Errorf("%s: attributes %v", s.Name, s.Attrs)
				}
			}

			// Everything in the trace is this order's, and it holds the
			// order's platform calls under the stage that made them.
			tr := byTrace[trace]
			calls := map[string][]otlptest.Span{}
			for _, s := range tr {
				if c := s.Attrs["fulfill.correlation_id"]; c != "" && c != cid {
					t.Errorf("trace %s holds %s of another order (correlation %s)", trace, s.Name, c)
				}
				if s.Kind == "CLIENT" {
					calls[s.Name] = append(calls[s.Name], s)
				}
			}
			sends := calls["channels/ec/order/delivery/send"]
			if len(sends) == 0 {
				t.Fatalf("no delivery/send span in the order's trace (%v)", names(tr))
			}
			for _, s := range sends {
				if s.ParentID != ship.SpanID || s.Service != "fulfill-shipper" || s.Attrs["fulfill.endpoint"] != s.Name {
					t.Errorf("delivery/send span: parent %s (ship %s), %v", s.ParentID, ship.SpanID, s.Attrs)
				}
			}
			last := sends[len(sends)-1]
			if last.Attrs["fulfill.errcode"] != "0" {
				t.Errorf("last delivery/send errcode %q, want 0", last.Attrs["fulfill.errcode"])
			}
			batch := calls["cgi-bin/express/business/order/batchget"]
			if len(batch) != 1 || batch[0].ParentID != enr.SpanID || len(batch[0].Links) != 1 || batch[0].Attrs["fulfill.shop"] != events.DefaultShop {
				t.Fatalf("batchGetOrder share %+v: want one, under the enricher span, linked to the call", batch)
			} else if call, ok := byID[batch[0].Links[0].SpanID]; !ok || call.Name != "enricher batchGetOrder" {
				t.Errorf("the share links to %+v, want the batch call's span", call)
			}

			if o.OrderID == apiOrder.OrderID {
				if trace != clientTraceID {
					t.Errorf("the API order's trace %s, want the client's %s", trace, clientTraceID)
				}
				req := byID[pub.ParentID]
				if req.Name != "POST /v1/orders" || req.Kind != "SERVER" || req.ParentID != clientSpanID || req.Attrs["http.response.status_code"] != "202" {
					t.Errorf("the publish's parent %+v, want the API request's server span under the client's", req)
				}
				if len(sends) < 2 || sends[0].Attrs["fulfill.errcode"] != "100003" || sends[0].Status != "ERROR" {
					t.Errorf("delivery/send calls %v: want the transient 100003 first, then the success", sends)
				}
				if ship.Attrs["fulfill.calls"] != strconv.Itoa(len(sends)) || ship.Attrs["fulfill.attempts"] != "1" {
					t.Errorf("ship span calls %q attempts %q, want %d calls in 1 attempt", ship.Attrs["fulfill.calls"], ship.Attrs["fulfill.attempts"], len(sends))
				}
				return
			}
			root := byID[pub.ParentID]
			if root.Name != "ingest order" || root.ParentID != "" || len(root.Links) != 1 {
				t.Fatalf("the publish's parent %+v, want the order's root span, linked to its poll", root)
			}
			if poll := byID[root.Links[0].SpanID]; poll.Name != "ingest poll" {
				t.Errorf("the order links to %+v, want the poll", poll)
			}
			if gets := calls["channels/ec/order/get"]; len(gets) != 1 || gets[0].ParentID != root.SpanID {
				t.Errorf("order/get spans %+v, want one under the order's root", gets)
			}
		})
	}

	// The poll's own trace holds its list calls; every service fetched a
	// token, each fetch a span under the work that needed it.
	var lists, tokens int
	for _, s := range spans {
		switch s.Name {
		case "channels/ec/order/list/get":
			if p := byID[s.ParentID]; p.Name != "ingest poll" {
				t.Errorf("order/list/get under %q, want the poll", p.Name)
			}
			lists++
		case "cgi-bin/stable_token":
			if s.ParentID == "" {
				t.Errorf("stable_token of %s without a parent", s.Service)
			}
			tokens++
		}
	}
	if lists == 0 || tokens < 3 {
		t.Errorf("%d order/list/get and %d stable_token spans: want the poll's and a token per service", lists, tokens)
	}

	// Nothing secret, nor any order id, in any span.
	secret := []string{sandbox.DefaultAppSecret, sandbox.DefaultVVToken, apiToken, "access_token", "openid"}
	secret = append(secret, st.Sandbox.Tokens()...)
	for _, o := range want {
		secret = append(secret, o.OrderID)
	}
	for _, s := range spans {
		for _, text := range s.Strings() {
			for _, x := range secret {
				if x != "" && strings.Contains(text, x) {
					t.Errorf("span %s of %s carries %q in %q", s.Name, s.Service, x, text)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("services' logs:\n%s", faulttest.Tail(logs, 40))
	}
}

// postTraced posts order o to the order API with a traceparent, as a
// client tracing its own calls would.
func postTraced(t *testing.T, base string, sb *sandbox.Sandbox, o sandbox.ScenarioOrder) {
	t.Helper()
	v, ok := sb.Order(o.OrderID)
	if !ok {
		t.Fatalf("no sandbox order %s", o.OrderID)
	}
	req := ingest.OrderRequest{OrderID: o.OrderID, DeliveryID: o.DeliveryID, WaybillID: o.WaybillID}
	for _, p := range v.Products {
		req.Products = append(req.Products, events.Product{ProductID: p.ProductID, SkuID: p.SkuID, ProductCnt: p.SkuCnt})
	}
	body, _ := json.Marshal(req)
	var resp *http.Response
	// The API listens a moment after ingest reports ready.
	for deadline := time.Now().Add(10 * time.Second); ; {
		hr, _ := http.NewRequest(http.MethodPost, base+"/v1/orders", bytes.NewReader(body))
		hr.Header.Set("Authorization", "Bearer "+apiToken)
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("traceparent", fmt.Sprintf("00-%s-%s-01", clientTraceID, clientSpanID))
		var err error
		if resp, err = http.DefaultClient.Do(hr); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/orders: %d %s", resp.StatusCode, got)
	}
}

func names(spans []otlptest.Span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Service + ":" + s.Name
	}
	return out
}

// TestNoExporterWithoutEndpoint runs the pipeline without
// OTEL_EXPORTER_OTLP_ENDPOINT while something listens where an OTLP
// exporter sends by default (127.0.0.1:4318): nothing may arrive there, and
// every service says tracing is off.
func TestNoExporterWithoutEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	rcv, err := otlptest.StartOn("127.0.0.1:4318")
	if err != nil {
		t.Skipf("the default OTLP port is taken here: %v", err)
	}
	defer rcv.Close()
	st := faulttest.StartStack(t, stack.Options{
		Sandbox: sandbox.Config{Seed: 19, Orders: 3, Faults: sandbox.NoFaults()},
		Env:     faulttest.FastEnv(nil),
	})
	_, logs := runTraced(t, st, nil, nil)
	if n := rcv.Requests(); n != 0 {
		t.Errorf("%d requests reached the default OTLP endpoint with tracing off", n)
	}
	if n := strings.Count(logs, `"tracing":false`); n != 3 {
		t.Errorf("%d services logged tracing off at start, want 3:\n%s", n, faulttest.Tail(logs, 20))
	}
}
