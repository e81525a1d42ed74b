package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// leakAPIToken is the order API's token in TestTokenLeak (a secret too).
const leakAPIToken = "leak-check-api-token-5d1e"

// TestTokenLeak (fault 8) runs the whole pipeline at LOG_LEVEL=debug —
// ingest (Channels and vv-tool, with the order API on) and a shipper in
// process, the enricher and a second shipper as child processes — with
// every log captured, while the sandbox rotates the access_token every 50
// calls (so many tokens are issued and rejected, and refreshed) and a proxy
// in front of it provokes the error paths that carry a token: connections
// cut mid-call (transport errors hold the full URL, access_token included),
// gateway error pages and errmsgs that echo the token, a permanent errcode
// whose errmsg echoes it (so it reaches an order.failed event), and
// batchGetOrder items whose errmsg echoes it. The
// app secret, every access_token the sandbox issued, the vv-tool token and
// the API token must then appear in no log line, no error, no /metrics or
// /readyz output of any service, no fulfillctl output and no message (body
// or header) of any stream.
func TestTokenLeak(t *testing.T) {
	start := time.Now()
	n := size(1000, 300)
	sbCfg := scenario(81, n)
	sbCfg.RotateTokenEvery = 50
	st := faulttest.StartStack(t, stack.Options{Sandbox: sbCfg, Env: fastEnv(map[string]string{"LOG_LEVEL": "debug"})})
	sb := st.Sandbox
	want := sb.Scenario()

	// The hostile proxy in front of the sandbox.
	px := newLeakProxy(t, st.SandboxURL)
	for i, o := range want {
		if o.Fault != sandbox.FaultNone {
			continue
		}
		switch i % 25 {
		case 1:
			px.plan[o.OrderID] = "cut"
		case 2:
			px.plan[o.OrderID] = "echo-page"
		case 3:
			px.plan[o.OrderID] = "echo-errmsg"
		case 4:
			if i%100 == 4 {
				px.plan[o.OrderID] = "echo-permanent"
				want[i].Fault, want[i].Expect = "proxy: permanent errcode echoing the token", sandbox.OutcomeFailed
			}
		}
	}
	apiAddr := freeAddr(t)
	env := map[string]string{
		"WECHAT_API_BASE":  px.url,
		"VVTOOL_API_BASE":  px.url,
		"INGEST_SOURCES":   "channels,vvtool",
		"INGEST_API_TOKEN": leakAPIToken,
		"INGEST_HTTP_ADDR": apiAddr,
	}
	logs := &faulttest.SyncBuffer{}
	p := startServices(t, st, logs, env, "ingest", "shipper")
	logDir := t.TempDir()
	enricher, enricherAdmin := startChildReady(t, st, "enricher", logDir, env)
	shipper, shipperAdmin := startChildReady(t, st, "shipper", logDir, env)
	children := []*faulttest.Child{enricher, shipper}
	_, js := faulttest.Connect(t, st.NATSURL)

	// A few requests to the order API with wrong tokens and bodies, so its
	// error paths are logged too.
	for _, auth := range []string{"", "Bearer " + leakAPIToken + "x", "Bearer " + leakAPIToken} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/orders", strings.NewReader(`{"order_id":"a.b"}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}

	tl := faulttest.WaitTerminal(t, js, want, 4*time.Minute, multiLogs{logs, childLogs{&children}})
	res := faulttest.CheckOutcomes(t, st, tl, want)

	// Everything a person or a system could read.
	texts := map[string]string{}
	for _, name := range []string{"ingest", "shipper"} {
		for _, addr := range p.admins[name] {
			for _, path := range []string{"/metrics", "/readyz"} {
				_, body := httpGet(t, "http://"+addr+path)
				texts[name+" "+path] = body
			}
		}
	}
	for name, addr := range map[string]string{"enricher (child)": enricherAdmin, "shipper (child)": shipperAdmin} {
		for _, path := range []string{"/metrics", "/readyz"} {
			_, body := httpGet(t, "http://"+addr+path)
			texts[name+" "+path] = body
		}
	}
	texts["fulfillctl status"] = fulfillctl(t, st, "status")
	texts["fulfillctl dlq list --json"] = fulfillctl(t, st, "dlq", "list", "--json")
	for _, c := range children {
		if err := c.Term(); err != nil {
			t.Errorf("%s did not stop cleanly: %v", c.Name, err)
		}
		texts[c.Name+" (child) log"] = c.Logs()
	}
	if err := p.stop(); err != nil {
		texts["errors returned by the services"] = err.Error()
		t.Errorf("services did not stop cleanly: %v", err)
	}
	texts["in-process logs"] = logs.String()
	streams, msgs := streamTexts(t, js)
	for k, v := range streams {
		texts[k] = v
	}

	tokens := sb.Tokens()
	if len(tokens) < 3 {
		t.Fatalf("only %d access tokens were issued: the rotation did not happen", len(tokens))
	}
	secrets := map[string]string{
		"the app secret":      sandbox.DefaultAppSecret,
		"the vv-tool token":   sandbox.DefaultVVToken,
		"the order API token": leakAPIToken,
		"the first token":     tokens[0],
		"the last token":      tokens[len(tokens)-1],
	}
	for i, tok := range tokens {
		secrets[fmt.Sprintf("access_token #%d", i+1)] = tok
	}
	// The search works: the secret is in what the sandbox received.
	if !callsContain(sb, sandbox.EndpointStableToken, sandbox.DefaultAppSecret) {
		t.Fatal("no stable_token request carried the app secret: the leak check would find nothing anyway")
	}
	var leaks []string
	for where, text := range texts {
		for what, secret := range secrets {
			if i := strings.Index(text, secret); i >= 0 {
				leaks = append(leaks, fmt.Sprintf("%s in %s: …%s…", what, where, text[max(0, i-200):min(len(text), i+len(secret)+40)]))
			}
		}
	}
	if len(leaks) > 0 {
		t.Errorf("%d leaks, e.g.:\n%s", len(leaks), strings.Join(leaks[:min(len(leaks), 8)], "\n"))
	}
	noPanics(t, "a service", texts["in-process logs"]+texts["enricher (child) log"]+texts["shipper (child) log"])
	lines := 0
	for k, v := range texts {
		if strings.HasSuffix(k, "log") || strings.HasSuffix(k, "logs") {
			lines += strings.Count(v, "\n")
		}
	}
	record(t, 8, "token leak check (debug logs, token rotation, hostile proxy)", res, start, fmt.Sprintf(
		"%d access tokens issued (rotated every 50 calls); proxy cut %d calls mid-way and echoed the token in %d error pages/errmsgs; app secret, every token, the vv-tool and API tokens searched in %d log lines (2 services in process, 2 child processes), /metrics and /readyz of 4 services, fulfillctl output and %d stream messages: %d found",
		len(tokens), px.count("cut"), px.count("echo-page")+px.count("echo-errmsg")+px.count("echo-permanent")+px.count("echo-item"), lines, msgs, len(leaks)))
}

// leakProxy forwards to the sandbox, except for the calls it was told to
// spoil: per order id of delivery/send, a plan; and batchGetOrder items
// answered "waybill not found" get an errmsg echoing the token.
type leakProxy struct {
	url  string
	plan map[string]string // order id → "cut", "echo-page", "echo-errmsg", "echo-permanent"

	mu    sync.Mutex
	done  map[string]bool // order ids whose one-time spoiling happened
	stats map[string]int
}

func newLeakProxy(t testing.TB, target string) *leakProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	px := &leakProxy{plan: map[string]string{}, done: map[string]bool{}, stats: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	// batchGetOrder: per-item errmsgs that echo the token.
	rp.ModifyResponse = func(resp *http.Response) error {
		tok := resp.Request.URL.Query().Get("access_token")
		if !strings.HasSuffix(resp.Request.URL.Path, "/order/batchget") || tok == "" {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		item := []byte(fmt.Sprintf(`"errcode":%d,"errmsg":"`, sandbox.CodeWaybillNotFound))
		if k := bytes.Count(b, item); k > 0 {
			b = bytes.ReplaceAll(b, item, append(bytes.Clone(item), fmt.Sprintf("lookup with access_token=%s (token %s): ", tok, tok)...))
			px.mu.Lock()
			px.stats["echo-item"] += k
			px.mu.Unlock()
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		tok := r.URL.Query().Get("access_token")
		if strings.HasSuffix(r.URL.Path, "/order/delivery/send") && tok != "" {
			var req struct {
				OrderID json.RawMessage `json:"order_id"`
			}
			_ = json.Unmarshal(body, &req)
			id := strings.Trim(string(req.OrderID), `"`)
			if act := px.take(id); act != "" {
				switch act {
				case "cut":
					if hj, ok := w.(http.Hijacker); ok {
						if conn, _, err := hj.Hijack(); err == nil {
							conn.Close()
							return
						}
					}
				case "echo-page":
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(http.StatusBadGateway)
					fmt.Fprintf(w, "<html><body>502 Bad Gateway: upstream failed for %s (token %s)</body></html>", r.URL.String(), tok)
					return
				case "echo-errmsg":
					fmt.Fprintf(w, `{"errcode":-1,"errmsg":"system busy: access_token=%s token %s rid: 1"}`, tok, tok)
					return
				case "echo-permanent":
					fmt.Fprintf(w, `{"errcode":40097,"errmsg":"invalid args: access_token=%s (token %s) hint: [x]"}`, tok, tok)
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	px.url = "http://" + ln.Addr().String()
	return px
}

// take returns what to do to this call for order id: the plan once ("cut",
// "echo-page", "echo-errmsg"), or every time ("echo-permanent"); "" to
// forward it.
func (px *leakProxy) take(id string) string {
	px.mu.Lock()
	defer px.mu.Unlock()
	act := px.plan[id]
	if act == "" || (act != "echo-permanent" && px.done[id]) {
		return ""
	}
	px.done[id] = true
	px.stats[act]++
	return act
}

func (px *leakProxy) count(act string) int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.stats[act]
}

// streamTexts reads every message (headers and body) of every stream of
// the server, the ORDERS stream and the KV buckets alike.
func streamTexts(t testing.TB, js jetstream.JetStream) (map[string]string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]string{}
	total := 0
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		err = tally.Scan(ctx, s, nil, time.Time{}, time.Time{}, func(m jetstream.Msg, _ *jetstream.MsgMetadata) {
			total++
			b.WriteString(m.Subject())
			for k, vs := range m.Headers() {
				b.WriteString(" " + k + ":" + strings.Join(vs, ","))
			}
			b.WriteString("\n")
			b.Write(m.Data())
			b.WriteString("\n")
		})
		if err != nil {
			t.Fatalf("read stream %s: %v", name, err)
		}
		out["stream "+name] = b.String()
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := out["stream "+events.StreamName]; !ok {
		t.Fatalf("no %s stream found", events.StreamName)
	}
	return out, total
}

// callsContain reports whether a recorded call of ep carried s in its body.
func callsContain(sb *sandbox.Sandbox, ep, s string) bool {
	for _, c := range sb.Calls() {
		if c.Endpoint == ep && bytes.Contains(c.Body, []byte(s)) {
			return true
		}
	}
	return false
}
