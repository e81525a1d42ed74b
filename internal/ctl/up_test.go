package ctl

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/fulfill/pipeline/internal/embednats"
	"github.com/fulfill/pipeline/internal/service"
	"github.com/fulfill/pipeline/internal/tally"
	"github.com/fulfill/pipeline/pkg/events"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// TestUpUntilDone is the README's first command, shortened: every demo
// order reaches a terminal state, the summary matches the stream, exit 0.
func TestUpUntilDone(t *testing.T) {
	var out bytes.Buffer
	env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
	args := []string{"fulfillctl", "up", "--until-done", "--orders", "150", "--nats-port", "0", "--data-dir", t.TempDir()}
	if err := Run(context.Background(), args, env); err != nil {
		t.Fatalf("up --until-done: %v\n%s", err, out.String())
	}
	// What the scenario up served (seed 1, 150 orders, default faults)
	// expects: the summary must match the stream and the scenario both.
	shipped, failed := 0, 0
	for _, o := range sandbox.New(sandbox.Config{Seed: 1, Orders: 150, Faults: sandbox.DefaultFaults()}).Scenario() {
		switch o.Expect {
		case sandbox.OutcomeShipped:
			shipped++
		case sandbox.OutcomeFailed:
			failed++
		}
	}
	summary := fmt.Sprintf("terminal counts (%d shipped, %d failed orders): yes", shipped, failed)
	for _, want := range []string{"NATS:", "Sandbox:", "Push:", summary, "orders shipped twice: 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// up pushes by default: each paid order's push is stored once, and
	// every order came in once, by push or by the safety-net poll
	// (which of the two first is a race at start).
	var push, poll, api, stored int
	i := strings.Index(out.String(), "Orders came in")
	if i < 0 {
		t.Fatalf("no push/poll line:\n%s", out.String())
	}
	if _, err := fmt.Sscanf(out.String()[i:], "Orders came in by push: %d, by poll: %d, by the API: %d (pushes stored: %d)", &push, &poll, &api, &stored); err != nil {
		t.Fatalf("no push/poll line: %v\n%s", err, out.String())
	}
	if push+poll+api != 150 || stored != 150 || api != 0 {
		t.Errorf("by push %d, by poll %d, by API %d, pushes stored %d; want 150 orders in all, 150 pushes stored", push, poll, api, stored)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nope"},
		{"up", "--faults", "some"},
		{"dlq"},
		{"dlq", "redrive"},
		{"dlq", "redrive", "--all", "--order-id", "1"},
		{"replay", "--since", "1h"},
		{"replay", "--stage", "shipper"},
		{"replay", "--stage", "shipper", "--since", "yesterday"},
		{"replay", "--stage", "shipper", "--since", "1h", "--order-id", "1.2"},
		{"replay", "--stage", "shipper", "--since", "1h", "--until", "2h"},
		{"replay", "--stage", "shipper", "--since", "1h", "--from-seq", "5"},
		{"replay", "--stage", "shipper", "--from-seq", "9", "--to-seq", "3"},
		{"replay", "--stage", "shipper", "--since", "1h", "--source", "bogus"},
		{"dlq", "list", "--source", "bogus"},
		{"dlq", "redrive", "--all", "--source", "bogus"},
		{"dlq", "redrive", "--order-id", "a.b"},
	} {
		var out bytes.Buffer
		env := Env{Getenv: func(string) string { return "nats://127.0.0.1:1" }, Stdout: &out, Stderr: &out}
		if err := Run(context.Background(), append([]string{"fulfillctl"}, args...), env); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, args := range [][]string{
		{"up", "--help"}, {"sandbox", "--help"}, {"status", "--help"}, {"dlq", "list", "--help"},
		{"dlq", "redrive", "--help"}, {"replay", "--help"}, {"bench", "--help"},
	} {
		var out bytes.Buffer
		env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
		if err := Run(context.Background(), append([]string{"fulfillctl"}, args...), env); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if s := out.String(); strings.Count(s, "Usage:") != 1 || !strings.Contains(s, "Flags:\n  -") {
			t.Errorf("%v printed:\n%s", args, s)
		}
	}
}

// up --data-dir DIR leaves a store a standalone nats-server opens with -sd
// DIR, and a rerun on it resumes: the same sandbox facts at the same times,
// so nothing is received or logged twice.
func TestUpDataDirIsTheStoreDir(t *testing.T) {
	dir := t.TempDir()
	run := func() string {
		t.Helper()
		var out bytes.Buffer
		env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
		args := []string{"fulfillctl", "up", "--until-done", "--orders", "60", "--nats-port", "0", "--data-dir", dir}
		if err := Run(context.Background(), args, env); err != nil {
			t.Fatalf("up: %v\n%s", err, out.String())
		}
		return out.String()
	}
	first := run()
	if !strings.Contains(first, "nats-server -js -sd "+dir) {
		t.Errorf("up does not say how to serve the kept stream:\n%s", first)
	}
	// A server of our own on DIR finds the stream.
	srv, err := embednats.Start(embednats.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, js, err := service.Connect(t.Context(), srv.ClientURL(), "", "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tl, err := tally.Read(t.Context(), js)
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()
	if err != nil {
		t.Fatalf("a server on %s: %v", dir, err)
	}
	received, logistics := tl.Messages[events.StageReceived], tl.Messages[events.StageLogistics]
	if received != 60 || logistics == 0 {
		t.Fatalf("the stream in %s holds %d received and %d logistics events; want 60 and some", dir, received, logistics)
	}
	second := run()
	want := fmt.Sprintf("Stream: %d received, ", received)
	if !strings.Contains(second, want) || !strings.Contains(second, fmt.Sprintf(", %d logistics events", logistics)) {
		t.Errorf("the rerun on the same data dir added events (want %q and %d logistics):\n%s", want, logistics, second)
	}
}
