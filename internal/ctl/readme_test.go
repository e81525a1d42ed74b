package ctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/tally"
)

const (
	readmePath     = "../../README.md"
	sampleBegin    = "<!-- sample: %s -->\n"
	sampleEnd      = "<!-- end of sample -->"
	updateREADME   = "UPDATE_README"
	samplesOrders  = "500"
	sampleMaxLines = 12
)

// TestREADMESamples runs what the README shows — fulfillctl up on a data
// directory, then status, order, dlq list, dlq redrive and replay against a
// server on that directory — and checks the README's samples still have the
// output's shape: the same commands and the same column headers. With
// UPDATE_README=1 it writes this run's output into the README.
func TestREADMESamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs fulfillctl up with 500 orders")
	}
	dir := t.TempDir()
	samples := map[string]string{}
	var out bytes.Buffer
	env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
	if err := Run(context.Background(), []string{"fulfillctl", "up", "--until-done", "--orders", samplesOrders, "--nats-port", "0", "--data-dir", dir}, env); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	samples["up"] = "$ go run ./cmd/fulfillctl up --until-done --data-dir DIR\n" + strings.ReplaceAll(out.String(), dir, "DIR")

	srv, err := embednats.Start(embednats.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	url := srv.ClientURL()
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		env := Env{Getenv: func(k string) string {
			if k == "NATS_URL" {
				return url
			}
			return ""
		}, Stdout: &out, Stderr: &out}
		if err := Run(context.Background(), append([]string{"fulfillctl"}, args...), env); err != nil {
			t.Fatalf("fulfillctl %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return "$ fulfillctl " + strings.Join(args, " ") + "\n" + out.String()
	}
	samples["status"] = run("status")
	samples["dlq list"] = shorten(run("dlq", "list"))
	samples["dlq redrive"] = shorten(run("dlq", "redrive", "--all", "--dry-run"))
	samples["order"] = run("order", redrivenOrder(t, url))
	samples["replay"] = shorten(run("replay", "--stage", "shipper", "--since", "1h")) + shorten(run("replay", "--stage", "shipper", "--since", "1h"))

	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for name, sample := range samples {
		begin := fmt.Sprintf(sampleBegin, name)
		i := strings.Index(readme, begin)
		j := strings.Index(readme[max(i, 0):], sampleEnd) + max(i, 0)
		if i < 0 || j < i {
			t.Errorf("README.md lacks the sample markers of %q", name)
			continue
		}
		block := "```\n" + sample + "```\n"
		have := readme[i+len(begin) : j]
		if os.Getenv(updateREADME) == "1" {
			readme = readme[:i+len(begin)] + block + readme[j:]
			continue
		}
		if got, want := shape(have), shape(block); !slices.Equal(got, want) {
			t.Errorf("README.md's %q sample is stale (run %s=1 go test ./internal/ctl -run TestREADMESamples):\nREADME: %q\nnow:    %q", name, updateREADME, got, want)
		}
	}
	if os.Getenv(updateREADME) == "1" {
		if err := os.WriteFile(readmePath, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// redrivenOrder picks the order the README follows with fulfillctl order:
// one that failed in the shipper (the most telling history).
func redrivenOrder(t *testing.T, url string) string {
	t.Helper()
	nc, js, err := service.Connect(t.Context(), url, "", "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tl, err := tally.Read(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	// The smallest such id: the same in every run of the same scenario.
	pick := ""
	for _, o := range tl.FailedOrders() {
		if o.LastFailed != nil && o.LastFailed.Stage == "shipper" && (pick == "" || o.OrderID < pick) {
			pick = o.OrderID
		}
	}
	if pick == "" {
		t.Fatal("no order failed in the shipper")
	}
	return pick
}

// shorten keeps a long listing's first lines and its summary.
func shorten(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= sampleMaxLines {
		return s
	}
	head := lines[:sampleMaxLines-3]
	return strings.Join(append(head, "…", "", lines[len(lines)-1]), "\n") + "\n"
}

var headerLine = regexp.MustCompile(`^[A-Z][A-Z_ ]+$`)

// shape is what must not drift between a sample and the real output: the
// commands run and the column headers.
func shape(block string) []string {
	var out []string
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "$ ") || headerLine.MatchString(l) {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return out
}
