package ingest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
)

const testToken = "t0ken-Ω-0123456789"

// apiEnv is the order API over a real embedded JetStream.
type apiEnv struct {
	URL     string
	JS      jetstream.JetStream
	Stream  jetstream.Stream
	Metrics *service.Metrics
}

func startAPI(t *testing.T) *apiEnv {
	t.Helper()
	_, js, stream := jstest.StartStream(t)
	m := service.NewMetrics()
	in := ingest.NewIngester(stream, pipeline.NewPublisher(js), time.Hour, zerolog.Nop(), m)
	// Short, so the tests of a NATS that cannot store see the 503 in
	// well under a second.
	api := &ingest.API{In: in, Token: testToken, StoreTimeout: 500 * time.Millisecond}
	hs := httptest.NewServer(api.Handler())
	t.Cleanup(hs.Close)
	return &apiEnv{URL: hs.URL, JS: js, Stream: stream, Metrics: m}
}

type apiResult struct {
	Status int
	Header http.Header
	Body   []byte
}

func (a *apiEnv) post(t *testing.T, auth string, body []byte) apiResult {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, a.URL+"/v1/orders", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/orders: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apiResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (a *apiEnv) postOK(t *testing.T, body []byte) ingest.OrderResponse {
	t.Helper()
	r := a.post(t, "Bearer "+testToken, body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.Status, r.Body)
	}
	var out ingest.OrderResponse
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("202 body %q: %v", r.Body, err)
	}
	return out
}

// msgs is the number of messages in ORDERS, optionally on one subject.
func (a *apiEnv) msgs(t *testing.T, subject string) uint64 {
	t.Helper()
	if subject == "" {
		info, err := a.Stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	info, err := a.Stream.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func orderBody(orderID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"order_id":    orderID,
		"delivery_id": "SF",
		"products":    []map[string]any{{"product_id": "p1", "sku_id": "s1", "product_cnt": 2}},
	})
	return b
}

func subjectOf(orderID string) string { return "orders.received.api.default." + orderID }
