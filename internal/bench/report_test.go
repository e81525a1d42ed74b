package bench

import (
	"bytes"
	"encoding/xml"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	return &Report{
		CPUs: 2, GoVersion: "go1.26", Started: time.Unix(1700000000, 0), Took: 2 * time.Minute,
		Opts:    Options{Payload: 600, Latency: 50 * time.Millisecond, Sweep: []int{8, 32}, Replicas: []int{1, 3}, GOMAXPROCS: 1},
		Raw:     HopsFigures{Orders: 20000, OrdersPerSec: 20000, CPUPerOrder: 90 * time.Microsecond, NATSMsgsPerOrder: 10, SyscallsPerOrder: 3.4, CtxSwitchesPerOrder: 0.5},
		Ceiling: HopsFigures{Orders: 20000, OrdersPerSec: 8000, CPUPerOrder: 240 * time.Microsecond, NATSMsgsPerOrder: 10, SyscallsPerOrder: 16.1, CtxSwitchesPerOrder: 0.07, CallsPerOrder: map[string]float64{"order/get": 1, "batchGetOrder": 0.01, "delivery/send": 1, "stable_token": 3.0 / 20000}},
		CeilingApart: HopsFigures{Orders: 20000, OrdersPerSec: 6000, CPUPerOrder: 330 * time.Microsecond, HopsCPUPerOrder: 150 * time.Microsecond,
			NATSMsgsPerOrder: 10, SyscallsPerOrder: 17, CtxSwitchesPerOrder: 0.9, CallsPerOrder: map[string]float64{"order/get": 1, "batchGetOrder": 0.01, "delivery/send": 1, "stable_token": 3.0 / 20000}},
		CeilingContract: HopsFigures{Orders: 20000, OrdersPerSec: 4900, CPUPerOrder: 400 * time.Microsecond, HopsCPUPerOrder: 170 * time.Microsecond,
			NATSMsgsPerOrder: 14, SyscallsPerOrder: 22, CtxSwitchesPerOrder: 1.4, CallsPerOrder: map[string]float64{"order/get": 1, "batchGetOrder": 0.01, "delivery/send": 1, "stable_token": 3.0 / 20000}},
		Pipeline: PipelineFigures{Orders: 20000, OrdersPerSec: 7000, BatchFill: 99,
			CallsPerOrder: map[string]float64{"order/list/get": 0.01, "stable_token": 3.0 / 20000},
			Processes:     []ProcessFigures{{Name: "shipper", CPU: 100 * time.Microsecond, Allocs: 120, AllocBytes: 9000, Syscalls: 4.5, CtxSwitches: 2.25, NATSMsgs: 6}}},
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

// shortReport is sampleReport far from its targets, with every figure and
// profile of a real run: the pipeline at a third of the ceiling, its
// services over the CPU target, latency and memory over theirs.
func shortReport() *Report {
	r := sampleReport()
	r.Pipeline.OrdersPerSec = 2500
	r.Latency.P50, r.Latency.P99 = 180*time.Millisecond, 420*time.Millisecond
	r.Drain.Peak["enricher"], r.Drain.FirstPeak["enricher"], r.Drain.LastPeak["enricher"] = 70<<20, 60<<20, 62<<20
	contributors := Contributors{
		CPUFlat: []topEntry{{"internal/runtime/syscall/linux.Syscall6", 0.187, 0.187}, {"runtime.futex", 0.057, 0.057}},
		CPUCum: []topEntry{{"github.com/fulfill/pipeline/internal/ingest.(*ChannelsPoller).order", 0.05, 0.58},
			{"github.com/fulfill/pipeline/pkg/clients/wechat.(*Client).GetOrder", 0.01, 0.35}, {"encoding/json.Unmarshal", 0, 0.2}},
		Syscalls:     []topEntry{{"github.com/nats-io/nats%2ego.(*Conn).flusher", 0, 0.04}},
		AllocObjects: []topEntry{{"net/textproto.MIMEHeader.Set", 0.13, 0.13}, {"encoding/json.(*decodeState).literalStore", 0.11, 0.2}},
		AllocSpace:   []topEntry{{"io.ReadAll", 0.14, 0.14}},
	}
	r.Pipeline.Processes = []ProcessFigures{
		{Name: "enricher", PeakRSS: 30 << 20, CPU: 60 * time.Microsecond, Allocs: 107, AllocBytes: 15000, Syscalls: 0.6, CtxSwitches: 1.5, NATSMsgs: 4},
		{Name: "ingest", PeakRSS: 36 << 20, CPU: 150 * time.Microsecond, Allocs: 254, AllocBytes: 20 << 10, Syscalls: 5.2, CtxSwitches: 3, NATSMsgs: 4,
			Contributors: contributors, Profile: "      flat  flat%   sum%        cum   cum%\n     230ms 18.70% 18.70%      230ms 18.70%  internal/runtime/syscall/linux.Syscall6"},
		{Name: "shipper", PeakRSS: 25 << 20, CPU: 117 * time.Microsecond, Allocs: 242, AllocBytes: 26000, Syscalls: 7.2, CtxSwitches: 2, NATSMsgs: 12},
		{Name: selfName, CPU: 250 * time.Microsecond, Allocs: 387, AllocBytes: 44000, Syscalls: 14.4, CtxSwitches: 5, NATSMsgs: math.NaN(),
			Contributors: Contributors{CPUFlat: contributors.CPUFlat, CPUCum: []topEntry{{"net/http.(*conn).serve", 0, 0.33}}}},
	}
	r.Pipeline.CallsPerOrder = map[string]float64{"order/get": 1, "batchGetOrder": 0.01, "delivery/send": 1, "order/list/get": 1.0 / 96, "stable_token": 3.0 / 20000}
	return r
}

// TestTargets checks that each target is judged met or missed by its own
// figure, so the document cannot call a miss a pass, and that a miss says by
// how much.
func TestTargets(t *testing.T) {
	tests := []struct {
		name   string
		report func() *Report
		want   map[string]string // target → "" when met, else its miss
	}{
		{"sample", sampleReport, map[string]string{
			"pipeline / platform-inclusive ceiling":                        "",            // 88%
			"CPU per order, ingest + enricher + shipper":                   "",            // 100µs
			"batchGetOrder fill under backlog":                             "",            // drain's 100
			"order/list/get calls per order":                               "",            // 1/100
			"token calls (3 processes, no rotation)":                       "",            // 3
			"p99 received→shipped at half throughput":                      "",            // 120ms
			"throughput / Little's-law bound (bound ≤ 2,000/s, 1 replica)": "",            // 94%
			"3 shipper replicas / 1 (concurrency 32)":                      "0.83× short", // 1.67×
			"peak RSS of any service, 1000-event backlog":                  "shipper, 136.0 MiB over",
			"RSS flat while draining (last window's peak vs first's)":      "shipper grew 50%", // 20→30 MiB
		}},
		{"short", shortReport, map[string]string{
			"pipeline / platform-inclusive ceiling":       "49 points short", // 31%
			"CPU per order, ingest + enricher + shipper":  "177µs over",      // 327µs
			"p99 received→shipped at half throughput":     "120ms over",
			"peak RSS of any service, 1000-event backlog": "shipper, 136.0 MiB over",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]target{}
			for _, tg := range tt.report().targets() {
				got[tg.name] = tg
			}
			for name, miss := range tt.want {
				g, ok := got[name]
				switch {
				case !ok:
					t.Errorf("target %q missing", name)
				case g.met != (miss == ""):
					t.Errorf("target %q: met=%v, want %v", name, g.met, miss == "")
				case miss != "" && g.miss != miss:
					t.Errorf("target %q: missed by %q, want %q", name, g.miss, miss)
				}
			}
		})
	}
}

// TestRatios: the headline ratio is against the ceiling, the raw one beside
// it; without a measured ceiling the ratio is 0 and its target is left out
// rather than called missed.
func TestRatios(t *testing.T) {
	r := sampleReport()
	if got := r.Ratio(); got != 7000.0/8000 {
		t.Errorf("Ratio = %v, want pipeline / ceiling = 0.875", got)
	}
	if got := r.RawRatio(); got != 7000.0/20000 {
		t.Errorf("RawRatio = %v, want pipeline / raw = 0.35", got)
	}
	if got := r.ApartRatio(); got != 7000.0/6000 {
		t.Errorf("ApartRatio = %v, want pipeline / ceiling with its hops apart = 7000/6000", got)
	}
	r.Ceiling, r.CeilingApart = HopsFigures{}, HopsFigures{}
	if r.ApartRatio() != 0 {
		t.Errorf("ApartRatio without that ceiling = %v, want 0", r.ApartRatio())
	}
	if r.Ratio() != 0 {
		t.Errorf("Ratio without a ceiling = %v, want 0", r.Ratio())
	}
	for _, tg := range r.targets() {
		if tg.name == "pipeline / platform-inclusive ceiling" {
			t.Errorf("ceiling target present without a ceiling: %+v", tg)
		}
	}
}

func TestMarkdownAndSVG(t *testing.T) {
	r := sampleReport()
	var md, svg bytes.Buffer
	r.Markdown(&md)
	for _, want := range []string{
		"# Performance", "| **pipeline / platform-inclusive ceiling** | **88%** |", "| pipeline / raw limit | 35% |",
		"| 8000 orders/s |", "p50 50ms, p99 120ms", "**no**: 0.83× short", "sweep.svg", "What bounds the pipeline",
		"| delivery/send | – | 1.0000 |", "| shipper | 100µs | 120 | 9000 B | 4.5 | 2.2 | 6.0 | – |",
	} {
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
// branch of Markdown: every target met or not (the CPU, latency and memory
// explanations with the costliest service's profile), with and without a
// drain, CPU figures, profiles and a ceiling, figures not measured.
func TestMarkdownGolden(t *testing.T) {
	tests := []struct {
		name   string
		report func() *Report
	}{
		{"sample", sampleReport},
		{"short of target", shortReport},
		{"no drain no CPU", func() *Report {
			r := sampleReport()
			r.Drain = nil
			r.Pipeline.Processes = nil
			r.Sweep = r.Sweep[:1]
			return r
		}},
		{"zero CPU", func() *Report {
			r := sampleReport()
			r.Pipeline.Processes = []ProcessFigures{{Name: "shipper", Allocs: math.NaN(), AllocBytes: math.NaN(), Syscalls: math.NaN(), CtxSwitches: math.NaN(), NATSMsgs: math.NaN()}}
			return r
		}},
		// CPU-bound, with the server and sandbox over the whole budget
		// the ceiling target leaves (97% busy, 303µs an order).
		{"CPU-bound server over budget", func() *Report {
			r := shortReport()
			r.Pipeline.Processes[3].CPU = 450 * time.Microsecond
			return r
		}},
		// CPU-bound, with budget left for the services (87.5% busy at
		// 2,500/s, target 3,200/s: 547µs an order, 250µs of it theirs).
		{"CPU-bound budget left", func() *Report {
			r := shortReport()
			r.Ceiling.OrdersPerSec = 4000
			r.Pipeline.Processes[0].CPU = 183 * time.Microsecond
			return r
		}},
		// An older or partial run: no ceiling with its hops apart, and
		// the in-process phases' system calls and switches not measured.
		{"no ceiling apart", func() *Report {
			r := shortReport()
			r.CeilingApart, r.CeilingContract = HopsFigures{}, HopsFigures{}
			r.Ceiling.SyscallsPerOrder, r.Ceiling.CtxSwitchesPerOrder = math.NaN(), math.NaN()
			return r
		}},
		// The contract ceiling within the ceiling target: the pipeline
		// could reach it only with nothing of its own.
		{"contract ceiling over target", func() *Report {
			r := shortReport()
			r.CeilingApart.OrdersPerSec, r.CeilingContract.OrdersPerSec = 7200, 6500
			r.CeilingContract.HopsCPUPerOrder = 140 * time.Microsecond
			return r
		}},
		{"short of ceiling within CPU", func() *Report {
			r := shortReport()
			for i := range r.Pipeline.Processes {
				r.Pipeline.Processes[i].CPU /= 3
				r.Pipeline.Processes[i].Profile = ""
			}
			r.Ceiling.CPUPerOrder, r.Ceiling.NATSMsgsPerOrder = 0, 0
			r.Latency.P99 = 200 * time.Millisecond
			r.Drain = nil
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
