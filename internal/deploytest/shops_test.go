package deploytest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/internal/shops"
)

// oneShopVars are the variables that define the one shop of a deployment
// without SHOPS_FILE; beside SHOPS_FILE the binaries refuse them.
// deploy/README.md ("Many shops") names them for the upgrade, so
// TestRefusedBesideShopsFile keeps this list equal to what config refuses.
var oneShopVars = []string{"WECHAT_APPID", "WECHAT_APPSECRET", "WECHAT_ACCESS_TOKEN", "INGEST_DELIVERY_ID", "VVTOOL_TOKEN", "VVTOOL_SHOP_IDS",
	"WECHAT_PUSH_TOKEN", "WECHAT_PUSH_AES_KEY", "WECHAT_PUSH_AES_KEY_PREVIOUS"}

// refusedBesideShopsFile asks the config package which variables a stage
// binary refuses when SHOPS_FILE is set: each variable each binary reads is
// set, one at a time, beside SHOPS_FILE, and the configuration parsed.
func refusedBesideShopsFile(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	base := map[string]string{"SHOPS_FILE": "/etc/fulfill/shops/shops.yaml"}
	for _, bin := range stageBinaries {
		if _, err := config.Parse(bin, "", nil, mapEnv(base), io.Discard); err != nil {
			t.Fatalf("%s refuses SHOPS_FILE alone: %v", bin, err)
		}
		for _, v := range config.VarsFor(bin) {
			if v.Name == "SHOPS_FILE" {
				continue
			}
			val := v.DefaultFor(bin)
			if val == "" {
				val = "x"
			}
			env := maps.Clone(base)
			env[v.Name] = val
			_, err := config.Parse(bin, "", nil, mapEnv(env), io.Discard)
			if err != nil && strings.Contains(err.Error(), v.Name) && strings.Contains(err.Error(), "SHOPS_FILE") {
				out[v.Name] = true
			}
		}
	}
	return out
}

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestRefusedBesideShopsFile keeps oneShopVars, which the README lists,
// equal to the variables the binaries refuse beside SHOPS_FILE.
func TestRefusedBesideShopsFile(t *testing.T) {
	got := sortedKeys(refusedBesideShopsFile(t))
	want := slices.Sorted(slices.Values(oneShopVars))
	if !slices.Equal(got, want) {
		t.Errorf("the binaries refuse %v beside SHOPS_FILE, the tests and deploy/README.md (\"Many shops\") say %v: change them together", got, want)
	}
}

// dummySecret is a stand-in for the secret called name: distinct per name
// (a shop's API token must differ from every other's) and valid for every
// kind of secret (43 base64 characters, an EncodingAESKey's shape).
func dummySecret(name string) string {
	sum := sha256.Sum256([]byte("deploytest " + name))
	return base64.RawStdEncoding.EncodeToString(sum[:])
}

// shopsRefs is a shops file as shops.Parse reads it, and where it said its
// secrets are: the variables (*_env) and files (*_file), in file order.
type shopsRefs struct {
	reg   *shops.Registry
	env   []string
	files []string
}

// parseShops parses a shops file with shops.Parse: getenv gives each *_env
// variable's value ("" for unset), and every *_file reads as a dummy secret
// of its own.
func parseShops(data []byte, getenv func(string) string) (shopsRefs, error) {
	var r shopsRefs
	reg, err := shops.Parse(data, func(name string) string {
		r.env = append(r.env, name)
		return getenv(name)
	}, func(p string) ([]byte, error) {
		r.files = append(r.files, p)
		return []byte(dummySecret(p) + "\n"), nil
	})
	r.reg = reg
	return r, err
}

// problemList collects problems once each, in the order found.
type problemList struct {
	list []string
	seen map[string]bool
}

func (p *problemList) add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if !p.seen[s] {
		p.seen[s] = true
		p.list = append(p.list, s)
	}
}

// wantProblem is a check of a catch test: with the input changed by
// mutate, some problem contains want ("" for none at all).
func wantProblem(t *testing.T, problems []string, want string) {
	t.Helper()
	if want == "" {
		if len(problems) > 0 {
			t.Fatalf("problems with the file as it is: %q", problems)
		}
		return
	}
	if !slices.ContainsFunc(problems, func(s string) bool { return strings.Contains(s, want) }) {
		t.Errorf("no problem mentions %q; got %q", want, problems)
	}
}

// The names the Kubernetes base gives the shops file's ConfigMap and the
// Secret the shops' secrets are files of (deploy/README.md, "Many shops").
const (
	shopsConfigMap = "fulfill-shops"
	secretsName    = "fulfill-secrets"
)

// k8sShops is what the base's shops wiring is made of: the Deployments, and
// the data of its ConfigMaps and the keys of its Secrets, by name.
type k8sShops struct {
	ws         []workload
	configMaps map[string]map[string]string
	secrets    map[string]map[string]bool
}

func loadK8sShops(t *testing.T) k8sShops {
	t.Helper()
	b := loadBase(t)
	in := k8sShops{ws: workloads(t, b), configMaps: map[string]map[string]string{}, secrets: map[string]map[string]bool{}}
	for _, o := range b.all("ConfigMap") {
		in.configMaps[o.Metadata.Name] = as[configMap](t, o).Data
	}
	for _, o := range b.all("Secret") {
		s := as[secret](t, o)
		keys := map[string]bool{}
		for k := range s.Data {
			keys[k] = true
		}
		for k := range s.StringData {
			keys[k] = true
		}
		in.secrets[o.Metadata.Name] = keys
	}
	return in
}

// workload is the Deployment running binary.
func (in k8sShops) workload(t *testing.T, binary string) *workload {
	t.Helper()
	for i := range in.ws {
		if in.ws[i].binary == binary {
			return &in.ws[i]
		}
	}
	t.Fatalf("no Deployment runs %s", binary)
	return nil
}

// fileOn finds the file at path p of w's container on a ConfigMap or Secret
// volume: the volume and the key whose file it is. why says what is wrong
// otherwise: on no volume, on a subPath or writable mount, not one of the
// volume's files.
func (w workload) fileOn(p string) (v volume, key, why string) {
	p = path.Clean(p)
	var m *volumeMount
	for i, vm := range w.c.VolumeMounts {
		mp := path.Clean(vm.MountPath)
		if (p == mp || strings.HasPrefix(p, mp+"/")) && (m == nil || len(mp) > len(path.Clean(m.MountPath))) {
			m = &w.c.VolumeMounts[i]
		}
	}
	if m == nil {
		return v, "", "is on no volume of the container"
	}
	if m.SubPath != "" {
		return v, "", fmt.Sprintf("is on a subPath mount (%s of volume %s), which the kubelet never updates: mount the volume as a folder", m.SubPath, m.Name)
	}
	if !m.ReadOnly {
		return v, "", fmt.Sprintf("is on volume %s mounted writable: mount it readOnly", m.Name)
	}
	i := slices.IndexFunc(w.dep.Spec.Template.Spec.Volumes, func(v volume) bool { return v.Name == m.Name })
	if i < 0 {
		return v, "", fmt.Sprintf("is on volume %s, which the pod does not have", m.Name)
	}
	v = w.dep.Spec.Template.Spec.Volumes[i]
	rel := strings.TrimPrefix(p, path.Clean(m.MountPath)+"/")
	if rel == p {
		return v, "", fmt.Sprintf("is the mount point of volume %s, not a file on it", m.Name)
	}
	var items []keyPath
	switch {
	case v.ConfigMap != nil:
		items = v.ConfigMap.Items
	case v.Secret != nil:
		items = v.Secret.Items
	default:
		return v, "", fmt.Sprintf("is on volume %s, neither a ConfigMap nor a Secret", m.Name)
	}
	if len(items) == 0 {
		if strings.Contains(rel, "/") {
			return v, "", fmt.Sprintf("is in a subfolder of volume %s, which holds one file per key", m.Name)
		}
		return v, rel, ""
	}
	for _, it := range items {
		if path.Clean(it.Path) == rel {
			return v, it.Key, ""
		}
	}
	return v, "", fmt.Sprintf("is not one of the items volume %s shows", m.Name)
}

// canRead reports whether the container's process can read the files of
// volume v: the kubelet writes them owned by root with the volume's
// defaultMode (0644 unless set), group-owned by the pod's fsGroup if any.
func (w workload) canRead(v volume) (mode int, ok bool) {
	mode = 0o644
	switch {
	case v.ConfigMap != nil && v.ConfigMap.DefaultMode != nil:
		mode = *v.ConfigMap.DefaultMode
	case v.Secret != nil && v.Secret.DefaultMode != nil:
		mode = *v.Secret.DefaultMode
	}
	sc := w.dep.Spec.Template.Spec.SecurityContext
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		return mode, true
	}
	return mode, mode&0o004 != 0 || (sc.FSGroup != nil && mode&0o040 != 0)
}

// getenv is the environment w's process gets, with a dummy value for each
// variable taken from a Secret.
func (w workload) getenv(k string) string {
	if w.fromSecret[k] {
		return dummySecret(k)
	}
	return w.env[k]
}

// problems lists how the base's shops wiring is wrong. Every Deployment
// must: set SHOPS_FILE and none of the variables refused beside it, and
// have an environment its binary accepts; find the shops file on the
// fulfill-shops ConfigMap, and every secret file the shops file names on a
// Secret that has the key, each mounted as a read-only folder (a subPath
// mount is never updated) with files the process can read. The shops file
// must parse, and name its secrets by *_file (the Secret's files), not by
// *_env (a variable never changes under a running process). Every key of a
// Secret must be used by a container or a shop.
func (in k8sShops) problems(refused map[string]bool) []string {
	var p problemList
	used := map[string]map[string]bool{}
	use := func(secret, key string) {
		if used[secret] == nil {
			used[secret] = map[string]bool{}
		}
		used[secret][key] = true
	}
	for _, w := range in.ws {
		name := w.obj.String()
		for _, e := range w.c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				use(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
			}
		}
		for _, ef := range w.c.EnvFrom {
			if ef.SecretRef != nil {
				for k := range in.secrets[ef.SecretRef.Name] {
					use(ef.SecretRef.Name, k)
				}
			}
		}
		for _, v := range sortedKeys(refused) {
			if _, set := w.env[v]; set {
				p.add("%s sets %s, which %s refuses beside SHOPS_FILE (every shop's accounts are in the shops file)", name, v, w.binary)
			}
		}
		file := w.env["SHOPS_FILE"]
		if file == "" {
			p.add("%s: SHOPS_FILE is not set", name)
			continue
		}
		if _, err := config.Parse(w.binary, "", nil, w.getenv, io.Discard); err != nil {
			p.add("%s: %s refuses its environment: %v", name, w.binary, err)
		}
		v, key, why := w.fileOn(file)
		if why != "" {
			p.add("%s: SHOPS_FILE %s %s", name, file, why)
			continue
		}
		if v.ConfigMap == nil || v.ConfigMap.Name != shopsConfigMap {
			p.add("%s: SHOPS_FILE %s is on volume %s, not on the ConfigMap %s", name, file, v.Name, shopsConfigMap)
			continue
		}
		if mode, ok := w.canRead(v); !ok {
			p.add("%s: the files of volume %s are not readable by the process (mode %#o, no fsGroup)", name, v.Name, mode)
		}
		data, ok := in.configMaps[shopsConfigMap][key]
		if !ok {
			p.add("%s: SHOPS_FILE %s is key %s of ConfigMap %s, which has no such key", name, file, key, shopsConfigMap)
			continue
		}
		refs, err := parseShops([]byte(data), w.getenv)
		if err != nil {
			p.add("%s: the shops file (ConfigMap %s, key %s) is refused: %v", name, shopsConfigMap, key, err)
			continue
		}
		for _, e := range refs.env {
			p.add("the shops file names %s by *_env: on Kubernetes name the Secret's file with *_file, which a rotated Secret updates without a restart", e)
		}
		for _, f := range refs.files {
			fp := f
			if !path.IsAbs(fp) {
				fp = path.Join(path.Dir(file), fp) // as shops.Load resolves it
			}
			v, key, why := w.fileOn(fp)
			switch {
			case why != "":
				p.add("%s: %s (in the shops file) %s", name, f, why)
			case v.Secret == nil:
				p.add("%s: %s (in the shops file) is on volume %s, not on a Secret", name, f, v.Name)
			case !in.secrets[v.Secret.SecretName][key]:
				p.add("%s: %s (in the shops file) is key %s of Secret %s, which has no such key", name, f, key, v.Secret.SecretName)
			default:
				use(v.Secret.SecretName, key)
				if mode, ok := w.canRead(v); !ok {
					p.add("%s: the files of Secret %s are not readable by the process (mode %#o, no fsGroup)", name, v.Secret.SecretName, mode)
				}
			}
		}
	}
	for _, s := range sortedKeys(in.secrets) {
		for _, k := range sortedKeys(in.secrets[s]) {
			if !used[s][k] {
				p.add("Secret %s holds %s, which no container and no shop uses (a shop removed without its secret?)", s, k)
			}
		}
	}
	return p.list
}

// TestK8sShops checks the base's shops: ingest, enricher and shipper each
// read the shops file from the fulfill-shops ConfigMap (SHOPS_FILE) and the
// shops' secrets as files of fulfill-secrets, set none of the one-shop
// variables, and the file parses to the three example shops, every secret
// it names a key of the Secret (k8sShops.problems has the whole list).
func TestK8sShops(t *testing.T) {
	in := loadK8sShops(t)
	for _, bin := range stageBinaries {
		in.workload(t, bin)
	}
	for _, p := range in.problems(refusedBesideShopsFile(t)) {
		t.Error(p)
	}
	data, ok := in.configMaps[shopsConfigMap]["shops.yaml"]
	if !ok {
		t.Fatalf("no ConfigMap %s with the key shops.yaml", shopsConfigMap)
	}
	refs, err := parseShops([]byte(data), func(string) string { return "" })
	if err != nil {
		t.Fatalf("%s shops.yaml: %v", shopsConfigMap, err)
	}
	if ids := refs.reg.IDs(); !slices.Equal(ids, []string{"acme", "bolt", "corp"}) {
		t.Errorf("shops %v, want the example's acme, bolt and corp (deploy/README.md, \"Many shops\")", ids)
	}
	if len(refs.files) == 0 {
		t.Error("the shops file names no secret file")
	}
}

// TestK8sShopsChecksCatch changes the base's shops wiring one thing at a
// time and wants each caught: a check that passes everything would pass
// the base too.
func TestK8sShopsChecksCatch(t *testing.T) {
	refused := refusedBesideShopsFile(t)
	mount := func(t *testing.T, w *workload, name string) *volumeMount {
		i := slices.IndexFunc(w.c.VolumeMounts, func(m volumeMount) bool { return m.Name == name })
		if i < 0 {
			t.Fatalf("%s mounts no volume %s", w.obj, name)
		}
		return &w.c.VolumeMounts[i]
	}
	vol := func(t *testing.T, w *workload, name string) *volume {
		vs := w.dep.Spec.Template.Spec.Volumes
		i := slices.IndexFunc(vs, func(v volume) bool { return v.Name == name })
		if i < 0 {
			t.Fatalf("%s has no volume %s", w.obj, name)
		}
		return &vs[i]
	}
	// edit replaces old with new in the shops file, which must hold old.
	edit := func(t *testing.T, in k8sShops, old, new string) {
		data := in.configMaps[shopsConfigMap]["shops.yaml"]
		if !strings.Contains(data, old) {
			t.Fatalf("the shops file has no %q", old)
		}
		in.configMaps[shopsConfigMap]["shops.yaml"] = strings.Replace(data, old, new, 1)
	}
	cases := []struct {
		name   string
		mutate func(t *testing.T, in k8sShops)
		want   string
	}{
		{"as in the base", func(t *testing.T, in k8sShops) {}, ""},
		{"no SHOPS_FILE", func(t *testing.T, in k8sShops) { delete(in.workload(t, config.Shipper).env, "SHOPS_FILE") }, "SHOPS_FILE is not set"},
		{"a one-shop variable left beside it, even empty", func(t *testing.T, in k8sShops) {
			in.workload(t, config.Enricher).env["WECHAT_APPID"] = ""
		}, "sets WECHAT_APPID, which enricher refuses"},
		{"a one-shop secret beside it", func(t *testing.T, in k8sShops) {
			w := in.workload(t, config.Ingest)
			w.env["VVTOOL_TOKEN"], w.fromSecret["VVTOOL_TOKEN"] = "", true
		}, "ingest refuses its environment"},
		{"SHOPS_FILE naming another key", func(t *testing.T, in k8sShops) {
			in.workload(t, config.Ingest).env["SHOPS_FILE"] = "/etc/fulfill/shops/shop.yaml"
		}, "has no such key"},
		{"the shops file by subPath", func(t *testing.T, in k8sShops) {
			m := mount(t, in.workload(t, config.Shipper), "shops")
			m.MountPath, m.SubPath = "/etc/fulfill/shops/shops.yaml", "shops.yaml"
		}, "subPath mount"},
		{"the shops file on a writable mount", func(t *testing.T, in k8sShops) { mount(t, in.workload(t, config.Shipper), "shops").ReadOnly = false }, "mounted writable"},
		{"the shops file from another ConfigMap", func(t *testing.T, in k8sShops) {
			vol(t, in.workload(t, config.Enricher), "shops").ConfigMap.Name = "fulfill-common"
		}, "not on the ConfigMap fulfill-shops"},
		{"a stage without the secrets", func(t *testing.T, in k8sShops) {
			w := in.workload(t, config.Shipper)
			w.c.VolumeMounts = slices.DeleteFunc(w.c.VolumeMounts, func(m volumeMount) bool { return m.Name == "secrets" })
		}, "is on no volume of the container"},
		{"a secret file the Secret lacks", func(t *testing.T, in k8sShops) { delete(in.secrets[secretsName], "BOLT_WECHAT_ACCESS_TOKEN") }, "which has no such key"},
		{"a secret key nothing uses", func(t *testing.T, in k8sShops) { in.secrets[secretsName]["DAVE_WECHAT_SECRET"] = true }, "holds DAVE_WECHAT_SECRET, which no container and no shop uses"},
		{"secret files only root can read", func(t *testing.T, in k8sShops) {
			w := in.workload(t, config.Enricher)
			mode := 0o400
			vol(t, w, "secrets").Secret.DefaultMode = &mode
		}, "not readable by the process"},
		{"secret files for the group without an fsGroup", func(t *testing.T, in k8sShops) {
			in.workload(t, config.Shipper).dep.Spec.Template.Spec.SecurityContext.FSGroup = nil
		}, "not readable by the process"},
		{"a secret by environment variable", func(t *testing.T, in k8sShops) {
			edit(t, in, "secret_file: /etc/fulfill/secrets/CORP_WECHAT_SECRET", "secret_env: CORP_WECHAT_SECRET")
			for i := range in.ws {
				in.ws[i].env["CORP_WECHAT_SECRET"], in.ws[i].fromSecret["CORP_WECHAT_SECRET"] = "", true
			}
		}, "names CORP_WECHAT_SECRET by *_env"},
		{"a shops file the binaries refuse", func(t *testing.T, in k8sShops) { edit(t, in, "ship_concurrency: 16", "ship_concurency: 16") }, "unknown key"},
		{"a secret inline", func(t *testing.T, in k8sShops) {
			edit(t, in, "api_token_file: /etc/fulfill/secrets/CORP_API_TOKEN", "api_token: hunter2")
		}, "inline secrets are not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := loadK8sShops(t) // a fresh copy each time
			tc.mutate(t, in)
			wantProblem(t, in.problems(refused), tc.want)
		})
	}
}

// TestReadmeManyShops keeps deploy/README.md's "Many shops" section true to
// the code: it names the refused variables, the ConfigMap and the Secret,
// every YAML block in it that lists shops parses with shops.Parse (a block
// of list items as the entries of a shops file, a mapping by its shops
// key), and the first, the base's example, is k8s/shops.yaml's shops.
func TestReadmeManyShops(t *testing.T) {
	data, err := os.ReadFile(deployPath(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Many shops\n")
	if !ok {
		t.Fatal("deploy/README.md has no \"## Many shops\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, name := range append(slices.Clone(oneShopVars), shopsConfigMap, secretsName, "SHOPS_RELOAD_INTERVAL", "SHIP_SHOP_CONCURRENCY", "SIGHUP") {
		if !strings.Contains(section, name) {
			t.Errorf("the section does not mention %s", name)
		}
	}
	env := func(k string) string { return dummySecret(k) }
	base, err := parseShops([]byte(loadK8sShops(t).configMaps[shopsConfigMap]["shops.yaml"]), env)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range strings.Split(section, "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		var v any
		if err := yaml.Unmarshal([]byte(block), &v); err != nil {
			t.Errorf("a YAML block does not parse: %v\n%s", err, block)
			continue
		}
		var list any
		switch x := v.(type) {
		case map[string]any:
			if list, ok = x["shops"]; !ok {
				continue
			}
		case []any:
			list = x
		default:
			continue
		}
		file, err := yaml.Marshal(map[string]any{"shops": list})
		if err != nil {
			t.Fatal(err)
		}
		refs, err := parseShops(file, env)
		if err != nil {
			t.Errorf("a shops block is refused: %v\n%s", err, block)
			continue
		}
		if n == 0 && !refs.reg.Equal(base.reg) {
			t.Errorf("the first shops block is not k8s/shops.yaml's shops (%v, %d secret files; the base: %v, %d)",
				refs.reg.IDs(), len(refs.files), base.reg.IDs(), len(base.files))
		}
		n++
	}
	if n < 4 {
		t.Errorf("%d blocks of shops, want at least 4: the base's example, adding a shop, the upgrade, Helm", n)
	}
}
