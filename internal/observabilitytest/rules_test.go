package observabilitytest

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/fulfill/pipeline/internal/config"
)

// runbookCommand matches the fulfillctl commands a runbook may send an
// operator to.
var runbookCommand = regexp.MustCompile("`fulfillctl (status|shops|dlq list|dlq redrive|replay)\\b[^`]*`")

// labelName is the classic Prometheus label name syntax.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// templateFuncs stands in for the functions of Prometheus's alert template
// engine that the annotations may use; any other function fails the test.
var templateFuncs = template.FuncMap{
	"humanize":           func(v any) string { return fmt.Sprint(v) },
	"humanize1024":       func(v any) string { return fmt.Sprint(v) },
	"humanizeDuration":   func(v any) string { return fmt.Sprint(v) },
	"humanizePercentage": func(v any) string { return fmt.Sprint(v) },
	"title":              strings.Title, //nolint:staticcheck // the engine's own
	"toUpper":            strings.ToUpper,
	"toLower":            strings.ToLower,
}

// templateDefs is what Prometheus puts before every alert template.
const templateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// checkTemplate parses text as Prometheus does and runs it with and without
// the labels the rule's series may carry.
func checkTemplate(text string) error {
	tmpl, err := template.New("annotation").Funcs(templateFuncs).Option("missingkey=zero").Parse(templateDefs + text)
	if err != nil {
		return err
	}
	for _, l := range []map[string]string{{}, {"job": "fulfill-shipper", "instance": "10.0.0.1:9103",
		"shop": "acme", "stage": "enriched", "endpoint": "delivery/send", "consumer": "shipper", "result": "error"}} {
		data := map[string]any{"Labels": l, "ExternalLabels": map[string]string{}, "ExternalURL": "", "Value": 0.25}
		if err := tmpl.Execute(io.Discard, data); err != nil {
			return err
		}
	}
	return nil
}

// TestAlertRules checks deploy/observability/alerts.yaml as Prometheus's
// rule loader would (fields, expressions, durations, label and annotation
// names, templates), and what operators need of each rule: a severity, a
// summary, a description and a runbook naming the fulfillctl command to
// run; and that every alert the issue asks for is there, on the series it
// is about.
func TestAlertRules(t *testing.T) {
	f, _ := loadAlerts(t)
	byName := map[string]rule{}
	groups := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q is empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rules", g.Name)
		}
	}
	for _, r := range f.allRules() {
		t.Run(r.Alert, func(t *testing.T) {
			if r.Record != "" || r.Alert == "" {
				t.Fatalf("want an alerting rule (alert set, record not), got alert %q record %q", r.Alert, r.Record)
			}
			if _, dup := byName[r.Alert]; dup {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			byName[r.Alert] = r
			if !strings.HasPrefix(r.Alert, "Fulfill") {
				t.Errorf("alert %s: name it Fulfill… so it is known for the pipeline's", r.Alert)
			}
			if _, err := metricNames(r.Expr); err != nil {
				t.Errorf("expr does not parse: %v\n%s", err, r.Expr)
			}
			for what, d := range map[string]string{"for": r.For, "keep_firing_for": r.KeepFiringFor} {
				if _, err := model.ParseDuration(d); d != "" && err != nil {
					t.Errorf("%s %q: %v", what, d, err)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("severity %q, want critical or warning", s)
			}
			for k, v := range r.Labels {
				if !labelName.MatchString(k) || k == labels.MetricName {
					t.Errorf("invalid label name %q", k)
				}
				if err := checkTemplate(v); err != nil {
					t.Errorf("label %s: %v", k, err)
				}
			}
			for _, k := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("annotation %s is missing", k)
				}
			}
			for k, v := range r.Annotations {
				if !labelName.MatchString(k) {
					t.Errorf("invalid annotation name %q", k)
				}
				if err := checkTemplate(v); err != nil {
					t.Errorf("annotation %s: %v", k, err)
				}
			}
			if !runbookCommand.MatchString(r.Annotations["runbook"]) {
				t.Errorf("the runbook names no fulfillctl command to run (status, dlq list, dlq redrive, replay):\n%s", r.Annotations["runbook"])
			}
		})
	}

	// The alerts of issue 18, each on the series it is about.
	tests := []struct {
		alert string
		about string // a metric the expression must select
		with  string // a matcher it must carry, "" for none
	}{
		{"FulfillShipperLagGrowing", "fulfill_consumer_pending", `consumer="shipper"`},
		{"FulfillNoShipments", "fulfill_events_out_total", `stage="shipped"`},
		{"FulfillNoShipments", "fulfill_consumer_pending", ""},
		{"FulfillFailedRatioHigh", "fulfill_events_out_total", `stage="failed"`},
		{"FulfillDailyQuotaExhausted", "fulfill_api_calls_total", `errcode="45009"`},
		{"FulfillTokenRefreshFailing", "fulfill_token_refreshes_total", `result!="ok"`},
		{"FulfillRedeliveriesRising", "fulfill_redeliveries_total", ""},
		{"FulfillServiceDown", "up", ""},
	}
	for _, tt := range tests {
		t.Run("has "+tt.alert+" on "+tt.about, func(t *testing.T) {
			r, ok := byName[tt.alert]
			if !ok {
				t.Fatalf("alerts.yaml has no %s", tt.alert)
			}
			vss, err := selectors(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, vs := range vss {
				if vs.Name != tt.about {
					continue
				}
				for _, m := range vs.LabelMatchers {
					found = found || tt.with == "" || m.String() == tt.with
				}
			}
			if !found {
				t.Errorf("%s selects no %s{%s}:\n%s", tt.alert, tt.about, tt.with, r.Expr)
			}
		})
	}

	// FulfillServiceDown watches the scrape jobs of the three stages by the
	// names deploy/observability/prometheus.yml and the PodMonitor give them.
	if r, ok := byName["FulfillServiceDown"]; ok {
		vss, _ := selectors(r.Expr)
		for _, bin := range []string{config.Ingest, config.Enricher, config.Shipper} {
			job := "fulfill-" + bin
			watched := slices.ContainsFunc(vss, func(vs *parser.VectorSelector) bool {
				if vs.Name != "up" {
					return false
				}
				for _, m := range vs.LabelMatchers {
					if m.Name == "job" && m.Matches(job) {
						return true
					}
				}
				return false
			})
			if !watched {
				t.Errorf("FulfillServiceDown does not watch up{job=%q}", job)
			}
		}
	}

	// The push alert watches each shop's last push against its received
	// orders.
	if r, ok := byName["FulfillNoPushReceived"]; !ok {
		t.Error("alerts.yaml has no FulfillNoPushReceived")
	} else if !strings.Contains(r.Expr, "fulfill_push_last_stored_timestamp_seconds") || !strings.Contains(r.Expr, `stage="received"`) {
		t.Errorf("FulfillNoPushReceived: %s; want the last push time against received orders, by shop", r.Expr)
	}
}
