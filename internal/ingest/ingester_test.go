package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

var someProducts = []events.Product{{ProductID: "p1", SkuID: "s1", ProductCnt: 2}}

// An order polled from Channels and posted to the API at the same moment,
// by several replicas, is one received event: whichever is stored first.
func TestOneReceivedEventPerOrderWhateverTheSource(t *testing.T) {
	_, js, s := jstest.StartStream(t)
	newIn := func() *ingest.Ingester {
		return ingest.NewIngester(s, pipeline.NewPublisher(js), time.Hour, zerolog.Nop(), service.NewMetrics())
	}
	replicas := []*ingest.Ingester{newIn(), newIn(), newIn()}
	data := events.Received{DeliveryID: "SF", Products: someProducts}
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts, ids := 0, map[string]bool{}
	for i := range 24 {
		wg.Go(func() {
			src := []events.Source{events.SourceChannels, events.SourceAPI}[i%2]
			id, dup, err := replicas[i%3].Received(t.Context(), src, events.DefaultShop, "RACE-7", data)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[id] = true
			if !dup {
				firsts++
			}
		})
	}
	wg.Wait()
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("orders.received.>"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || len(ids) != 1 || firsts != 1 {
		t.Fatalf("%d received events, %d event ids answered, %d answers said first; want 1, 1, 1", info.State.Msgs, len(ids), firsts)
	}
	// The other source, with other content, hears that the first stands.
	_, _, err = newIn().Received(t.Context(), events.SourceAPI, events.DefaultShop, "RACE-7", events.Received{DeliveryID: "YTO", Products: someProducts})
	var conflict *ingest.ConflictError
	if !errors.As(err, &conflict) || !ids[conflict.EventID] {
		t.Fatalf("other content: %v, want a ConflictError naming the stored event", err)
	}
}

// The API answers "duplicate" only while the stream holds the order: once
// its event aged out, the order is taken in again (what was remembered in
// the process must not outlive the stream's memory).
func TestAPIDuplicateOnlyWhileTheStreamHoldsTheOrder(t *testing.T) {
	_, js := jstest.Start(t)
	cfg := events.StreamConfig(events.StreamLimits{Replicas: 1, MaxAge: time.Second})
	cfg.Duplicates = 500 * time.Millisecond
	s, err := js.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := ingest.NewIngester(s, pipeline.NewPublisher(js), time.Second, zerolog.Nop(), service.NewMetrics())
	hs := httptest.NewServer((&ingest.API{In: in, Token: testToken}).Handler())
	t.Cleanup(hs.Close)
	post := func() ingest.OrderResponse {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, hs.URL+"/v1/orders", bytes.NewReader(orderBody("AGED-1")))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out ingest.OrderResponse
		if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&out) != nil {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return out
	}
	if first := post(); first.Duplicate {
		t.Fatal("first post answered duplicate")
	}
	if again := post(); !again.Duplicate {
		t.Fatal("second post, while the stream holds the order, not a duplicate")
	}
	// The server ages the event out on its own clock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := s.Info(t.Context())
		if err == nil && info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event did not age out")
		}
		<-time.After(50 * time.Millisecond)
	}
	if after := post(); after.Duplicate {
		t.Fatal("after the event aged out the API still answered duplicate, with nothing stored")
	}
	if info, _ := s.Info(t.Context()); info.State.Msgs != 1 {
		t.Fatalf("%d messages after the re-post, want 1", info.State.Msgs)
	}
}

// A full stream refuses new orders with a 503 that says so, at once, and
// loses none it took.
func TestAPIAnswers503WhenTheStreamIsFull(t *testing.T) {
	_, js := jstest.Start(t)
	s, err := js.CreateStream(t.Context(), events.StreamConfig(events.StreamLimits{Replicas: 1, MaxAge: time.Hour, MaxBytes: 4 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	pub := pipeline.NewPublisher(js)
	pub.GiveUpWhenFull = true
	in := ingest.NewIngester(s, pub, time.Hour, zerolog.Nop(), service.NewMetrics())
	hs := httptest.NewServer((&ingest.API{In: in, Token: testToken, StoreTimeout: 30 * time.Second}).Handler())
	t.Cleanup(hs.Close)
	accepted := 0
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/v1/orders", bytes.NewReader(orderBody("FULL-"+string(rune('A'+i%26))+string(rune('a'+i/26)))))
		req.Header.Set("Authorization", "Bearer "+testToken)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var body ingest.APIError
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			accepted++
			if i > 500 {
				t.Fatal("the stream never filled")
			}
			continue
		}
		if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains([]byte(body.Error), []byte("full")) {
			t.Fatalf("status %d %q, want 503 saying the stream is full", resp.StatusCode, body.Error)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the full stream was answered after %s, not at once", d)
		}
		break
	}
	if info, _ := s.Info(t.Context()); int(info.State.Msgs) != accepted || accepted == 0 {
		t.Fatalf("%d orders accepted, %d stored", accepted, info.State.Msgs)
	}
}
