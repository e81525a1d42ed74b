package deploytest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the module's directory: the nearest parent holding go.mod.
func root(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// deployPath is a path under deploy/.
func deployPath(t *testing.T, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{root(t), "deploy"}, elem...)...)
}

// yamlFiles lists every YAML file under deploy/, relative to deploy/.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	base := deployPath(t)
	var out []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			rel, _ := filepath.Rel(base, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// decodeAll decodes every document of a YAML stream; empty documents (a
// file of comments only) are skipped.
func decodeAll(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(n.Content) > 0 && !(n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			docs = append(docs, &n)
		}
	}
}

// readYAML decodes the single-document YAML file deploy/<rel> into v.
func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	data, err := os.ReadFile(deployPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// goMod is what the tests need of go.mod.
type goMod struct {
	Go        string            // the go directive, e.g. 1.26.0
	Toolchain string            // the toolchain directive without "go", or ""
	Require   map[string]string // module path → version
}

func readGoMod(t *testing.T) goMod {
	t.Helper()
	f, err := os.Open(filepath.Join(root(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := goMod{Require: map[string]string{}}
	inRequire := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case inRequire && fields[0] == ")":
			inRequire = false
		case inRequire && len(fields) >= 2:
			m.Require[fields[0]] = fields[1]
		case fields[0] == "require" && len(fields) == 2 && fields[1] == "(":
			inRequire = true
		case fields[0] == "require" && len(fields) >= 3:
			m.Require[fields[1]] = fields[2]
		case fields[0] == "go" && len(fields) == 2:
			m.Go = fields[1]
		case fields[0] == "toolchain" && len(fields) == 2:
			m.Toolchain = strings.TrimPrefix(fields[1], "go")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if m.Go == "" {
		t.Fatal("go.mod has no go directive")
	}
	return m
}

// majorMinor cuts a Go or image version to its first two numbers:
// "1.26.0" and "1.26-bookworm" are both "1.26".
func majorMinor(v string) string {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// natsServerVersion is the nats-server version the tests embed, from
// go.mod, without the leading v (e.g. 2.15.2).
func natsServerVersion(t *testing.T) string {
	t.Helper()
	v, ok := readGoMod(t).Require["github.com/nats-io/nats-server/v2"]
	if !ok {
		t.Fatal("go.mod does not require github.com/nats-io/nats-server/v2")
	}
	return strings.TrimPrefix(v, "v")
}

// commands lists the directories under cmd/ that hold a Go program (non-test
// .go files), i.e. the binaries `go build ./cmd/...` makes.
func commands(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root(t), "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, err := filepath.Glob(filepath.Join(root(t), "cmd", e.Name(), "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f, "_test.go") {
				out = append(out, e.Name())
				break
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no programs under cmd/")
	}
	return out
}

// isCmdDir reports whether cmd/<name> is a directory (a program, or one
// being written).
func isCmdDir(t *testing.T, name string) bool {
	t.Helper()
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return false
	}
	st, err := os.Stat(filepath.Join(root(t), "cmd", name))
	return err == nil && st.IsDir()
}
