package deploytest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/pkg/events"
)

// object is one Kubernetes object of the kustomize base.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`

	file string
	node *yaml.Node
}

func (o object) String() string { return o.Kind + "/" + o.Metadata.Name }

type deployment struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
					RunAsUser    *int64 `yaml:"runAsUser"`
					FSGroup      *int64 `yaml:"fsGroup"`
				} `yaml:"securityContext"`
				Volumes                   []volume `yaml:"volumes"`
				TopologySpreadConstraints []struct {
					MaxSkew       int           `yaml:"maxSkew"`
					TopologyKey   string        `yaml:"topologyKey"`
					LabelSelector labelSelector `yaml:"labelSelector"`
				} `yaml:"topologySpreadConstraints"`
				Containers []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Name            string `yaml:"name"`
	Image           string `yaml:"image"`
	ImagePullPolicy string `yaml:"imagePullPolicy"`
	Ports           []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef     *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef  *keyRef `yaml:"configMapKeyRef"`
			ResourceFieldRef *struct {
				Resource string `yaml:"resource"`
				Divisor  string `yaml:"divisor"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	VolumeMounts   []volumeMount `yaml:"volumeMounts"`
	StartupProbe   *probe        `yaml:"startupProbe"`
	LivenessProbe  *probe        `yaml:"livenessProbe"`
	ReadinessProbe *probe        `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

// volume is a pod volume of the kinds the base mounts: a ConfigMap's or a
// Secret's keys as files.
type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name        string    `yaml:"name"`
		Items       []keyPath `yaml:"items"`
		DefaultMode *int      `yaml:"defaultMode"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName  string    `yaml:"secretName"`
		Items       []keyPath `yaml:"items"`
		DefaultMode *int      `yaml:"defaultMode"`
	} `yaml:"secret"`
}

type keyPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	SubPath   string `yaml:"subPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type keyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional bool   `yaml:"optional"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type configMap struct {
	Data map[string]string `yaml:"data"`
}

type secret struct {
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

func (s secret) has(key string) bool {
	_, a := s.Data[key]
	_, b := s.StringData[key]
	return a || b
}

type pdb struct {
	Spec struct {
		MinAvailable   any `yaml:"minAvailable"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type scaledObject struct {
	Spec struct {
		ScaleTargetRef struct {
			Name string `yaml:"name"`
			Kind string `yaml:"kind"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount *int `yaml:"minReplicaCount"`
		MaxReplicaCount *int `yaml:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `yaml:"type"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
	} `yaml:"spec"`
}

// base is the kustomize base: its objects by kind and name.
type base struct {
	objects []object
}

func (b base) all(kind string) []object {
	var out []object
	for _, o := range b.objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (b base) find(kind, name string) (object, bool) {
	for _, o := range b.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return object{}, false
}

// as decodes o into v.
func as[T any](t *testing.T, o object) T {
	t.Helper()
	var v T
	if err := o.node.Decode(&v); err != nil {
		t.Fatalf("%s (%s): %v", o, o.file, err)
	}
	return v
}

type kustomization struct {
	Resources []string `yaml:"resources"`
}

// loadBase reads every resource kustomization.yaml lists.
func loadBase(t *testing.T) base {
	t.Helper()
	var k kustomization
	readYAML(t, "k8s/kustomization.yaml", &k)
	if len(k.Resources) == 0 {
		t.Fatal("kustomization.yaml lists no resources")
	}
	var b base
	for _, rel := range k.Resources {
		data, err := os.ReadFile(deployPath(t, "k8s", rel))
		if err != nil {
			t.Fatalf("kustomization resource %s: %v", rel, err)
		}
		docs, err := decodeAll(data)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, d := range docs {
			var o object
			if err := d.Decode(&o); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: a document without apiVersion, kind or metadata.name", rel)
			}
			o.file, o.node = rel, d
			b.objects = append(b.objects, o)
		}
	}
	return b
}

// TestKustomizationListsEveryManifest checks that no manifest in deploy/k8s
// is left out of the base (the Helm values file is not a manifest).
func TestKustomizationListsEveryManifest(t *testing.T) {
	var k kustomization
	readYAML(t, "k8s/kustomization.yaml", &k)
	files, err := filepath.Glob(deployPath(t, "k8s", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := decodeAll(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var o object
		if len(docs) == 0 || docs[0].Decode(&o) != nil || o.Kind == "" || o.Kind == "Kustomization" {
			continue
		}
		if !slices.Contains(k.Resources, filepath.Base(f)) {
			t.Errorf("%s holds %s but kustomization.yaml does not list it", filepath.Base(f), o)
		}
	}
}

// workload is a Deployment of the base with its one container and the
// environment it resolves to.
type workload struct {
	obj    object
	dep    deployment
	c      container
	binary string
	// env maps each variable to its literal value ("" when it comes from a
	// Secret), from env and from the ConfigMaps and Secrets of envFrom.
	env map[string]string
	// fromSecret are the variables of env whose value is a Secret's.
	fromSecret map[string]bool
}

func workloads(t *testing.T, b base) []workload {
	t.Helper()
	var out []workload
	for _, o := range b.all("Deployment") {
		d := as[deployment](t, o)
		cs := d.Spec.Template.Spec.Containers
		if len(cs) != 1 {
			t.Fatalf("%s has %d containers, want 1", o, len(cs))
		}
		w := workload{obj: o, dep: d, c: cs[0], binary: cs[0].Name, env: map[string]string{}, fromSecret: map[string]bool{}}
		for _, ef := range w.c.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil:
				cmo, ok := b.find("ConfigMap", ef.ConfigMapRef.Name)
				if !ok {
					t.Fatalf("%s: envFrom ConfigMap %s is not in the base", o, ef.ConfigMapRef.Name)
				}
				for k, v := range as[configMap](t, cmo).Data {
					w.env[k] = v
				}
			case ef.SecretRef != nil:
				so, ok := b.find("Secret", ef.SecretRef.Name)
				if !ok {
					t.Fatalf("%s: envFrom Secret %s is not in the base", o, ef.SecretRef.Name)
				}
				s := as[secret](t, so)
				for k := range s.Data {
					w.env[k], w.fromSecret[k] = "", true
				}
				for k := range s.StringData {
					w.env[k], w.fromSecret[k] = "", true
				}
			}
		}
		for _, e := range w.c.Env {
			w.env[e.Name] = ""
			delete(w.fromSecret, e.Name)
			switch {
			case e.Value != nil:
				w.env[e.Name] = *e.Value
			case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
				w.fromSecret[e.Name] = true
			}
		}
		out = append(out, w)
	}
	return out
}

// TestDeployments checks each Deployment: it runs a stage binary, sets only
// variables that binary reads (config.VarsFor), probes /healthz and /readyz
// on its ADMIN_ADDR port, has resources (ephemeral storage included; no CPU
// limit, by decision), pulls its image only when absent (overlays pin it by
// digest), spreads its replicas over nodes and runs at least two when it
// sets a count, runs as non-root and outlives its drain on termination.
func TestDeployments(t *testing.T) {
	b := loadBase(t)
	ws := workloads(t, b)
	seen := map[string]bool{}
	for _, w := range ws {
		t.Run(w.obj.Metadata.Name, func(t *testing.T) {
			if !slices.Contains(stageBinaries, w.binary) {
				t.Fatalf("container %q is not one of %v", w.binary, stageBinaries)
			}
			seen[w.binary] = true
			if img, _, _ := strings.Cut(w.c.Image, ":"); img != "fulfill/"+w.binary {
				t.Errorf("image %q, want fulfill/%s (kustomization images set the tag)", w.c.Image, w.binary)
			}
			ok := accepted(w.binary)
			for _, k := range sortedKeys(w.env) {
				if !ok[k] {
					t.Errorf("sets %s, which %s does not read (config.VarsFor)", k, w.binary)
				}
			}
			for _, k := range []string{"NATS_URL", "STREAM_REPLICAS", "ADMIN_ADDR"} {
				if w.env[k] == "" {
					t.Errorf("%s is not set", k)
				}
			}
			// GOMAXPROCS follows the CPU request, whole cores rounded up:
			// without a CPU limit Go would take the node's cores.
			procs := false
			for _, e := range w.c.Env {
				if e.Name == goMaxProcs {
					r := e.ValueFrom
					procs = r != nil && r.ResourceFieldRef != nil && r.ResourceFieldRef.Resource == "requests.cpu" && r.ResourceFieldRef.Divisor == "1"
				}
			}
			if !procs {
				t.Errorf("%s is not set from resourceFieldRef requests.cpu with divisor \"1\"", goMaxProcs)
			}
			if w.env["STREAM_REPLICAS"] != "3" {
				t.Errorf("STREAM_REPLICAS %q, want 3 on a three-node cluster", w.env["STREAM_REPLICAS"])
			}

			_, adminPort, err := net.SplitHostPort(w.env["ADMIN_ADDR"])
			if err != nil {
				t.Fatalf("ADMIN_ADDR %q: %v", w.env["ADMIN_ADDR"], err)
			}
			for _, p := range []struct {
				name, path string
				probe      *probe
			}{
				{"livenessProbe", "/healthz", w.c.LivenessProbe},
				{"readinessProbe", "/readyz", w.c.ReadinessProbe},
			} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("no %s with httpGet", p.name)
					continue
				}
				if p.probe.HTTPGet.Path != p.path {
					t.Errorf("%s path %q, want %s", p.name, p.probe.HTTPGet.Path, p.path)
				}
				if got := resolvePort(w.c, p.probe.HTTPGet.Port); got != adminPort {
					t.Errorf("%s port %v is %s, ADMIN_ADDR listens on %s", p.name, p.probe.HTTPGet.Port, got, adminPort)
				}
			}
			if sp := w.c.StartupProbe; sp != nil && (sp.HTTPGet == nil || resolvePort(w.c, sp.HTTPGet.Port) != adminPort) {
				t.Error("startupProbe does not check the admin port")
			}

			for _, r := range []string{"cpu", "memory"} {
				if w.c.Resources.Requests[r] == "" {
					t.Errorf("no %s request", r)
				}
			}
			if w.c.Resources.Limits["memory"] == "" {
				t.Error("no memory limit")
			}
			if w.c.Resources.Requests["ephemeral-storage"] == "" || w.c.Resources.Limits["ephemeral-storage"] == "" {
				t.Error("no ephemeral-storage request and limit: the node cannot account for the logs")
			}
			if cpu := w.c.Resources.Limits["cpu"]; cpu != "" {
				t.Errorf("CPU limit %s: deploy/README.md (\"CPU limits\") says why there is none; change both together", cpu)
			}
			if w.c.ImagePullPolicy != "IfNotPresent" {
				t.Errorf("imagePullPolicy %q, want IfNotPresent (images are pinned by digest; deploy/README.md, \"Images\")", w.c.ImagePullPolicy)
			}
			if img := w.c.Image; strings.HasSuffix(img, ":latest") {
				t.Errorf("image %q: a moving tag", img)
			}
			if r := w.dep.Spec.Replicas; r != nil && *r < 2 {
				t.Errorf("replicas %d: one node's loss or drain stops the stage", *r)
			}
			spread := false
			for _, c := range w.dep.Spec.Template.Spec.TopologySpreadConstraints {
				if c.TopologyKey == "kubernetes.io/hostname" && c.MaxSkew >= 1 &&
					subset(c.LabelSelector.MatchLabels, w.dep.Spec.Template.Metadata.Labels) {
					spread = true
				}
			}
			if !spread {
				t.Error("no topologySpreadConstraint on kubernetes.io/hostname selecting its own pods: replicas may share a node")
			}
			if g := w.dep.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 30 {
				t.Errorf("terminationGracePeriodSeconds %v, want more than the 30 s drain", deref(g))
			}
			if nr := w.dep.Spec.Template.Spec.SecurityContext.RunAsNonRoot; nr == nil || !*nr {
				t.Error("securityContext.runAsNonRoot is not true")
			}
			if !subset(w.dep.Spec.Selector.MatchLabels, w.dep.Spec.Template.Metadata.Labels) {
				t.Error("the selector does not match the pod labels")
			}
		})
	}
	for _, bin := range stageBinaries {
		if !seen[bin] {
			t.Errorf("no Deployment runs %s", bin)
		}
	}
}

// resolvePort turns a probe's or service's port (number or container port
// name) into a number.
func resolvePort(c container, port any) string {
	switch p := port.(type) {
	case int:
		return strconv.Itoa(p)
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return strconv.Itoa(cp.ContainerPort)
			}
		}
		if _, err := strconv.Atoi(p); err == nil {
			return p
		}
	}
	return fmt.Sprintf("unresolved(%v)", port)
}

func deref(p *int64) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// subset reports whether every label of sel is in labels (with the same
// value) and sel is not empty.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestSecretsOnlyInSecrets checks that no credential is written into a
// ConfigMap or as a literal in a container, and that every one a container
// takes comes from a Secret of the base that has the key.
func TestSecretsOnlyInSecrets(t *testing.T) {
	b := loadBase(t)
	if len(b.all("Secret")) == 0 {
		t.Fatal("the base has no Secret for the platform credentials")
	}
	for _, o := range b.all("ConfigMap") {
		for k := range as[configMap](t, o).Data {
			if isSecretVar(k) {
				t.Errorf("%s holds %s: credentials belong in a Secret", o, k)
			}
		}
	}
	for _, w := range workloads(t, b) {
		for _, e := range w.c.Env {
			if !isSecretVar(e.Name) {
				continue
			}
			if e.Value != nil {
				t.Errorf("%s sets %s as a literal: take it from a Secret", w.obj, e.Name)
				continue
			}
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s takes %s from elsewhere than a Secret", w.obj, e.Name)
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			so, ok := b.find("Secret", ref.Name)
			if !ok {
				t.Errorf("%s: %s refers to Secret %s, not in the base", w.obj, e.Name, ref.Name)
				continue
			}
			if !as[secret](t, so).has(ref.Key) {
				t.Errorf("%s: %s refers to key %s that Secret %s lacks", w.obj, e.Name, ref.Key, ref.Name)
			}
		}
	}
	// Every secret a binary reads is wired, so a filled Secret reaches it;
	// beside SHOPS_FILE the one-shop secrets are refused, and the shops'
	// secrets are files (TestK8sShops).
	refused := refusedBesideShopsFile(t)
	for _, w := range workloads(t, b) {
		for _, v := range config.VarsFor(w.binary) {
			if w.env["SHOPS_FILE"] != "" && refused[v.Name] {
				continue
			}
			if _, set := w.env[v.Name]; v.Secret && !set {
				t.Errorf("%s does not take %s from the Secret", w.obj, v.Name)
			}
		}
	}
}

// TestPodDisruptionBudgets checks that each Deployment has a budget that
// selects its pods and still lets a node drain evict one.
func TestPodDisruptionBudgets(t *testing.T) {
	b := loadBase(t)
	pdbs := b.all("PodDisruptionBudget")
	for _, w := range workloads(t, b) {
		t.Run(w.obj.Metadata.Name, func(t *testing.T) {
			n := 0
			for _, o := range pdbs {
				p := as[pdb](t, o)
				if !subset(p.Spec.Selector.MatchLabels, w.dep.Spec.Template.Metadata.Labels) {
					continue
				}
				n++
				switch {
				case p.Spec.MaxUnavailable != nil:
					if fmt.Sprint(p.Spec.MaxUnavailable) == "0" || fmt.Sprint(p.Spec.MaxUnavailable) == "0%" {
						t.Errorf("%s: maxUnavailable 0 blocks every node drain", o)
					}
				case p.Spec.MinAvailable != nil:
					min, err := strconv.Atoi(fmt.Sprint(p.Spec.MinAvailable))
					if err == nil && (w.dep.Spec.Replicas == nil || min >= *w.dep.Spec.Replicas) {
						t.Errorf("%s: minAvailable %d leaves nothing to evict", o, min)
					}
				default:
					t.Errorf("%s sets neither minAvailable nor maxUnavailable", o)
				}
			}
			if n != 1 {
				t.Errorf("%d PodDisruptionBudgets select its pods, want 1", n)
			}
		})
	}
}

// TestIngestService checks that a Service exposes ingest's order API on the
// port of INGEST_HTTP_ADDR.
func TestIngestService(t *testing.T) {
	b := loadBase(t)
	var ingest *workload
	for _, w := range workloads(t, b) {
		if w.binary == config.Ingest {
			ingest = &w
		}
	}
	if ingest == nil {
		t.Fatal("no ingest Deployment")
	}
	_, httpPort, err := net.SplitHostPort(ingest.env["INGEST_HTTP_ADDR"])
	if err != nil {
		t.Fatalf("INGEST_HTTP_ADDR %q: %v", ingest.env["INGEST_HTTP_ADDR"], err)
	}
	for _, o := range b.all("Service") {
		s := as[service](t, o)
		if !subset(s.Spec.Selector, ingest.dep.Spec.Template.Metadata.Labels) {
			continue
		}
		for _, p := range s.Spec.Ports {
			if resolvePort(ingest.c, p.TargetPort) == httpPort {
				return
			}
		}
	}
	t.Errorf("no Service selects ingest's pods with a targetPort of INGEST_HTTP_ADDR (%s)", httpPort)
}

// consumerOf maps each consuming binary to its durable consumer in
// pkg/events.
var consumerOf = map[string]string{
	config.Enricher: events.ConsumerEnricher,
	config.Shipper:  events.ConsumerShipper,
}

// TestKEDAScaledObjects checks that each consumer's Deployment is scaled by
// a nats-jetstream trigger on stream ORDERS and on that binary's own
// durable consumer, as pkg/events names them.
func TestKEDAScaledObjects(t *testing.T) {
	b := loadBase(t)
	byName := map[string]workload{}
	for _, w := range workloads(t, b) {
		byName[w.obj.Metadata.Name] = w
	}
	scaled := map[string]bool{}
	for _, o := range b.all("ScaledObject") {
		t.Run(o.Metadata.Name, func(t *testing.T) {
			if !strings.HasPrefix(o.APIVersion, "keda.sh/") {
				t.Errorf("apiVersion %s, want keda.sh/v1alpha1", o.APIVersion)
			}
			so := as[scaledObject](t, o)
			if k := so.Spec.ScaleTargetRef.Kind; k != "" && k != "Deployment" {
				t.Errorf("scales a %s", k)
			}
			w, ok := byName[so.Spec.ScaleTargetRef.Name]
			if !ok {
				t.Fatalf("scaleTargetRef %q is not a Deployment of the base", so.Spec.ScaleTargetRef.Name)
			}
			want, ok := consumerOf[w.binary]
			if !ok {
				t.Fatalf("scales %s, which consumes nothing", w.binary)
			}
			if c, err := events.ConsumerConfig(want, 1, 0); err != nil || c.Durable != want {
				t.Fatalf("pkg/events has no durable %q", want)
			}
			scaled[w.binary] = true
			if len(so.Spec.Triggers) == 0 {
				t.Fatal("no triggers")
			}
			for _, tr := range so.Spec.Triggers {
				if tr.Type != "nats-jetstream" {
					t.Errorf("trigger type %q, want nats-jetstream", tr.Type)
					continue
				}
				m := tr.Metadata
				if m["stream"] != events.StreamName {
					t.Errorf("stream %q, want %s", m["stream"], events.StreamName)
				}
				if m["consumer"] != want {
					t.Errorf("consumer %q, want %q (the durable of %s)", m["consumer"], want, w.binary)
				}
				if m["natsServerMonitoringEndpoint"] == "" {
					t.Error("no natsServerMonitoringEndpoint")
				}
				if n, err := strconv.Atoi(m["lagThreshold"]); err != nil || n <= 0 {
					t.Errorf("lagThreshold %q, want a positive number", m["lagThreshold"])
				}
			}
			min, max := so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount
			if min == nil || *min < 1 || max == nil || *max < *min {
				t.Errorf("replicas %v..%v: want at least one, and max ≥ min", min, max)
			}
		})
	}
	for bin := range consumerOf {
		if !scaled[bin] {
			t.Errorf("no ScaledObject scales %s", bin)
		}
	}
}

// helmValues is the part of the NATS chart's values the tests check.
type helmValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `yaml:"enabled"`
			Replicas int  `yaml:"replicas"`
		} `yaml:"cluster"`
		JetStream struct {
			Enabled   bool `yaml:"enabled"`
			FileStore struct {
				Enabled bool `yaml:"enabled"`
				PVC     struct {
					Enabled bool   `yaml:"enabled"`
					Size    string `yaml:"size"`
				} `yaml:"pvc"`
			} `yaml:"fileStore"`
			Merge map[string]any `yaml:"merge"`
		} `yaml:"jetstream"`
		Monitor struct {
			Enabled *bool `yaml:"enabled"`
		} `yaml:"monitor"`
	} `yaml:"config"`
	Container struct {
		Image struct {
			Repository string `yaml:"repository"`
			Tag        string `yaml:"tag"`
		} `yaml:"image"`
	} `yaml:"container"`
}

// TestNATSHelmValues checks the values for the official chart: three
// clustered replicas, JetStream on persistent file storage synced on every
// write, the monitoring port KEDA reads, and the server version the tests
// run.
func TestNATSHelmValues(t *testing.T) {
	var v helmValues
	readYAML(t, "k8s/nats-values.yaml", &v)
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster enabled=%v replicas=%d, want a three-node cluster", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled || c.JetStream.FileStore.PVC.Size == "" {
		t.Error("JetStream file storage on a persistent volume is not enabled")
	}
	if c.JetStream.Merge["sync_interval"] != "always" {
		t.Errorf("config.jetstream.merge.sync_interval %v, want always", c.JetStream.Merge["sync_interval"])
	}
	if c.Monitor.Enabled != nil && !*c.Monitor.Enabled {
		t.Error("the monitoring port is off: KEDA's nats-jetstream trigger reads it")
	}
	if v.Container.Image.Repository != "nats" {
		t.Errorf("image repository %q, want the official nats image", v.Container.Image.Repository)
	}
	if ver, _, _ := strings.Cut(v.Container.Image.Tag, "-"); ver != natsServerVersion(t) {
		t.Errorf("image tag %q, want nats-server %s as in go.mod", v.Container.Image.Tag, natsServerVersion(t))
	}
	for _, w := range workloads(t, loadBase(t)) {
		if r, _ := strconv.Atoi(w.env["STREAM_REPLICAS"]); r > c.Cluster.Replicas {
			t.Errorf("%s: STREAM_REPLICAS %d exceeds the cluster's %d nodes", w.obj, r, c.Cluster.Replicas)
		}
	}
}
