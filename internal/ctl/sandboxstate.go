package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/fulfill/pipeline/pkg/sandbox"
)

// sandboxState is what a sandbox leaves for its restart: the scenario's
// epoch and how many orders it served, so the restart serves the same
// orders and vv-tool facts at the same times (pollers see nothing new, no
// logistics event is doubled) and dates any extra orders at its own start.
type sandboxState struct {
	Seed   int64     `json:"seed"`
	Epoch  time.Time `json:"epoch"`
	Orders int       `json:"orders"`
}

// applySandboxState sets cfg's Epoch and Served from the state file at
// path (none yet: a first run, dated now) and writes the state cfg will
// have. An empty path does nothing.
func applySandboxState(path string, cfg *sandbox.Config, now time.Time) error {
	if path == "" {
		return nil
	}
	var st sandboxState
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("sandbox state: %w", err)
	default:
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("sandbox state %s: %w", path, err)
		}
	}
	if st.Epoch.IsZero() || st.Seed != cfg.Seed {
		st = sandboxState{Seed: cfg.Seed, Epoch: now.UTC().Truncate(time.Second)}
	}
	cfg.Epoch, cfg.Served = st.Epoch, min(st.Orders, cfg.Orders)
	st.Orders = max(st.Orders, cfg.Orders)
	b, err = json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	return nil
}
