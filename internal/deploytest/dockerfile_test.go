package deploytest

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	Cmd  string // upper case, e.g. RUN
	Args string
}

// stage is one FROM ... block.
type stage struct {
	From, Name string
	Ins        []instruction
}

func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(deployPath(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			return // ARG before the first FROM
		}
		stages[len(stages)-1].Ins = append(stages[len(stages)-1].Ins, in)
	}
	for _, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	return stages
}

// TestDockerfileBuildStage checks that the build stage uses the Go version
// of go.mod and builds, statically, the same programs as go build ./cmd/...
func TestDockerfileBuildStage(t *testing.T) {
	stages := parseDockerfile(t)
	build := stages[0]
	img, tag, _ := strings.Cut(build.From, ":")
	if img != "golang" {
		t.Fatalf("build stage FROM %s, want the golang image", build.From)
	}
	mod := readGoMod(t)
	if got, want := majorMinor(tag), majorMinor(mod.Go); got != want {
		t.Errorf("golang:%s is Go %s, go.mod says go %s", tag, got, mod.Go)
	}
	if mod.Toolchain != "" && majorMinor(mod.Toolchain) != majorMinor(tag) {
		t.Errorf("golang:%s, go.mod's toolchain is go%s", tag, mod.Toolchain)
	}

	var builds []string
	cgoOff := false
	for _, in := range build.Ins {
		if in.Cmd == "ENV" && regexp.MustCompile(`(^|\s)CGO_ENABLED=0(\s|$)`).MatchString(in.Args) {
			cgoOff = true
		}
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			builds = append(builds, in.Args)
			if strings.Contains(in.Args, "CGO_ENABLED=0") {
				cgoOff = true
			}
		}
	}
	if !cgoOff {
		t.Error("CGO_ENABLED=0 is not set: the binaries would not be static")
	}
	if len(builds) == 0 {
		t.Fatal("the build stage runs no go build")
	}
	all := strings.Join(builds, " ")
	args := strings.Fields(all)
	for _, cmd := range commands(t) {
		if !slices.Contains(args, "./cmd/...") && !slices.Contains(args, "./cmd/"+cmd) && !slices.Contains(args, "./cmd/"+cmd+"/") {
			t.Errorf("cmd/%s is not built (want ./cmd/... or ./cmd/%s)", cmd, cmd)
		}
	}
	if !regexp.MustCompile(`-o\s+/out/(\s|$)`).MatchString(all) {
		t.Errorf("go build does not write every binary into /out/: %s", all)
	}
}

// TestDockerfileFinalStage checks the image that runs: distroless or
// scratch, a non-root user, and one binary of the build chosen by the
// BINARY build argument.
func TestDockerfileFinalStage(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	if !strings.Contains(final.From, "distroless") && final.From != "scratch" {
		t.Errorf("final stage FROM %s, want distroless or scratch", final.From)
	}
	var user, binaryDefault string
	var copied, entry bool
	for _, in := range final.Ins {
		switch in.Cmd {
		case "USER":
			user = in.Args
		case "ARG":
			if v, ok := strings.CutPrefix(in.Args, "BINARY="); ok {
				binaryDefault = v
			}
		case "COPY":
			if strings.Contains(in.Args, "--from="+stages[0].Name) && strings.Contains(in.Args, "/out/${BINARY}") {
				copied = true
			}
		case "ENTRYPOINT":
			entry = true
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("USER %q, want a non-root user", user)
	}
	if !isCmdDir(t, binaryDefault) {
		t.Errorf("ARG BINARY default %q is not a program under cmd/", binaryDefault)
	}
	if !copied {
		t.Errorf("no COPY --from=%s /out/${BINARY}", stages[0].Name)
	}
	if !entry {
		t.Error("no ENTRYPOINT")
	}
	if slices.ContainsFunc(final.Ins, func(in instruction) bool { return in.Cmd == "RUN" }) {
		t.Error("the final stage runs commands: distroless has no shell")
	}
}
