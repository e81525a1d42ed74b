package ctl

import (
	"fmt"
	"time"
)

// parseSince reads --since: a duration back from now ("1h", "30m") or an
// RFC 3339 time. Empty means the beginning of the stream.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %s: want a positive duration", v)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration such as 1h or an RFC 3339 time such as 2026-11-23T10:00:00Z", v)
	}
	return t, nil
}

// parseUntil reads --until: an RFC 3339 time or a duration back from now.
// Empty means now.
func parseUntil(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return now, nil
	}
	t, err := parseSince(v, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("--until: %w", err)
	}
	return t, nil
}
