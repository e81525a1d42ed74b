package service_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

func startServer(t *testing.T) string {
	t.Helper()
	srv, err := embednats.Start(embednats.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

func TestConnectAndEnsureStream(t *testing.T) {
	url := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc, js, err := service.Connect(ctx, url, "", "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Fatal("Connect returned before connecting")
	}
	s, err := service.EnsureStream(ctx, js, 1, 168*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Name != events.StreamName || info.Config.MaxAge != 168*time.Hour || info.Config.Retention != jetstream.LimitsPolicy {
		t.Errorf("stream %+v", info.Config)
	}
	// A restart with another max age updates the stream and keeps its data.
	if _, err := js.Publish(ctx, "orders.received.api.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	s, err = service.EnsureStream(ctx, js, 1, 72*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	info, err = s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != 72*time.Hour || info.State.Msgs != 1 {
		t.Errorf("after update: max age %v, %d messages", info.Config.MaxAge, info.State.Msgs)
	}
}

func TestConnectGivesUpWithContext(t *testing.T) {
	// Nothing listens on this port.
	port, err := embednats.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, _, err = service.Connect(ctx, "nats://127.0.0.1:"+strconv.Itoa(port), "", "test", zerolog.Nop())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect to nothing = %v, want context.DeadlineExceeded", err)
	}
}

// KNOWN BUG S1: EnsureStream retries permanent configuration errors (replicas
// above the cluster size, subjects overlapping another stream) 100 times,
// 200 ms apart, so a binary started with a bad STREAM_REPLICAS sits ~23 s
// before it reports the error.
func TestEnsureStreamFailsFastOnPermanentErrors(t *testing.T) {
	url := startServer(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := service.EnsureStream(ctx, js, 3, time.Hour); err == nil {
		t.Fatal("replicas 3 on a single server accepted")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a permanent error took %v to report", d)
	}
}

func TestConnectErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, _, err := service.Connect(ctx, "nats://fulfill:s3cret-pw@127.0.0.1:1", "", "test", zerolog.Nop())
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("got %v, want an error without the password", err)
	}
}
