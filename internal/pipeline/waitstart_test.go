package pipeline_test

import (
	"sync"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/internal/pipeline"
)

// TestWaitStartsNoteTheFirstWaitOnce: the first waiting answer of a message
// is noted once, whichever of several replicas (here goroutines, each with
// its own handle on the bucket) sees it first; later answers read that
// moment; another message (a copy of the order) has its own; the bucket
// reopened keeps it (a restart).
func TestWaitStartsNoteTheFirstWaitOnce(t *testing.T) {
	_, js, _ := jstest.StartStream(t)
	t0 := time.UnixMilli(time.Now().UnixMilli())
	var wg sync.WaitGroup
	got := make([]time.Time, 8)
	for i := range got {
		wg.Go(func() {
			w, err := pipeline.OpenWaitStarts(t.Context(), js, time.Hour, 1)
			if err != nil {
				t.Error(err)
				return
			}
			got[i], err = w.FirstWait(t.Context(), 42, t0.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range got {
		if !got[i].Equal(got[0]) {
			t.Fatalf("replicas disagree on the first wait: %v", got)
		}
	}
	if got[0].Before(t0) || got[0].After(t0.Add(8*time.Millisecond)) {
		t.Errorf("first wait %v, want one of the moments asked (from %v)", got[0], t0)
	}

	w, err := pipeline.OpenWaitStarts(t.Context(), js, 2*time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if w.TTL() != time.Hour {
		t.Errorf("reopened bucket TTL %s, want its own 1h", w.TTL())
	}
	if later, err := w.FirstWait(t.Context(), 42, t0.Add(time.Hour)); err != nil || !later.Equal(got[0]) {
		t.Errorf("later answer: %v, %v; want the first wait %v", later, err, got[0])
	}
	if other, err := w.FirstWait(t.Context(), 43, t0.Add(time.Minute)); err != nil || !other.Equal(t0.Add(time.Minute)) {
		t.Errorf("another message: %v, %v; want its own first wait %v", other, err, t0.Add(time.Minute))
	}
}
