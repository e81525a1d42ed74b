package wechat

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestRateLimitPerEndpoint: a limit applies to its endpoint only, and waiting
// honours the context.
func TestRateLimitPerEndpoint(t *testing.T) {
	lr := newLeakRecorder(t)
	var cl callLog
	srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"errcode":0,"order":{"order_id":"1"}}`)
	})
	// One call per hour on order/get, burst 1.
	c := staticClient(srv, WithRateLimit(EndpointOrderGet, rate.Every(time.Hour), 1))
	ctx := context.Background()

	_, err := c.GetOrder(ctx, "1")
	lr.record(err)
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.GetOrder(short, "1")
	lr.record(err)
	if err == nil || Classify(err) != ClassTransient {
		t.Errorf("second call: %v (%v), want a transient rate-limit error", err, Classify(err))
	}
	cancelled, cancel2 := context.WithCancel(ctx)
	cancel2()
	_, err = c.GetOrder(cancelled, "1")
	lr.record(err)
	if err == nil {
		t.Error("call with a cancelled context passed the limiter")
	}
	if n := cl.count(EndpointOrderGet.Path()); n != 1 {
		t.Errorf("%d order/get calls, want 1", n)
	}
	// Another endpoint is not limited.
	for range 20 {
		err := c.SendDelivery(ctx, SendDeliveryRequest{OrderID: "1"})
		lr.record(err)
		if err != nil {
			t.Fatalf("delivery/send: %v", err)
		}
	}
	// rate.Inf removes a limit.
	c2 := staticClient(srv, WithRateLimit(EndpointOrderGet, rate.Every(time.Hour), 1), WithRateLimit(EndpointOrderGet, rate.Inf, 0))
	for range 3 {
		_, err := c2.GetOrder(ctx, "1")
		lr.record(err)
		if err != nil {
			t.Fatalf("unlimited: %v", err)
		}
	}
}

// TestRateLimitBurst: burst calls pass at once, then callers wait their turn.
func TestRateLimitBurst(t *testing.T) {
	lr := newLeakRecorder(t)
	var cl callLog
	srv := newServer(t, &cl, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, okBody) })
	c := staticClient(srv, WithRateLimit(EndpointDeliverySend, rate.Every(time.Hour), 3))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var failed int
	for range 5 {
		err := c.SendDelivery(ctx, SendDeliveryRequest{OrderID: "1"})
		lr.record(err)
		if err != nil {
			failed++
		}
	}
	if n := cl.count(""); n != 3 || failed != 2 {
		t.Errorf("%d calls made, %d refused; want 3 and 2", n, failed)
	}
}
