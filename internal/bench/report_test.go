package bench

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	return &Report{
		CPUs: 2, GoVersion: "go1.26", Started: time.Unix(1700000000, 0), Took: 2 * time.Minute,
		Opts:            Options{Payload: 600, Latency: 50 * time.Millisecond, Sweep: []int{8, 32}, Replicas: []int{1, 3}},
		RawOrdersPerSec: 20000,
		Pipeline: PipelineFigures{Orders: 20000, OrdersPerSec: 7000, BatchFill: 99,
			CallsPerOrder: map[string]float64{"order/list/get": 0.01, "stable_token": 3.0 / 20000},
			CPUPerOrder:   map[string]time.Duration{"shipper": 100 * time.Microsecond}},
		Latency: LatencyFigures{Rate: 3500, Orders: 100, P50: 50 * time.Millisecond, P99: 120 * time.Millisecond},
		Sweep: []SweepPoint{
			{Concurrency: 8, Replicas: 1, OrdersPerSec: 150, Bound: 160},
			{Concurrency: 32, Replicas: 1, OrdersPerSec: 600, Bound: 640},
			{Concurrency: 8, Replicas: 3, OrdersPerSec: 450, Bound: 480},
			{Concurrency: 32, Replicas: 3, OrdersPerSec: 1000, Bound: 1920},
		},
		Drain: &DrainFigures{Backlog: 1000, Peak: map[string]uint64{"shipper": 200 << 20},
			FirstPeak: map[string]uint64{"shipper": 20 << 20}, LastPeak: map[string]uint64{"shipper": 30 << 20}, BatchFill: 100},
	}
}

// TestTargets checks that each target is judged met or missed by its own
// figure, so the document cannot call a miss a pass.
func TestTargets(t *testing.T) {
	got := map[string]bool{}
	for _, tg := range sampleReport().targets() {
		got[tg.name] = tg.met
	}
	want := map[string]bool{
		"pipeline / raw limit":                                    true,  // 35%
		"batchGetOrder fill under backlog":                        true,  // drain's 100
		"order/list/get calls per order":                          true,  // 1/100
		"token calls (3 processes, no rotation)":                  true,  // 3
		"p99 received→shipped at half throughput":                 true,  // 120ms
		"3 shipper replicas / 1 (concurrency 32)":                 false, // 1.67×
		"peak RSS of any service, 1000-event backlog":             false, // 200 MiB
		"RSS flat while draining (last window's peak vs first's)": false, // 20→30 MiB
	}
	for name, met := range want {
		if g, ok := got[name]; !ok || g != met {
			t.Errorf("target %q: met=%v (present %v), want %v", name, g, ok, met)
		}
	}
}

func TestMarkdownAndSVG(t *testing.T) {
	r := sampleReport()
	var md, svg bytes.Buffer
	r.Markdown(&md)
	for _, want := range []string{"# Performance", "| ratio pipeline / raw | 35% |", "p50 50ms, p99 120ms", "**no**", "sweep.svg", "What bounds the pipeline"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	r.SVG(&svg)
	if err := xml.Unmarshal(svg.Bytes(), new(struct{})); err != nil {
		t.Errorf("SVG is not well-formed XML: %v", err)
	}
	if n := strings.Count(svg.String(), "<polyline"); n != 4 {
		t.Errorf("SVG has %d lines, want measured and bound for 2 replica counts", n)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/*.golden.md from the current Markdown")

// TestMarkdownGolden pins the whole document for reports that take every
// branch of Markdown: below the 30% target (the CPU explanation), with and
// without a drain, CPU figures and profiles.
func TestMarkdownGolden(t *testing.T) {
	tests := []struct {
		name   string
		report func() *Report
	}{
		{"sample", sampleReport},
		{"short of target", func() *Report {
			r := sampleReport()
			r.Pipeline.OrdersPerSec = 4000
			r.Pipeline.CPUPerOrder = map[string]time.Duration{
				"shipper": 100 * time.Microsecond, "enricher": 80 * time.Microsecond, "nats-server+sandbox": 300 * time.Microsecond,
			}
			r.Pipeline.Services = []ServiceFigures{{Name: "ingest", PeakRSS: 30 << 20, AllocsPerOrder: 120}, {Name: "shipper", PeakRSS: 40 << 20, AllocsPerOrder: 310}}
			r.Pipeline.Profiles = map[string]string{"shipper": "flat  flat%\n10ms 50%", "ingest": ""}
			return r
		}},
		{"no drain no CPU", func() *Report {
			r := sampleReport()
			r.Drain = nil
			r.Pipeline.CPUPerOrder = nil
			r.Sweep = r.Sweep[:1]
			return r
		}},
		{"zero CPU", func() *Report {
			r := sampleReport()
			r.Pipeline.CPUPerOrder = map[string]time.Duration{"shipper": 0}
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var md bytes.Buffer
			tt.report().Markdown(&md)
			file := filepath.Join("testdata", strings.ReplaceAll(tt.name, " ", "_")+".golden.md")
			if *update {
				if err := os.WriteFile(file, md.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run TestMarkdownGolden -update once to create it)", err)
			}
			if !bytes.Equal(md.Bytes(), want) {
				t.Errorf("Markdown differs from %s:\n%s", file, md.String())
			}
		})
	}
}
