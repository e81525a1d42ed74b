package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Renewer is a lease a Hold keeps alive with its heartbeats.
type Renewer interface {
	Renew(ctx context.Context) error
}

// Hold keeps fetched messages ours until they are settled. From the moment
// it starts it tells JetStream every interval that they are in progress, so
// neither a slow platform call, nor a backoff, nor a wait for a free worker
// lets the ack wait run out and a message go to another replica meanwhile;
// and once a lease is attached it renews that lease on the same beat, so
// both live exactly as long as the process holding them.
//
// A hold costs no goroutine until its first beat: most messages are settled
// long before one, and a goroutine and a ticker per message were a visible
// share of the shipper's CPU.
type Hold struct {
	msgs  []jetstream.Msg
	every time.Duration

	mu      sync.Mutex
	lease   Renewer
	timer   *time.Timer
	stopped bool
	beating chan struct{} // closed when the beat under way ends; nil if none
}

// StartHold starts the heartbeats of msgs (one message, or a batch), every
// interval, until Stop.
func StartHold(every time.Duration, msgs ...jetstream.Msg) *Hold {
	h := &Hold{msgs: msgs, every: every}
	h.mu.Lock()
	h.timer = time.AfterFunc(every, h.beat)
	h.mu.Unlock()
	return h
}

func (h *Hold) beat() {
	start := time.Now()
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	done := make(chan struct{})
	h.beating = done
	l := h.lease
	h.mu.Unlock()

	for _, m := range h.msgs {
		_ = m.InProgress()
	}
	if l != nil {
		// A renewal slower than a beat is as good as lost: the next
		// beat tries again, and the lease's holder checks it is still
		// valid before every call.
		ctx, cancel := context.WithTimeout(context.Background(), h.every)
		_ = l.Renew(ctx)
		cancel()
	}

	h.mu.Lock()
	h.beating = nil
	if !h.stopped {
		// At the same rate as a ticker: a slow beat does not push the
		// next one back.
		h.timer.Reset(max(h.every-time.Since(start), time.Millisecond))
	}
	h.mu.Unlock()
	close(done)
}

// Attach renews l with every heartbeat from now on.
func (h *Hold) Attach(l Renewer) {
	h.mu.Lock()
	h.lease = l
	h.mu.Unlock()
}

// Stop ends the heartbeats and waits for a beat in progress to finish; it
// neither settles the message nor releases the lease. Stopping twice is
// harmless.
func (h *Hold) Stop() {
	if done := h.stop(); done != nil {
		<-done
	}
}

// TryStop ends the heartbeats without waiting: it reports whether no beat
// is under way, so none will come after it; else Stop waits for that beat.
func (h *Hold) TryStop() bool { return h.stop() == nil }

// stop ends the heartbeats and returns the beat under way, if any.
func (h *Hold) stop() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	h.timer.Stop()
	return h.beating
}
