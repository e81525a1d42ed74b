package deploytest

import (
	"slices"
	"strings"
	"testing"
)

// jobOf is the scrape job name of a stage binary: the alert rules of
// deploy/observability/alerts.yaml watch these (internal/observabilitytest
// checks the rules' side).
func jobOf(binary string) string { return "fulfill-" + binary }

// podMonitor is the part of a PodMonitor the tests read.
type podMonitor struct {
	Spec struct {
		Selector struct {
			MatchLabels      map[string]string `yaml:"matchLabels"`
			MatchExpressions []struct {
				Key      string   `yaml:"key"`
				Operator string   `yaml:"operator"`
				Values   []string `yaml:"values"`
			} `yaml:"matchExpressions"`
		} `yaml:"selector"`
		PodMetricsEndpoints []struct {
			Port        string `yaml:"port"`
			Path        string `yaml:"path"`
			Relabelings []struct {
				SourceLabels []string `yaml:"sourceLabels"`
				TargetLabel  string   `yaml:"targetLabel"`
				Replacement  *string  `yaml:"replacement"`
				Regex        string   `yaml:"regex"`
				Action       string   `yaml:"action"`
			} `yaml:"relabelings"`
		} `yaml:"podMetricsEndpoints"`
	} `yaml:"spec"`
}

// selects reports whether the PodMonitor's selector selects pod labels l.
func (pm podMonitor) selects(l map[string]string) bool {
	sel := pm.Spec.Selector
	if len(sel.MatchLabels) > 0 && !subset(sel.MatchLabels, l) {
		return false
	}
	for _, e := range sel.MatchExpressions {
		v, has := l[e.Key]
		switch e.Operator {
		case "In":
			if !has || !slices.Contains(e.Values, v) {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		default:
			return false
		}
	}
	return len(sel.MatchLabels)+len(sel.MatchExpressions) > 0
}

// TestPodMonitor checks the prometheus-operator's scrape of the base: one
// PodMonitor selecting the pods of every Deployment, on the container port
// serving ADMIN_ADDR, naming each stage's job as the alert rules expect
// (fulfill-<binary>, from the pods' app.kubernetes.io/name); and the
// PrometheusRule beside it (its rules: internal/observabilitytest).
func TestPodMonitor(t *testing.T) {
	b := loadBase(t)
	if len(b.all("PrometheusRule")) != 1 {
		t.Errorf("the base has %d PrometheusRules, want 1 (prometheusrule.yaml)", len(b.all("PrometheusRule")))
	}
	pms := b.all("PodMonitor")
	if len(pms) != 1 {
		t.Fatalf("the base has %d PodMonitors, want 1", len(pms))
	}
	pm := as[podMonitor](t, pms[0])
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("%d podMetricsEndpoints, want 1", len(pm.Spec.PodMetricsEndpoints))
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	if ep.Path != "" && ep.Path != "/metrics" {
		t.Errorf("path %s, want /metrics", ep.Path)
	}
	const nameLabel = "app.kubernetes.io/name"
	jobFromName := slices.ContainsFunc(ep.Relabelings, func(r struct {
		SourceLabels []string `yaml:"sourceLabels"`
		TargetLabel  string   `yaml:"targetLabel"`
		Replacement  *string  `yaml:"replacement"`
		Regex        string   `yaml:"regex"`
		Action       string   `yaml:"action"`
	}) bool {
		return slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_label_app_kubernetes_io_name"}) &&
			r.TargetLabel == "job" && r.Replacement != nil && *r.Replacement == jobOf("$1") &&
			(r.Regex == "" || r.Regex == "(.*)") && (r.Action == "" || r.Action == "replace")
	})
	if !jobFromName {
		t.Errorf("no relabeling sets job to %s from the pod label %s", jobOf("$1"), nameLabel)
	}
	for _, w := range workloads(t, b) {
		t.Run(w.obj.Metadata.Name, func(t *testing.T) {
			labels := w.dep.Spec.Template.Metadata.Labels
			if !pm.selects(labels) {
				t.Errorf("the PodMonitor does not select its pods (labels %v)", labels)
			}
			if labels[nameLabel] != w.binary {
				t.Errorf("pod label %s=%q, want %q: the job would not be %s", nameLabel, labels[nameLabel], w.binary, jobOf(w.binary))
			}
			_, adminPort, _ := strings.Cut(w.env["ADMIN_ADDR"], ":")
			if got := resolvePort(w.c, ep.Port); got != adminPort {
				t.Errorf("port %q is %q in the container, want the ADMIN_ADDR port %s", ep.Port, got, adminPort)
			}
		})
	}
}
