package observabilitytest

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite deploy/k8s/prometheusrule.yaml from deploy/observability/alerts.yaml")

// ruleHeader heads the generated PrometheusRule.
const ruleHeader = `# The pipeline's alert rules for the prometheus-operator, in the kustomize
# base. GENERATED from deploy/observability/alerts.yaml, the one source of
# the rules: edit that file, then run
#
#   go test ./internal/observabilitytest -run TestPrometheusRule -update
#
# internal/observabilitytest fails while the two differ. The operator loads a
# PrometheusRule only if its Prometheus's ruleSelector selects it: add the
# label yours selects in an overlay (deploy/README.md, "Observability").
`

// prometheusRule builds the PrometheusRule manifest from alerts.yaml: its
// groups, node for node (comments included), under spec.
func prometheusRule(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(deployPath("observability", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	var groups *yaml.Node
	if root := doc.Content[0]; root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "groups" {
				groups = root.Content[i+1]
			}
		}
	}
	if groups == nil {
		t.Fatal("alerts.yaml has no groups")
	}
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }
	mapping := func(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }
	manifest := mapping(
		str("apiVersion"), str("monitoring.coreos.com/v1"),
		str("kind"), str("PrometheusRule"),
		str("metadata"), mapping(str("name"), str("fulfill")),
		str("spec"), mapping(str("groups"), groups),
	)
	var buf bytes.Buffer
	buf.WriteString(ruleHeader)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(manifest); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPrometheusRule checks that deploy/k8s/prometheusrule.yaml is what
// alerts.yaml generates (-update rewrites it), and that its rules decode to
// exactly alerts.yaml's.
func TestPrometheusRule(t *testing.T) {
	path := deployPath("k8s", "prometheusrule.yaml")
	want := prometheusRule(t)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/observabilitytest -run TestPrometheusRule -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("deploy/k8s/prometheusrule.yaml is not what deploy/observability/alerts.yaml generates; run go test ./internal/observabilitytest -run TestPrometheusRule -update")
	}

	var manifest struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec ruleFile `yaml:"spec"`
	}
	if err := decodeStrict(got, &manifest); err != nil {
		t.Fatalf("prometheusrule.yaml: %v", err)
	}
	if manifest.APIVersion != "monitoring.coreos.com/v1" || manifest.Kind != "PrometheusRule" || manifest.Metadata.Name == "" {
		t.Errorf("%s %s %q, want a named monitoring.coreos.com/v1 PrometheusRule", manifest.APIVersion, manifest.Kind, manifest.Metadata.Name)
	}
	alerts, _ := loadAlerts(t)
	if !reflect.DeepEqual(manifest.Spec, alerts) {
		t.Errorf("the PrometheusRule's rules differ from alerts.yaml's")
	}
}
