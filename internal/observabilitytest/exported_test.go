package observabilitytest

import (
	"bufio"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/faulttest"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// exposition is what one service's /metrics said.
type exposition struct {
	service string
	text    string
}

// samples parses Prometheus text exposition into sample name → the label
// sets (raw "{…}" text) and values of its samples.
func (e exposition) samples() map[string][]sample {
	out := map[string][]sample{}
	sc := bufio.NewScanner(strings.NewReader(e.text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			continue
		}
		s := sample{}
		rest := line[end:]
		if rest[0] == '{' {
			close := strings.LastIndex(rest, "}")
			s.labels, rest = rest[:close+1], rest[close+1:]
		}
		if f := strings.Fields(rest); len(f) > 0 {
			s.value, _ = strconv.ParseFloat(f[0], 64)
		}
		out[line[:end]] = append(out[line[:end]], s)
	}
	return out
}

type sample struct {
	labels string
	value  float64
}

// runPipeline runs ingest, enricher and shipper in process against the
// sandbox until every order of a small scenario with every fault class is
// terminal, then returns each service's /metrics: a run that makes every
// series appear (retries, redeliveries, failures, token fetches, batches).
func runPipeline(t *testing.T) ([]exposition, []sandbox.ScenarioOrder) {
	t.Helper()
	st := faulttest.StartStack(t, stack.Options{
		Sandbox: sandbox.Config{Seed: 18, Orders: 30,
			Faults: sandbox.FaultMix{Transient: .1, Permanent: .1, Wait: .1, Cancelled: .1, ItemError: .1}},
		Env: faulttest.FastEnv(map[string]string{
			// A shop with push: its last-push gauge is exported from the start.
			"WECHAT_PUSH_TOKEN": "push-t0ken", "WECHAT_PUSH_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
		}),
	})
	logs := &faulttest.SyncBuffer{}
	admins, _ := startInOrder(t, st, logs, nil)
	want := st.Sandbox.Scenario()
	_, js := faulttest.Connect(t, st.NATSURL)
	faulttest.WaitTerminal(t, js, want, 2*time.Minute, logs)
	var out []exposition
	for _, name := range []string{"ingest", "enricher", "shipper"} {
		code, body, err := faulttest.Get("http://" + admins[name] + "/metrics")
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s /metrics: %d %v", name, code, err)
		}
		out = append(out, exposition{service: name, text: body})
	}
	return out, want
}

// allowedLabels are the label names the services may put on their series:
// bounded sets, never an order id or an openid.
var allowedLabels = []string{"stage", "errcode", "endpoint", "consumer", "result", "reason", "le", "shop",
	"version", "quantile"} // the last two: Go runtime collectors' own

// TestQueriesNameExportedMetrics runs the pipeline, collects the names of
// the series ingest, enricher and shipper export on /metrics, and checks
// that every alert rule and every dashboard query names only those (or the
// few series listed in external). It also checks the series themselves:
// labels from bounded sets only, no order id in any label, and the new
// figures counting what happened: every shipped order measured from
// received to shipped, every failed order counted by errcode.
func TestQueriesNameExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	exps, orders := runPipeline(t)
	exported := map[string]bool{}
	series := map[string][]sample{}
	for _, e := range exps {
		for name, ss := range e.samples() {
			exported[name] = true
			series[name] = append(series[name], ss...)
		}
	}

	f, _ := loadAlerts(t)
	for _, r := range f.allRules() {
		t.Run("rule "+r.Alert, func(t *testing.T) { checkNames(t, r.Expr, exported) })
	}
	for _, q := range loadDashboard(t).queries(t) {
		t.Run(q.where, func(t *testing.T) { checkNames(t, q.expr, exported) })
	}

	t.Run("labels", func(t *testing.T) {
		for name, ss := range series {
			if !strings.HasPrefix(name, "fulfill_") {
				continue
			}
			for _, s := range ss {
				for _, kv := range splitLabels(s.labels) {
					k, _, _ := strings.Cut(kv, "=")
					if !slices.Contains(allowedLabels, k) {
						t.Errorf("%s%s: label %s is not one of the bounded sets %v", name, s.labels, k, allowedLabels)
					}
				}
				for _, o := range orders {
					if strings.Contains(s.labels, o.OrderID) {
						t.Errorf("%s%s carries order id %s", name, s.labels, o.OrderID)
					}
				}
			}
		}
	})

	t.Run("figures", func(t *testing.T) {
		shipped, failed := 0, 0
		for _, o := range orders {
			switch o.Expect {
			case sandbox.OutcomeShipped:
				shipped++
			case sandbox.OutcomeFailed:
				failed++
			}
		}
		if n := sum(series["fulfill_received_to_shipped_seconds_count"]); int(n) < shipped {
			t.Errorf("fulfill_received_to_shipped_seconds_count %v, want every one of the %d shipped orders", n, shipped)
		}
		if s := sum(series["fulfill_received_to_shipped_seconds_sum"]); s <= 0 {
			t.Errorf("fulfill_received_to_shipped_seconds_sum %v: nothing measured", s)
		}
		if n := sum(series["fulfill_failed_total"]); int(n) < failed {
			t.Errorf("fulfill_failed_total sums to %v, want the %d failed orders", n, failed)
		}
		for _, s := range series["fulfill_failed_total"] {
			if !slices.ContainsFunc([]events.Component{events.ComponentIngest, events.ComponentEnricher, events.ComponentShipper},
				func(c events.Component) bool { return strings.Contains(s.labels, `stage="`+string(c)+`"`) }) {
				t.Errorf("fulfill_failed_total%s: stage is not a component", s.labels)
			}
		}
		if n := sum(series["fulfill_token_refreshes_total"]); n < 1 {
			t.Errorf("fulfill_token_refreshes_total sums to %v: the services fetched their tokens uncounted", n)
		}
	})
}

// checkNames fails the test for each metric expr names that the services
// do not export and that is not in external.
func checkNames(t *testing.T, expr string, exported map[string]bool) {
	t.Helper()
	names, err := metricNames(expr)
	if err != nil {
		t.Fatalf("%v\n%s", err, expr)
	}
	for _, n := range names {
		if !exported[n] && external[n] == "" {
			t.Errorf("%s is not exported by ingest, enricher or shipper (nor listed as external):\n%s", n, expr)
		}
	}
}

// splitLabels splits a raw label set {a="x",b="y"} into a="x" pairs (label
// values here hold no commas or quotes).
func splitLabels(raw string) []string {
	raw = strings.TrimSuffix(strings.TrimPrefix(raw, "{"), "}")
	if raw == "" {
		return nil
	}
	return strings.Split(raw, ",")
}

func sum(ss []sample) float64 {
	var total float64
	for _, s := range ss {
		total += s.value
	}
	return total
}
