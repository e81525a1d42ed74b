package shops

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// fuzzEnv sets every variable but EMPTY*; AES* variables hold a valid key.
func fuzzEnv(name string) string {
	switch {
	case strings.HasPrefix(name, "EMPTY"):
		return ""
	case strings.Contains(name, "AES"):
		return aesKey
	}
	return leak + "-" + name
}

// fuzzFile has every file under /run/ and none elsewhere.
func fuzzFile(path string) ([]byte, error) {
	if strings.HasPrefix(path, "/run/") {
		return []byte(leak + "-file\n"), nil
	}
	return nil, os.ErrNotExist
}

// FuzzParse: no input panics; a refusal is one line that names where it is
// and holds no secret; an accepted registry is well formed and passes the
// validation again, shop by shop too.
func FuzzParse(f *testing.F) {
	if design, err := os.ReadFile("testdata/design.yaml"); err == nil {
		f.Add(design)
	}
	for _, tc := range refusals {
		f.Add([]byte(tc.yaml))
	}
	f.Add([]byte(shopsYAML("acme", "beta")))
	f.Add([]byte(`shops: [{id: a, channels: {appid: wx1, access_token_file: /run/t, delivery_id: SF,
  push_token_env: P, push_aes_key_env: AES, push_aes_key_previous_env: AES_OLD}, api_token_env: API, ship_concurrency: 3}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data, fuzzEnv, fuzzFile)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			s := err.Error()
			if strings.ContainsAny(s, "\r\n") || !strings.HasPrefix(s, "shops file") {
				t.Fatalf("malformed error %q", s)
			}
			if !bytes.Contains(data, []byte(leak)) && strings.Contains(s, leak) {
				t.Fatalf("error holds a secret: %q", s)
			}
			return
		}
		shops := r.Shops()
		if len(shops) == 0 || len(shops) != r.Len() {
			t.Fatalf("accepted %d shops, Len %d", len(shops), r.Len())
		}
		if !slices.IsSortedFunc(shops, func(a, b *Shop) int { return strings.Compare(a.ID, b.ID) }) {
			t.Fatalf("shops not sorted: %v", r.IDs())
		}
		for i, s := range shops {
			if got, ok := r.Shop(s.ID); !ok || got != s || r.IDs()[i] != s.ID {
				t.Fatalf("Shop(%q) = %v, %v", s.ID, got, ok)
			}
			if _, err := Single(*s); err != nil {
				t.Fatalf("accepted shop %s fails Single: %v", s.ID, err)
			}
		}
		if p := validate(shops, false, nil); p != nil {
			t.Fatalf("accepted registry fails validation: shops[%d].%s: %s", p.shop, p.field, p.msg)
		}
	})
}
