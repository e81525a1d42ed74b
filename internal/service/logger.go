package service

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// NewLogger builds the binary's logger: JSON lines to w, or a human console
// format, at the given level ("debug", "info", "warn", "error").
func NewLogger(w io.Writer, binary, level, format string) zerolog.Logger {
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", binary).Logger()
}
