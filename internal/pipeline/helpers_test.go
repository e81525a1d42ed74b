package pipeline_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/pkg/events"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// startJS runs an embedded JetStream server for the test, without the
// ORDERS stream.
func startJS(t *testing.T) (*nats.Conn, jetstream.JetStream) { return jstest.Start(t) }

// startStream is startJS plus the ORDERS stream.
func startStream(t *testing.T) (*nats.Conn, jetstream.JetStream, jetstream.Stream) {
	return jstest.StartStream(t)
}

func countOn(t *testing.T, s jetstream.Stream, subject string) uint64 {
	t.Helper()
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func newEnv(t *testing.T, stage events.Stage, source events.Source, id string, data any, cause *events.Envelope, key string) *events.Envelope {
	t.Helper()
	e, err := events.New(events.Fact{Shop: events.DefaultShop, Stage: stage, Source: source, OrderID: id, Key: key, Cause: cause, Data: data}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// observedJS is the real JetStream with a hook on PublishMsgAsync, so a
// test can see a publisher's attempts without sleeping.
type observedJS struct {
	jetstream.JetStream
	mu     sync.Mutex
	calls  int
	onCall map[int]chan struct{} // closed when call n starts
}

func observe(js jetstream.JetStream) *observedJS {
	return &observedJS{JetStream: js, onCall: map[int]chan struct{}{}}
}

// called is closed when the n-th PublishMsgAsync call starts.
func (o *observedJS) called(n int) <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls >= n {
		c := make(chan struct{})
		close(c)
		return c
	}
	if _, ok := o.onCall[n]; !ok {
		o.onCall[n] = make(chan struct{})
	}
	return o.onCall[n]
}

func (o *observedJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	o.mu.Lock()
	o.calls++
	if c, ok := o.onCall[o.calls]; ok {
		close(c)
		delete(o.onCall, o.calls)
	}
	o.mu.Unlock()
	return o.JetStream.PublishMsgAsync(m, opts...)
}

func (o *observedJS) Calls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}
