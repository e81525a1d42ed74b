package stack

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fulfill/pipeline/internal/config"
)

// TestServicesHelpAndBadConfig checks each binary's Run: --help lists every
// variable the binary reads, and a bad value is refused in one line that
// names the variable, before anything connects.
func TestServicesHelpAndBadConfig(t *testing.T) {
	for name, run := range Services {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), []string{name, "--help"}, func(string) string { return "" }, &out); err != nil {
				t.Fatalf("--help: %v", err)
			}
			for _, v := range config.VarsFor(name) {
				if !strings.Contains(out.String(), v.Name) {
					t.Errorf("--help does not list %s", v.Name)
				}
			}
			env := map[string]string{"STREAM_REPLICAS": "many"}
			err := run(context.Background(), []string{name}, func(k string) string { return env[k] }, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), "STREAM_REPLICAS") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line naming STREAM_REPLICAS", err)
			}
		})
	}
}
