package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Report is everything one bench run measured.
type Report struct {
	CPUs      int
	GoVersion string
	Started   time.Time
	Took      time.Duration
	Opts      Options
	// Raw is the three JetStream hops alone; Ceiling the same hops with the
	// platform calls the pipeline is forced to make, and nothing else.
	Raw, Ceiling HopsFigures
	// CeilingApart is the ceiling with its hops in a process of their own,
	// the NATS server and the sandbox in the bench process.
	CeilingApart HopsFigures
	// CeilingContract is CeilingApart with the per-order bookkeeping the
	// pipeline's contract adds to the platform calls (bookkeeping): the
	// most a pipeline that keeps the contract, deployed, could do.
	CeilingContract HopsFigures
	Pipeline        PipelineFigures
	Latency         LatencyFigures
	Sweep           []SweepPoint
	Drain           *DrainFigures
}

// The targets of issue #15 and the earlier ones still in force.
const (
	targetCeilingRatio = 0.80
	targetServicesCPU  = 150 * time.Microsecond
	targetBatchFill    = 95
	targetListPerOrder = 1.0 / 90
	targetP99          = 300 * time.Millisecond
	targetBoundShare   = 0.80
	targetReplicas     = 2.5
	targetPeakRSS      = 64 << 20
	targetRSSGrowth    = 1.10
)

// Ratio is the headline: the pipeline's throughput over the
// platform-inclusive ceiling's.
func (r *Report) Ratio() float64 { return ratio(r.Pipeline.OrdersPerSec, r.Ceiling.OrdersPerSec) }

// ApartRatio is the pipeline's throughput over the ceiling's with its hops
// in a process of their own.
func (r *Report) ApartRatio() float64 {
	return ratio(r.Pipeline.OrdersPerSec, r.CeilingApart.OrdersPerSec)
}

// ContractRatio is the pipeline's throughput over the contract ceiling's.
func (r *Report) ContractRatio() float64 {
	return ratio(r.Pipeline.OrdersPerSec, r.CeilingContract.OrdersPerSec)
}

// RawRatio is the pipeline's throughput over the raw limit's.
func (r *Report) RawRatio() float64 { return ratio(r.Pipeline.OrdersPerSec, r.Raw.OrdersPerSec) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// services are the figures of the three services, without the bench
// process.
func (f PipelineFigures) services() []ProcessFigures {
	var s []ProcessFigures
	for _, p := range f.Processes {
		if p.Name != selfName {
			s = append(s, p)
		}
	}
	return s
}

// servicesCPU is the CPU time per order of the three services together.
func (f PipelineFigures) servicesCPU() time.Duration {
	var total time.Duration
	for _, p := range f.services() {
		total += p.CPU
	}
	return total
}

// cpuTotal is the CPU time per order of every process, the bench process
// (NATS server and sandbox) included.
func (f PipelineFigures) cpuTotal() time.Duration {
	var total time.Duration
	for _, p := range f.Processes {
		total += p.CPU
	}
	return total
}

// ctxSwitches is the context switches per order of every process, the
// bench process included; 0 when any was not measured.
func (f PipelineFigures) ctxSwitches() float64 {
	var n float64
	for _, p := range f.Processes {
		if math.IsNaN(p.CtxSwitches) {
			return 0
		}
		n += p.CtxSwitches
	}
	return n
}

// costliest is the service with the most CPU per order; ok is false without
// one.
func (f PipelineFigures) costliest() (p ProcessFigures, ok bool) {
	for _, s := range f.services() {
		if !ok || s.CPU > p.CPU {
			p, ok = s, true
		}
	}
	return p, ok
}

// target is one line of the targets table; miss says by how much a missed
// target is missed.
type target struct {
	name, want, got string
	met             bool
	miss            string
}

func (r *Report) targets() []target {
	var ts []target
	add := func(name, want, got string, met bool, miss string) {
		ts = append(ts, target{name, want, got, met, miss})
	}
	if r.Ceiling.OrdersPerSec > 0 {
		add("pipeline / platform-inclusive ceiling", fmt.Sprintf("≥ %.0f%%", 100*targetCeilingRatio), pct(r.Ratio()), r.Ratio() >= targetCeilingRatio,
			fmt.Sprintf("%.0f points short", 100*(targetCeilingRatio-r.Ratio())))
	}
	if cpu := r.Pipeline.servicesCPU(); cpu > 0 {
		add("CPU per order, ingest + enricher + shipper", "≤ "+us(targetServicesCPU), us(cpu), cpu <= targetServicesCPU,
			us(cpu-targetServicesCPU)+" over")
	}
	fill := r.Pipeline.BatchFill
	if r.Drain != nil {
		fill = r.Drain.BatchFill
	}
	add("batchGetOrder fill under backlog", fmt.Sprintf("≥ %d", targetBatchFill), fmt.Sprintf("%.1f", fill), fill >= targetBatchFill,
		fmt.Sprintf("%.1f short", targetBatchFill-fill))
	lpo := r.Pipeline.CallsPerOrder["order/list/get"]
	add("order/list/get calls per order", "≤ 1/90", fmt.Sprintf("1/%.0f", 1/max(lpo, 1e-9)), lpo <= targetListPerOrder,
		fmt.Sprintf("%.0f more per 10,000 orders", 1e4*(lpo-targetListPerOrder)))
	tok := r.Pipeline.CallsPerOrder["stable_token"] * float64(r.Pipeline.Orders)
	add("token calls (3 processes, no rotation)", "= 3", fmt.Sprintf("%.0f", tok), math.Round(tok) <= 3,
		fmt.Sprintf("%.0f more", tok-3))
	add("p99 received→shipped at half throughput", "≤ "+targetP99.String(), ms(r.Latency.P99), r.Latency.P99 <= targetP99,
		ms(r.Latency.P99-targetP99)+" over")
	worst, base, three := 1.0, 0.0, 0.0
	for _, p := range r.Sweep {
		if p.Replicas == 1 && p.Bound <= 2000 {
			worst = min(worst, p.OrdersPerSec/p.Bound)
		}
		if p.Concurrency == 32 && p.Replicas == 1 {
			base = p.OrdersPerSec
		}
		if p.Concurrency == 32 && p.Replicas == 3 {
			three = p.OrdersPerSec
		}
	}
	add("throughput / Little's-law bound (bound ≤ 2,000/s, 1 replica)", "≥ 80%", pct(worst), worst >= targetBoundShare,
		fmt.Sprintf("%.0f points short", 100*(targetBoundShare-worst)))
	if base > 0 {
		add("3 shipper replicas / 1 (concurrency 32)", fmt.Sprintf("≥ %.1f×", targetReplicas), fmt.Sprintf("%.2f×", three/base), three/base >= targetReplicas,
			fmt.Sprintf("%.2f× short", targetReplicas-three/base))
	}
	if d := r.Drain; d != nil {
		var (
			peak     uint64
			peakName string
			grown    []string
		)
		for _, name := range sortedKeys(d.Peak) {
			if p := d.Peak[name]; p > peak {
				peak, peakName = p, name
			}
			if f := d.FirstPeak[name]; f > 0 && float64(d.LastPeak[name]) > targetRSSGrowth*float64(f) {
				grown = append(grown, fmt.Sprintf("%s grew %.0f%%", name, 100*(float64(d.LastPeak[name])/float64(f)-1)))
			}
		}
		add(fmt.Sprintf("peak RSS of any service, %d-event backlog", d.Backlog), "≤ "+mib(targetPeakRSS), mib(peak), peak <= targetPeakRSS,
			fmt.Sprintf("%s, %s over", peakName, mib(peak-min(peak, targetPeakRSS))))
		add("RSS flat while draining (last window's peak vs first's)", "within 10%", flatText(d), len(grown) == 0, strings.Join(grown, ", "))
	}
	return ts
}

func flatText(d *DrainFigures) string {
	var parts []string
	for _, name := range sortedKeys(d.Peak) {
		parts = append(parts, fmt.Sprintf("%s %s→%s", name, mib(d.FirstPeak[name]), mib(d.LastPeak[name])))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func pct(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }

// us is a duration in whole microseconds.
func us(d time.Duration) string { return d.Round(time.Microsecond).String() }

// ms is a duration in whole milliseconds.
func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// num is v with format, or "n/a" when it was not measured (NaN).
func num(format string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

// bytesText is a byte count per order: B under 10 KiB, else KiB.
func bytesText(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	if v < 10<<10 {
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%.1f KiB", v/(1<<10))
}

// printer writes formatted text, as fmt.Fprintf to the document.
type printer func(format string, args ...any)

// Markdown writes docs/PERFORMANCE.md, a section per part of the run.
func (r *Report) Markdown(w io.Writer) {
	p := printer(func(format string, args ...any) { fmt.Fprintf(w, format, args...) })
	r.mdIntro(p)
	r.mdHeadline(p)
	r.mdTargets(p)
	r.mdShortfall(p)
	r.mdCalls(p)
	r.mdCosts(p)
	r.mdBounds(p)
	r.mdContributors(p)
	r.mdSweep(p)
	r.mdDrain(p)
	p("\n## Reproduce\n\n```sh\nmake bench        # or: go run ./cmd/fulfillctl bench\n```\n")
}

// mdIntro says where, how and when the figures were made.
func (r *Report) mdIntro(p printer) {
	p("# Performance\n\n")
	p("Generated by `fulfillctl bench` (`make bench`) on %s: %d CPUs, %s, one embedded nats-server\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.CPUs, r.GoVersion)
	p("(file storage), the sandbox on loopback, services as separate processes")
	if n := r.Opts.GOMAXPROCS; n > 0 {
		p(" with GOMAXPROCS=%d as deploy/ runs them (it sets\nGOMAXPROCS from each stage's CPU request)", n)
	}
	p(". The whole run took %s.\n", r.Took.Round(time.Second))
	p("Do not edit by hand: run `make bench` to regenerate it.\n\n")
}

// mdHeadline is the ceiling, the raw limit, the pipeline's throughput, its
// ratios to both, its CPU and its latency.
func (r *Report) mdHeadline(p printer) {
	p("## Headline\n\n")
	p("| figure | value |\n|---|---|\n")
	p("| platform-inclusive ceiling: the raw hops plus order/get per order, one batchGetOrder per %d, delivery/send per order, against the sandbox over HTTP, %d workers a hop | %.0f orders/s |\n",
		ceilingBatch, ceilingWorkers, r.Ceiling.OrdersPerSec)
	if a := r.CeilingApart; a.OrdersPerSec > 0 {
		p("| the same ceiling with its hops in a process of their own, the NATS server and the sandbox in another (as in any deployment) | %.0f orders/s |\n", a.OrdersPerSec)
	}
	if c := r.CeilingContract; c.OrdersPerSec > 0 {
		p("| contract ceiling: that, with the per-order work the pipeline's contract adds (the order's lease, its record read before delivery/send, its shipped event stored only if it has none) | %.0f orders/s |\n", c.OrdersPerSec)
	}
	p("| raw JetStream limit (three hops, acks, %d B messages) | %.0f orders/s |\n", r.Opts.Payload, r.Raw.OrdersPerSec)
	p("| pipeline (%d orders, ingest → enricher → shipper, platform latency 0) | %.0f orders/s |\n", r.Pipeline.Orders, r.Pipeline.OrdersPerSec)
	p("| **pipeline / platform-inclusive ceiling** | **%s** |\n", pct(r.Ratio()))
	if r.CeilingApart.OrdersPerSec > 0 {
		p("| pipeline / the ceiling with its hops apart | %s |\n", pct(r.ApartRatio()))
	}
	if r.CeilingContract.OrdersPerSec > 0 {
		p("| pipeline / contract ceiling | %s |\n", pct(r.ContractRatio()))
	}
	p("| pipeline / raw limit | %s |\n", pct(r.RawRatio()))
	if cpu := r.Pipeline.servicesCPU(); cpu > 0 {
		p("| CPU per order, ingest + enricher + shipper | %s |\n", us(cpu))
	}
	p("| received→shipped latency at %.0f orders/s (half throughput), %d orders | p50 %s, p99 %s |\n\n",
		r.Latency.Rate, r.Latency.Orders, ms(r.Latency.P50), ms(r.Latency.P99))
}

// mdTargets is the table of targets, each met or missed by how much.
func (r *Report) mdTargets(p printer) {
	p("## Targets\n\n| target | want | measured | met |\n|---|---|---|---|\n")
	for _, t := range r.targets() {
		met := "yes"
		if !t.met {
			met = "**no**: " + t.miss
		}
		p("| %s | %s | %s | %s |\n", t.name, t.want, t.got, met)
	}
}

// mdShortfall explains the missed targets that the run can explain: the
// ceiling ratio and the CPU (the pipeline is CPU-bound, on what, with the
// costliest service's profile), the latency and the memory.
func (r *Report) mdShortfall(p printer) {
	r.mdCPUShortfall(p)
	if r.Latency.P99 > targetP99 {
		p("\np99 received→shipped at %.0f orders/s is %s, %s over the %s target (p50 %s). At half throughput the CPUs are\n",
			r.Latency.Rate, ms(r.Latency.P99), ms(r.Latency.P99-targetP99), targetP99, ms(r.Latency.P50))
		p("half idle, so the time is waiting, not work: the enricher's fetch waits up to ENRICH_MAX_WAIT (200ms unless\n")
		p("set) for a full batch of 100 before its batchGetOrder, and the shipper's fetch has a wait of its own.\n")
	}
	if d := r.Drain; d != nil {
		for _, name := range sortedKeys(d.Peak) {
			if d.Peak[name] <= targetPeakRSS {
				continue
			}
			p("\n%s peaks at %s RSS while draining %d events, %s over the %s target", name, mib(d.Peak[name]), d.Backlog, mib(d.Peak[name]-targetPeakRSS), mib(targetPeakRSS))
			for _, pf := range r.Pipeline.Processes {
				if pf.Name == name && !math.IsNaN(pf.AllocBytes) {
					p("; it allocates %s per order (%s objects; sites under \"Main contributors\")", bytesText(pf.AllocBytes), num("%.0f", pf.Allocs))
				}
			}
			p(".\n")
		}
	}
}

// mdCPUShortfall explains, when the pipeline is short of the ceiling target
// or its services over the CPU target, that it is CPU-bound and on what,
// with the costliest service's profile.
func (r *Report) mdCPUShortfall(p printer) {
	f := r.Pipeline
	ratioMissed := r.Ceiling.OrdersPerSec > 0 && r.Ratio() < targetCeilingRatio
	cpuMissed := f.servicesCPU() > targetServicesCPU
	if !ratioMissed && !cpuMissed {
		return
	}
	p("\n")
	if ratioMissed {
		p("The pipeline reaches %s of the platform-inclusive ceiling (%.0f of %.0f orders/s), %.0f points short of the\n",
			pct(r.Ratio()), f.OrdersPerSec, r.Ceiling.OrdersPerSec, 100*(targetCeilingRatio-r.Ratio()))
		p("%.0f%% target. Both make the same platform calls on the same %d cores, against the same NATS server and sandbox.\n", 100*targetCeilingRatio, r.CPUs)
		boundBusy := 0.0 // the share of the cores busy, when CPU-bound
		if total := f.cpuTotal(); total > 0 {
			busy := r.busy(total, f.OrdersPerSec)
			p("Its processes spend %s of CPU per order in all and kept %s of the cores busy", us(total), pct(busy))
			if c := r.Ceiling.CPUPerOrder; c > 0 {
				p("; the ceiling spends %s per order and kept %s busy", us(c), pct(r.busy(c, r.Ceiling.OrdersPerSec)))
			}
			if busy >= cpuBound {
				p(".\nThe pipeline is CPU-bound: the difference is work per order that the platforms do not force.")
				boundBusy = min(busy, 1)
			} else {
				p(".\nThe pipeline is not bound by its CPU alone: for the rest it waits (round trips made one after another,\n")
				p("fetch waits, poll intervals), unless other processes on the machine held the cores.")
			}
		}
		if msgs := r.servicesNATSMsgs(); msgs > 0 && r.Ceiling.NATSMsgsPerOrder > 0 {
			p(" The services exchange %.1f NATS messages per order with the server, the ceiling's hops %.1f.", msgs, r.Ceiling.NATSMsgsPerOrder)
		}
		if boundBusy > 0 {
			r.mdBudget(p, boundBusy)
		}
		p("\n")
		r.mdApart(p)
		r.mdContract(p)
	}
	if cpu := f.servicesCPU(); cpu > 0 {
		var parts []string
		for _, s := range f.services() {
			parts = append(parts, fmt.Sprintf("%s %s", s.Name, us(s.CPU)))
		}
		if cpuMissed {
			p("\nThe three services spend %s of CPU per order (%s), %s over the %s target.\n", us(cpu), strings.Join(parts, ", "), us(cpu-targetServicesCPU), us(targetServicesCPU))
		} else {
			p("\nThe three services spend %s of CPU per order (%s), within the %s target.\n", us(cpu), strings.Join(parts, ", "), us(targetServicesCPU))
		}
	}
	c, ok := f.costliest()
	if !ok || c.CPU <= 0 {
		return
	}
	p("The costliest is %s: %s of CPU, %s allocations (%s), %s read/write system calls and %s NATS messages per order.\n",
		c.Name, us(c.CPU), num("%.0f", c.Allocs), bytesText(c.AllocBytes), num("%.1f", c.Syscalls), num("%.1f", c.NATSMsgs))
	if cum := c.Contributors.CPUCum; len(cum) > 0 {
		var parts []string
		for _, e := range firstN(cum, 3) {
			parts = append(parts, fmt.Sprintf("`%s` %s", shortFunc(e.Func), pct(e.Cum)))
		}
		p("Most of its CPU goes through %s (with callees; see \"Main contributors\").\n", strings.Join(parts, ", "))
	}
	if c.Profile != "" {
		p("\n`go tool pprof -top` of %s (3 s during the pipeline phase):\n\n```\n%s\n```\n", c.Name, c.Profile)
	}
}

// mdBudget says how much CPU per order the ceiling target leaves the
// processes, at the share of the cores they kept busy, and how much of it
// the NATS server and the sandbox took alone: what is left for the
// services, or that nothing is.
func (r *Report) mdBudget(p printer, busy float64) {
	f := r.Pipeline
	target := targetCeilingRatio * r.Ceiling.OrdersPerSec
	services := f.servicesCPU()
	rest := f.cpuTotal() - services
	if target <= 0 || services <= 0 || rest <= 0 {
		return
	}
	budget := time.Duration(busy * float64(r.CPUs) / target * float64(time.Second))
	p("\n%.0f%% of the ceiling is %.0f orders/s: with %s of the cores busy, %s of CPU per order for every process together.",
		100*targetCeilingRatio, target, pct(busy), us(budget))
	if left := budget - rest; left > 0 {
		p(" The NATS server and the sandbox spent %s per order here, which leaves the three services %s (they spent %s).", us(rest), us(left), us(services))
	} else {
		p(" The NATS server and the sandbox alone spent %s per order here, %s over it before the services' own work (%s):\n", us(rest), us(-left), us(services))
		p("the target needs the server to do less per order too (fewer NATS messages and stored records), not only\n")
		p("cheaper services.")
	}
}

// mdApart says what a process boundary between the hops and the NATS
// server costs the ceiling, which the in-process ceiling does not pay and
// every deployment of the pipeline does, and how far the pipeline is from
// the ceiling that pays it.
func (r *Report) mdApart(p printer) {
	in, a := r.Ceiling, r.CeilingApart
	if a.OrdersPerSec <= 0 || in.OrdersPerSec <= 0 {
		return
	}
	p("\nThe ceiling runs its hops, the NATS server and the sandbox in one process. With its hops in a process of their own,\n")
	p("and nothing else changed, it reaches %.0f orders/s, %s of the in-process figure", a.OrdersPerSec, pct(ratio(a.OrdersPerSec, in.OrdersPerSec)))
	if in.CPUPerOrder > 0 && a.CPUPerOrder > 0 {
		p(": its CPU per order goes from %s to %s (%s of it in the hops' process)", us(in.CPUPerOrder), us(a.CPUPerOrder), us(a.HopsCPUPerOrder))
	}
	if !math.IsNaN(in.CtxSwitchesPerOrder) && !math.IsNaN(a.CtxSwitchesPerOrder) {
		p(", its context switches per order from %s to %s", num("%.2f", in.CtxSwitchesPerOrder), num("%.2f", a.CtxSwitchesPerOrder))
		if sw := r.Pipeline.ctxSwitches(); sw > 0 {
			p(" (the pipeline's processes: %s)", num("%.1f", sw))
		}
	}
	p(".\nIn one process a goroutine hands work to the next without waking a thread; across processes every hand-off that\n")
	p("finds the other side idle is a wake-up through the kernel. The pipeline, three processes beside the server's, reaches\n")
	p("%s of this ceiling.\n", pct(r.ApartRatio()))
}

// mdContract says what the per-order work of the pipeline's contract costs
// the ceiling with its hops apart, and whether a pipeline that does that work
// and nothing else could reach the ceiling target at all.
func (r *Report) mdContract(p printer) {
	in, a, c := r.Ceiling, r.CeilingApart, r.CeilingContract
	if c.OrdersPerSec <= 0 || in.OrdersPerSec <= 0 {
		return
	}
	share := ratio(c.OrdersPerSec, in.OrdersPerSec)
	p("\nThe pipeline's contract asks for work per order that no platform forces: one delivery/send per order at a time\n")
	p("across replicas (the order's lease, a key created in a KV bucket, before the call), no second call for a copy of a\n")
	p("shipped order (its shipped and failed record read before the call), and no second shipped event (the server\n")
	p("stores it only if the order has none). The contract ceiling does the ceiling's calls with its hops apart and that\n")
	p("work, as the shipper does it, and nothing else: %.0f orders/s", c.OrdersPerSec)
	if a.OrdersPerSec > 0 {
		p(", %s of the ceiling with its hops apart", pct(ratio(c.OrdersPerSec, a.OrdersPerSec)))
	}
	p(" and %s of the in-process one", pct(share))
	if a.NATSMsgsPerOrder > 0 && c.NATSMsgsPerOrder > 0 {
		p(" (%.1f NATS messages per order instead of %.1f", c.NATSMsgsPerOrder, a.NATSMsgsPerOrder)
		if a.CPUPerOrder > 0 && c.CPUPerOrder > 0 {
			p(", %s of CPU instead of %s, %s of it in the hops' process instead of %s", us(c.CPUPerOrder), us(a.CPUPerOrder), us(c.HopsCPUPerOrder), us(a.HopsCPUPerOrder))
		}
		p(")")
	}
	p(".\n")
	if share < targetCeilingRatio {
		p("That is %.0f points under the %.0f%% target before any envelope, log line, metric or check of the pipeline's own:\n",
			100*(targetCeilingRatio-share), 100*targetCeilingRatio)
		p("a pipeline that keeps the contract as the shipper does, apart from its NATS server, cannot reach the target on this\n")
		p("machine. Reaching it takes a cheaper way to keep the contract, a contract without the per-order lease and record\n")
		p("read, or a target set against this ceiling.\n")
	} else {
		p("A pipeline that keeps the contract could reach the %.0f%% target only with almost nothing of its own beyond it.\n", 100*targetCeilingRatio)
	}
	if h := c.HopsCPUPerOrder; h > targetServicesCPU {
		p("Its hops alone, all three in one process doing the calls and that work and nothing else, spend %s of CPU per\n", us(h))
		p("order, %s over the %s target for the three services: that target too is beyond a pipeline that keeps the\n", us(h-targetServicesCPU), us(targetServicesCPU))
		p("contract this way, as three processes or as one.\n")
	}
	p("The pipeline reaches %s of the contract ceiling.\n", pct(r.ContractRatio()))
}

// cpuBound is the share of the cores busy with the pipeline's processes
// from which the report calls it CPU-bound.
const cpuBound = 0.85

// busy is the share of the report's cores that perOrder of CPU at ordersPerSec
// keeps busy.
func (r *Report) busy(perOrder time.Duration, ordersPerSec float64) float64 {
	return perOrder.Seconds() * ordersPerSec / float64(max(r.CPUs, 1))
}

// servicesNATSMsgs is the NATS messages per order of the three services
// together; 0 when not measured.
func (r *Report) servicesNATSMsgs() float64 {
	var n float64
	for _, s := range r.Pipeline.services() {
		if math.IsNaN(s.NATSMsgs) {
			return 0
		}
		n += s.NATSMsgs
	}
	return n
}

// mdCalls is the platform calls per order of the pipeline beside the
// ceiling's, and the batchGetOrder fill.
func (r *Report) mdCalls(p printer) {
	p("\n## Platform calls per order\n\nWhat the sandbox answered, divided by orders: the pipeline phase and the ceiling. order/list/get counts the calls until the last order was received; ingest's idle polls after that (every 100ms in this run) are the poll interval's cost, not the paging's.\n\n")
	p("| endpoint | pipeline | ceiling |\n|---|---|---|\n")
	eps := map[string]bool{}
	for ep := range r.Pipeline.CallsPerOrder {
		eps[ep] = true
	}
	for ep := range r.Ceiling.CallsPerOrder {
		eps[ep] = true
	}
	for _, ep := range sortedKeys(eps) {
		p("| %s | %s | %s |\n", ep, callsText(r.Pipeline.CallsPerOrder, ep), callsText(r.Ceiling.CallsPerOrder, ep))
	}
	p("\nMean batchGetOrder fill: %.1f orders per call in the pipeline phase", r.Pipeline.BatchFill)
	if r.Drain != nil {
		p(", %.1f while draining the backlog", r.Drain.BatchFill)
	}
	p(".\n")
}

func callsText(calls map[string]float64, ep string) string {
	v, ok := calls[ep]
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.4f", v)
}

// mdCosts is each process's costs per order in the pipeline phase, and the
// in-process phases' for comparison, with what each column counts.
func (r *Report) mdCosts(p printer) {
	f := r.Pipeline
	if len(f.Processes) == 0 {
		return
	}
	p("\n## Cost per order of each process (pipeline phase)\n\n")
	p("| process | CPU | allocations | bytes allocated | read/write syscalls | context switches | NATS messages | peak RSS |\n|---|---|---|---|---|---|---|---|\n")
	row := func(pf ProcessFigures) {
		rss := "–"
		if pf.PeakRSS > 0 {
			rss = mib(pf.PeakRSS)
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", pf.Name, us(pf.CPU), num("%.0f", pf.Allocs), bytesText(pf.AllocBytes),
			num("%.1f", pf.Syscalls), num("%.1f", pf.CtxSwitches), num("%.1f", pf.NATSMsgs), rss)
	}
	sum := ProcessFigures{Name: "**ingest + enricher + shipper**"}
	for _, s := range f.services() {
		row(s)
		sum.CPU += s.CPU
		sum.Allocs += s.Allocs
		sum.AllocBytes += s.AllocBytes
		sum.Syscalls += s.Syscalls
		sum.CtxSwitches += s.CtxSwitches
		sum.NATSMsgs += s.NATSMsgs
	}
	row(sum)
	for _, s := range f.Processes {
		if s.Name == selfName {
			row(s)
		}
	}
	for _, h := range []struct {
		name string
		f    HopsFigures
	}{
		{"ceiling (one process: server, sandbox, hops)", r.Ceiling},
		{"ceiling, hops apart (two processes: server and sandbox; hops)", r.CeilingApart},
		{"contract ceiling (hops apart, with lease, record read and guarded shipped event)", r.CeilingContract},
		{"raw limit (one process: server, hops)", r.Raw},
	} {
		if h.f.CPUPerOrder > 0 {
			p("| %s | %s | | | %s | %s | %.1f | |\n", h.name, us(h.f.CPUPerOrder),
				num("%.1f", h.f.SyscallsPerOrder), num("%.2f", h.f.CtxSwitchesPerOrder), h.f.NATSMsgsPerOrder)
		}
	}
	p("\nEach figure is what the process used from the moment every service was ready (ingest held back until then)\n")
	p("to the last terminal event, divided by the %d orders. CPU: user+system time from /proc/<pid>/stat. Allocations\n", f.Orders)
	p("and bytes: `go_memstats_mallocs_total` and `go_memstats_alloc_bytes_total` from the service's /metrics. Read/write\n")
	p("syscalls: `syscr`+`syscw` of /proc/<pid>/io, the read and write family (read, readv, pread64, preadv, write,\n")
	p("writev, pwrite64, pwritev, sendfile, copy_file_range) on any descriptor, TCP sockets included (Go reads and writes\n")
	p("them with read and write); epoll_wait, futex, nanosleep, mmap, sendmsg and recvmsg are not counted. Context switches:\n")
	p("voluntary and involuntary, summed over /proc/<pid>/task/*/status (each blocking futex or epoll_wait is one).\n")
	p("NATS messages: in and out on the service's connection as the server counts them (publishes, acks, deliveries,\n")
	p("PubAcks, KV and API requests and replies). The bench process also counts the terminal events and records the profiles.\n")
	p("The ceilings' rows are their whole processes from the first publish to the last ack, counted the same way.\n")
}

// mdBounds is each process's CPU per order and the throughput the CPUs
// allow, when the run measured CPU.
func (r *Report) mdBounds(p printer) {
	f := r.Pipeline
	if len(f.Processes) == 0 {
		return
	}
	p("\n## What bounds the pipeline\n\nCPU time per order of each process during the pipeline phase (the bench process runs the\nembedded NATS server and the sandbox):\n\n| process | CPU per order |\n|---|---|\n")
	for _, pf := range f.Processes {
		p("| %s | %s |\n", pf.Name, us(pf.CPU))
	}
	total := f.cpuTotal()
	p("| **total** | **%s** |\n\n", us(total))
	if total > 0 {
		p("%d cores ÷ %s per order = %.0f orders/s if the CPUs were the only limit (measured: %.0f).",
			r.CPUs, us(total), float64(r.CPUs)/total.Seconds(), f.OrdersPerSec)
		if c := r.Ceiling.CPUPerOrder; c > 0 {
			p(" The ceiling spends %s per order in all: %d cores ÷ %s = %.0f orders/s (measured: %.0f).",
				us(c), r.CPUs, us(c), float64(r.CPUs)/c.Seconds(), r.Ceiling.OrdersPerSec)
		}
		if c := r.CeilingApart.CPUPerOrder; c > 0 {
			p(" With its hops apart: %d cores ÷ %s = %.0f orders/s (measured: %.0f).",
				r.CPUs, us(c), float64(r.CPUs)/c.Seconds(), r.CeilingApart.OrdersPerSec)
		}
		if c := r.CeilingContract.CPUPerOrder; c > 0 {
			p(" The contract ceiling: %d cores ÷ %s = %.0f orders/s (measured: %.0f).",
				r.CPUs, us(c), float64(r.CPUs)/c.Seconds(), r.CeilingContract.OrdersPerSec)
		}
		p("\n")
	}
}

// mdContributors is, for each process, a short table of the functions its
// profiles say it spends the most on.
func (r *Report) mdContributors(p printer) {
	var profiled bool
	for _, pf := range r.Pipeline.Processes {
		profiled = profiled || len(pf.Contributors.CPUFlat) > 0
	}
	if !profiled {
		return
	}
	p("\n## Main contributors\n\n")
	p("From a 3 s CPU profile and a 3 s allocations profile (`/debug/pprof/allocs?seconds=3`, sampled) of each process,\n")
	p("taken at the start of the measured part. Each cell is a function, its share of the profile and that share of the\n")
	p("process's cost per order. CPU, own: in the function itself. CPU, with callees: in it and what it calls, the runtime's\n")
	p("and the standard library's plumbing left out. CPU in syscalls: system calls under the function. Allocations: sites.\n")
	p("Serving the profiles and /metrics costs each process a little: pprof's compression and the metrics collectors may show.\n")
	for _, pf := range r.Pipeline.Processes {
		c := pf.Contributors
		if len(c.CPUFlat) == 0 {
			continue
		}
		p("\n### %s\n\n", pf.Name)
		cols := [][]topEntry{c.CPUFlat, c.CPUCum, c.Syscalls, c.AllocObjects, c.AllocSpace}
		rows := 0
		for _, col := range cols {
			rows = max(rows, len(col))
		}
		p("| # | CPU, own | CPU, with callees | CPU in syscalls, by caller | allocations, objects | allocations, bytes |\n|---|---|---|---|---|---|\n")
		cpu := float64(pf.CPU) / float64(time.Microsecond)
		for i := range rows {
			p("| %d | %s | %s | %s | %s | %s |\n", i+1,
				cell(c.CPUFlat, i, false, cpu, "%.1fµs"), cell(c.CPUCum, i, true, cpu, "%.1fµs"), cell(c.Syscalls, i, true, cpu, "%.1fµs"),
				cell(c.AllocObjects, i, false, pf.Allocs, "%.1f"), bytesCell(c.AllocSpace, i, pf.AllocBytes))
		}
	}
}

// cell is entry i of es: the function, its share (cum or flat) and that
// share of perOrder in format; empty past the end.
func cell(es []topEntry, i int, cum bool, perOrder float64, format string) string {
	if i >= len(es) {
		return ""
	}
	share := es[i].Flat
	if cum {
		share = es[i].Cum
	}
	s := fmt.Sprintf("`%s` %s", shortFunc(es[i].Func), pct(share))
	if perOrder > 0 && !math.IsNaN(perOrder) {
		s += " · " + fmt.Sprintf(format, share*perOrder)
	}
	return s
}

// bytesCell is cell for bytes per order.
func bytesCell(es []topEntry, i int, perOrder float64) string {
	if i >= len(es) {
		return ""
	}
	s := fmt.Sprintf("`%s` %s", shortFunc(es[i].Func), pct(es[i].Flat))
	if perOrder > 0 && !math.IsNaN(perOrder) {
		s += " · " + bytesText(es[i].Flat*perOrder)
	}
	return s
}

// mdSweep is the shipper sweep against its Little's-law bounds.
func (r *Report) mdSweep(p printer) {
	p("\n## Shipper sweep at %s platform latency\n\n", r.Opts.Latency)
	p("Orders pre-loaded as enriched events; time from the shippers' start to the last terminal event.\n\n")
	p("| SHIP_CONCURRENCY | shippers | orders | orders/s | Little's-law bound | of bound |\n|---|---|---|---|---|---|\n")
	for _, s := range r.Sweep {
		p("| %d | %d | %d | %.0f | %.0f | %.0f%% |\n", s.Concurrency, s.Replicas, s.Orders, s.OrdersPerSec, s.Bound, 100*s.OrdersPerSec/s.Bound)
	}
	p("\n![throughput against the Little's-law bound](sweep.svg)\n")
}

// mdDrain is the backlog drain's memory, when the run drained one.
func (r *Report) mdDrain(p printer) {
	d := r.Drain
	if d == nil {
		return
	}
	p("\n## Draining a backlog of %d received events\n\n", d.Backlog)
	p("Drained in %s (%.0f orders/s). RSS sampled every second:\n\n", d.Took.Round(time.Second), d.OrdersPerSec)
	p("| service | peak RSS | first window's peak | last window's peak |\n|---|---|---|---|\n")
	for _, name := range sortedKeys(d.Peak) {
		p("| %s | %s | %s | %s |\n", name, mib(d.Peak[name]), mib(d.FirstPeak[name]), mib(d.LastPeak[name]))
	}
}

// SVG plots the sweep: orders/s against concurrency, one line per replica
// count, with the Little's-law bounds dashed.
func (r *Report) SVG(w io.Writer) {
	const W, H, L, B, T, R = 760, 400, 70, 50, 30, 210
	// The scale follows the measurements; bounds beyond it are drawn to
	// the top edge (the CPUs, not the bound, limit those points).
	maxY := 1.0
	for _, s := range r.Sweep {
		maxY = max(maxY, 1.25*s.OrdersPerSec)
	}
	concs := r.Opts.Sweep
	x := func(i int) float64 { return L + float64(i)*float64(W-L-R)/float64(max(len(concs)-1, 1)) }
	y := func(v float64) float64 { return float64(H-B) - min(v, maxY)/maxY*float64(H-B-T) }
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", L, H-B, W-R, H-B, L, T, L, H-B)
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(w, `<text x="%d" y="%.0f" text-anchor="end">%.0f</text>`+"\n", L-6, y(v)+4, v)
	}
	for i, c := range concs {
		fmt.Fprintf(w, `<text x="%.0f" y="%d" text-anchor="middle">%d</text>`+"\n", x(i), H-B+18, c)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">SHIP_CONCURRENCY (platform latency %s)</text>`+"\n", (L+W-R)/2, H-12, r.Opts.Latency)
	fmt.Fprintf(w, `<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">orders/s</text>`+"\n", (T+H-B)/2, (T+H-B)/2)
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}
	for ri, reps := range r.Opts.Replicas {
		col := colors[ri%len(colors)]
		var meas, bound []string
		for i, c := range concs {
			for _, s := range r.Sweep {
				if s.Concurrency == c && s.Replicas == reps {
					meas = append(meas, fmt.Sprintf("%.0f,%.0f", x(i), y(s.OrdersPerSec)))
					bound = append(bound, fmt.Sprintf("%.0f,%.0f", x(i), y(s.Bound)))
				}
			}
		}
		fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(meas, " "))
		fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-dasharray="5,4" points="%s"/>`+"\n", col, strings.Join(bound, " "))
		fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">%d shipper(s), measured</text>`+"\n", W-R+10, T+20+ri*36, col, reps)
		fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">%d shipper(s), Little's-law bound</text>`+"\n", W-R+10, T+36+ri*36, col, reps)
	}
	fmt.Fprintln(w, `</svg>`)
}
