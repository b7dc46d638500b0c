package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// testStack is Dex, the legacy app and authproxy, each a child process on a free loopback port.
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
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/authproxy/authproxy/cmd/authproxy", "github.com/authproxy/authproxy/deploy/demo/legacyapp")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return s, fmt.Errorf("build authproxy and the legacy app: %v\n%s", err, out)
	}

	dexConfig, err := dexConfig(dexWeb, dexTelemetry, proxy)
	if err != nil {
		return s, err
	}
	dexConfigPath := filepath.Join(dir, "dex.yaml")
	if err := os.WriteFile(dexConfigPath, dexConfig, 0o600); err != nil {
		return s, err
	}
	dex, err := s.start("dex", nil, dexBin, "serve", dexConfigPath)
	if err != nil {
		return s, err
	}
	if err := dex.waitReady("http://" + dexTelemetry + "/healthz/ready"); err != nil {
		return s, err
	}

	legacy, err := s.start("legacyapp", []string{"LEGACYAPP_LISTEN=" + app}, filepath.Join(dir, "legacyapp"))
	if err != nil {
		return s, err
	}
	if err := legacy.waitReady(s.appURL + "/api/whoami"); err != nil {
		return s, err
	}

	secret := make([]byte, 32)
	rand.Read(secret)
	proxyEnv := []string{
		"AUTHPROXY_LISTEN=" + proxy,
		"AUTHPROXY_UPSTREAM=" + s.appURL,
		"AUTHPROXY_OIDC_ISSUER=" + s.issuer,
		"AUTHPROXY_CLIENT_ID=authproxy-demo",
		"AUTHPROXY_CLIENT_SECRET=demo-secret",
		"AUTHPROXY_REDIRECT_URL=" + s.proxyURL + "/oauth2/callback",
		"AUTHPROXY_COOKIE_SECRET=" + base64.StdEncoding.EncodeToString(secret),
		"AUTHPROXY_COOKIE_SECURE=false",
		"AUTHPROXY_SCOPES=openid email profile groups offline_access",
		"AUTHPROXY_LOG_FORMAT=text",
		// Every test of the package that uses the shared stack signs in through this one
		// process from 127.0.0.1; the per-address limit is meant for one client, not a suite.
		"AUTHPROXY_SIGNIN_RATE_LIMIT=6000/m burst=1000",
	}
	authproxy, err := s.start("authproxy", proxyEnv, filepath.Join(dir, "authproxy"))
	if err != nil {
		return s, err
	}
	if err := authproxy.waitReady(s.proxyURL + "/readyz"); err != nil {
		return s, err
	}
	return s, nil
}

// dexConfig is deploy/demo/dex.yaml with the demo's loopback addresses swapped for the test's,
// so that the tests use exactly the demo's users and client.
func dexConfig(web, telemetry, proxy string) ([]byte, error) {
	demo, err := os.ReadFile("../deploy/demo/dex.yaml")
	if err != nil {
		return nil, err
	}
	for _, swap := range []struct{ demo, test string }{
		{"127.0.0.1:5556", web},
		{"127.0.0.1:5558", telemetry},
		{"127.0.0.1:4180", proxy},
	} {
		if !bytes.Contains(demo, []byte(swap.demo)) {
			return nil, fmt.Errorf("deploy/demo/dex.yaml no longer mentions %s; update the e2e tests with it", swap.demo)
		}
		demo = bytes.ReplaceAll(demo, []byte(swap.demo), []byte(swap.test))
	}
	return demo, nil
}

// freePorts returns n distinct loopback addresses that were free a moment ago.
func freePorts(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close() // held until all are chosen, so the n addresses differ
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// process is a child process whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited; err is then set
	err     error
}

// start runs bin with args, with env added to an environment cleared of AUTHPROXY_* and LEGACYAPP_*.
func (s *testStack) start(name string, env []string, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(s.dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHPROXY_") && !strings.HasPrefix(kv, "LEGACYAPP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p, nil
}

// waitReady polls url until it answers 200, for up to 30 seconds.
func (p *process) waitReady(url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up: %v (see %s.log below)", p.name, p.err, p.name)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %q", resp.Status, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 30s: GET %s: %s", p.name, url, last)
}

// stop ends every process (SIGTERM, then SIGKILL after 5s), newest first, and reports those that
// had already exited or that logged a data race.
func (s *testStack) stop() (problems []string) {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		select {
		case <-p.done:
			problems = append(problems, fmt.Sprintf("%s exited before the tests ended: %v", p.name, p.err))
			continue
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			problems = append(problems, fmt.Sprintf("%s did not stop within 5s of SIGTERM", p.name))
			p.cmd.Process.Kill()
			<-p.done
		}
		if log, err := os.ReadFile(p.logPath); err == nil && bytes.Contains(log, []byte("WARNING: DATA RACE")) {
			problems = append(problems, p.name+" logged a data race")
		}
	}
	return problems
}

// dumpLogs writes each process's log (its last 64 KiB) to w.
func (s *testStack) dumpLogs(w io.Writer) {
	for _, p := range s.procs {
		log, err := os.ReadFile(p.logPath)
		if err != nil {
			fmt.Fprintf(w, "----- %s: %v\n", p.name, err)
			continue
		}
		if len(log) > 64<<10 {
			log = append([]byte("[…]\n"), log[len(log)-64<<10:]...)
		}
		fmt.Fprintf(w, "----- %s.log -----\n%s----- end of %s.log -----\n", p.name, log, p.name)
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
