package service

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// NewLogger builds the binary's logger: JSON lines to w, or a human console
// format, at the given level ("debug", "info", "warn", "error"). The console
// format is coloured only on a terminal, and never with NO_COLOR set
// (no-color.org): escape codes in a pipe or a file are noise.
func NewLogger(w io.Writer, binary, level, format string) zerolog.Logger {
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !colour(w)}
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", binary).Logger()
}

// colour reports whether w is a terminal that may be coloured.
func colour(w io.Writer) bool {
	if _, off := os.LookupEnv("NO_COLOR"); off {
		return false
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
