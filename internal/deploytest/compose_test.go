package deploytest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fulfill/pipeline/internal/config"
)

// composeFile is the part of the compose specification the tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image           string        `yaml:"image"`
	Build           *composeBuild `yaml:"build"`
	Command         stringList    `yaml:"command"`
	Environment     envMap        `yaml:"environment"`
	Ports           []any         `yaml:"ports"`
	ContainerName   string        `yaml:"container_name"`
	Volumes         []string      `yaml:"volumes"`
	StopGracePeriod string        `yaml:"stop_grace_period"`
	Profiles        []string      `yaml:"profiles"`
}

// observability reports whether the service is one of the observability
// profile's (Prometheus, Grafana), checked by TestComposeObservability.
func (s composeService) observability() bool {
	return slices.Contains(s.Profiles, observabilityProfile)
}

type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
}

// stringList is a compose command: a list, or one string split on spaces.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var s []string
	err := n.Decode(&s)
	*l = s
	return err
}

// envMap is a compose environment: a map (merge keys included), or a list
// of NAME=value.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	out := envMap{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
		*e = out
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k, v := range m {
		if v == nil {
			out[k] = ""
			continue
		}
		out[k] = fmt.Sprint(v)
	}
	*e = out
	return nil
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, "compose.yaml", &c)
	if len(c.Services) == 0 {
		t.Fatal("compose.yaml has no services")
	}
	return c
}

// natsNodes are the compose services running the official nats image, by
// name.
func (c composeFile) natsNodes() []string {
	var out []string
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if strings.HasPrefix(s.Image, "nats:") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// binary is the program a service built from deploy/Dockerfile runs.
func (s composeService) binary() string {
	if s.Build == nil {
		return ""
	}
	return s.Build.Args["BINARY"]
}

// stageBinaries are the binaries configured by config.Vars that compose and
// Kubernetes must each run.
var stageBinaries = []string{config.Ingest, config.Enricher, config.Shipper}

// TestComposeNATSCluster checks the three JetStream nodes: the official
// image at the version the tests embed, a config file from deploy/nats/,
// distinct server names and persistent storage.
func TestComposeNATSCluster(t *testing.T) {
	c := loadCompose(t)
	nodes := c.natsNodes()
	if len(nodes) != 3 {
		t.Fatalf("%d services use the nats image (%v), want 3", len(nodes), nodes)
	}
	want := natsServerVersion(t)
	names := map[string]string{}
	for _, name := range nodes {
		s := c.Services[name]
		t.Run(name, func(t *testing.T) {
			tag := strings.TrimPrefix(s.Image, "nats:")
			if v, _, _ := strings.Cut(tag, "-"); v != want {
				t.Errorf("image %s: version %s, want %s (nats-server in go.mod)", s.Image, v, want)
			}
			conf := configArg(s.Command)
			if conf == "" {
				t.Fatalf("command %q has no --config", s.Command)
			}
			if src := mountSource(s.Volumes, conf); src == "" {
				t.Errorf("--config %s is not mounted from deploy/", conf)
			} else if _, err := os.Stat(filepath.Join(deployPath(t), src)); err != nil {
				t.Errorf("--config %s: %v", conf, err)
			} else if !strings.HasPrefix(filepath.ToSlash(filepath.Clean(src)), "nats/") {
				t.Errorf("--config %s comes from %s, want a file in deploy/nats/", conf, src)
			}
			if mountSource(s.Volumes, "/data") == "" {
				t.Error("no volume on /data: JetStream's files would not outlive the container")
			}
			sn := s.Environment["SERVER_NAME"]
			if sn == "" {
				t.Error("SERVER_NAME is not set")
			}
			if other, dup := names[sn]; dup {
				t.Errorf("SERVER_NAME %q is also the name of service %s", sn, other)
			}
			names[sn] = name
		})
	}
}

// configArg is the value of --config (or -c) in a nats-server command.
func configArg(cmd []string) string {
	for i, a := range cmd {
		if (a == "--config" || a == "-c") && i+1 < len(cmd) {
			return cmd[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
	}
	return ""
}

// mountSource is the host source of the volume mounted on target, "" if
// none.
func mountSource(volumes []string, target string) string {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return parts[0]
		}
	}
	return ""
}

// TestComposeServices checks every service built from deploy/Dockerfile:
// its program exists under cmd/, every environment variable it sets is one
// the program reads (config.VarsFor), secrets come from the shell, and the
// stage binaries reach every NATS node with STREAM_REPLICAS=3.
func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	nodes := c.natsNodes()
	var wantURLs []string
	for _, n := range nodes {
		wantURLs = append(wantURLs, "nats://"+n+":4222")
	}
	sandboxBase := ""
	seen := map[string]int{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if strings.HasPrefix(s.Image, "nats:") {
			continue
		}
		bin := s.binary()
		seen[bin]++
		if bin == config.Fulfillctl && len(s.Command) > 0 && s.Command[0] == "sandbox" {
			for i, a := range s.Command {
				if a == "--addr" && i+1 < len(s.Command) {
					sandboxBase = "http://" + name + s.Command[i+1]
				}
			}
		}
	}
	if sandboxBase == "" {
		t.Error(`no service runs "fulfillctl sandbox --addr :PORT"`)
	}
	for _, b := range stageBinaries {
		if seen[b] != 1 {
			t.Errorf("%d services run %s, want 1", seen[b], b)
		}
	}

	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if strings.HasPrefix(s.Image, "nats:") || s.observability() {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if s.Build == nil {
				t.Fatalf("neither the nats image nor built from deploy/Dockerfile (image %q)", s.Image)
			}
			if s.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("build.dockerfile %q, want deploy/Dockerfile", s.Build.Dockerfile)
			}
			if ctx := filepath.Join(deployPath(t), s.Build.Context); filepath.Clean(ctx) != root(t) {
				t.Errorf("build.context %q is not the repository root", s.Build.Context)
			}
			bin := s.binary()
			if !isCmdDir(t, bin) {
				t.Fatalf("build arg BINARY=%q is not a directory under cmd/", bin)
			}
			ok := accepted(bin)
			// The shops' secrets, which the shops file names (*_env).
			shopEnv := composeShopEnv(t, s)
			for _, k := range sortedKeys(s.Environment) {
				if !ok[k] && !shopEnv[k] {
					t.Errorf("sets %s, which %s does not read (config.VarsFor) and its shops file does not name", k, bin)
				}
				if isSecretVar(k) && !strings.HasPrefix(s.Environment[k], "${"+k) {
					t.Errorf("%s is a literal; take it from the shell: ${%s:-sandbox default}", k, k)
				}
				// The order API's token guards real orders: no published
				// default, compose must refuse to start without one.
				if k == "INGEST_API_TOKEN" && !strings.HasPrefix(s.Environment[k], "${"+k+":?") {
					t.Errorf("INGEST_API_TOKEN is %q: require it from the environment (${INGEST_API_TOKEN:?…}), never default it", s.Environment[k])
				}
			}
			if !slices.Contains(stageBinaries, bin) {
				return
			}
			env := s.Environment
			if env[goMaxProcs] != "1" {
				t.Errorf("%s %q, want \"1\" as the Kubernetes base sets it from the stages' CPU requests", goMaxProcs, env[goMaxProcs])
			}
			if got := strings.Split(env["NATS_URL"], ","); !sameSet(got, wantURLs) {
				t.Errorf("NATS_URL %q, want every node: %v", env["NATS_URL"], wantURLs)
			}
			if env["STREAM_REPLICAS"] != fmt.Sprint(len(nodes)) {
				t.Errorf("STREAM_REPLICAS %q, want %d", env["STREAM_REPLICAS"], len(nodes))
			}
			if env["ADMIN_ADDR"] == "" {
				t.Error("ADMIN_ADDR is not set")
			}
			if env["WECHAT_API_BASE"] != sandboxBase {
				t.Errorf("WECHAT_API_BASE %q, want the sandbox %q", env["WECHAT_API_BASE"], sandboxBase)
			}
			if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= 30*time.Second {
				t.Errorf("stop_grace_period %q, want longer than the 30 s drain", s.StopGracePeriod)
			}
		})
	}
}

// TestComposeScales checks that the consumers can run as several replicas
// (docker compose up --scale shipper=3): no fixed container name and no
// published host port.
func TestComposeScales(t *testing.T) {
	c := loadCompose(t)
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if b := s.binary(); b != config.Enricher && b != config.Shipper {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if s.ContainerName != "" {
				t.Errorf("container_name %q stops --scale", s.ContainerName)
			}
			if len(s.Ports) > 0 {
				t.Errorf("ports %v: a published host port stops --scale", s.Ports)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
