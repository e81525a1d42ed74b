package deploytest

import (
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fulfill/pipeline/internal/config"
	"github.com/fulfill/pipeline/pkg/sandbox"
)

// composeShopsHost is where compose's stage services find the shops file:
// the folder mounted on SHOPS_FILE's folder, relative to deploy/.
func composeShopsHost(s composeService) (rel, why string) {
	file := s.Environment["SHOPS_FILE"]
	if file == "" {
		return "", "SHOPS_FILE is not set"
	}
	if _, _, ok := bindMount(s.Volumes, file); ok {
		return "", fmt.Sprintf("mounts the file %s itself: a bind-mounted file keeps the inode it had, so an edit saved by renaming (most editors, sed -i) is never seen; mount its folder", file)
	}
	src, ro, ok := bindMount(s.Volumes, path.Dir(file))
	if !ok {
		return "", fmt.Sprintf("SHOPS_FILE %s: no folder of deploy/ is mounted on %s", file, path.Dir(file))
	}
	if !ro {
		return "", fmt.Sprintf("mounts %s on %s writable: mount it read-only (:ro)", src, path.Dir(file))
	}
	return path.Join(src, path.Base(file)), ""
}

// bindMount is the host source of the volume mounted on target and whether
// it is read-only.
func bindMount(volumes []string, target string) (src string, ro, ok bool) {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && path.Clean(parts[1]) == path.Clean(target) {
			return parts[0], len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro"), true
		}
	}
	return "", false, false
}

// composeValue is the value compose gives a variable of value v from an
// empty shell: ${NAME:-default} and ${NAME-default} are the default,
// ${NAME:?message} stands for a value the user must give (a dummy), ${NAME}
// is empty, anything else is literal.
func composeValue(name, v string) string {
	inner, ok := strings.CutPrefix(v, "${")
	if !ok || !strings.HasSuffix(inner, "}") {
		return v
	}
	inner = strings.TrimSuffix(inner, "}")
	for _, op := range []string{":-", "-", ":?", "?"} {
		if _, rest, ok := strings.Cut(inner, op); ok {
			if strings.Contains(op, "?") {
				return dummySecret(name)
			}
			return rest
		}
	}
	return ""
}

// env is the environment compose gives the service from an empty shell.
func (s composeService) env() func(string) string {
	return func(k string) string {
		v, ok := s.Environment[k]
		if !ok {
			return ""
		}
		return composeValue(k, v)
	}
}

// sandboxShops is the number of apps the compose file's sandbox serves
// (--shops, 1 without it); 0 when no service runs the sandbox.
func (c composeFile) sandboxShops() int {
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.binary() != config.Fulfillctl || len(s.Command) == 0 || s.Command[0] != "sandbox" {
			continue
		}
		n := 1
		for i, a := range s.Command {
			v, ok := strings.CutPrefix(a, "--shops=")
			if a == "--shops" && i+1 < len(s.Command) {
				v, ok = s.Command[i+1], true
			}
			if ok {
				if k, err := strconv.Atoi(v); err == nil {
					n = k
				}
			}
		}
		return n
	}
	return 0
}

// composeShopsProblems lists how the compose file's shops are wrong. Every
// stage service must: set SHOPS_FILE and none of the variables refused
// beside it, and have an environment its binary accepts; mount the folder
// of the shops file read-only (a mounted file would keep its old inode),
// the same file for all; set every variable the shops file names (*_env;
// compose passes secrets by environment, not *_file). The file must parse,
// and each shop must be an app of the sandbox: appid, secret, vv-tool token
// and shop ids those of sandbox.DerivedApp(k) for a k below its --shops.
// read reads a file relative to deploy/.
func composeShopsProblems(c composeFile, read func(rel string) ([]byte, error), refused map[string]bool) []string {
	var p problemList
	apps := c.sandboxShops()
	if apps == 0 {
		p.add("no service runs the sandbox")
	}
	first, firstService := "", ""
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if !slices.Contains(stageBinaries, s.binary()) {
			continue
		}
		for _, v := range sortedKeys(refused) {
			if _, set := s.Environment[v]; set {
				p.add("%s sets %s, which %s refuses beside SHOPS_FILE (every shop's accounts are in the shops file)", name, v, s.binary())
			}
		}
		rel, why := composeShopsHost(s)
		if why != "" {
			p.add("%s: %s", name, why)
			continue
		}
		if _, err := config.Parse(s.binary(), "", nil, s.env(), io.Discard); err != nil {
			p.add("%s: %s refuses its environment: %v", name, s.binary(), err)
		}
		switch {
		case first == "":
			first, firstService = rel, name
		case path.Clean(rel) != path.Clean(first):
			p.add("%s reads the shops file %s, %s reads %s: every stage must serve the same shops", name, rel, firstService, first)
		}
		data, err := read(rel)
		if err != nil {
			p.add("%s: the shops file: %v", name, err)
			continue
		}
		refs, err := parseShops(data, s.env())
		if err != nil {
			p.add("%s: the shops file %s is refused: %v", name, rel, err)
			continue
		}
		for _, f := range refs.files {
			p.add("the shops file %s names %s by *_file: compose gives the shops' secrets by environment (*_env)", rel, f)
		}
		for _, sh := range refs.reg.Shops() {
			ch := sh.Channels
			if ch == nil {
				p.add("shop %s has no channels: the sandbox serves Channels apps", sh.ID)
				continue
			}
			k := -1
			for i := range apps {
				if sandbox.DerivedAppID(i) == ch.AppID {
					k = i
				}
			}
			if k < 0 {
				p.add("shop %s: appid %s is not one of the sandbox's %d apps (sandbox.DerivedAppID(0…%d))", sh.ID, ch.AppID, apps, apps-1)
				continue
			}
			app := sandbox.DerivedApp(k)
			if ch.AccessToken != "" {
				p.add("shop %s takes a fixed access token; the sandbox issues tokens for app %d's secret", sh.ID, k)
			} else if ch.Secret != app.AppSecret {
				p.add("%s: shop %s's secret is not sandbox app %d's by default (%s)", name, sh.ID, k, app.AppSecret)
			}
			if v := sh.VVTool; v != nil {
				if v.Token != app.VVToken {
					p.add("%s: shop %s's vv-tool token is not sandbox app %d's by default (%s)", name, sh.ID, k, app.VVToken)
				}
				if !slices.Equal(v.ShopIDs, app.VVShops) {
					p.add("shop %s: vv-tool shop_ids %v, sandbox app %d's are %v", sh.ID, v.ShopIDs, k, app.VVShops)
				}
			}
		}
	}
	return p.list
}

// composeShopEnv are the variables the shops file of stage service s names
// (*_env), nil if it cannot be read.
func composeShopEnv(t *testing.T, s composeService) map[string]bool {
	t.Helper()
	rel, why := composeShopsHost(s)
	if why != "" {
		return nil
	}
	data, err := readDeploy(t, rel)
	if err != nil {
		return nil
	}
	refs, _ := parseShops(data, func(k string) string { return dummySecret(k) })
	out := map[string]bool{}
	for _, e := range refs.env {
		out[e] = true
	}
	return out
}

// readDeploy reads a file relative to deploy/.
func readDeploy(t *testing.T, rel string) ([]byte, error) {
	t.Helper()
	return os.ReadFile(deployPath(t, rel))
}

// TestComposeShops checks compose's shops: the stage services read one
// shops file mounted from deploy/, with the sandbox's three apps as shops
// acme, bolt and corp (apps 0, 1 and 2), their secrets by environment
// defaulting to the sandbox's, and none of the one-shop variables
// (composeShopsProblems has the whole list).
func TestComposeShops(t *testing.T) {
	c := loadCompose(t)
	for _, p := range composeShopsProblems(c, func(rel string) ([]byte, error) { return readDeploy(t, rel) }, refusedBesideShopsFile(t)) {
		t.Error(p)
	}
	if n := c.sandboxShops(); n != 3 {
		t.Errorf("the sandbox serves %d apps, want --shops 3", n)
	}
	var s composeService
	for _, name := range sortedKeys(c.Services) {
		if c.Services[name].binary() == config.Shipper {
			s = c.Services[name]
		}
	}
	rel, why := composeShopsHost(s)
	if why != "" {
		t.Fatal(why)
	}
	data, err := readDeploy(t, rel)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := parseShops(data, s.env())
	if err != nil {
		t.Fatal(err)
	}
	for k, id := range []string{"acme", "bolt", "corp"} {
		sh, ok := refs.reg.Shop(id)
		if !ok {
			t.Errorf("no shop %s", id)
			continue
		}
		if sh.Channels == nil || sh.Channels.AppID != sandbox.DerivedAppID(k) {
			t.Errorf("shop %s is not sandbox app %d (%s)", id, k, sandbox.DerivedAppID(k))
		}
	}
	if n := refs.reg.Len(); n != 3 {
		t.Errorf("%d shops, want 3", n)
	}
}

// TestComposeShopsChecksCatch changes compose's shops one thing at a time
// and wants each caught.
func TestComposeShopsChecksCatch(t *testing.T) {
	refused := refusedBesideShopsFile(t)
	service := func(t *testing.T, c composeFile, bin string) string {
		for _, name := range sortedKeys(c.Services) {
			if c.Services[name].binary() == bin {
				return name
			}
		}
		t.Fatalf("no service runs %s", bin)
		return ""
	}
	// setVolumes replaces the volumes of the service running bin.
	setVolumes := func(t *testing.T, c composeFile, bin string, vols ...string) {
		name := service(t, c, bin)
		s := c.Services[name]
		s.Volumes = vols
		c.Services[name] = s
	}
	shopsDir := func(t *testing.T, c composeFile) string {
		s := c.Services[service(t, c, config.Shipper)]
		src, _, ok := bindMount(s.Volumes, path.Dir(s.Environment["SHOPS_FILE"]))
		if !ok {
			t.Fatal("the shipper mounts no shops folder")
		}
		return src
	}
	cases := []struct {
		name   string
		mutate func(t *testing.T, c composeFile) (edit func([]byte) []byte)
		want   string
	}{
		{"as it is", func(t *testing.T, c composeFile) func([]byte) []byte { return nil }, ""},
		{"a one-shop variable left beside SHOPS_FILE", func(t *testing.T, c composeFile) func([]byte) []byte {
			c.Services[service(t, c, config.Shipper)].Environment["WECHAT_APPSECRET"] = "${WECHAT_APPSECRET:-sandbox-app-secret}"
			return nil
		}, "sets WECHAT_APPSECRET, which shipper refuses"},
		{"no SHOPS_FILE", func(t *testing.T, c composeFile) func([]byte) []byte {
			delete(c.Services[service(t, c, config.Enricher)].Environment, "SHOPS_FILE")
			return nil
		}, "SHOPS_FILE is not set"},
		{"a shop's secret not set", func(t *testing.T, c composeFile) func([]byte) []byte {
			delete(c.Services[service(t, c, config.Enricher)].Environment, "ACME_WECHAT_SECRET")
			return nil
		}, "ACME_WECHAT_SECRET is not set"},
		{"a secret that is not the sandbox's", func(t *testing.T, c composeFile) func([]byte) []byte {
			c.Services[service(t, c, config.Ingest)].Environment["BOLT_WECHAT_SECRET"] = "${BOLT_WECHAT_SECRET:-sandbox-app-secret}"
			return nil
		}, "secret is not sandbox app 1's"},
		{"a vv-tool token that is not the sandbox's", func(t *testing.T, c composeFile) func([]byte) []byte {
			c.Services[service(t, c, config.Ingest)].Environment["CORP_VV_TOKEN"] = "${CORP_VV_TOKEN:-sandbox-vv-token-2}"
			return nil
		}, "vv-tool token is not sandbox app 2's"},
		{"vv-tool shop ids of another app", func(t *testing.T, c composeFile) func([]byte) []byte {
			return func(b []byte) []byte { return []byte(strings.Replace(string(b), `"2001"`, `"1001"`, 1)) }
		}, "vv-tool shop_ids"},
		{"fewer sandbox apps than shops", func(t *testing.T, c composeFile) func([]byte) []byte {
			name := service(t, c, config.Fulfillctl)
			s := c.Services[name]
			s.Command = slices.Clone(s.Command)
			i := slices.Index(s.Command, "--shops")
			if i < 0 {
				t.Fatal("the sandbox runs without --shops")
			}
			s.Command[i+1] = "2"
			c.Services[name] = s
			return nil
		}, "is not one of the sandbox's 2 apps"},
		{"the shops file mounted alone", func(t *testing.T, c composeFile) func([]byte) []byte {
			dir := shopsDir(t, c)
			setVolumes(t, c, config.Shipper, dir+"/shops.yaml:/etc/fulfill/shops/shops.yaml:ro")
			return nil
		}, "mounts the file /etc/fulfill/shops/shops.yaml itself"},
		{"the shops folder writable", func(t *testing.T, c composeFile) func([]byte) []byte {
			setVolumes(t, c, config.Shipper, shopsDir(t, c)+":/etc/fulfill/shops")
			return nil
		}, "writable"},
		{"another shops file for one stage", func(t *testing.T, c composeFile) func([]byte) []byte {
			setVolumes(t, c, config.Enricher, "./nats:/etc/fulfill/shops:ro")
			return nil
		}, "every stage must serve the same shops"},
		{"a secret by file", func(t *testing.T, c composeFile) func([]byte) []byte {
			return func(b []byte) []byte {
				return []byte(strings.Replace(string(b), "secret_env: CORP_WECHAT_SECRET", "secret_file: /run/secrets/corp", 1))
			}
		}, "names /run/secrets/corp by *_file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCompose(t) // a fresh copy each time
			edit := tc.mutate(t, c)
			read := func(rel string) ([]byte, error) {
				if strings.HasPrefix(path.Clean(rel), "nats/") { // the other shops file: the same shops
					rel = path.Join(shopsDir(t, loadCompose(t)), path.Base(rel))
				}
				b, err := readDeploy(t, rel)
				if err == nil && edit != nil {
					b = edit(b)
				}
				return b, err
			}
			wantProblem(t, composeShopsProblems(c, read, refused), tc.want)
		})
	}
}
