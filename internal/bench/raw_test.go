package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/jstest"
)

// TestRawLimit runs a few orders through the raw hops: every one reaches
// shipped (the chain's run returns only then), and the phase's stream is gone after.
func TestRawLimit(t *testing.T) {
	tests := []struct {
		name       string
		n, payload int
	}{
		{"one order", 1, 600},
		{"a few hundred", 300, 600},
		{"empty bodies", 20, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, js := jstest.Start(t)
			ctx := context.Background()
			v, err := rawChain(tt.n, tt.payload).run(ctx, nc.ConnectedUrl())
			if err != nil || v <= 0 {
				t.Fatalf("raw chain = %v, %v; want orders/s", v, err)
			}
			if _, err := js.Stream(ctx, rawStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("stream %s after the phase: %v, want it deleted", rawStream, err)
			}
		})
	}
}
