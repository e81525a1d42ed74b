package reliability

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// natsOutage is how long TestNATSRestart keeps the server down.
const natsOutage = 10 * time.Second

// TestNATSRestart (fault 2) stops the NATS server at a random moment of a
// run (a random number of successful sends) for 10 s and starts a new one
// on the same store directory and port. The services must reconnect,
// re-send the publishes that were in flight with their same Nats-Msg-Id
// (so the stream holds each event once) and finish every order.
func TestNATSRestart(t *testing.T) {
	needFull(t, "the server stays down 10 s and the run takes ~30 s")
	start := time.Now()
	n := 1000
	st := faulttest.StartStack(t, stack.Options{Sandbox: scenario(21, n), Env: fastEnv(nil)})
	logs := &faulttest.SyncBuffer{}
	p := startPipeline(t, st, logs, 2, nil)
	_, js := faulttest.Connect(t, st.NATSURL)

	at := 150 + rngFor(t, 21).IntN(250)
	waitSends(t, st.Sandbox, at, 2*time.Minute, logs)
	port := natsPort(t, st.NATSURL)
	stopped := time.Now()
	st.Server.Shutdown()
	st.Server.WaitForShutdown()
	sentAtStop := st.Sandbox.Stats().SuccessfulSends
	<-time.After(natsOutage) // the fault itself: the server stays down this long
	sentDuringOutage := st.Sandbox.Stats().SuccessfulSends - sentAtStop
	srv, err := embednats.Start(embednats.Options{StoreDir: st.DataDir, Port: port})
	if err != nil {
		t.Fatalf("restart NATS on port %d: %v", port, err)
	}
	st.Server = srv // Close shuts the new server down
	down := time.Since(stopped)
	t.Logf("NATS down %s after %d successful sends; %d sends completed while it was down", down.Round(time.Millisecond), sentAtStop, sentDuringOutage)

	want := st.Sandbox.Scenario()
	tl := faulttest.WaitTerminal(t, js, want, 4*time.Minute, logs)
	res := faulttest.CheckOutcomes(t, st, tl, want, faulttest.RepeatedCalls())
	dups := duplicateEvents(tl, want)
	if dups != "" {
		t.Errorf("the stream holds an event twice: %s", dups)
	}
	out := logs.String()
	disc, reco := strings.Count(out, `"nats disconnected"`), strings.Count(out, `"nats reconnected"`)
	if reco < 4 {
		t.Errorf("%d services logged a reconnect (%d disconnects), want all 4", reco, disc)
	}
	if err := p.stop(); err != nil {
		t.Errorf("services did not stop cleanly: %v", err)
	}
	noPanics(t, "a service", out)
	record(t, 2, "NATS server stopped 10 s mid-run, restarted on the same store and port", res, start, fmt.Sprintf(
		"stopped after %d sends, down %.1f s (%d sends finished meanwhile, their events published after the restart); %d reconnects logged; each order's received, enriched and terminal event stored once",
		sentAtStop, down.Seconds(), sentDuringOutage, reco))
}

// natsPort is the port of a nats:// URL.
func natsPort(t testing.TB, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("port of %s: %v", raw, err)
	}
	return p
}

// duplicateEvents describes the orders of want whose received or enriched
// event is in the stream more than once ("" when none): a re-sent publish
// that JetStream did not de-duplicate.
func duplicateEvents(tl *tally.Tally, want []sandbox.ScenarioOrder) string {
	var bad []string
	for _, o := range want {
		if s := tl.Orders[faulttest.Key(o)]; s != nil && (s.Received > 1 || s.Enriched > 1) {
			bad = append(bad, fmt.Sprintf("%s (%d received, %d enriched)", o.OrderID, s.Received, s.Enriched))
		}
	}
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("… %d in all", len(bad)))
	}
	return strings.Join(bad, ", ")
}
