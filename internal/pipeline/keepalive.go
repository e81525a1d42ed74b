package pipeline

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KeepAlive tells JetStream every interval that msg is still being worked
// on (InProgress), so a slow platform call or a backoff longer than the ack
// wait does not get the message redelivered to another replica meanwhile.
// The returned func stops it and waits for it to end.
func KeepAlive(msg jetstream.Msg, every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}
