package bench

import (
	"testing"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestWithoutGate: the order/list/get calls the gate refused before the
// measured part are not the pipeline's calls per order.
func TestWithoutGate(t *testing.T) {
	tests := []struct {
		name     string
		calls    int
		gated    int
		want     int
		wantKept bool
	}{
		{"some gated", 10, 4, 6, true},
		{"none gated", 10, 0, 10, true},
		{"all gated", 4, 4, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := sandbox.Stats{
				Calls:    map[string]int{sandbox.EndpointOrderList: tt.calls, sandbox.EndpointOrderGet: 7},
				ErrCodes: map[string]map[int]int{sandbox.EndpointOrderList: {gateCode: tt.gated, 0: tt.calls - tt.gated}},
			}
			got := withoutGate(st)
			n, kept := got.Calls[sandbox.EndpointOrderList]
			if n != tt.want || kept != tt.wantKept || got.Calls[sandbox.EndpointOrderGet] != 7 {
				t.Errorf("calls %v, want order/list/get %d (present %v) and order/get 7", got.Calls, tt.want, tt.wantKept)
			}
		})
	}
}
