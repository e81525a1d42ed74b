package shipper

import (
	"testing"
	"time"

	"github.com/fulfill/pipeline/pkg/clients/wechat"
)

// TestBreaker: a shop backs off after breakAfter failed calls in a row,
// lets one probe out at doubling intervals, parks its orders spread out in
// the meantime, recovers on the first answer, and leaves other shops
// alone; each change of state is told once.
func TestBreaker(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var changes []string
	b := newBreaker(time.Second, 4*time.Second, func(shop string, st ShopStatus) { changes = append(changes, shop+":"+string(st.State)) })
	b.now = func() time.Time { return now }
	fail := func(shop string) { b.record(shop, wechat.ClassTransient, -1, 100*time.Millisecond) }

	for range breakAfter - 1 {
		fail("b")
	}
	if ok, _, _ := b.allow("b", 8); !ok || b.Status("b").State != ShopOK {
		t.Fatalf("shop b backs off after %d failures, want %d", breakAfter-1, breakAfter)
	}
	b.record("b", wechat.ClassWait, 10020115, 0) // an answer: the count starts again
	for range breakAfter {
		fail("b")
	}
	b.record("b", wechat.ClassTransient, 45011, 0) // one order's own code among the outage's
	if st := b.Status("b"); st.State != ShopOK {
		t.Fatalf("a burst of %d failures at one moment: %+v, want still ok (the orders' own bad luck)", breakAfter+1, st)
	}
	now = now.Add(breakSpan)
	fail("b")
	if st := b.Status("b"); st.State != ShopBackingOff || st.Errcode != -1 {
		t.Fatalf("after failures in a row for %v: %+v, want backing_off with the commonest errcode, -1", breakSpan, st)
	}
	if ok, _, _ := b.allow("a", 8); !ok {
		t.Fatal("shop a is held back by shop b's failures")
	}

	// Parked orders come back no sooner than the probe, one call apart.
	var waits []time.Duration
	for range 3 {
		ok, wait, _ := b.allow("b", 8)
		if ok {
			t.Fatal("an order of a backing-off shop was let out before its probe was due")
		}
		waits = append(waits, wait)
	}
	if waits[0] < time.Second || waits[2] <= waits[0] {
		t.Errorf("parked for %v; want at least the 1s to the probe, each later than the one before", waits)
	}

	// The probe is due: one call goes out, not two.
	now = now.Add(time.Second)
	if ok, _, _ := b.allow("b", 8); !ok {
		t.Fatal("no probe when it was due")
	}
	if ok, _, _ := b.allow("b", 8); ok {
		t.Fatal("a second call while the probe is under way")
	}
	// The probe fails: the next one is twice as far, then capped.
	fail("b")
	for _, gap := range []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} {
		now = now.Add(gap - time.Millisecond)
		if ok, _, _ := b.allow("b", 8); ok {
			t.Fatalf("probe let out before its %v interval", gap)
		}
		now = now.Add(time.Millisecond)
		if ok, _, _ := b.allow("b", 8); !ok {
			t.Fatalf("no probe after its %v interval", gap)
		}
		fail("b")
	}
	// A probe that never reports (its order was settled before calling)
	// is given up.
	now = now.Add(4 * time.Second)
	if ok, _, _ := b.allow("b", 8); !ok {
		t.Fatal("no probe")
	}
	now = now.Add(probeTimeout + time.Second)
	if ok, _, _ := b.allow("b", 8); !ok {
		t.Fatal("a lost probe blocks the shop for good")
	}
	b.record("b", wechat.ClassOK, 0, 0)
	if st := b.Status("b"); st.State != ShopOK {
		t.Fatalf("after an answer: %+v, want ok", st)
	}
	if len(changes) != 2 || changes[0] != "b:backing_off" || changes[1] != "b:ok" {
		t.Errorf("changes told %v, want b:backing_off then b:ok, once each", changes)
	}

	// A token that cannot be had is a state of its own.
	for range breakAfter {
		b.record("c", wechat.ClassToken, 40001, 0)
	}
	now = now.Add(breakSpan)
	b.record("c", wechat.ClassToken, 40001, 0)
	if st := b.Status("c"); st.State != ShopTokenRefused {
		t.Errorf("token failures: %+v, want token_refused", st)
	}
}
