package deploytest

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// observabilityProfile is the compose profile of Prometheus and Grafana.
const observabilityProfile = "observability"

// promConfig is the part of a Prometheus configuration the tests read.
type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName      string `yaml:"job_name"`
		MetricsPath  string `yaml:"metrics_path"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

// mountTarget is where the volume from host source (relative to deploy/)
// is mounted, "" if it is not.
func mountTarget(volumes []string, source string) string {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && filepath.Clean(parts[0]) == filepath.Clean(source) {
			return parts[1]
		}
	}
	return ""
}

// prometheusImageVersion is the Prometheus release of the
// github.com/prometheus/prometheus module in go.mod, whose PromQL parser
// checks the rules: module v0.315.1 is Prometheus v3.15.1.
func prometheusImageVersion(t *testing.T) string {
	t.Helper()
	v, ok := readGoMod(t).Require["github.com/prometheus/prometheus"]
	if !ok {
		t.Fatal("go.mod does not require github.com/prometheus/prometheus")
	}
	parts := strings.Split(strings.TrimPrefix(v, "v0."), ".")
	if len(parts) != 2 || len(parts[0]) < 2 {
		t.Fatalf("github.com/prometheus/prometheus %s: not of the form v0.MNN.P", v)
	}
	minor, err := strconv.Atoi(parts[0][1:])
	if err != nil {
		t.Fatal(err)
	}
	return "v" + parts[0][:1] + "." + strconv.Itoa(minor) + "." + parts[1]
}

// TestComposeObservability checks the observability profile: Prometheus at
// the version whose parser checks the rules, loading
// deploy/observability/alerts.yaml and scraping every replica of each stage
// on its ADMIN_ADDR port under the job name the rules watch; Grafana with
// that Prometheus as default data source and the dashboard provisioned;
// every file they mount present; and the pipeline itself in no profile, so
// a plain `up` still runs it.
func TestComposeObservability(t *testing.T) {
	c := loadCompose(t)
	var prom, graf string
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		switch {
		case !s.observability():
			if len(s.Profiles) > 0 {
				t.Errorf("%s is in profiles %v: the pipeline must start without one", name, s.Profiles)
			}
			continue
		case strings.HasPrefix(s.Image, "prom/prometheus:"):
			prom = name
		case strings.HasPrefix(s.Image, "grafana/grafana:"):
			graf = name
		default:
			t.Errorf("%s (image %q) is in the observability profile, which holds Prometheus and Grafana", name, s.Image)
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if !strings.HasPrefix(src, ".") {
				continue // a named volume
			}
			if _, err := os.Stat(deployPath(t, src)); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			} else if !strings.HasPrefix(filepath.ToSlash(filepath.Clean(src)), "observability/") {
				t.Errorf("%s mounts %s, want a file of deploy/observability/", name, src)
			}
		}
	}
	if prom == "" || graf == "" {
		t.Fatalf("the observability profile lacks Prometheus (%q) or Grafana (%q)", prom, graf)
	}

	t.Run(prom, func(t *testing.T) {
		s := c.Services[prom]
		if got, want := strings.TrimPrefix(s.Image, "prom/prometheus:"), prometheusImageVersion(t); got != want {
			t.Errorf("image %s, want prom/prometheus:%s: the release whose PromQL parser checks the rules", s.Image, want)
		}
		var cfgPath string
		for _, a := range s.Command {
			if v, ok := strings.CutPrefix(a, "--config.file="); ok {
				cfgPath = v
			}
		}
		src := mountSource(s.Volumes, cfgPath)
		if cfgPath == "" || src == "" {
			t.Fatalf("command %q: no --config.file mounted from deploy/", s.Command)
		}
		var pc promConfig
		readYAML(t, src, &pc)
		alerts := mountTarget(s.Volumes, "./observability/alerts.yaml")
		if alerts == "" || !slices.Contains(pc.RuleFiles, alerts) {
			t.Errorf("rule_files %v does not load deploy/observability/alerts.yaml (mounted at %q)", pc.RuleFiles, alerts)
		}
		for _, bin := range stageBinaries {
			service, adminPort := "", ""
			for _, name := range sortedKeys(c.Services) {
				if cs := c.Services[name]; cs.binary() == bin {
					service = name
					_, adminPort, _ = strings.Cut(cs.Environment["ADMIN_ADDR"], ":")
				}
			}
			found := false
			for _, sc := range pc.ScrapeConfigs {
				if sc.JobName != jobOf(bin) {
					continue
				}
				found = true
				if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
					t.Errorf("job %s scrapes %s, want /metrics", sc.JobName, sc.MetricsPath)
				}
				ok := slices.ContainsFunc(sc.DNSSDConfigs, func(d struct {
					Names []string `yaml:"names"`
					Type  string   `yaml:"type"`
					Port  int      `yaml:"port"`
				}) bool {
					return slices.Contains(d.Names, service) && d.Type == "A" && strconv.Itoa(d.Port) == adminPort
				})
				if !ok {
					t.Errorf("job %s does not discover every replica of %s (dns_sd_configs type A) on its ADMIN_ADDR port %s", sc.JobName, service, adminPort)
				}
			}
			if !found {
				t.Errorf("no scrape job %s for %s", jobOf(bin), bin)
			}
		}
	})

	t.Run(graf, func(t *testing.T) {
		s := c.Services[graf]
		if tag := strings.TrimPrefix(s.Image, "grafana/grafana:"); tag == "latest" || strings.Count(tag, ".") != 2 {
			t.Errorf("image %s: pin a release (X.Y.Z)", s.Image)
		}
		dsDir := mountSource(s.Volumes, "/etc/grafana/provisioning/datasources")
		dbDir := mountSource(s.Volumes, "/etc/grafana/provisioning/dashboards")
		if dsDir == "" || dbDir == "" {
			t.Fatal("the data source and dashboard provisioning directories are not both mounted")
		}
		var ds struct {
			Datasources []struct {
				Type      string `yaml:"type"`
				URL       string `yaml:"url"`
				IsDefault bool   `yaml:"isDefault"`
			} `yaml:"datasources"`
		}
		readYAML(t, path.Join(dsDir, "prometheus.yaml"), &ds)
		if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || !ds.Datasources[0].IsDefault ||
			ds.Datasources[0].URL != "http://"+prom+":9090" {
			t.Errorf("data sources %+v, want one default prometheus at http://%s:9090", ds.Datasources, prom)
		}
		var dp struct {
			Providers []struct {
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		readYAML(t, path.Join(dbDir, "fulfill.yaml"), &dp)
		dash := mountTarget(s.Volumes, "./observability/dashboard.json")
		if dash == "" {
			t.Fatal("deploy/observability/dashboard.json is not mounted")
		}
		if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" || dp.Providers[0].Options.Path != path.Dir(dash) {
			t.Errorf("dashboard providers %+v, want one file provider reading %s", dp.Providers, path.Dir(dash))
		}
	})
}
