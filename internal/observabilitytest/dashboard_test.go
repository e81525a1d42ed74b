package observabilitytest

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// queryText is a query variable's query: a string, or {"query": "…"}.
func (v variable) queryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	Targets     []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	GridPos struct {
		X int `json:"x"`
		W int `json:"w"`
	} `json:"gridPos"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

// loadDashboard reads deploy/observability/dashboard.json.
func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(deployPath("observability", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	return d
}

// panels lists every panel, those inside collapsed rows included.
func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// query is one PromQL query of the dashboard, with Grafana's variables
// replaced so that it parses.
type query struct {
	where string // panel title and refId, or variable name
	expr  string
}

// grafanaVar matches $name, ${name} and ${name:format}.
var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// Grafana's built-in range and interval variables, as durations.
var builtinDurations = map[string]string{
	"__rate_interval": "5m", "__interval": "1m", "__range": "1h",
}

// substitute replaces Grafana's variables in expr: the built-in intervals
// by durations, the dashboard's own variables by a marker (__var_NAME__) a
// matcher's value can be checked against.
func substitute(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if d, ok := builtinDurations[name]; ok {
			return d
		}
		return "__var_" + name + "__"
	})
}

// labelValues matches a label_values(metric, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\s*\)$`)

// queries lists every PromQL query of the dashboard: each panel target's,
// and each query variable's metric (label_values(metric, label)).
func (d dashboard) queries(t *testing.T) []query {
	t.Helper()
	var out []query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(v.queryText()))
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, v.queryText())
			continue
		}
		out = append(out, query{where: "variable " + v.Name, expr: substitute(m[1])})
	}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{where: fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), expr: substitute(tg.Expr)})
		}
	}
	return out
}

// unshopped are the series that will not carry a shop label: the consumers
// are shared by every shop, a batchGetOrder call mixes shops, and the
// process figures are per process.
var unshopped = []string{
	"fulfill_consumer_pending", "fulfill_consumer_ack_pending",
	"fulfill_batch_size_bucket", "fulfill_batch_size_sum", "fulfill_batch_size_count",
	"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines",
}

// TestDashboard checks deploy/observability/dashboard.json: a Prometheus
// data source chosen by the ${datasource} variable in every panel and
// query; a shop variable from label_values(fulfill_events_in_total, shop)
// with All meaning any shop (also series without the label, before shops
// exist); every query parses as PromQL, names its metrics, and filters the
// per-shop series by shop=~"$shop"; and a panel for each figure issue 18
// asks for.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("uid %q, title %q, schemaVersion %d: all three are needed to import and update it", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || v.queryText() != "prometheus" {
		t.Errorf("variable datasource: type %q query %q, want a datasource variable of type prometheus", v.Type, v.queryText())
	}
	shop := vars["shop"]
	if shop.queryText() != "label_values(fulfill_events_in_total, shop)" || !shop.IncludeAll || shop.AllValue != ".*" {
		t.Errorf("variable shop: query %q includeAll %v allValue %q; want label_values(fulfill_events_in_total, shop), All allowed, All = .* (series without a shop label match too)",
			shop.queryText(), shop.IncludeAll, shop.AllValue)
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %s does not query ${datasource}", v.Name)
		}
	}

	ids := map[int]bool{}
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X < 0 || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos x %d w %d is outside the 24 columns", p.Title, p.GridPos.X, p.GridPos.W)
		}
		if p.Type == "row" {
			continue
		}
		if p.Description == "" {
			t.Errorf("panel %q has no description saying what it shows", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, ds := range append([]*datasourceRef{p.Datasource}, targetSources(p)...) {
			if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %+v, want {prometheus ${datasource}}", p.Title, ds)
				break
			}
		}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}

	named := map[string]bool{}
	quantiles := map[string]bool{}
	for _, q := range d.queries(t) {
		vss, err := selectors(q.expr)
		if err != nil {
			t.Errorf("%s does not parse: %v\n%s", q.where, err, q.expr)
			continue
		}
		if _, err := metricNames(q.expr); err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
		for _, vs := range vss {
			named[vs.Name] = true
			if strings.HasPrefix(q.where, "variable") || slices.Contains(unshopped, vs.Name) {
				continue
			}
			if !slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool {
				return m.Name == "shop" && m.Type == labels.MatchRegexp && m.Value == "__var_shop__"
			}) {
				t.Errorf("%s: %s is not filtered by shop=~\"$shop\"", q.where, vs.Name)
			}
		}
		for _, p := range []string{"0.5", "0.99"} {
			for _, h := range []string{"fulfill_api_call_seconds_bucket", "fulfill_received_to_shipped_seconds_bucket"} {
				if strings.Contains(q.expr, "histogram_quantile("+p) && strings.Contains(q.expr, h) {
					quantiles[p+" "+h] = true
				}
			}
		}
	}
	// The figures of issue 18, by the series that carry them.
	for _, want := range []string{
		"fulfill_events_in_total", "fulfill_events_out_total", // rate in/out per stage
		"fulfill_failed_total", "fulfill_retries_total", // failed and retries by errcode
		"fulfill_api_call_seconds_bucket", "fulfill_api_calls_total", // latency, error ratio by endpoint
		"fulfill_batch_size_bucket",                                                              // batch fill
		"fulfill_consumer_pending", "fulfill_consumer_ack_pending", "fulfill_redeliveries_total", // consumers
		"fulfill_received_to_shipped_seconds_bucket",                                  // received to shipped
		"fulfill_token_refreshes_total",                                               // token refreshes
		"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines", // processes
	} {
		if !named[want] {
			t.Errorf("no panel queries %s", want)
		}
	}
	for _, p := range []string{"0.5", "0.99"} {
		for _, h := range []string{"fulfill_api_call_seconds_bucket", "fulfill_received_to_shipped_seconds_bucket"} {
			if !quantiles[p+" "+h] {
				t.Errorf("no panel shows the %s quantile of %s", p, h)
			}
		}
	}
}

// targetSources lists the datasources of a panel's targets.
func targetSources(p panel) []*datasourceRef {
	out := make([]*datasourceRef, len(p.Targets))
	for i, tg := range p.Targets {
		out[i] = tg.Datasource
	}
	return out
}
