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
type Hold struct {
	msgs  []jetstream.Msg
	every time.Duration

	mu    sync.Mutex
	lease Renewer

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// StartHold starts the heartbeats of msgs (one message, or a batch), every
// interval, until Stop.
func StartHold(every time.Duration, msgs ...jetstream.Msg) *Hold {
	h := &Hold{msgs: msgs, every: every, done: make(chan struct{})}
	h.wg.Go(h.beat)
	return h
}

func (h *Hold) beat() {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		for _, m := range h.msgs {
			_ = m.InProgress()
		}
		h.mu.Lock()
		l := h.lease
		h.mu.Unlock()
		if l != nil {
			// A renewal slower than a beat is as good as lost: the next
			// beat tries again, and the lease's holder checks it is still
			// valid before every call.
			ctx, cancel := context.WithTimeout(context.Background(), h.every)
			_ = l.Renew(ctx)
			cancel()
		}
	}
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
	h.once.Do(func() { close(h.done); h.wg.Wait() })
}
