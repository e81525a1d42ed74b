package ingest_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/clients/wechat"
	"github.com/fulfill/pipeline/pkg/clients/wechat/push"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// pushEnv is the order API's push endpoint and the ingest-push consumer over
// embedded JetStream, against the sandbox.
type pushEnv struct {
	*pollEnv
	url  string
	keys push.Keys
}

// startPushEnv runs it; with opts, the ingester is set up by them first.
func startPushEnv(t *testing.T, orders int, opts ...func(*ingest.Ingester)) *pushEnv {
	t.Helper()
	e := startPollEnv(t, sandbox.Config{Seed: 9, Orders: orders})
	in := e.ingester(t)
	for _, o := range opts {
		o(in)
	}
	api := &ingest.API{In: in}
	keys := push.Keys{Token: "push-t0ken", AESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", AppID: sandbox.DefaultAppID}
	api.SetPush(map[string]push.Keys{events.DefaultShop: keys})
	hs := httptest.NewServer(api.Handler())
	t.Cleanup(hs.Close)

	client := wechat.NewClient(wechat.StaticToken(e.sb.IssueToken()), wechat.WithBaseURL(e.url))
	p := &ingest.Pushes{In: in, Workers: 4, Heartbeat: time.Second, Log: zerolog.Nop(),
		Orders: func(shop string) (*ingest.ChannelsPoller, error) {
			if shop != events.DefaultShop {
				return nil, fmt.Errorf("shop %s not served", shop)
			}
			return &ingest.ChannelsPoller{Shop: shop, Client: client, In: in, DeliveryID: "SF", Log: zerolog.Nop()}, nil
		}}
	cc, err := events.ConsumerConfig(events.ConsumerPush, 1000, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := e.stream.CreateOrUpdateConsumer(t.Context(), cc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, cons) }()
	t.Cleanup(func() { cancel(); <-done })
	return &pushEnv{pollEnv: e, url: hs.URL + "/v1/wechat/push/" + events.DefaultShop, keys: keys}
}

// send POSTs msg sealed with keys and returns the status and body.
func (e *pushEnv) send(t *testing.T, keys push.Keys, msg string) (int, string) {
	t.Helper()
	q, body, err := keys.Seal([]byte(msg), "1741944413", "n0nce", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return e.post(t, q.Encode(), body)
}

func (e *pushEnv) post(t *testing.T, query string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(e.url+"?"+query, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func orderMsg(event, orderID string, at int64, extra string) string {
	return fmt.Sprintf(`{"ToUserName":"gh_0123456789ab","FromUserName":"o0A1b2","CreateTime":%d,"MsgType":"event","Event":%q,"order_info":{"order_id":%s%s}}`,
		at, event, orderID, extra)
}

// TestPushVerifiedStoredThenActedOn (issue 17): the URL check is answered;
// a valid push is stored once however often it is sent and answered
// success; forged pushes are refused and store nothing; the consumer takes
// a paid order in (via push), ends a cancelled one failed with its
// cancel_type in the order's chain, records a delivery outside the
// pipeline as shipped elsewhere, and skips events it does not act on.
func TestPushVerifiedStoredThenActedOn(t *testing.T) {
	e := startPushEnv(t, 4)
	ids := make([]string, 0, 4)
	for _, o := range e.sb.Scenario() {
		ids = append(ids, o.OrderID)
	}
	now := time.Now().Unix()

	// The 消息推送 page's URL check.
	check := fmt.Sprintf("%s?signature=%s&timestamp=1&nonce=2&echostr=42", e.url, push.Sign(e.keys.Token, "1", "2"))
	resp, err := http.Get(check)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "42" {
		t.Fatalf("URL check: %d %q", resp.StatusCode, b)
	}

	pay := orderMsg(ingest.EventOrderPay, ids[0], now, "")
	for range 3 {
		if code, body := e.send(t, e.keys, pay); code != http.StatusOK || body != "success" {
			t.Fatalf("valid push answered %d %q", code, body)
		}
	}
	if n, _ := e.count(t, "orders.push.>"); n != 1 {
		t.Fatalf("%d pushes stored for one push sent three times, want 1", n)
	}

	// Forged: another token, another appid, a plaintext body, no
	// msg_signature. None is stored.
	forger := e.keys
	forger.Token = "guess"
	other := e.keys
	other.AppID = "wx0000000000000000"
	q, body, _ := e.keys.Seal([]byte(pay), "1", "2", rand.Reader)
	q.Del("msg_signature")
	for name, got := range map[string]func() (int, string){
		"another token":        func() (int, string) { return e.send(t, forger, orderMsg(ingest.EventOrderPay, ids[1], now, "")) },
		"another appid":        func() (int, string) { return e.send(t, other, orderMsg(ingest.EventOrderPay, ids[1], now, "")) },
		"plaintext body":       func() (int, string) { return e.post(t, "timestamp=1&nonce=2", []byte(pay)) },
		"plain signature only": func() (int, string) { return e.post(t, q.Encode(), body) },
	} {
		code, _ := got()
		if code != http.StatusUnauthorized && code != http.StatusBadRequest {
			t.Errorf("%s: answered %d, want 401 or 400", name, code)
		}
	}
	if n, _ := e.count(t, "orders.push.>"); n != 1 {
		t.Fatalf("%d pushes stored after forged ones, want 1", n)
	}

	// ids[1] is paid then cancelled; ids[2] cancelled with no pay seen;
	// ids[3] paid then delivered outside the pipeline; ids[0] gets an
	// address change after its pay.
	for _, m := range []string{
		orderMsg(ingest.EventOrderPay, ids[1], now, ""),
		orderMsg(ingest.EventOrderPay, ids[3], now, ""),
		orderMsg(ingest.EventOrderExtInfo, ids[0], now+1, `,"type":2`),
		orderMsg("channels_ec_order_something_new", ids[0], now+2, ""),
	} {
		if code, _ := e.send(t, e.keys, m); code != http.StatusOK {
			t.Fatalf("push answered %d", code)
		}
	}
	received := func(tl *tally.Tally, id string) bool {
		o := tl.Order(events.DefaultShop, id)
		return o != nil && o.Received == 1
	}
	tl := waitTally(t, e, "the paid orders to be received", func(tl *tally.Tally) bool {
		return received(tl, ids[0]) && received(tl, ids[1]) && received(tl, ids[3])
	})
	for _, id := range []string{ids[0], ids[1], ids[3]} {
		if o := tl.Order(events.DefaultShop, id); o.Via != events.ViaPush {
			t.Errorf("order %s came in via %q, want push", id, o.Via)
		}
	}
	for _, m := range []string{
		orderMsg(ingest.EventOrderCancel, ids[1], now+3, `,"cancel_type":1`),
		orderMsg(ingest.EventOrderCancel, ids[2], now+3, `,"cancel_type":2`),
		orderMsg(ingest.EventOrderDeliver, ids[3], now+3, `,"finish_delivery":1`),
	} {
		if code, _ := e.send(t, e.keys, m); code != http.StatusOK {
			t.Fatalf("push answered %d", code)
		}
	}
	tl = waitTally(t, e, "the cancel and the delivery to be recorded", func(tl *tally.Tally) bool {
		a, b, c := tl.Order(events.DefaultShop, ids[1]), tl.Order(events.DefaultShop, ids[2]), tl.Order(events.DefaultShop, ids[3])
		return a != nil && a.Failed == 1 && b != nil && b.Failed == 1 && c != nil && c.Shipped == 1
	})
	paidCancelled := tl.Order(events.DefaultShop, ids[1])
	if f := paidCancelled.LastFailed; !f.Cancelled() || f.CancelType != 1 || !strings.Contains(f.Reason, "cancelled") {
		t.Errorf("cancelled order's failure %+v", f)
	}
	h, err := tally.ReadHistory(t.Context(), e.js, events.DefaultShop, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	var rcvID string
	for _, s := range h.Steps {
		if s.Stage == events.StageReceived {
			rcvID = s.Event.ID
		}
	}
	if paidCancelled.LastFailedEvent.CorrelationID != rcvID {
		t.Errorf("the cancel is not in the order's chain: correlation %s, received event %s", paidCancelled.LastFailedEvent.CorrelationID, rcvID)
	}
	if f := tl.Order(events.DefaultShop, ids[2]).LastFailed; f.CancelType != 2 {
		t.Errorf("order cancelled before any pay: %+v", f)
	}
	var sh events.Shipped
	if err := tl.Order(events.DefaultShop, ids[3]).Terminals[0].DecodeData(&sh); err != nil || !sh.Elsewhere {
		t.Errorf("delivered outside the pipeline: %+v, %v; want shipped_elsewhere", sh, err)
	}
	if o := tl.Order(events.DefaultShop, ids[0]); o.Pushes != 3 || o.Latest != "" {
		t.Errorf("order with an address change and an unknown event: %+v; want 3 pushes on its history, no terminal event", o)
	}
	waitAcked(t, e)
}

// waitTally reads the stream until cond holds.
func waitTally(t *testing.T, e *pushEnv, what string, cond func(*tally.Tally) bool) *tally.Tally {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tl, err := tally.Watch(ctx, e.js, 50*time.Millisecond, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return tl
}

// waitAcked waits until the push consumer holds nothing: every push was
// acted on or skipped, none left failing.
func waitAcked(t *testing.T, e *pushEnv) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := e.stream.Consumer(t.Context(), events.ConsumerPush)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(t.Context())
		if err == nil && info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the push consumer still holds pushes: %+v", info)
		}
		select {
		case <-t.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestPushAnswered503WhenItCannotBeStored: with the stream gone the push
// is answered an error within the platform's 5 s, so it is sent again.
func TestPushAnswered503WhenItCannotBeStored(t *testing.T) {
	e := startPushEnv(t, 1)
	if err := e.js.DeleteStream(t.Context(), events.StreamName); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _ := e.send(t, e.keys, orderMsg(ingest.EventOrderPay, e.sb.Scenario()[0].OrderID, time.Now().Unix(), ""))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("answered %d, want 503", code)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("answered after %v, past the platform's 5 s", took)
	}
}
