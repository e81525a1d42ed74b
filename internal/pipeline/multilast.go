package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrMultiLastUnavailable is returned by MultiLast.Get when the server
// answered the request with an error status (a server too old for
// multi_last answers 408, a stream without direct gets has no responders).
var ErrMultiLastUnavailable = errors.New("multi_last direct get unavailable")

// MultiLast reads the latest message of each of several subjects of a
// stream in one direct get (the server's multi_last request): one request
// and, where none of the subjects has a message, one reply, where a direct
// get per subject costs a request and a reply each. The jetstream package
// has no such call, and orbit.go's jetstreamext.GetLastMsgsFor subscribes
// and unsubscribes an inbox per call: two more protocol operations per
// order, and a subscription change for the server to apply each time.
// MultiLast keeps one subscription on a wildcard inbox and routes the
// replies by their last token.
//
// Like any direct get, the answer may come from a replica that is not
// fully caught up (see LeaderRecord).
type MultiLast struct {
	nc      *nats.Conn
	subject string // $JS.API.DIRECT.GET.<stream>
	prefix  string // replies come to <prefix>.<n>

	mu      sync.Mutex
	sub     *nats.Subscription
	n       uint64
	waiting map[string]*replies
}

// replies are the messages answering one request, in their order. The
// subscription's handler must never block or drop one (a dropped reply is
// an event missing from the answer), and one filter can match many
// subjects, so they queue without bound; the server sends at most 1025.
type replies struct {
	mu    sync.Mutex
	msgs  []*nats.Msg
	ready chan struct{} // a send after each append, capacity 1
}

func (q *replies) push(m *nats.Msg) {
	q.mu.Lock()
	q.msgs = append(q.msgs, m)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default: // the reader has a wake-up pending already
	}
}

// take returns what has arrived since the last take.
func (q *replies) take() []*nats.Msg {
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs := q.msgs
	q.msgs = nil
	return msgs
}

// NewMultiLast reads the stream named stream through nc, with the default
// JetStream API prefix. Its inbox is subscribed at the first Get.
func NewMultiLast(nc *nats.Conn, stream string) *MultiLast {
	return &MultiLast{nc: nc, subject: "$JS.API.DIRECT.GET." + stream, prefix: nc.NewInbox(),
		waiting: make(map[string]*replies)}
}

// maxMultiLast is how many subjects one request may name: the server
// answers at most 1024 messages to a multi_last request (413 beyond).
const maxMultiLast = 1024

// Get returns the latest message of every subject that matches one of
// filters, in stream order; subjects with no message are left out. It
// waits until ctx ends, or 5 s if ctx has no deadline.
func (r *MultiLast) Get(ctx context.Context, filters ...string) ([]*jetstream.RawStreamMsg, error) {
	if len(filters) == 0 {
		return nil, nil
	}
	if len(filters) > maxMultiLast {
		return nil, fmt.Errorf("multi_last of %d subjects: at most %d per request", len(filters), maxMultiLast)
	}
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{filters})
	if err != nil {
		return nil, err
	}
	q := &replies{ready: make(chan struct{}, 1)}
	token, err := r.register(q)
	if err != nil {
		return nil, err
	}
	defer r.unregister(token)
	if err := r.nc.PublishMsg(&nats.Msg{Subject: r.subject, Reply: r.prefix + "." + token, Data: req}); err != nil {
		return nil, fmt.Errorf("multi_last request: %w", err)
	}
	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(defaultAPITimeout)
		defer t.Stop()
		timeout = t.C
	}
	var found []*jetstream.RawStreamMsg
	for {
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("multi_last request: %w", ctx.Err())
		case <-timeout:
			return nil, fmt.Errorf("multi_last request: %w", nats.ErrTimeout)
		}
		for _, m := range q.take() {
			if len(m.Data) == 0 && m.Header.Get(statusHeader) != "" {
				switch status := m.Header.Get(statusHeader); status {
				case "204": // end of the batch
					return found, nil
				case "404": // none of the subjects has a message
					return found, nil
				case "503":
					return nil, fmt.Errorf("%w: %w", ErrMultiLastUnavailable, nats.ErrNoResponders)
				default:
					return nil, fmt.Errorf("%w: status %s %s", ErrMultiLastUnavailable, status, m.Header.Get(descriptionHeader))
				}
			}
			msg, err := rawStreamMsg(m)
			if err != nil {
				return nil, err
			}
			found = append(found, msg)
		}
	}
}

// The headers in which nats.go hands on a reply's inline status.
const (
	statusHeader      = "Status"
	descriptionHeader = "Description"
)

// rawStreamMsg is one message of a direct get's reply, as its headers
// describe it.
func rawStreamMsg(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	subject := m.Header.Get(jetstream.SubjectHeader)
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if subject == "" || err != nil {
		return nil, fmt.Errorf("multi_last reply without a subject or sequence (headers %v)", m.Header)
	}
	return &jetstream.RawStreamMsg{Subject: subject, Sequence: seq, Header: m.Header, Data: m.Data}, nil
}

// register subscribes the inbox if it is not yet, and routes the replies
// of a new request to q.
func (r *MultiLast) register(q *replies) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sub == nil {
		sub, err := r.nc.Subscribe(r.prefix+".*", r.route)
		if err != nil {
			return "", fmt.Errorf("subscribe the multi_last inbox: %w", err)
		}
		// The subscription must be known to the server before the first
		// request goes out, or its replies find no one.
		if err := r.nc.Flush(); err != nil {
			_ = sub.Unsubscribe()
			return "", fmt.Errorf("subscribe the multi_last inbox: %w", err)
		}
		r.sub = sub
	}
	r.n++
	token := strconv.FormatUint(r.n, 36)
	r.waiting[token] = q
	return token, nil
}

func (r *MultiLast) unregister(token string) {
	r.mu.Lock()
	delete(r.waiting, token)
	r.mu.Unlock()
}

// route hands a reply to the request it answers; a reply to a request
// given up on (timed out) is dropped.
func (r *MultiLast) route(m *nats.Msg) {
	token := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	r.mu.Lock()
	q := r.waiting[token]
	r.mu.Unlock()
	if q != nil {
		q.push(m)
	}
}

// Close unsubscribes the inbox; Get subscribes it again if called after.
func (r *MultiLast) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sub == nil {
		return nil
	}
	err := r.sub.Unsubscribe()
	r.sub = nil
	return err
}
