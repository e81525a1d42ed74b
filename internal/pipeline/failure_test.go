package pipeline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/pipeline"
	"github.com/fulfill/pipeline/pkg/events"
)

// fetchOne publishes raw bytes on subject and returns it as a consumer
// delivers it.
func fetchOne(t *testing.T, js jetstream.JetStream, s jetstream.Stream, subject string, raw []byte) jetstream.Msg {
	t.Helper()
	ack, err := js.Publish(t.Context(), subject, raw)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	c, err := s.CreateOrUpdateConsumer(t.Context(), jetstream.ConsumerConfig{
		FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: ack.Sequence,
	})
	if err != nil {
		t.Fatal(err)
	}
	return next(t, c)
}

func next(t *testing.T, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	b, err := c.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		return m
	}
	t.Fatalf("no message: %v", b.Error())
	return nil
}

func TestPoisonMsgValidSubject(t *testing.T) {
	_, js, s := startStream(t)
	raw := []byte("not JSON \x00\xff{")
	msg := fetchOne(t, js, s, "orders.received.api.default.3704612354559743232", raw)
	md, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("malformed event: invalid character 'o'")
	pm, err := pipeline.PoisonMsg(msg, "enricher", cause, t0)
	if err != nil {
		t.Fatal(err)
	}
	if pm.Subject != "orders.failed.api.default.3704612354559743232" {
		t.Errorf("subject = %q, want orders.failed.api.default.3704612354559743232", pm.Subject)
	}
	msgID := pm.Header.Get(jetstream.MsgIDHeader)
	if msgID == "" {
		t.Fatal("no Nats-Msg-Id")
	}
	env, err := events.Decode(pm.Data)
	if err != nil {
		t.Fatalf("poison record is not a valid envelope: %v", err)
	}
	if env.Stage() != events.StageFailed || env.Source != events.SourceAPI || env.OrderID != "3704612354559743232" {
		t.Errorf("envelope %+v", env)
	}
	if env.MsgID() != env.ID || pm.Header.Get(events.HeaderEventType) != "order.failed" {
		t.Errorf("headers %v", pm.Header)
	}
	var f events.Failed
	if err := env.DecodeData(&f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Raw, raw) {
		t.Errorf("raw bytes not kept: %q, want %q", f.Raw, raw)
	}
	if f.Stage != "enricher" || f.Errmsg != cause.Error() || f.OriginalSubject != msg.Subject() || f.OriginalSeq != md.Sequence.Stream || f.Reason == "" {
		t.Errorf("failed payload %+v", f)
	}

	// Deterministic: built again later (a redelivery after a crash), same id.
	pm2, err := pipeline.PoisonMsg(msg, "enricher", errors.New("another wording"), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := pm2.Header.Get(jetstream.MsgIDHeader); got != msgID {
		t.Errorf("Nats-Msg-Id changed between builds: %q vs %q", got, msgID)
	}

	// Published twice, stored once, and readable as the order's failure.
	p := pipeline.NewPublisher(js)
	if err := p.PublishMsgs(t.Context(), pm, pm2); err != nil {
		t.Fatal(err)
	}
	if n := countOn(t, s, "orders.failed.api.default.3704612354559743232"); n != 1 {
		t.Errorf("%d failed records stored, want 1", n)
	}
}

func TestPoisonMsgSameSeqOnRedelivery(t *testing.T) {
	_, js, s := startStream(t)
	msg := fetchOne(t, js, s, "orders.enriched.channels.default.5", []byte(`{"version":9}`))
	pm1, err := pipeline.PoisonMsg(msg, "shipper", events.ErrUnsupportedVersion, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.Nak(); err != nil {
		t.Fatal(err)
	}
	// The consumer redelivers the same stream message.
	md1, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Consumer(t.Context(), md1.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	again := next(t, c)
	md, _ := again.Metadata()
	if md.NumDelivered < 2 || md.Sequence.Stream != md1.Sequence.Stream {
		t.Fatalf("not a redelivery: %+v", md)
	}
	pm2, err := pipeline.PoisonMsg(again, "shipper", events.ErrUnsupportedVersion, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := pm1.Header.Get(jetstream.MsgIDHeader), pm2.Header.Get(jetstream.MsgIDHeader); a != b {
		t.Fatalf("redelivery changed the Nats-Msg-Id: %q vs %q", a, b)
	}
	if pm1.Subject != "orders.failed.channels.default.5" {
		t.Errorf("subject %q", pm1.Subject)
	}
}

func TestPoisonMsgDifferentSeqDifferentID(t *testing.T) {
	_, js, s := startStream(t)
	// The same bytes on the same subject twice are two messages to keep.
	m1 := fetchOne(t, js, s, "orders.received.vvtool.default.T1", []byte("x"))
	m2 := fetchOne(t, js, s, "orders.received.vvtool.default.T1", []byte("x"))
	p1, err := pipeline.PoisonMsg(m1, "enricher", errors.New("bad"), t0)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := pipeline.PoisonMsg(m2, "enricher", errors.New("bad"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Header.Get(jetstream.MsgIDHeader) == p2.Header.Get(jetstream.MsgIDHeader) {
		t.Fatalf("two stream messages share Nats-Msg-Id %q", p1.Header.Get(jetstream.MsgIDHeader))
	}
	if err := pipeline.NewPublisher(js).PublishMsgs(t.Context(), p1, p2); err != nil {
		t.Fatal(err)
	}
	if n := countOn(t, s, "orders.failed.vvtool.default.T1"); n != 2 {
		t.Fatalf("%d failed records, want 2", n)
	}
}

func TestPoisonMsgInvalidSubjectGoesToDeadLetter(t *testing.T) {
	_, js, s := startStream(t)
	for _, subject := range []string{
		"orders.received.api.default.1.2",      // an order id with a dot split the subject
		"orders.bogus",                         // not of the grammar
		"orders.received.shopify.1",            // unknown source
		"orders.received.api.default.订单",       // non-ASCII order id
		"orders.packed.channels.1",             // unknown stage
		"orders.received.channels.default.a-b", // valid: control case, not a dead letter
	} {
		t.Run(subject, func(t *testing.T) {
			raw := []byte("raw:" + subject)
			msg := fetchOne(t, js, s, subject, raw)
			md, _ := msg.Metadata()
			pm, err := pipeline.PoisonMsg(msg, "enricher", errors.New("cannot parse"), t0)
			if err != nil {
				t.Fatal(err)
			}
			if subject == "orders.received.channels.default.a-b" {
				if pm.Subject != "orders.failed.channels.default.a-b" {
					t.Fatalf("valid subject went to %q", pm.Subject)
				}
				return
			}
			if pm.Subject != events.DeadLetterSubject {
				t.Fatalf("subject = %q, want %q", pm.Subject, events.DeadLetterSubject)
			}
			wantID := "deadletter:enricher:" + strconv.FormatUint(md.Sequence.Stream, 10)
			if got := pm.Header.Get(jetstream.MsgIDHeader); got != wantID {
				t.Errorf("Nats-Msg-Id = %q, want %q", got, wantID)
			}
			if got := pm.Header.Get(events.HeaderEventType); got != "order.deadletter" {
				t.Errorf("%s = %q", events.HeaderEventType, got)
			}
			var f events.Failed
			if err := json.Unmarshal(pm.Data, &f); err != nil {
				t.Fatalf("dead letter body: %v", err)
			}
			if !bytes.Equal(f.Raw, raw) || f.OriginalSubject != subject || f.OriginalSeq != md.Sequence.Stream || f.Stage != "enricher" || f.Errmsg != "cannot parse" {
				t.Errorf("dead letter %+v", f)
			}
			// Stored once, even if sent twice.
			again, _ := pipeline.PoisonMsg(msg, "enricher", errors.New("cannot parse"), t0.Add(time.Hour))
			if err := pipeline.NewPublisher(js).PublishMsgs(t.Context(), pm, again); err != nil {
				t.Fatal(err)
			}
			last, err := s.GetLastMsgForSubject(t.Context(), events.DeadLetterSubject)
			if err != nil {
				t.Fatal(err)
			}
			if last.Header.Get(jetstream.MsgIDHeader) != wantID {
				t.Errorf("stored dead letter has id %q", last.Header.Get(jetstream.MsgIDHeader))
			}
		})
	}
	if n := countOn(t, s, events.DeadLetterSubject); n != 5 {
		t.Errorf("%d dead letters stored, want 5", n)
	}
}

func TestFailedAnswersItsCause(t *testing.T) {
	rcv := newEnv(t, events.StageReceived, events.SourceChannels, "F-1", received(), nil, "")
	f, err := pipeline.Failed(rcv, events.Failed{Stage: "enricher", Errcode: 40003, Reason: "r"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Subject() != "orders.failed.channels.default.F-1" || f.CausationID != rcv.ID || f.CorrelationID != rcv.CorrelationID {
		t.Errorf("failed event %+v", f)
	}
	f2, _ := pipeline.Failed(rcv, events.Failed{Stage: "enricher", Errcode: 1}, t0.Add(time.Hour))
	if f2.MsgID() != f.MsgID() {
		t.Errorf("failure of the same cause has another Nats-Msg-Id")
	}
}

// KNOWN BUG P1: PoisonMsg keeps the raw bytes base64-encoded inside JSON,
// about 4/3 of the original plus the envelope, so a message near the
// server's max_payload makes a record the server refuses; PublishMsgs then
// retries that permanent error until its context ends and the poison
// message is never terminated.
func TestPoisonMsgFitsMaxPayload(t *testing.T) {
	nc, js, s := startStream(t)
	raw := bytes.Repeat([]byte("A"), int(nc.MaxPayload())-1024)
	msg := fetchOne(t, js, s, "orders.received.api.default.BIG", raw)
	pm, err := pipeline.PoisonMsg(msg, "enricher", errors.New("bad"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if size := len(pm.Data) + headerSize(pm); int64(size) > nc.MaxPayload() {
		t.Fatalf("poison record is %d bytes, over max_payload %d", size, nc.MaxPayload())
	}
}

func headerSize(m *nats.Msg) int {
	n := 0
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
