package pipeline

import (
	"errors"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrDecided is returned for a terminal event the server refused because
// the order's record changed since it was read: another copy, replica or
// replay recorded the order's outcome first. The event must not be made
// again; the input that led to it is settled.
var ErrDecided = errors.New("the order's outcome was already recorded")

// ErrStreamFull is returned for an event the stream refused because it is
// full (its max bytes reached, with DiscardNew): nothing stored is dropped,
// and nothing new is taken until old events age out or the bound is raised.
var ErrStreamFull = errors.New("the ORDERS stream is full")

// full reports whether err is the server refusing a write to a full stream.
func full(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed && strings.Contains(apiErr.Description, "maximum bytes")
}

// errCodeStoreFailed is nats-server's JSStreamStoreFailedF; a full stream
// answers it with "maximum bytes exceeded".
const errCodeStoreFailed jetstream.ErrorCode = 10077

// ExpectLast makes JetStream store m only if the last message on filter (a
// subject with wildcards, e.g. orders.shipped.*.<shop>.<order_id>) has stream
// sequence seq, 0 meaning "none at all". The server checks it atomically
// with the write, so of two replicas racing to record an order's outcome
// exactly one succeeds whatever they read before.
func ExpectLast(m *nats.Msg, filter string, seq uint64) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
	m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, filter)
}

// conflict reports whether err is the server refusing an ExpectLast
// publish: 10071, or 10164 from a replicated stream.
func conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
