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

// TestHopMessage: a hop's message is the next stage's subject with the
// body and a Nats-Msg-Id of its own; the contract ceiling's shipped hop
// also asks the server to refuse it if its subject has a message already,
// as the shipper's shipped events do.
func TestHopMessage(t *testing.T) {
	for _, expectNone := range []bool{false, true} {
		h := rawHop{body: []byte("x"), next: "ceil.shipped.", expectNone: expectNone}
		m := h.message("42", "ceil.enriched.42")
		if m.Subject != "ceil.shipped.42" || string(m.Data) != "x" || m.Header.Get(jetstream.MsgIDHeader) != "ceil.shipped.ceil.enriched.42" {
			t.Errorf("expectNone %v: message %s %q, Nats-Msg-Id %q", expectNone, m.Subject, m.Data, m.Header.Get(jetstream.MsgIDHeader))
		}
		seq, subj := m.Header.Get(jetstream.ExpectedLastSubjSeqHeader), m.Header.Get(jetstream.ExpectedLastSubjSeqSubjHeader)
		if expectNone && (seq != "0" || subj != m.Subject) {
			t.Errorf("guarded message expects last %q on %q, want 0 on %s", seq, subj, m.Subject)
		}
		if !expectNone && (seq != "" || subj != "") {
			t.Errorf("unguarded message expects last %q on %q, want no expectation", seq, subj)
		}
	}
}
