package service_test

import (
	"context"
	"errors"
	"fmt"
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
	week := events.StreamLimits{Replicas: 1, MaxAge: 168 * time.Hour, MaxBytes: 1 << 30}
	s, diff, err := service.EnsureStream(ctx, js, week, false)
	if err != nil || len(diff) != 0 {
		t.Fatalf("create: %v, differences %v", err, diff)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.Name != events.StreamName || c.MaxAge != 168*time.Hour || c.Retention != jetstream.LimitsPolicy ||
		c.MaxBytes != 1<<30 || c.Discard != jetstream.DiscardNew {
		t.Errorf("stream %+v", info.Config)
	}
	if _, err := js.Publish(ctx, "orders.received.api.default.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A replica started with a shorter max age must not weaken the shared
	// stream: it is kept, and the difference reported.
	hour := events.StreamLimits{Replicas: 1, MaxAge: time.Hour, MaxBytes: 1 << 30}
	s, diff, err = service.EnsureStream(ctx, js, hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) != 1 || !strings.Contains(diff[0], "max_age: have 168h0m0s, want 1h0m0s") {
		t.Errorf("differences %q, want the max age", diff)
	}
	if info, _ := s.Info(ctx); info.Config.MaxAge != 168*time.Hour {
		t.Errorf("the stream's max age became %v without STREAM_UPDATE", info.Config.MaxAge)
	}
	// Asked to, it updates the stream and keeps its data.
	s, diff, err = service.EnsureStream(ctx, js, hour, true)
	if err != nil || len(diff) != 1 {
		t.Fatalf("update: %v, differences %v", err, diff)
	}
	info, err = s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != time.Hour || info.State.Msgs != 1 {
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

// EnsureStream must not retry permanent configuration errors (replicas
// above the cluster size, subjects overlapping another stream): a binary
// started with a bad STREAM_REPLICAS reports it at once.
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
	if _, _, err := service.EnsureStream(ctx, js, events.StreamLimits{Replicas: 3, MaxAge: time.Hour}, false); err == nil {
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

// Credentials the server refuses fail the start at once, naming the cause
// and not the credentials: retrying will not change them.
func TestConnectFailsFastOnRefusedCredentials(t *testing.T) {
	srv, err := embednats.Start(embednats.Options{StoreDir: t.TempDir(), Token: "right-token-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	url := strings.Replace(srv.ClientURL(), "nats://", "nats://wrong-token-2@", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, _, err = service.Connect(ctx, url, "", "test", zerolog.Nop())
	if !errors.Is(err, nats.ErrAuthorization) || strings.Contains(err.Error(), "wrong-token-2") {
		t.Fatalf("Connect with a wrong token = %v; want an authorization error without the token", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a refused credential took %s to report", d)
	}
}

// TestRetry: a setup step is retried while NATS is away (timeouts, no
// responders, a reconnecting connection) and given up at once on an error
// retrying cannot change, so a service started during a NATS restart waits
// for it instead of exiting.
func TestRetry(t *testing.T) {
	permanent := errors.New("consumer config conflicts")
	for _, tc := range []struct {
		name      string
		errs      []error // returned by the attempts in turn, then nil
		wantCalls int
		wantErr   error
	}{
		{"first attempt", nil, 1, nil},
		{"timeouts then success", []error{context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders}, 4, nil},
		{"reconnecting then success", []error{nats.ErrConnectionReconnecting, nats.ErrDisconnected}, 3, nil},
		{"503 then success", []error{&jetstream.APIError{Code: 503}}, 2, nil},
		{"a peer's new stream or bucket not visible yet, then success", []error{
			fmt.Errorf("bucket X: %w", &jetstream.APIError{Code: 404, ErrorCode: jetstream.JSErrCodeStreamNotFound, Description: "stream not found"}),
			jetstream.ErrStreamNotFound, jetstream.ErrBucketNotFound}, 4, nil},
		{"permanent at once", []error{permanent}, 1, permanent},
		{"API 400 at once", []error{&jetstream.APIError{Code: 400}}, 1, &jetstream.APIError{Code: 400}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := service.Retry(t.Context(), func(ctx context.Context) error {
				if _, ok := ctx.Deadline(); !ok {
					t.Error("attempt without its own deadline")
				}
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls {
				t.Errorf("%d attempts, want %d", calls, tc.wantCalls)
			}
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && (err == nil || err.Error() != tc.wantErr.Error()) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	t.Run("until ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := service.Retry(ctx, func(context.Context) error {
			calls++
			if calls == 2 {
				cancel()
			}
			return nats.ErrTimeout
		})
		if err == nil || calls != 2 {
			t.Errorf("err = %v after %d attempts; want an error after 2", err, calls)
		}
	})
}
