package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fulfill/pipeline/pkg/events"
)

// LeaderRecord is OrderRecord read from the stream's leader, through the
// JetStream API ($JS.API.STREAM.MSG.GET) instead of a direct get.
//
// A direct get may be answered by any replica of a clustered stream, and
// nats-server lets a follower answer once it is 90% caught up: after a
// node restarts it can miss events stored seconds or more before. The
// leader has applied every event it acknowledged. Its reads cost the
// server several times a direct get's (a JSON reply with the message in
// base64, through the API queue), so the shipper makes them only where a
// terminal event is likely to be recent: a redelivered message, a re-drive
// copy, a publish the server refused. The request is made here because
// the jetstream package's GetLastMsgForSubject always takes the direct get
// when the stream allows it.
type LeaderRecord struct {
	nc      *nats.Conn
	subject string
}

// NewLeaderRecord reads the stream named stream through nc, with the
// default JetStream API prefix.
func NewLeaderRecord(nc *nats.Conn, stream string) *LeaderRecord {
	return &LeaderRecord{nc: nc, subject: "$JS.API.STREAM.MSG.GET." + stream}
}

// msgGetResponse is the API's answer to a message get: the message, or an
// error (10037: no message found).
type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     uint16 `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Message *struct {
		Subject  string `json:"subject"`
		Sequence uint64 `json:"seq"`
		Data     []byte `json:"data"` // base64 in JSON
	} `json:"message"`
}

// defaultAPITimeout bounds a read whose ctx has no deadline, as the
// jetstream package's own API calls are.
const defaultAPITimeout = 5 * time.Second

// errCodeMessageNotFound is JetStream's error code of a get that found no
// message (JSNoMessageFoundErr).
const errCodeMessageNotFound = 10037

// Last returns the order's latest event of stage and its stream sequence,
// as the stream's leader has it, or nil and 0 if it has none.
func (r *LeaderRecord) Last(ctx context.Context, stage events.Stage, shop, orderID string) (*events.Envelope, uint64, error) {
	filter, err := events.OrderFilter(stage, shop, orderID)
	if err != nil {
		return nil, 0, err
	}
	what := func() string { return fmt.Sprintf("%s record of %s", stage, events.OrderKey(shop, orderID)) }
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{filter})
	if err != nil {
		return nil, 0, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultAPITimeout)
		defer cancel()
	}
	m, err := r.nc.RequestWithContext(ctx, r.subject, req)
	if err != nil { // nats.ErrNoResponders: no leader right now (an election)
		return nil, 0, fmt.Errorf("look up the %s from the leader: %w", what(), err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("look up the %s from the leader: %w", what(), err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == errCodeMessageNotFound:
		return nil, 0, nil
	case resp.Error != nil:
		return nil, 0, fmt.Errorf("look up the %s from the leader: %s (%d, err_code %d)", what(), resp.Error.Description, resp.Error.Code, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, 0, fmt.Errorf("look up the %s from the leader: an answer with neither message nor error", what())
	}
	env, err := events.Decode(resp.Message.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("%s at seq %d: %w", what(), resp.Message.Sequence, err)
	}
	return env, resp.Message.Sequence, nil
}
