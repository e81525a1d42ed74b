package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/fulfill/pipeline/internal/faulttest"
)

// Environment variables of the suite.
const (
	// envFull runs every test at full size when set to 1.
	envFull = "FULFILL_RELIABILITY"
	// envReport names the markdown file TestMain writes the results to.
	envReport = "FULFILL_RELIABILITY_REPORT"
	// envFuzzCorpus names a directory of go-fuzz corpus files of
	// FuzzDecodeOrderRequest (make reliability points it at the fuzz cache).
	envFuzzCorpus = "FULFILL_FUZZ_CORPUS"
)

// TestMain runs a service when re-executed as a child process, else the
// tests, then writes the report if asked.
func TestMain(m *testing.M) {
	faulttest.RunChildIfAsked()
	code := m.Run()
	if path := os.Getenv(envReport); path != "" {
		if err := writeReport(path); err != nil {
			fmt.Fprintf(os.Stderr, "reliability report: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// full reports whether the suite runs at full size (FULFILL_RELIABILITY=1
// and not -short).
func full() bool { return os.Getenv(envFull) == "1" && !testing.Short() }

// needFull skips a test that takes longer than CI's fast subset allows.
func needFull(t *testing.T, why string) {
	t.Helper()
	if !full() {
		t.Skipf("%s; runs with %s=1 (make reliability)", why, envFull)
	}
}

// size is n at full size and small otherwise.
func size(n, small int) int {
	if full() {
		return n
	}
	return small
}

// envSeed overrides the seed of every test's random choices, to replay a
// failed run: its seed is in the test's log.
const envSeed = "FULFILL_SEED"

// seedFor is the seed of a test's random choices (the moment of a fault,
// the orders it hits): def unless FULFILL_SEED is set. It is logged so a
// failing run can be replayed.
func seedFor(t testing.TB, def uint64) uint64 {
	t.Helper()
	seed := def
	if v := os.Getenv(envSeed); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: not a number", envSeed, v)
		}
		seed = s
	}
	t.Logf("random choices seeded with %d (%s=%d replays them)", seed, envSeed, seed)
	return seed
}

// rngFor is a source of random choices seeded with seedFor(t, def).
func rngFor(t testing.TB, def uint64) *rand.Rand {
	t.Helper()
	seed := seedFor(t, def)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}
