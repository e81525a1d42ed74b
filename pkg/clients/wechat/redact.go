package wechat

import (
	"bytes"
	"net/url"
	"strings"
)

// redacted replaces a secret in URLs and messages.
const redacted = "REDACTED"

// redactKeys are the spellings of the token parameter that Redact looks for: plain
// and percent-encoded (a URL nested in another URL's query).
var redactKeys = []string{"access_token=", "access_token%3D", "access_token%3d"}

// Redact replaces the value of every access_token= parameter in s with REDACTED.
// The value ends at '&' or the end of s, and also at a character that cannot be
// part of a query value in a message (whitespace, quotes, '#', '<', '>'), so that
// the text after a URL in an error message survives.
func Redact(s string) string {
	for _, key := range redactKeys {
		s = redactKey(s, key)
	}
	return s
}

// redactKey replaces the values following every occurrence of key in s.
func redactKey(s, key string) string {
	if !strings.Contains(s, key) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.Index(s, key)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+len(key)])
		s = s[i+len(key):]
		end := strings.IndexFunc(s, isValueEnd)
		if end < 0 {
			end = len(s)
		}
		if key != redactKeys[0] {
			// In a percent-encoded URL the next parameter starts at "%26".
			if amp := strings.Index(s[:end], "%26"); amp >= 0 {
				end = amp
			}
		}
		if end > 0 {
			b.WriteString(redacted)
		}
		s = s[end:]
	}
}

// isValueEnd reports whether r ends a query value inside a message.
func isValueEnd(r rune) bool {
	switch r {
	case '&', '"', '\'', '`', '#', '<', '>', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// redactURLError returns err, a *url.Error as returned by http.Client.Do or
// url.Parse holding the full request URL (token included), as a copy with the URL
// redacted. Other errors are returned as they are.
func redactURLError(err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	return &url.Error{Op: ue.Op, URL: Redact(ue.URL), Err: ue.Err}
}

// scrubbedError is an error whose message had a secret replaced. Unwrap gives the
// original for errors.Is and errors.As.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// minScrubLen is the shortest secret scrub replaces: shorter strings would mangle
// ordinary words in messages and are no real token.
const minScrubLen = 8

// scrub is the last line of defence: if err's message contains secret, it returns
// an error with the same chain whose message has the secret replaced by REDACTED.
func scrub(err error, secret string) error {
	if err == nil || len(secret) < minScrubLen {
		return err
	}
	msg := err.Error()
	if !strings.Contains(msg, secret) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(msg, secret, redacted), err: err}
}

// scrubBody replaces every occurrence of tok (plain or URL-escaped) in an
// answer body before it is decoded.
func scrubBody(raw []byte, tok string) []byte {
	if len(tok) < minScrubLen {
		return raw
	}
	for _, form := range [...]string{tok, url.QueryEscape(tok)} {
		if containsString(raw, form) {
			raw = bytes.ReplaceAll(raw, []byte(form), []byte(redacted))
		}
	}
	return raw
}

// containsString reports whether b holds s (not empty). Every answer is
// searched for the token; bytes.Contains would need the token as a []byte,
// a copy of it per call.
func containsString(b []byte, s string) bool {
	for len(b) >= len(s) {
		i := bytes.IndexByte(b, s[0])
		if i < 0 || len(b)-i < len(s) {
			return false
		}
		if string(b[i:i+len(s)]) == s {
			return true
		}
		b = b[i+1:]
	}
	return false
}
