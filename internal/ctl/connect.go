package ctl

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/config"
)

// connect dials NATS_URL (with NATS_CREDS) for an operator command.
func connect(ctx context.Context, e Env) (*nats.Conn, jetstream.JetStream, error) {
	url := e.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	opts := []nats.Option{nats.Name("fulfillctl")}
	if creds := e.Getenv("NATS_CREDS"); creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s (set NATS_URL): %w", config.RedactURLs(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}
