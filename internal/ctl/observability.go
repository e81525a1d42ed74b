package ctl

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/internal/tracing"
)

// observabilityDir is where deploy/observability is, from the working
// directory or one of its parents (fulfillctl run from the source tree).
const observabilityDir = "deploy/observability"

// findObservability is the absolute path of deploy/observability/name, or
// the path in the source tree when it is not found from here.
func findObservability(name string) string {
	rel := filepath.Join(observabilityDir, name)
	dir, err := os.Getwd()
	for err == nil {
		p := filepath.Join(dir, rel)
		if _, serr := os.Stat(p); serr == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return rel + " (in the source tree)"
}

// printObservability says where every service serves /metrics, one URL a
// line, how to point a Prometheus at them (the job names the alert rules
// expect), where the dashboard and alert rules are, and whether traces
// go anywhere.
func printObservability(w io.Writer, admins []stack.Admin, traces map[string]string) {
	fmt.Fprintln(w, "Metrics (Prometheus text, one URL per service, served while up runs):")
	jobs := map[string][]string{}
	var order []string
	for _, a := range admins {
		fmt.Fprintf(w, "http://%s/metrics\n", a.Addr)
		job := "fulfill-" + a.Service
		if _, ok := jobs[job]; !ok {
			order = append(order, job)
		}
		jobs[job] = append(jobs[job], a.Addr)
	}
	fmt.Fprintln(w, "\nPrometheus: add these to prometheus.yml (the alert rules expect these job names):")
	fmt.Fprintln(w, "\nscrape_configs:")
	for _, job := range order {
		targets := make([]string, len(jobs[job]))
		for i, t := range jobs[job] {
			targets[i] = `"` + t + `"`
		}
		fmt.Fprintf(w, "  - job_name: %s\n    scrape_interval: 5s\n    static_configs:\n      - targets: [%s]\n", job, strings.Join(targets, ", "))
	}
	fmt.Fprintf(w, "\nAlert rules: %s   (list it under rule_files: in prometheus.yml)\n", findObservability("alerts.yaml"))
	fmt.Fprintf(w, "Dashboard:   %s   (Grafana: Dashboards > New > Import, upload the file, pick the Prometheus data source)\n", findObservability("dashboard.json"))
	switch {
	case !tracing.Enabled(traces[tracing.EnvEndpoint], func(k string) string { return traces[k] }):
		fmt.Fprintf(w, "Traces:      off (set %s, e.g. http://127.0.0.1:4318, to export them over OTLP)\n\n", tracing.EnvEndpoint)
	default:
		to := traces[tracing.EnvTracesEndpoint]
		if to == "" {
			to = traces[tracing.EnvEndpoint]
		}
		fmt.Fprintf(w, "Traces:      exported over OTLP to %s\n\n", config.RedactURLs(to))
	}
}
