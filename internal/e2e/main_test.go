package e2e

import (
	"os"
	"testing"

	"github.com/fulfill/pipeline/internal/faulttest"
)

// TestMain runs a service instead of the tests when the binary was
// re-executed as a child process (faulttest.StartChild), so a test can
// SIGKILL a real process.
func TestMain(m *testing.M) {
	faulttest.RunChildIfAsked()
	os.Exit(m.Run())
}
