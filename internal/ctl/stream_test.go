package ctl

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fulfill/pipeline/internal/jstest"
	"github.com/fulfill/pipeline/pkg/events"
)

func TestStreamApply(t *testing.T) {
	_, js := jstest.Start(t)
	url := js.Conn().ConnectedUrl()
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		env := Env{Getenv: func(k string) string {
			if k == "NATS_URL" {
				return url
			}
			return ""
		}, Stdout: &out, Stderr: &out}
		if err := Run(context.Background(), append([]string{"fulfillctl", "stream", "apply"}, args...), env); err != nil {
			t.Fatalf("stream apply %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	maxAge := func() time.Duration {
		s, err := js.Stream(t.Context(), events.StreamName)
		if err != nil {
			return 0
		}
		return s.CachedInfo().Config.MaxAge
	}
	if out := run("--dry-run"); !strings.Contains(out, "would be created") || maxAge() != 0 {
		t.Fatalf("dry run on no stream: %q, stream max age %s", out, maxAge())
	}
	run("--max-age", "1h")
	if maxAge() != time.Hour {
		t.Fatalf("created with max age %s, want 1h", maxAge())
	}
	if out := run("--max-age", "168h", "--dry-run"); !strings.Contains(out, "max_age: have 1h0m0s, want 168h0m0s") || maxAge() != time.Hour {
		t.Fatalf("dry run: %q, max age now %s", out, maxAge())
	}
	if out := run("--max-age", "168h"); !strings.Contains(out, "changed") || maxAge() != 168*time.Hour {
		t.Fatalf("apply: %q, max age now %s", out, maxAge())
	}
	if out := run("--max-age", "168h"); !strings.Contains(out, "already has") {
		t.Fatalf("apply again: %q", out)
	}
	var out bytes.Buffer
	err := Run(context.Background(), []string{"fulfillctl", "stream", "apply", "--max-age", "90s"}, Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out})
	if err == nil || !strings.Contains(err.Error(), "duplicate window") {
		t.Fatalf("--max-age 90s: %v, want a usage error", err)
	}
}
