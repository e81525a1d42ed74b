// Package config is the environment table of DESIGN.md as code: every
// variable, its default, which binaries read it, and how it is parsed. The
// --help text, the flag overrides and the deploy manifests' checks are all
// derived from this one table.
package config
