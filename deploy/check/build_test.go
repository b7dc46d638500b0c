package check

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined and comments removed.
type instruction struct {
	line int    // where it starts
	cmd  string // upper case: FROM, RUN, …
	args string
}

// stage is one FROM … section of a Dockerfile.
type stage struct {
	name, image  string
	instructions []instruction
}

// parseDockerfile splits a Dockerfile into stages of instructions. It knows the plain syntax only (no heredocs).
func parseDockerfile(data []byte) ([]stage, error) {
	var stages []stage
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue // comments vanish, inside continuations too
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, more := strings.CutSuffix(line, "\\"); more {
			cur.WriteString(body)
			continue
		}
		cur.WriteString(line)
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			continue
		}
		if strings.Contains(text, "<<") {
			return nil, fmt.Errorf("line %d: heredocs are beyond deploy/check", start)
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--") })
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: FROM without an image", start)
			}
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue
			}
			return nil, fmt.Errorf("line %d: %s before FROM", start, in.cmd)
		}
		last := &stages[len(stages)-1]
		last.instructions = append(last.instructions, in)
	}
	return stages, sc.Err()
}

// shellWords splits one POSIX shell simple command into words, the way sh would, expanding $NAME and ${NAME}
// from vars (an unknown name is an error) except inside single quotes. Anything beyond one simple command
// (; & | < > ` $( and the like) is an error, so that the words are exactly what the shell would run.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(rest string, quoted bool) (int, error) {
		var name string
		var n int
		switch {
		case strings.HasPrefix(rest, "${"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return 0, errors.New("unterminated ${")
			}
			name, n = rest[2:end], end+1
		default:
			n = 1
			for n < len(rest) && (rest[n] == '_' || ('A' <= rest[n] && rest[n] <= 'Z') || ('a' <= rest[n] && rest[n] <= 'z') || (n > 1 && '0' <= rest[n] && rest[n] <= '9')) {
				n++
			}
			name = rest[1:n]
		}
		v, ok := vars[name]
		if name == "" || !ok {
			return 0, fmt.Errorf("$%s: not an ARG of this stage (or beyond deploy/check)", name)
		}
		if !quoted && strings.ContainsAny(v, " \t\n*?[") {
			return 0, fmt.Errorf("$%s is unquoted and its value %q would be split or globbed", name, v)
		}
		w.WriteString(v)
		return n, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			i++
		case strings.IndexByte(";&|<>`()", c) >= 0:
			return nil, fmt.Errorf("%q: deploy/check runs one simple command only", c)
		case c == '\\':
			if i+1 < len(s) {
				w.WriteByte(s[i+1])
			}
			inWord = true
			i += 2
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated '")
			}
			w.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(s) {
					return nil, errors.New(`unterminated "`)
				}
				c := s[i]
				if c == '"' {
					i++
					break
				}
				switch {
				case c == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0:
					w.WriteByte(s[i+1])
					i += 2
				case c == '`' || strings.HasPrefix(s[i:], "$("):
					return nil, errors.New("command substitution: deploy/check runs one simple command only")
				case c == '$':
					n, err := expand(s[i:], true)
					if err != nil {
						return nil, err
					}
					i += n
				default:
					w.WriteByte(c)
					i++
				}
			}
		case c == '$':
			n, err := expand(s[i:], false)
			if err != nil {
				return nil, err
			}
			inWord = true
			i += n
		default:
			w.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	vars := map[string]string{"V": "1.2", "OS": "linux", "EMPTY": "", "SPACE": "a b"}
	tests := []struct {
		name string
		in   string
		want []string // nil: an error
	}{
		{name: "plain", in: "go build ./cmd/x", want: []string{"go", "build", "./cmd/x"}},
		{name: "assignments", in: "CGO_ENABLED=0 GOOS=$OS go", want: []string{"CGO_ENABLED=0", "GOOS=linux", "go"}},
		{name: "empty value", in: "GOOS=$EMPTY go", want: []string{"GOOS=", "go"}},
		{name: "double quotes", in: `-ldflags "-s -w -X main.version=${V}"`, want: []string{"-ldflags", "-s -w -X main.version=1.2"}},
		{name: "single quotes", in: `'$V' "a\"b"`, want: []string{"$V", `a"b`}},
		{name: "quoted space", in: `"$SPACE"`, want: []string{"a b"}},
		{name: "unquoted space", in: `$SPACE`},
		{name: "unknown name", in: "go build -o $OUT"},
		{name: "and", in: "go mod download && go build"},
		{name: "substitution", in: `-X "main.version=$(git describe)"`},
		{name: "backquote", in: "echo `date`"},
		{name: "unterminated", in: `"abc`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shellWords(tt.in, vars)
			if tt.want == nil {
				if err == nil {
					t.Errorf("shellWords(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("shellWords(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// goBuild is a Dockerfile's `go build`, ready to run on the host.
type goBuild struct {
	stage  string   // the stage it runs in
	env    []string // NAME=VALUE assignments before `go`
	args   []string // after `go`, output path replaced
	output string   // the -o path in the Dockerfile
}

// dockerGoBuild finds the one RUN instruction of the Dockerfile that runs `go build`, and returns it with its ARGs
// expanded from args (an ARG the stage declares but args lacks gets its default) and its -o path replaced by out.
func dockerGoBuild(stages []stage, args map[string]string, out string) (goBuild, error) {
	var found []goBuild
	for _, st := range stages {
		vars := map[string]string{}
		for _, in := range st.instructions {
			switch in.cmd {
			case "ARG":
				for _, decl := range strings.Fields(in.args) {
					name, def, _ := strings.Cut(decl, "=")
					if v, ok := args[name]; ok {
						def = v
					}
					vars[name] = def
				}
			case "ENV":
				return goBuild{}, fmt.Errorf("line %d: ENV in a build stage is beyond deploy/check; use ARG or assignments on the RUN", in.line)
			case "RUN":
				if !strings.Contains(in.args, "go build") {
					continue
				}
				cmdline := in.args
				for strings.HasPrefix(cmdline, "--") { // RUN's own flags: --mount=…, --network=…
					_, cmdline, _ = strings.Cut(cmdline, " ")
					cmdline = strings.TrimSpace(cmdline)
				}
				words, err := shellWords(cmdline, vars)
				if err != nil {
					return goBuild{}, fmt.Errorf("line %d: %w", in.line, err)
				}
				b := goBuild{stage: st.name}
				for len(words) > 0 && strings.Contains(words[0], "=") {
					b.env, words = append(b.env, words[0]), words[1:]
				}
				if len(words) < 2 || words[0] != "go" || words[1] != "build" {
					return goBuild{}, fmt.Errorf("line %d: want [NAME=VALUE …] go build …, got %q", in.line, words)
				}
				for i, w := range words[1:] {
					switch {
					case w == "-o" && i+2 < len(words):
						b.output = words[i+2]
						words[i+2] = out
					case strings.HasPrefix(w, "-o="):
						b.output = w[3:]
						words[i+1] = "-o=" + out
					}
				}
				if b.output == "" {
					return goBuild{}, fmt.Errorf("line %d: go build without -o", in.line)
				}
				b.args = words[1:]
				found = append(found, b)
			}
		}
	}
	if len(found) != 1 {
		return goBuild{}, fmt.Errorf("%d RUN instructions run go build, want exactly one", len(found))
	}
	return found[0], nil
}

// buildStatic runs the Dockerfile's `go build` on the host, from the repository root, for linux on this machine's
// architecture, and checks that the result is a static, stripped ELF binary. It returns the binary's path.
func buildStatic(t *testing.T, dockerfile string, args map[string]string) (string, goBuild) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(data)
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	args = merge(args, map[string]string{"TARGETOS": "linux", "TARGETARCH": runtime.GOARCH})
	b, err := dockerGoBuild(stages, args, bin)
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		t.Errorf("%s: go build without CGO_ENABLED=0: the binary could link libc, which distroless/static lacks", dockerfile)
	}
	cmd := exec.Command("go", b.args...)
	cmd.Dir = repoRoot()
	// The build context has no .git (.dockerignore), so the image's build stamps no VCS information; nor does this.
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-buildvcs=false"), b.env...)
	t.Logf("%s: %s go %s", dockerfile, strings.Join(b.env, " "), strings.Join(b.args, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: go build: %v\n%s", dockerfile, err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: the binary has a %v program header: it is dynamically linked", dockerfile, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s: the binary needs shared libraries %v", dockerfile, libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s: the binary has a symbol table: want -ldflags -s", dockerfile)
	}
	return bin, b
}

// merge merges the maps, later ones winning.
func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestStaticBuild(t *testing.T) {
	t.Parallel()
	t.Run("authproxy", func(t *testing.T) {
		t.Parallel()
		const version = "v0.0.0-deploy-check"
		bin, _ := buildStatic(t, "Dockerfile", map[string]string{"VERSION": version})
		if runtime.GOOS != "linux" {
			t.Skipf("cannot run a linux binary on %s", runtime.GOOS)
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		if got, want := strings.TrimSpace(string(out)), "authproxy "+version; err != nil || got != want {
			t.Errorf("authproxy version: %q, %v; want %q (the Dockerfile's -X main.version)", got, err, want)
		}
	})
	t.Run("legacyapp", func(t *testing.T) {
		t.Parallel()
		buildStatic(t, "deploy/compose/legacyapp.Dockerfile", nil)
	})
}

func TestDockerfile(t *testing.T) {
	vars := variables(t)
	data, err := os.ReadFile(filepath.Join(repoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dockerGoBuild(stages, map[string]string{}, "/out")
	if err != nil {
		t.Fatal(err)
	}

	// The build stage: modules in a layer of their own, before the sources.
	i := slices.IndexFunc(stages, func(s stage) bool { return s.name == b.stage })
	var order []string
	for _, in := range stages[i].instructions {
		switch {
		case in.cmd == "COPY" && strings.HasPrefix(in.args, "go.mod "):
			order = append(order, "copy go.mod")
		case in.cmd == "RUN" && strings.Contains(in.args, "go mod download"):
			order = append(order, "go mod download")
		case in.cmd == "COPY" && strings.HasPrefix(in.args, ". "):
			order = append(order, "copy sources")
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			order = append(order, "go build")
		}
	}
	if want := []string{"copy go.mod", "go mod download", "copy sources", "go build"}; !slices.Equal(order, want) {
		t.Errorf("Dockerfile: build stage %s does %v, want %v (module download cached as a layer of its own)", b.stage, order, want)
	}

	// The runtime stage: distroless static, nonroot, the binary as entrypoint.
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static-") || !strings.HasSuffix(final.image, ":nonroot") {
		t.Errorf("Dockerfile: runtime image %s, want gcr.io/distroless/static-…:nonroot", final.image)
	}
	got := map[string][]string{}
	for _, in := range final.instructions {
		got[in.cmd] = append(got[in.cmd], in.args)
	}
	var entrypoint []string
	if e := got["ENTRYPOINT"]; len(e) != 1 || json.Unmarshal([]byte(e[0]), &entrypoint) != nil || len(entrypoint) != 1 {
		t.Fatalf("Dockerfile: ENTRYPOINT %q, want the exec form with just the binary, such as [\"/authproxy\"]", e)
	}
	if want := fmt.Sprintf("--from=%s %s %s", b.stage, b.output, entrypoint[0]); !slices.Contains(got["COPY"], want) {
		t.Errorf("Dockerfile: runtime stage COPY %q, want COPY %s (the go build output, as the entrypoint)", got["COPY"], want)
	}
	if u := got["USER"]; !slices.Equal(u, []string{"65532:65532"}) {
		t.Errorf("Dockerfile: USER %q, want 65532:65532 (distroless's nonroot, numeric so that runAsNonRoot can verify it)", u)
	}
	if e, listen := got["EXPOSE"], portOf(vars["AUTHPROXY_LISTEN"].def); !slices.Equal(e, []string{listen}) {
		t.Errorf("Dockerfile: EXPOSE %q, want %s (AUTHPROXY_LISTEN's default)", e, listen)
	}
	for _, cmd := range []string{"RUN", "HEALTHCHECK"} {
		if len(got[cmd]) > 0 {
			t.Errorf("Dockerfile: runtime stage has %s %q; distroless has no shell or tools to run it with", cmd, got[cmd])
		}
	}

	// What stays out of the build context.
	ignore, err := os.ReadFile(filepath.Join(repoRoot(), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(ignore))
	for _, want := range []string{".git", "bin/", "e2e/oidcprovider/node_modules"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}
