package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"

	"github.com/fulfill/pipeline/internal/stack"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// CeilingHopsService is the name under which the bench runs the ceiling's
// hops as a child process: Options.Exe with Options.Args, then this name
// (fulfillctl service ceiling-hops), which calls ServeCeilingHops.
const CeilingHopsService = "ceiling-hops"

// The child's own settings, beside NATS_URL and the WECHAT_* variables.
const (
	hopsOrdersVar   = "BENCH_CEILING_ORDERS"   // file of the orders, JSON
	hopsPayloadVar  = "BENCH_CEILING_PAYLOAD"  // message body, bytes
	hopsContractVar = "BENCH_CEILING_CONTRACT" // "1": with the contract's bookkeeping
)

// hopsOrder is one order of the child's file: what the hops need of the
// sandbox's scenario.
type hopsOrder struct {
	OrderID    string `json:"order_id"`
	DeliveryID string `json:"delivery_id"`
}

// hopsResult is what the child measured around its chain and writes to its
// stdout: totals, not per order. A counter /proc did not give is absent.
type hopsResult struct {
	OrdersPerSec float64       `json:"orders_per_sec"`
	CPU          time.Duration `json:"cpu_ns"`
	Syscalls     *float64      `json:"syscalls,omitempty"`
	CtxSwitches  *float64      `json:"ctx_switches,omitempty"`
	GOMAXPROCS   int           `json:"gomaxprocs"`
}

// ceilingApartPhase measures the platform-inclusive ceiling with its hops
// in a process of their own and the NATS server and the sandbox in this
// one: the same hops, calls, workers and payload as ceilingPhase, across
// the process boundary that every deployment has between its services and
// the NATS server. What it costs the ceiling is what the in-process
// ceiling does not show of the pipeline's bounds. With contract, the hops
// also do the contract's bookkeeping (see bookkeeping).
func ceilingApartPhase(ctx context.Context, o Options, contract bool) (HopsFigures, error) {
	var f HopsFigures
	err := withStack(stack.Options{Sandbox: benchSandbox(o.Orders)}, func(st *stack.Stack) error {
		var err error
		f, err = ceilingApart(ctx, o, st, contract)
		return err
	})
	return f, err
}

// ceilingApart runs every order of st's sandbox through the ceiling's chain
// in a child process (o.Exe) and reads the figures of both processes.
func ceilingApart(ctx context.Context, o Options, st *stack.Stack, contract bool) (HopsFigures, error) {
	var f HopsFigures
	scenario := st.Sandbox.Scenario()
	orders := make([]hopsOrder, len(scenario))
	for i, so := range scenario {
		orders[i] = hopsOrder{OrderID: so.OrderID, DeliveryID: so.DeliveryID}
	}
	dir, err := os.MkdirTemp("", "fulfill-ceiling-*")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "orders.json")
	b, err := json.Marshal(orders)
	if err != nil {
		return f, err
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return f, err
	}

	env := st.Getenv(nil)
	cmd := exec.CommandContext(ctx, o.Exe, append(slices.Clone(o.Args), CeilingHopsService)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "NATS_URL=" + st.NATSURL,
		"WECHAT_API_BASE=" + env("WECHAT_API_BASE"), "WECHAT_APPID=" + env("WECHAT_APPID"), "WECHAT_APPSECRET=" + env("WECHAT_APPSECRET"),
		hopsOrdersVar + "=" + file, hopsPayloadVar + "=" + strconv.Itoa(o.Payload)}
	if contract {
		cmd.Env = append(cmd.Env, hopsContractVar+"=1")
	}
	for k, v := range o.childEnv() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	fs, _ := procfs.NewDefaultFS() // without /proc the syscalls and switches are NaN
	u0, msgs0 := readSelfUsage(fs), serverMsgs(st)
	if err := cmd.Run(); err != nil {
		return f, fmt.Errorf("ceiling hops process: %w: %s", err, lastLine(stderr.String()))
	}
	u := readSelfUsage(fs).perOrder(u0, len(orders))
	var res hopsResult
	if err := json.NewDecoder(&stdout).Decode(&res); err != nil {
		return f, fmt.Errorf("ceiling hops process: reading its figures: %w", err)
	}
	if o.GOMAXPROCS > 0 && res.GOMAXPROCS != o.GOMAXPROCS {
		return f, fmt.Errorf("ceiling hops process ran with GOMAXPROCS=%d, want %d", res.GOMAXPROCS, o.GOMAXPROCS)
	}

	n := max(len(orders), 1)
	f = HopsFigures{Orders: len(orders), OrdersPerSec: res.OrdersPerSec,
		HopsCPUPerOrder:  res.CPU / time.Duration(n),
		NATSMsgsPerOrder: float64(serverMsgs(st)-msgs0) / float64(n),
		CallsPerOrder:    callsPerOrder(st.Sandbox.Stats(), len(orders)),
	}
	f.CPUPerOrder = u.cpu + f.HopsCPUPerOrder
	f.SyscallsPerOrder = u.syscalls + orNaN(res.Syscalls)/float64(n)
	f.CtxSwitchesPerOrder = u.ctxSwitches + orNaN(res.CtxSwitches)/float64(n)
	return f, nil
}

// ServeCeilingHops is the ceiling's child process (CeilingHopsService): it
// runs the ceiling's chain of the orders in the file $BENCH_CEILING_ORDERS
// against the NATS server at $NATS_URL and the platform at
// $WECHAT_API_BASE, with the contract's bookkeeping if
// $BENCH_CEILING_CONTRACT is 1, then writes what it measured around the
// chain to stdout as one JSON object.
func ServeCeilingHops(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	b, err := os.ReadFile(getenv(hopsOrdersVar))
	if err != nil {
		return fmt.Errorf("%s: %w", hopsOrdersVar, err)
	}
	var orders []hopsOrder
	if err := json.Unmarshal(b, &orders); err != nil {
		return fmt.Errorf("%s: %w", hopsOrdersVar, err)
	}
	payload, err := strconv.Atoi(getenv(hopsPayloadVar))
	if err != nil || payload < 0 {
		return fmt.Errorf("%s=%q: want a number of bytes", hopsPayloadVar, getenv(hopsPayloadVar))
	}
	scenario := make([]sandbox.ScenarioOrder, len(orders))
	for i, o := range orders {
		scenario[i] = sandbox.ScenarioOrder{OrderID: o.OrderID, DeliveryID: o.DeliveryID}
	}
	p := newPlatform(getenv("WECHAT_API_BASE"), getenv("WECHAT_APPID"), getenv("WECHAT_APPSECRET"), scenario)
	defer p.close()
	c := ceilingChain(p, scenario, payload, ceilingWorkers)
	switch v := getenv(hopsContractVar); v {
	case "", "0":
	case "1":
		c.contract = true
	default:
		return fmt.Errorf("%s=%q: want 1 or 0", hopsContractVar, v)
	}

	fs, _ := procfs.NewDefaultFS()
	u0 := readSelfUsage(fs)
	v, err := c.run(ctx, getenv("NATS_URL"))
	if err != nil {
		return err
	}
	u1 := readSelfUsage(fs)
	return json.NewEncoder(stdout).Encode(hopsResult{OrdersPerSec: v, CPU: u1.cpu - u0.cpu,
		Syscalls: orNil(u1.syscalls - u0.syscalls), CtxSwitches: orNil(u1.ctxSwitches - u0.ctxSwitches), GOMAXPROCS: runtime.GOMAXPROCS(0)})
}

// orNil is v, or nil when it is NaN (JSON has no NaN).
func orNil(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

// orNaN is *v, or NaN when v is nil.
func orNaN(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// lastLine is the last non-empty line of s: a failed child's error.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
