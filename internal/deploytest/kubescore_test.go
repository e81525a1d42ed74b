package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// kubeScoreScript is what deploy/kube-score.sh pins and ignores.
type kubeScoreScript struct {
	tools   map[string]string // variable → module path@version
	ignores []string          // the flags that switch a check off
}

var (
	toolLine   = regexp.MustCompile(`(?m)^(KUSTOMIZE|KUBE_SCORE)=(\S+)$`)
	ignoreFlag = regexp.MustCompile(`(?m)^\s*(--ignore-test \S+|--ignore-container-(?:cpu|memory)-limit)\s*$`)
	semver     = regexp.MustCompile(`@v\d+\.\d+\.\d+$`)
)

func readKubeScoreScript(t *testing.T) kubeScoreScript {
	t.Helper()
	data, err := os.ReadFile(deployPath(t, "kube-score.sh"))
	if err != nil {
		t.Fatal(err)
	}
	s := kubeScoreScript{tools: map[string]string{}}
	for _, m := range toolLine.FindAllStringSubmatch(string(data), -1) {
		s.tools[m[1]] = m[2]
	}
	for _, m := range ignoreFlag.FindAllStringSubmatch(string(data), -1) {
		s.ignores = append(s.ignores, m[1])
	}
	return s
}

// TestKubeScoreCheck checks the CI step that runs kube-score: both tools
// pinned to an exact version, the script run by .ci/run and make
// kube-score, and every check it ignores listed in deploy/README.md's
// kube-score section, and nothing listed there that it does not ignore.
func TestKubeScoreCheck(t *testing.T) {
	s := readKubeScoreScript(t)
	for _, v := range []string{"KUSTOMIZE", "KUBE_SCORE"} {
		if !semver.MatchString(s.tools[v]) {
			t.Errorf("%s=%q in deploy/kube-score.sh: want module@vX.Y.Z, a pinned version", v, s.tools[v])
		}
	}
	for _, f := range []string{".ci/run", "Makefile"} {
		data, err := os.ReadFile(filepath.Join(root(t), f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "deploy/kube-score.sh") {
			t.Errorf("%s does not run deploy/kube-score.sh", f)
		}
	}

	readme, err := os.ReadFile(deployPath(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## kube-score\n")
	if !ok {
		t.Fatal("deploy/README.md has no \"## kube-score\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	// The table's first column: | `--ignore-test name` | finding | why |
	var documented []string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		flag := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if !strings.HasPrefix(flag, "--ignore") {
			continue
		}
		documented = append(documented, flag)
		if strings.TrimSpace(cells[3]) == "" {
			t.Errorf("README: %s is ignored without a reason", flag)
		}
	}
	if len(s.ignores) == 0 {
		t.Error("deploy/kube-score.sh ignores nothing: did the parsing break?")
	}
	for _, f := range s.ignores {
		if !slices.Contains(documented, f) {
			t.Errorf("deploy/kube-score.sh passes %s, but deploy/README.md's kube-score table does not say why", f)
		}
	}
	for _, f := range documented {
		if !slices.Contains(s.ignores, f) {
			t.Errorf("deploy/README.md lists %s as ignored, but deploy/kube-score.sh does not pass it", f)
		}
	}
}
