package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/teststack"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

var (
	// stack is the running Dex, legacy app and authproxy; nil when the tests skip.
	stack *testStack
	// skipReason, when set, is why every test skips.
	skipReason string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if testing.Short() {
		skipReason = "end-to-end tests do not run with -short"
		return m.Run()
	}
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // only listing the tests: nothing to start
	}
	dexBin, missing := locateComponents()
	if len(missing) > 0 {
		msg := strings.Join(missing, "; ")
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: %s\ne2e: CI=true, so the end-to-end tests fail instead of skipping; run scripts/install-deps.sh\n", msg)
			return 1
		}
		skipReason = msg + " (run scripts/install-deps.sh; under CI=true this fails)"
		return m.Run()
	}

	s, err := startStack(dexBin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", err)
		if s != nil {
			s.stop()
			s.dumpLogs(os.Stderr)
		}
		return 1
	}
	stack = s
	code := m.Run()
	if problems := s.stop(); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %s\n", strings.Join(problems, "; "))
		code = 1
	}
	if code != 0 {
		s.dumpLogs(os.Stderr)
	}
	s.removeAll()
	return code
}

// requireStack skips the test when the components are missing.
func requireStack(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// locateComponents finds the Dex binary and Chromium, describing whatever is missing.
func locateComponents() (dexBin string, missing []string) {
	dexBin = os.Getenv("AUTHPROXY_DEX_BIN")
	if dexBin == "" {
		// The install script knows where it caches Dex; ask it rather than repeat its version here.
		out, err := exec.Command("../scripts/install-deps.sh", "--print-dex").Output()
		if err != nil {
			missing = append(missing, fmt.Sprintf("cannot locate Dex: scripts/install-deps.sh --print-dex: %v", err))
		}
		dexBin = strings.TrimSpace(string(out))
	}
	if dexBin != "" && !isExecutable(dexBin) {
		missing = append(missing, "no Dex binary at "+dexBin+" (set AUTHPROXY_DEX_BIN)")
	}
	if !isExecutable(chromiumPath) {
		missing = append(missing, "no Chromium at "+chromiumPath)
	}
	return dexBin, missing
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// testStack is a set of child processes, each on a free loopback port, launched by
// internal/teststack. The shared stack (stack) is Dex, the legacy app and authproxy; a test's own
// sets (opProcs, procSet) use only dir and procs.
type testStack struct {
	dir      string // binaries, Dex's configuration and the logs
	issuer   string // Dex's issuer URL, http://127.0.0.1:port/dex
	proxyURL string // authproxy's origin, http://127.0.0.1:port
	appURL   string // the legacy app's origin (tests talk to it only through the proxy)
	procs    []*process
}

// startStack builds authproxy and the legacy app, then starts Dex, the app and authproxy, each
// once the previous one is ready. On error the returned stack (if any) holds what was started.
func startStack(dexBin string) (*testStack, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "authproxy-e2e-")
	if err != nil {
		return nil, err
	}
	s := &testStack{dir: dir}

	ports, err := freePorts(4)
	if err != nil {
		return s, err
	}
	dexWeb, dexTelemetry, app, proxy := ports[0], ports[1], ports[2], ports[3]
	s.issuer = "http://" + dexWeb + "/dex"
	s.proxyURL = "http://" + proxy
	s.appURL = "http://" + app

	// With -race, authproxy is built with it too: the tests' traffic then hunts data races in the proxy.
	if err := teststack.Build(ctx, dir, raceEnabled, teststack.AuthproxyPkg, teststack.LegacyAppPkg); err != nil {
		return s, err
	}

	cfg, err := dexConfig(dexWeb, dexTelemetry, proxy)
	if err != nil {
		return s, err
	}
	dex, err := teststack.StartDex(ctx, s.set(), "dex", dexBin, cfg, dexWeb, dexTelemetry)
	if dex != nil {
		s.adopt(dex.Proc)
	}
	if err != nil {
		return s, err
	}
	legacy, err := teststack.StartLegacyApp(ctx, s.set(), "legacyapp", filepath.Join(dir, "legacyapp"), app)
	if legacy != nil {
		s.adopt(legacy)
	}
	if err != nil {
		return s, err
	}
	env := teststack.DemoClientEnv(teststack.Authproxy{Addr: proxy, Upstream: s.appURL, Issuer: s.issuer, CookieSecret: newSecret()})
	authproxy, err := teststack.StartAuthproxy(ctx, s.set(), "authproxy", filepath.Join(dir, "authproxy"), proxy, env)
	if authproxy != nil {
		s.adopt(authproxy)
	}
	return s, err
}

// dexConfig is deploy/demo/dex.yaml with the demo's loopback addresses swapped for the test's,
// so that the tests use exactly the demo's users and client.
func dexConfig(web, telemetry, proxy string) ([]byte, error) {
	demo, err := os.ReadFile("../deploy/demo/dex.yaml")
	if err != nil {
		return nil, err
	}
	return teststack.DexConfig(demo, web, telemetry, []string{"http://" + proxy + "/oauth2/callback"})
}

// freePorts returns n distinct loopback addresses that were free a moment ago.
func freePorts(n int) ([]string, error) { return teststack.FreePorts(n) }

// process is a child process whose output goes to a log file: a teststack.Proc, with the fields
// the tests read.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited; err is then set
	err     error
	proc    *teststack.Proc
}

// set is the teststack launcher of s's processes, in s.dir.
func (s *testStack) set() *teststack.Set { return &teststack.Set{Dir: s.dir} }

// adopt wraps a process the launcher started and adds it to s.
func (s *testStack) adopt(tp *teststack.Proc) *process {
	p := &process{name: tp.Name, cmd: tp.Cmd, logPath: tp.LogPath, done: make(chan struct{}), proc: tp}
	go func() {
		p.err = tp.Err()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p
}

// discard stops p, one of s's processes, and forgets it: it is no longer stopped, checked or
// logged with the others.
func (s *testStack) discard(p *process) {
	_ = p.proc.Stop()
	<-p.done
	s.procs = slices.DeleteFunc(s.procs, func(o *process) bool { return o == p })
}

// start runs bin with args, with env added to an environment cleared of AUTHPROXY_* and LEGACYAPP_*.
func (s *testStack) start(name string, env []string, bin string, args ...string) (*process, error) {
	tp, err := s.set().Start(name, env, bin, args...)
	if err != nil {
		return nil, err
	}
	return s.adopt(tp), nil
}

// waitReady polls url until it answers 200, for up to 30 seconds.
func (p *process) waitReady(url string) error {
	return p.proc.WaitHTTP(context.Background(), url)
}

// waitAuthproxy waits until the authproxy p answers /readyz on addr and has logged that it serves
// addr (not some other process that holds the port).
func (p *process) waitAuthproxy(addr string) error {
	return p.proc.WaitAuthproxy(context.Background(), addr)
}

// stop ends every process (SIGTERM, then SIGKILL after teststack.StopGrace), newest first, and reports those that
// had already exited or that logged a data race.
func (s *testStack) stop() (problems []string) {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		problems = append(problems, p.proc.Stop()...)
		<-p.done
	}
	return problems
}

// dumpLogs writes each process's log (its last 64 KiB) to w.
func (s *testStack) dumpLogs(w io.Writer) {
	for _, p := range s.procs {
		teststack.DumpLog(w, p.name, p.logPath)
	}
}

func (s *testStack) removeAll() {
	if err := os.RemoveAll(s.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
	}
}

// httpClient returns a client that does not follow redirects and stops after 10s.
func httpClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// get sends a GET through the proxy with the given cookies and headers; body is at most 64 KiB.
func get(t *testing.T, path string, cookies []*http.Cookie, header http.Header) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, path, cookies, header)
}

func do(t *testing.T, method, path string, cookies []*http.Cookie, header http.Header) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, stack.proxyURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values // as given: no canonicalization, so "x_forwarded_user" stays as it is
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := httpClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, body
}
