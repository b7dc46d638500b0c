package check

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/authproxy/authproxy/authproxy"
)

// pendingNames lists AUTHPROXY_* variables that the deployment files set before authproxy reads them, because they
// are being added to authproxy right now. A pending name is accepted wherever a known one is, and configuration
// errors about it are ignored. TestPendingIsStillPending fails as soon as authproxy knows the name: then delete it
// here, and the checks apply to it in full.
var pendingNames = map[string]bool{
	// Empty: AUTHPROXY_REDIS_URL, the last one, has landed. Add a name here, with a comment saying who adds it,
	// only while its change is in flight.
}

// pendingValues lists values of known variables that the deployment files use before authproxy accepts them, for
// the same reason and with the same trip wire.
var pendingValues = map[string]string{
	// Empty: AUTHPROXY_SESSION_STORE=redis has landed.
}

// repoRoot is the authproxy repository, two levels up from this module.
var repoRoot = sync.OnceValue(func() string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return dir
})

// variable is what the deployment files need to know about one of authproxy's variables.
type variable struct {
	def    string // the default; "" when there is none
	secret bool   // also read from NAME_FILE
}

// variables returns authproxy's variables by name: every name authproxy.VariableNames lists, with the default and
// secrecy shown in the table authproxy.VariablesMarkdown renders for the README.
func variables(t *testing.T) map[string]variable {
	t.Helper()
	rows := map[string]string{}
	for line := range strings.Lines(authproxy.VariablesMarkdown()) {
		cells := strings.SplitN(line, " | ", 3) // "| `NAME`", "default", "help |"
		if len(cells) == 3 && strings.HasPrefix(cells[0], "| `AUTHPROXY_") {
			rows[strings.Trim(cells[0], "| `")] = line
		}
	}
	vars := map[string]variable{}
	for _, name := range authproxy.VariableNames() {
		row, ok := rows[name]
		if !ok {
			t.Fatalf("%s is in authproxy.VariableNames but not in the table of authproxy.VariablesMarkdown", name)
		}
		def := strings.SplitN(row, " | ", 3)[1]
		if strings.HasPrefix(def, "`") {
			def = strings.Trim(def, "`")
		} else {
			def = "" // "required" or "empty"
		}
		vars[name] = variable{def: def, secret: strings.Contains(row, "(or `"+name+"_FILE`)")}
	}
	return vars
}

// resolveName says which of authproxy's variables the environment variable name sets: name itself, or for
// NAME_FILE the secret NAME (file is then true). Names outside AUTHPROXY_* are not authproxy's; resolveName
// returns "" for them.
func resolveName(vars map[string]variable, name string) (base string, file bool, err error) {
	if !strings.HasPrefix(name, "AUTHPROXY_") {
		return "", false, nil
	}
	if _, ok := vars[name]; ok || pendingNames[name] {
		return name, false, nil
	}
	if base, ok := strings.CutSuffix(name, "_FILE"); ok {
		if v, known := vars[base]; known {
			if v.secret {
				return base, true, nil
			}
			return "", false, fmt.Errorf("%s: %s is not a secret and has no _FILE form", name, base)
		}
		if pendingNames[base] {
			return "", false, fmt.Errorf("%s: %s is pending (pendingNames); use its plain form until authproxy lists it as a secret", name, base)
		}
	}
	return "", false, fmt.Errorf("%s: authproxy reads no such variable (authproxy.VariableNames)", name)
}

// configProblems loads env with authproxy.LoadConfig and returns its problems, one a line, leaving out those about
// pending names and values.
func configProblems(env map[string]string) []string {
	_, err := authproxy.LoadConfig(func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	if err == nil {
		return nil
	}
	var problems []string
	for line := range strings.Lines(err.Error()) {
		line = strings.TrimSpace(line)
		name, _, _ := strings.Cut(line, ":")
		if line == "" || pendingNames[name] || (pendingValues[name] != "" && env[name] == pendingValues[name]) {
			continue
		}
		problems = append(problems, line)
	}
	return problems
}

// standIn returns a valid value for a variable whose value comes from a Secret: the committed Secrets hold
// placeholders, which authproxy rightly refuses.
func standIn(t *testing.T, name string) string {
	t.Helper()
	switch name {
	case "AUTHPROXY_COOKIE_SECRET":
		key := make([]byte, 32)
		rand.Read(key)
		return base64.StdEncoding.EncodeToString(key)
	case "AUTHPROXY_CLIENT_SECRET":
		return "stand-in-client-secret"
	case "AUTHPROXY_REDIS_URL":
		return "redis://redis.test:6379/0"
	}
	t.Fatalf("%s comes from a Secret: give deploy/check a stand-in value for it (standIn)", name)
	return ""
}

// minimalEnv is a valid configuration with nothing but the required variables.
func minimalEnv(t *testing.T) map[string]string {
	return map[string]string{
		"AUTHPROXY_UPSTREAM":      "http://127.0.0.1:8080",
		"AUTHPROXY_OIDC_ISSUER":   "https://idp.test/realms/main",
		"AUTHPROXY_CLIENT_ID":     "app",
		"AUTHPROXY_REDIRECT_URL":  "https://app.test/oauth2/callback",
		"AUTHPROXY_COOKIE_SECRET": standIn(t, "AUTHPROXY_COOKIE_SECRET"),
	}
}

func TestPendingIsStillPending(t *testing.T) {
	vars := variables(t)
	for name := range pendingNames {
		if _, ok := vars[name]; ok {
			t.Errorf("authproxy reads %s now: delete it from pendingNames", name)
		}
	}
	if problems := configProblems(minimalEnv(t)); len(problems) > 0 {
		t.Fatalf("minimalEnv is not a valid configuration:\n%s", strings.Join(problems, "\n"))
	}
	for name, value := range pendingValues {
		env := minimalEnv(t)
		env[name] = value
		_, err := authproxy.LoadConfig(func(n string) (string, bool) { v, ok := env[n]; return v, ok })
		if err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("authproxy accepts %s=%s now: delete it from pendingValues", name, value)
		}
	}
}

func TestResolveName(t *testing.T) {
	// Not parallel: it swaps the package's pending list for one of its own.
	defer func(saved map[string]bool) { pendingNames = saved }(pendingNames)
	pendingNames = map[string]bool{"AUTHPROXY_PENDING": true}
	vars := map[string]variable{
		"AUTHPROXY_UPSTREAM":      {},
		"AUTHPROXY_COOKIE_SECRET": {secret: true},
	}
	tests := []struct {
		name     string
		env      string
		wantBase string
		wantFile bool
		wantErr  bool
	}{
		{name: "known", env: "AUTHPROXY_UPSTREAM", wantBase: "AUTHPROXY_UPSTREAM"},
		{name: "secret file", env: "AUTHPROXY_COOKIE_SECRET_FILE", wantBase: "AUTHPROXY_COOKIE_SECRET", wantFile: true},
		{name: "secret plain", env: "AUTHPROXY_COOKIE_SECRET", wantBase: "AUTHPROXY_COOKIE_SECRET"},
		{name: "pending", env: "AUTHPROXY_PENDING", wantBase: "AUTHPROXY_PENDING"},
		{name: "not ours", env: "GOMEMLIMIT"},
		{name: "typo", env: "AUTHPROXY_UPSTREAMS", wantErr: true},
		{name: "file of a non-secret", env: "AUTHPROXY_UPSTREAM_FILE", wantErr: true},
		{name: "file of a pending name", env: "AUTHPROXY_PENDING_FILE", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, file, err := resolveName(vars, tt.env)
			if (err != nil) != tt.wantErr || base != tt.wantBase || file != tt.wantFile {
				t.Errorf("resolveName(%s) = %q, %v, %v; want %q, %v, error %v", tt.env, base, file, err, tt.wantBase, tt.wantFile, tt.wantErr)
			}
		})
	}
}
