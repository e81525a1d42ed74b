package sandbox

import (
	"reflect"
	"testing"
	"time"
)

// A sandbox restarted with the same Epoch serves the same facts at the same
// times; the orders beyond the ones served before are dated at its start.
func TestEpochMakesRestartsServeTheSameFacts(t *testing.T) {
	epoch := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	later := epoch.Add(3 * time.Hour)
	first := New(Config{Seed: 3, Orders: 10, Epoch: epoch, Now: func() time.Time { return epoch }})
	again := New(Config{Seed: 3, Orders: 15, Epoch: epoch, Served: 10, Now: func() time.Time { return later }})
	for i, o := range first.Scenario() {
		a, _ := first.Order(o.OrderID)
		b, ok := again.Order(o.OrderID)
		if !ok || !a.UpdateTime.Equal(b.UpdateTime) {
			t.Errorf("order %d: update time %v, then %v after the restart", i, a.UpdateTime, b.UpdateTime)
		}
	}
	for _, o := range again.Scenario()[10:] {
		if v, _ := again.Order(o.OrderID); !v.UpdateTime.Equal(later) {
			t.Errorf("order %s, new with the restart, updated %v; want the restart's start %v", o.OrderID, v.UpdateTime, later)
		}
	}
	if !reflect.DeepEqual(first.vv.shops, New(Config{Seed: 3, Epoch: epoch, Now: func() time.Time { return later }}).vv.shops) {
		t.Error("the vv-tool shippings differ across a restart with the same epoch")
	}
}
