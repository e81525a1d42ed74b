package ctl

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/service"
)

// connectTimeout bounds how long an operator command waits for NATS.
const connectTimeout = 10 * time.Second

// connect dials NATS_URL (with NATS_CREDS) for an operator command; failed
// attempts are reported on stderr.
func connect(ctx context.Context, e Env) (*nats.Conn, jetstream.JetStream, error) {
	url := e.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	log := zerolog.New(zerolog.ConsoleWriter{Out: e.Stderr, NoColor: true}).Level(zerolog.WarnLevel)
	nc, js, err := service.Connect(ctx, url, e.Getenv("NATS_CREDS"), "fulfillctl", log)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (set NATS_URL)", err)
	}
	return nc, js, nil
}
