package shipper

import (
	"slices"
	"testing"
)

// TestFairQueueTakesShopsInTurn: workers take the shops with a slot free in
// turn; a shop whose slots are all busy waits without holding up the
// others; a shop with waitingFor(slots) waiting takes no more.
func TestFairQueueTakesShopsInTurn(t *testing.T) {
	q := newFairQueue[int](func(shop string) int {
		if shop == "a" {
			return 2 // holds 3: 2 slots, 1 waiting
		}
		return 1 // holds 2
	})
	for i := range 2 {
		if !q.push("a", i) {
			t.Fatalf("a's message %d refused", i)
		}
	}
	q.push("b", 10)
	q.push("c", 20)

	var order []string
	for range 4 {
		shop, _, ok := q.pop()
		if !ok {
			t.Fatal("queue closed early")
		}
		order = append(order, shop)
	}
	if !slices.Equal(order, []string{"a", "b", "c", "a"}) {
		t.Errorf("taken %v, want a b c a (in turn)", order)
	}
	// b's one slot is busy: its next message waits while a's goes.
	q.push("b", 11)
	if q.push("b", 12) {
		t.Fatal("b took a message with its slot busy and one waiting")
	}
	q.push("a", 2)
	if q.push("a", 99) {
		t.Fatal("a took a message with both slots busy and one waiting")
	}
	q.done("a")
	if shop, v, _ := q.pop(); shop != "a" || v != 2 {
		t.Errorf("took %s/%d, want a/2: b's slot is busy", shop, v)
	}
	q.done("b")
	if shop, v, _ := q.pop(); shop != "b" || v != 11 {
		t.Errorf("took %s/%d, want b/11 once its slot freed", shop, v)
	}
	if n := q.room(10); n != 10-4 {
		t.Errorf("room %d, want 6 (four under way: a 2, b 1, c 1)", n)
	}
	q.close()
	for _, s := range []string{"a", "a", "b", "c"} {
		q.done(s)
	}
	if _, _, ok := q.pop(); ok {
		t.Error("pop after close with nothing left answered a message")
	}
	if n := q.room(10); n != 0 {
		t.Errorf("room after close %d, want 0", n)
	}
}
