package observabilitytest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// The PromQL parser is Prometheus's own (promql/parser), the one its rule
// loader calls. The rule loader itself (model/rulefmt) is not used: it
// imports the whole query engine and, through it, the Kubernetes client,
// OpenTelemetry and some forty more modules, about 70 s more of cold
// compilation (twice that under -race) for no more checking of these files
// than ruleFile below does: decoding with unknown fields refused, the rules'
// fields, every expression parsed, every template parsed and run.

// deployPath is a path under the repository's deploy/ (tests run in their
// package's directory).
func deployPath(elem ...string) string {
	return filepath.Join(append([]string{"..", "..", "deploy"}, elem...)...)
}

// external are the series the queries may name that the services do not
// export, each with the reason. Nothing of the NATS server's exporter is
// used: the services export the consumer figures themselves.
var external = map[string]string{
	"up": "Prometheus's own series for each scrape target",
}

// metricNames parses expr as PromQL and returns the metric names its
// selectors name. A selector without a literal metric name is an error: its
// series could not be checked against what the services export.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && name == "" && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			bad = append(bad, vs.String())
			return nil
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return nil
	})
	if len(bad) > 0 {
		return nil, fmt.Errorf("selectors without a metric name: %s", strings.Join(bad, ", "))
	}
	return names, nil
}

// selectors returns every vector selector of a parsed expression.
func selectors(expr string) ([]*parser.VectorSelector, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out, nil
}

// ruleFile is the Prometheus rule file format, as far as alerting rules go.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Alert         string            `yaml:"alert"`
	Record        string            `yaml:"record,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

// decodeStrict decodes one YAML document into v, refusing fields v does not
// have (a misspelt "annotation:" would otherwise vanish silently, as
// Prometheus itself refuses it).
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// loadAlerts reads deploy/observability/alerts.yaml.
func loadAlerts(t *testing.T) (ruleFile, []byte) {
	t.Helper()
	data, err := os.ReadFile(deployPath("observability", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := decodeStrict(data, &f); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	if len(f.Groups) == 0 {
		t.Fatal("alerts.yaml has no groups")
	}
	return f, data
}

// allRules lists the rules of every group.
func (f ruleFile) allRules() []rule {
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}
