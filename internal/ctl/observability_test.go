package ctl

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fulfill/pipeline/internal/faulttest"
)

var metricsURL = regexp.MustCompile(`(?m)^http://127\.0\.0\.1:(\d+)/metrics$`)

// up --observability prints one /metrics URL per service it runs (two
// shipper replicas here), each really serving the service's metrics while
// up runs, a scrape config naming the same targets under the job names
// the alert rules expect, and the dashboard and rules files, which exist.
func TestUpObservability(t *testing.T) {
	out := &faulttest.SyncBuffer{}
	env := Env{Getenv: func(string) string { return "" }, Stdout: out, Stderr: out}
	args := []string{"fulfillctl", "up", "--observability", "--until-done", "--orders", "40", "--shippers", "2", "--nats-port", "0", "--data-dir", t.TempDir()}
	done := make(chan error, 1)
	var finished atomic.Bool
	go func() {
		err := Run(context.Background(), args, env)
		finished.Store(true)
		done <- err
	}()

	var urls []string
	for deadline := time.Now().Add(time.Minute); len(urls) < 4; {
		if time.Now().After(deadline) {
			t.Fatalf("up printed %d /metrics URLs, want 4:\n%s", len(urls), out.String())
		}
		time.Sleep(20 * time.Millisecond)
		urls = metricsURL.FindAllString(out.String(), -1)
	}
	// Served while up runs (it may already be done: then they are gone).
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Go(func() {
			resp, err := http.Get(u)
			if err != nil {
				if !finished.Load() {
					t.Errorf("GET %s: %v", u, err)
				}
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "# TYPE fulfill_batch_size histogram") {
				t.Errorf("GET %s: %d, not the service's metrics", u, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	text := out.String()

	// The snippet is YAML with the same targets under the rules' job names.
	start := strings.Index(text, "scrape_configs:")
	end := strings.Index(text, "\nAlert rules:")
	if start < 0 || end < start {
		t.Fatalf("no scrape_configs snippet:\n%s", text)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(text[start:end]), &cfg); err != nil {
		t.Fatalf("the snippet is not YAML: %v\n%s", err, text[start:end])
	}
	targets := map[string][]string{}
	var all []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets[sc.JobName] = append(targets[sc.JobName], st.Targets...)
			for _, tg := range st.Targets {
				all = append(all, "http://"+tg+"/metrics")
			}
		}
	}
	if len(targets["fulfill-ingest"]) != 1 || len(targets["fulfill-enricher"]) != 1 || len(targets["fulfill-shipper"]) != 2 || len(targets) != 3 {
		t.Errorf("scrape targets %v: want one ingest, one enricher, two shippers", targets)
	}
	slices.Sort(all)
	slices.Sort(urls)
	if !slices.Equal(all, urls) {
		t.Errorf("scrape targets %v are not the printed URLs %v", all, urls)
	}
	for _, name := range []string{"alerts.yaml", "dashboard.json"} {
		m := regexp.MustCompile(`(\S+/deploy/observability/` + regexp.QuoteMeta(name) + `)\s`).FindStringSubmatch(text)
		if m == nil {
			t.Errorf("up does not name %s:\n%s", name, text)
			continue
		}
		if _, err := os.Stat(m[1]); err != nil {
			t.Errorf("%s: %v", m[1], err)
		}
	}
	if !strings.Contains(text, "Traces:      off (set OTEL_EXPORTER_OTLP_ENDPOINT") || !strings.Contains(text, "Dashboards > New > Import") {
		t.Errorf("up does not say how to import the dashboard or turn traces on:\n%s", text)
	}
}
