package deploytest

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/fulfill/pipeline/internal/config"
)

// TestYAMLParses decodes every document of every YAML file under deploy/.
func TestYAMLParses(t *testing.T) {
	files := yamlFiles(t)
	for _, want := range []string{"compose.yaml", "k8s/kustomization.yaml", "k8s/nats-values.yaml"} {
		if !slices.Contains(files, want) {
			t.Errorf("deploy/%s is missing", want)
		}
	}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(deployPath(t, rel))
			if err != nil {
				t.Fatal(err)
			}
			docs, err := decodeAll(data)
			if err != nil {
				t.Fatalf("does not parse: %v", err)
			}
			if len(docs) == 0 {
				t.Fatal("holds no document")
			}
		})
	}
}

// accepted is the set of environment variables binary reads, from the
// config package's table.
func accepted(binary string) map[string]bool {
	out := map[string]bool{}
	for _, v := range config.VarsFor(binary) {
		out[v.Name] = true
	}
	if slices.Contains(stageBinaries, binary) {
		out[goMaxProcs] = true // read by the Go runtime, not config
	}
	return out
}

// goMaxProcs is the Go runtime's variable the deployments set for every
// stage (deploy/README.md, "CPU limits").
const goMaxProcs = "GOMAXPROCS"

// isSecretVar reports whether name is a variable the table marks secret, or
// looks like a credential by its name.
func isSecretVar(name string) bool {
	if v, ok := config.Lookup(name); ok && v.Secret {
		return true
	}
	for _, s := range []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// TestSecretVarsKnown keeps isSecretVar honest: every variable the table
// marks secret is recognised, and the variables that merely name a file or
// an id are not.
func TestSecretVarsKnown(t *testing.T) {
	secret := 0
	for _, v := range config.Vars {
		if v.Secret {
			secret++
			if !isSecretVar(v.Name) {
				t.Errorf("%s is secret in config.Vars but isSecretVar says no", v.Name)
			}
		}
	}
	if secret == 0 {
		t.Fatal("config.Vars marks no variable secret")
	}
	for _, name := range []string{"NATS_CREDS", "WECHAT_APPID", "VVTOOL_SHOP_IDS", "ADMIN_ADDR"} {
		if isSecretVar(name) {
			t.Errorf("isSecretVar(%s) = true, want false", name)
		}
	}
}
