package jstest

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is a jetstream.Msg held in memory, for unit tests of code that
// settles messages: it records how it was settled.
type Msg struct {
	Subj string
	Body []byte
	Hdr  nats.Header
	Meta jetstream.MsgMetadata

	mu         sync.Mutex
	settled    string // "ack", "nak", "term"
	nakDelay   time.Duration
	inProgress int
}

// Settled is how the message was settled ("ack", "nak", "term" or "") and
// the delay of a NakWithDelay.
func (m *Msg) Settled() (string, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settled, m.nakDelay
}

// InProgressCount is how many times InProgress was called.
func (m *Msg) InProgressCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inProgress
}

func (m *Msg) settle(how string, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled, m.nakDelay = how, d
	return nil
}

// Metadata returns Meta.
func (m *Msg) Metadata() (*jetstream.MsgMetadata, error) { md := m.Meta; return &md, nil }

// Data returns Body.
func (m *Msg) Data() []byte { return m.Body }

// Headers returns Hdr.
func (m *Msg) Headers() nats.Header { return m.Hdr }

// Subject returns Subj.
func (m *Msg) Subject() string { return m.Subj }

// Reply is empty: nothing answers it.
func (m *Msg) Reply() string { return "" }

// Ack records an ack.
func (m *Msg) Ack() error { return m.settle("ack", 0) }

// DoubleAck records an ack.
func (m *Msg) DoubleAck(context.Context) error { return m.settle("ack", 0) }

// Nak records a nak.
func (m *Msg) Nak() error { return m.settle("nak", 0) }

// NakWithDelay records a nak and its delay.
func (m *Msg) NakWithDelay(d time.Duration) error { return m.settle("nak", d) }

// InProgress counts a heartbeat.
func (m *Msg) InProgress() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inProgress++
	return nil
}

// Term records a termination.
func (m *Msg) Term() error { return m.settle("term", 0) }

// TermWithReason records a termination.
func (m *Msg) TermWithReason(string) error { return m.settle("term", 0) }

var _ jetstream.Msg = (*Msg)(nil)
