package pipeline_test

import (
	"errors"
	"testing"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

func TestDecodeInput(t *testing.T) {
	rcv := newEnv(t, events.StageReceived, events.SourceChannels, "7", received(), nil, "")
	enr := newEnv(t, events.StageEnriched, events.SourceChannels, "7", events.Enriched{DeliveryID: "SF", WaybillID: "W",
		Products: []events.Product{{ProductID: "1", SkuID: "2", ProductCnt: 1}}}, rcv, "")
	body := func(e *events.Envelope) []byte {
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		subject string
		body    []byte
		wantErr error
	}{
		{"the stage's own event", "orders.enriched.channels.default.7", body(enr), nil},
		{"another stage's event", "orders.enriched.channels.default.7", body(rcv), events.ErrMalformed},
		{"an envelope for another subject", "orders.enriched.channels.default.8", body(enr), events.ErrMalformed},
		{"not JSON", "orders.enriched.channels.default.7", []byte("{"), events.ErrMalformed},
		{"a version from the future", "orders.enriched.channels.default.7", []byte(`{"version":9}`), events.ErrUnsupportedVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, data, err := pipeline.DecodeInput[events.Enriched](&jstest.Msg{Subj: tt.subject, Body: tt.body}, events.StageEnriched)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && (env.ID != enr.ID || data.WaybillID != "W") {
				t.Fatalf("decoded %+v %+v", env, data)
			}
		})
	}
}
