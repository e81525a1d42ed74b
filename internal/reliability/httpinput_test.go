package reliability

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/ingest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// apiToken is the order API's bearer token in TestBadHTTPInput.
const apiToken = "reliability-api-token-7f3a"

// Timeouts of the order API server (internal/ingest.API.NewServer).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
)

// badRequest is one hostile request and the status it must get.
type badRequest struct {
	kind   string
	method string
	path   string
	header http.Header
	body   []byte
	// chunked sends the body without a Content-Length.
	chunked bool
	status  int
}

// TestBadHTTPInput (fault 6) runs ingest as a child process with the order
// API on (INGEST_API_TOKEN, INGEST_HTTP_ADDR on loopback, its real server
// and timeouts) and the enricher and shipper in process. Every scenario
// order is posted once through the API, and between them come hostile
// requests: missing and wrong tokens, bodies over 1 MiB (with and without a
// Content-Length), oversize headers, wrong methods and paths, every
// FuzzDecodeOrderRequest corpus entry the decoder rejects and random
// mutations of valid bodies; meanwhile slowloris clients send their headers
// a byte at a time (and, at full size, a body a byte at a time). Each hostile
// request must get its 4xx, the slow clients must be cut off by the
// server's timeouts, nothing may panic, no event may come from bad input,
// and every real order must end as the scenario says.
func TestBadHTTPInput(t *testing.T) {
	start := time.Now()
	n := size(1000, 200)
	st := faulttest.StartStack(t, stack.Options{Sandbox: scenario(61, n), Env: fastEnv(map[string]string{"INGEST_SOURCES": "none"})})
	sb := st.Sandbox
	logs := &faulttest.SyncBuffer{}
	apiAddr := freeAddr(t)
	ingestChild, ingestAdmin := startChildReady(t, st, "ingest", t.TempDir(), map[string]string{
		"INGEST_API_TOKEN": apiToken, "INGEST_HTTP_ADDR": apiAddr,
	})
	p := startServices(t, st, logs, nil, "enricher", "shipper")
	_, js := faulttest.Connect(t, st.NATSURL)
	url := "http://" + apiAddr

	// The hostile requests, in a random order among the real ones.
	rng := rand.New(rand.NewPCG(61, 6))
	bad := hostileRequests(t, rng, size(2000, 300))
	corpus := 0
	for _, b := range bad {
		if b.kind == "fuzz corpus" {
			corpus++
		}
	}
	want := sb.Scenario()
	type job struct {
		bad   *badRequest
		order *sandbox.ScenarioOrder
	}
	jobs := make([]job, 0, len(bad)+len(want))
	for i := range bad {
		jobs = append(jobs, job{bad: &bad[i]})
	}
	for i := range want {
		jobs = append(jobs, job{order: &want[i]})
	}
	rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

	// Slow clients, at the same time as the rest.
	var slowWG sync.WaitGroup
	slowResults := make(chan string, 64)
	for i := range 20 {
		slowWG.Go(func() { slowResults <- slowHeaders(apiAddr, i) })
	}
	if full() {
		for range 5 {
			slowWG.Go(func() { slowResults <- slowBody(apiAddr) })
		}
	}

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	work := make(chan job)
	var mu sync.Mutex
	var problems []string
	byKind := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for j := range work {
				var msg string
				if j.order != nil {
					msg = postOrder(client, url, sb, *j.order)
				} else {
					msg = send(client, url, *j.bad)
				}
				mu.Lock()
				if j.bad != nil {
					byKind[j.bad.kind]++
				}
				if msg != "" {
					problems = append(problems, msg)
				}
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	slowWG.Wait()
	close(slowResults)
	for r := range slowResults {
		if strings.HasPrefix(r, "FAIL") {
			problems = append(problems, r)
		} else {
			t.Log(r)
		}
	}
	if len(problems) > 0 {
		t.Errorf("%d requests were not answered as they must be, e.g.:\n%s", len(problems), strings.Join(problems[:min(len(problems), 15)], "\n"))
	}

	tl := faulttest.WaitTerminal(t, js, want, 3*time.Minute, multiLogs{logs, childLogs{&[]*faulttest.Child{ingestChild}}})
	res := faulttest.CheckOutcomes(t, st, tl, want)
	// No event from bad input: the received events are exactly the orders.
	known := map[string]bool{}
	for _, o := range want {
		known[faulttest.Key(o)] = true
	}
	for id, o := range tl.Orders {
		if !known[id] {
			t.Errorf("an event for order %q, which was never posted validly: %+v", id, o)
		} else if o.Received != 1 {
			t.Errorf("order %s: %d received events, want 1", id, o.Received)
		}
	}
	if tl.Messages[events.StageReceived] != n || tl.DeadLetters != 0 || tl.Undecodable != 0 {
		t.Errorf("stream: %d received events (want %d), %d dead letters, %d undecodable", tl.Messages[events.StageReceived], n, tl.DeadLetters, tl.Undecodable)
	}
	// The server survived: alive, healthy, clean stop, no panic logged.
	if code, _ := httpGet(t, "http://"+ingestAdmin+"/healthz"); code != http.StatusOK {
		t.Errorf("ingest /healthz answered %d after the hostile requests", code)
	}
	select {
	case <-ingestChild.Done():
		t.Fatalf("ingest exited during the test:\n%s", faulttest.Tail(ingestChild.Logs(), 20))
	default:
	}
	if err := ingestChild.Term(); err != nil {
		t.Errorf("ingest did not stop cleanly: %v", err)
	}
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
	noPanics(t, "ingest", ingestChild.Logs())
	noPanics(t, "a service", logs.String())
	total := 0
	for _, v := range byKind {
		total += v
	}
	slow := "20 slowloris header senders cut off by the server"
	if full() {
		slow += ", 5 slow body senders cut off"
	}
	record(t, 6, "bad HTTP input to the order API (real server, child process)", res, start, fmt.Sprintf(
		"every order posted through POST /v1/orders among %d hostile requests (%s), all answered 4xx; %s; %d FuzzDecodeOrderRequest corpus entries replayed; no event from bad input, no panic, clean stop",
		total, kinds(byKind), slow, corpus))
}

// kinds lists request kinds with their counts, in a stable order.
func kinds(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slicesSort(ks)
	var out []string
	for _, k := range ks {
		out = append(out, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(out, ", ")
}

// hostileRequests builds the bad requests: fixed kinds, the fuzz corpus of
// FuzzDecodeOrderRequest, and mutations of valid bodies that the decoder
// rejects.
func hostileRequests(t testing.TB, r *rand.Rand, mutations int) []badRequest {
	t.Helper()
	valid := []byte(`{"order_id":"9000000000000000001","delivery_id":"SF","waybill_id":"W1","products":[{"product_id":"1","sku_id":"2","product_cnt":1}]}`)
	auth := func(v string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}}
		if v != "" {
			h.Set("Authorization", v)
		}
		return h
	}
	good := auth("Bearer " + apiToken)
	var out []badRequest
	add := func(kind string, b badRequest) {
		b.kind = kind
		if b.method == "" {
			b.method = http.MethodPost
		}
		if b.path == "" {
			b.path = "/v1/orders"
		}
		out = append(out, b)
	}
	for range 10 {
		add("wrong token", badRequest{header: auth(""), body: valid, status: 401})
		add("wrong token", badRequest{header: auth("Bearer wrong"), body: valid, status: 401})
		add("wrong token", badRequest{header: auth("Bearer " + apiToken + "x"), body: valid, status: 401})
		add("wrong token", badRequest{header: auth("Bearer " + apiToken[:len(apiToken)-1]), body: valid, status: 401})
		add("wrong token", badRequest{header: auth("Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+apiToken))), body: valid, status: 401})
		add("wrong token", badRequest{header: auth(apiToken), body: valid, status: 401})
		add("wrong token", badRequest{path: "/v1/orders?access_token=" + apiToken, header: auth(""), body: valid, status: 401})
		add("wrong method or path", badRequest{method: http.MethodGet, header: good, status: 405})
		add("wrong method or path", badRequest{method: http.MethodPut, header: good, body: valid, status: 405})
		add("wrong method or path", badRequest{path: "/v1/orders/x", header: good, body: valid, status: 404})
	}
	big := append(append([]byte(`{"order_id":"1","delivery_id":"`), bytes.Repeat([]byte("S"), ingest.MaxBodyBytes)...), `"}`...)
	for range 3 {
		add("oversize body", badRequest{header: good, body: big, status: 413})
		add("oversize body", badRequest{header: good, body: bytes.Repeat([]byte("["), 8<<20), chunked: true, status: 413})
		add("oversize body", badRequest{header: auth(""), body: big, status: 401})
		h := good.Clone()
		h.Set("X-Padding", strings.Repeat("p", 128<<10)) // MaxHeaderBytes 64 KiB, plus net/http's slack
		add("oversize header", badRequest{header: h, body: valid, status: 431})
	}
	for _, body := range fuzzCorpus(t) {
		if _, _, err := ingest.DecodeOrderRequest(body); err == nil {
			continue // a valid order: not bad input
		}
		status := 400
		if len(body) > ingest.MaxBodyBytes {
			status = 413
		}
		add("fuzz corpus", badRequest{header: good, body: body, status: status})
	}
	for len(out) < mutations+100 {
		body := mutate(r, valid)
		if _, _, err := ingest.DecodeOrderRequest(body); err == nil {
			continue
		}
		add("mutated body", badRequest{header: good, body: body, status: 400})
	}
	return out
}

// fuzzCorpus reads the corpus of FuzzDecodeOrderRequest: the package's
// testdata and the entries `go test -fuzz` found, in the directory named by
// FULFILL_FUZZ_CORPUS or else in the default Go build cache (make
// reliability fuzzes first, for a fresh corpus).
func fuzzCorpus(t testing.TB) [][]byte {
	t.Helper()
	dirs := []string{filepath.Join("..", "ingest", "testdata", "fuzz", "FuzzDecodeOrderRequest")}
	if d := os.Getenv(envFuzzCorpus); d != "" {
		dirs = append(dirs, d)
	} else {
		cache := os.Getenv("GOCACHE")
		if cache == "" {
			if d, err := os.UserCacheDir(); err == nil {
				cache = filepath.Join(d, "go-build")
			}
		}
		if cache != "" && cache != "off" {
			dirs = append(dirs, filepath.Join(cache, "fuzz", "github.com", "fulfill", "pipeline", "internal", "ingest", "FuzzDecodeOrderRequest"))
		}
	}
	var out [][]byte
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			if err != nil {
				continue
			}
			if v, ok := parseCorpusFile(b); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// parseCorpusFile decodes a "go test fuzz v1" file holding one []byte.
func parseCorpusFile(b []byte) ([]byte, bool) {
	lines := strings.SplitN(string(b), "\n", 2)
	if len(lines) != 2 || strings.TrimSpace(lines[0]) != "go test fuzz v1" {
		return nil, false
	}
	v := strings.TrimSpace(lines[1])
	inner, ok := strings.CutPrefix(v, "[]byte(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return nil, false
	}
	s, err := strconv.Unquote(strings.TrimSuffix(inner, ")"))
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

// mutate applies one to four random edits to body.
func mutate(r *rand.Rand, body []byte) []byte {
	b := bytes.Clone(body)
	alphabet := []byte(`{}[]":,.-+eE0123456789 \ntrufalsn` + "\x00\xff")
	for range 1 + r.IntN(4) {
		if len(b) == 0 {
			b = append(b, alphabet[r.IntN(len(alphabet))])
			continue
		}
		i := r.IntN(len(b))
		switch r.IntN(5) {
		case 0: // replace a byte
			b[i] = alphabet[r.IntN(len(alphabet))]
		case 1: // delete a range
			j := min(len(b), i+1+r.IntN(8))
			b = append(b[:i], b[j:]...)
		case 2: // insert a byte
			b = append(b[:i], append([]byte{alphabet[r.IntN(len(alphabet))]}, b[i:]...)...)
		case 3: // duplicate a range
			j := min(len(b), i+1+r.IntN(16))
			b = append(b[:j], append(bytes.Clone(b[i:j]), b[j:]...)...)
		case 4: // truncate
			b = b[:i]
		}
	}
	return b
}

// send makes one hostile request and describes a wrong answer ("" if
// right).
func send(c *http.Client, base string, b badRequest) string {
	var body io.Reader = bytes.NewReader(b.body)
	if b.chunked {
		body = io.MultiReader(bytes.NewReader(b.body)) // hides the length: chunked encoding
	}
	req, err := http.NewRequest(b.method, base+b.path, body)
	if err != nil {
		return fmt.Sprintf("%s: %v", b.kind, err)
	}
	req.Header = b.header.Clone()
	resp, err := c.Do(req)
	if err != nil {
		// The server may answer and close while a huge body is still being
		// written; the client then reports the broken write.
		if b.status == 413 && (errors.Is(err, io.ErrClosedPipe) || strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "connection reset")) {
			return ""
		}
		return fmt.Sprintf("%s: %v", b.kind, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != b.status {
		return fmt.Sprintf("%s (%.80q): status %d, want %d: %.200s", b.kind, b.body, resp.StatusCode, b.status, got)
	}
	if resp.StatusCode == 400 || resp.StatusCode == 401 || resp.StatusCode == 413 {
		var e ingest.APIError
		if json.Unmarshal(got, &e) != nil || e.Error == "" {
			return fmt.Sprintf("%s: %d answer %q is not a JSON error", b.kind, resp.StatusCode, got)
		}
	}
	return ""
}

// postOrder posts one scenario order with the sandbox's products and checks
// the 202.
func postOrder(c *http.Client, base string, sb *sandbox.Sandbox, o sandbox.ScenarioOrder) string {
	v, ok := sb.Order(o.OrderID)
	if !ok {
		return "no sandbox order " + o.OrderID
	}
	req := ingest.OrderRequest{OrderID: o.OrderID, DeliveryID: o.DeliveryID, WaybillID: o.WaybillID}
	for _, p := range v.Products {
		req.Products = append(req.Products, events.Product{ProductID: p.ProductID, SkuID: p.SkuID, ProductCnt: p.SkuCnt})
	}
	body, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, base+"/v1/orders", bytes.NewReader(body))
	hr.Header.Set("Authorization", "Bearer "+apiToken)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(hr)
	if err != nil {
		return fmt.Sprintf("order %s: %v", o.OrderID, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	var out ingest.OrderResponse
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(got, &out) != nil || out.OrderID != o.OrderID || out.Duplicate {
		return fmt.Sprintf("order %s: status %d %s, want 202 and a new event", o.OrderID, resp.StatusCode, got)
	}
	return ""
}

// slowHeaders is a slowloris client: it sends the request line and then a
// header byte every half second, and reports how long the server let it
// hang on ("FAIL …" if the server did not cut it off in time).
func slowHeaders(addr string, i int) string {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Sprintf("FAIL slowloris %d: %v", i, err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+apiToken+"\r\n"); err != nil {
		return fmt.Sprintf("FAIL slowloris %d: %v", i, err)
	}
	return trickle(conn, start, "X-Slow: "+strings.Repeat("a", 200), "slowloris", readHeaderTimeout)
}

// slowBody sends complete headers and then the body a byte every half
// second; the server's ReadTimeout must end it.
func slowBody(addr string) string {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Sprintf("FAIL slow body: %v", err)
	}
	defer conn.Close()
	start := time.Now()
	body := `{"order_id":"slow-body-order","delivery_id":"SF","products":[{"product_id":"1","sku_id":"2","product_cnt":1}]}`
	hdr := fmt.Sprintf("POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", apiToken, len(body)+100)
	if _, err := io.WriteString(conn, hdr); err != nil {
		return fmt.Sprintf("FAIL slow body: %v", err)
	}
	return trickle(conn, start, body+strings.Repeat(" ", 100), "slow body", readTimeout)
}

// trickle writes payload a byte per half second until the server closes
// the connection, and checks it did so within limit (plus slack).
func trickle(conn net.Conn, start time.Time, payload, what string, limit time.Duration) string {
	closed := make(chan string, 1)
	go func() {
		br := bufio.NewReader(conn)
		line, err := br.ReadString('\n')
		switch {
		case err != nil:
			closed <- "closed (" + err.Error() + ")"
		default:
			closed <- "answered " + strings.TrimSpace(line)
		}
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	give := time.NewTimer(limit + 10*time.Second)
	defer give.Stop()
	for i := 0; ; i++ {
		select {
		case how := <-closed:
			took := time.Since(start)
			if strings.HasPrefix(how, "answered HTTP/1.1 2") {
				return fmt.Sprintf("FAIL %s: %s after %s", what, how, took.Round(time.Millisecond))
			}
			if took > limit+3*time.Second {
				return fmt.Sprintf("FAIL %s: cut off only after %s (timeout %s)", what, took.Round(time.Millisecond), limit)
			}
			return fmt.Sprintf("%s %s after %s (server timeout %s)", what, how, took.Round(time.Millisecond), limit)
		case <-give.C:
			return fmt.Sprintf("FAIL %s: still connected after %s (timeout %s)", what, time.Since(start).Round(time.Millisecond), limit)
		case <-tick.C:
			if i < len(payload) {
				if _, err := conn.Write([]byte{payload[i]}); err != nil {
					// The server closed: the reader reports how.
					continue
				}
			}
		}
	}
}
