// Package jstest gives a test a real embedded JetStream server and a
// connection to it, stopped when the test ends: the one way the unit tests
// of this module reach NATS.
package jstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/pkg/events"
)

// Start runs a server with JetStream in t's temporary directory and
// connects to it.
func Start(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := embednats.Start(embednats.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js, err := service.Connect(ctx, srv.ClientURL(), "", "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// StartStream is Start plus the ORDERS stream, as the services create it.
func StartStream(t testing.TB) (*nats.Conn, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	nc, js := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, _, err := service.EnsureStream(ctx, js, events.StreamLimits{Replicas: 1, MaxAge: time.Hour}, false)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, s
}

// LastOn is the last message stored on subject of the ORDERS stream.
func LastOn(t testing.TB, js jetstream.JetStream, subject string) (*jetstream.RawStreamMsg, error) {
	t.Helper()
	s, err := js.Stream(t.Context(), events.StreamName)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(t.Context(), subject)
}
