package vvtool

import (
	"net/url"
	"strings"
)

// redacted replaces the token wherever it would appear in an error string.
const redacted = "REDACTED"

// redactor removes one secret, and its URL-escaped forms, from strings.
type redactor struct {
	secrets []string
}

func newRedactor(secret string) redactor {
	if secret == "" {
		return redactor{}
	}
	s := []string{secret}
	for _, e := range []string{url.QueryEscape(secret), url.PathEscape(secret)} {
		if e != secret {
			s = append(s, e)
		}
	}
	return redactor{secrets: s}
}

// redact returns s with every occurrence of the secret replaced by REDACTED.
func (r redactor) redact(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}

// maxSnippet bounds the bytes of a body or value quoted in an error message.
const maxSnippet = 160

// snippet returns at most maxSnippet bytes of s as valid UTF-8, with "…" when cut.
// Redact s before, never after: a cut could otherwise keep part of the secret.
func snippet(s string) string {
	if len(s) <= maxSnippet {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(s[:maxSnippet], "\uFFFD") + "…"
}
