package e2e

// Fixtures of the tests that need a stack of their own (redis_test.go, refresh_test.go,
// logout_test.go): processes that can be stopped and started again mid-test, authproxy instances
// with an environment of the test's choosing, a Dex with other token lifetimes and callbacks, and
// readers of the processes' Prometheus metrics.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"go.yaml.in/yaml/v3"

	"github.com/authproxy/authproxy/internal/teststack"
)

// procSet is a test's own child processes. Unlike opProcs' set, one of them can be stopped (and
// another started in its place) mid-test. Whatever still runs is stopped when the test ends; the
// logs of all of them are printed if the test failed.
type procSet struct {
	*testStack
	stopped []*process
	names   map[string]int // starts by name, so that a restart gets a log file of its own
}

func newProcSet(t *testing.T) *procSet {
	t.Helper()
	ps := &procSet{testStack: &testStack{dir: t.TempDir()}, names: map[string]int{}}
	t.Cleanup(func() {
		for _, problem := range ps.stop() {
			t.Error(problem)
		}
		if t.Failed() {
			var logs strings.Builder
			(&testStack{procs: append(ps.stopped, ps.procs...)}).dumpLogs(&logs)
			t.Logf("logs of the test's own processes:\n%s", logs.String())
		}
	})
	return ps
}

// startProc starts bin like testStack.start; a name used before gets a suffix (#2, #3…).
func (ps *procSet) startProc(t *testing.T, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	ps.names[name]++
	if n := ps.names[name]; n > 1 {
		name = fmt.Sprintf("%s#%d", name, n)
	}
	p, err := ps.start(name, env, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stopProc ends p (SIGTERM, SIGKILL after teststack.StopGrace) and checks that it had not exited by itself and
// logged no data race.
func (ps *procSet) stopProc(t *testing.T, p *process) {
	t.Helper()
	for i, q := range ps.procs {
		if q == p {
			ps.procs = append(ps.procs[:i], ps.procs[i+1:]...)
			break
		}
	}
	ps.stopped = append(ps.stopped, p)
	select {
	case <-p.done:
		t.Fatalf("%s exited before the test stopped it: %v", p.name, p.err)
	default:
	}
	for _, problem := range p.proc.Stop() {
		t.Error(problem)
	}
	<-p.done
}

// newSecret returns a fresh cookie secret, as `authproxy secret` prints one.
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// proxyProc is an authproxy of the test's own, on a loopback port chosen before it starts (so
// that its callback URL can be given to the IdP first).
type proxyProc struct {
	ps   *procSet
	name string
	addr string // 127.0.0.1:port
	url  string // http://127.0.0.1:port
	env  []string
	p    *process
}

func newProxy(t *testing.T, ps *procSet, name string) *proxyProc {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return &proxyProc{ps: ps, name: name, addr: ports[0], url: "http://" + ports[0]}
}

func (pp *proxyProc) callbackURL() string { return pp.url + "/oauth2/callback" }

// start runs authproxy with env (AUTHPROXY_LISTEN is added) and waits until it serves: /readyz
// answers 200 and its log says it listens on its address.
func (pp *proxyProc) start(t *testing.T, env ...string) {
	t.Helper()
	pp.env = env
	pp.p = pp.ps.startProc(t, pp.name, append([]string{"AUTHPROXY_LISTEN=" + pp.addr}, env...), filepath.Join(stack.dir, "authproxy"))
	if err := pp.p.waitAuthproxy(pp.addr); err != nil {
		t.Fatal(err)
	}
}

// restart stops authproxy and starts it again on the same port with the same environment,
// changed by override (later entries win).
func (pp *proxyProc) restart(t *testing.T, override ...string) {
	t.Helper()
	pp.ps.stopProc(t, pp.p)
	pp.start(t, append(append([]string(nil), pp.env...), override...)...)
}

// log returns what authproxy (its current run) has logged so far.
func (pp *proxyProc) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(pp.p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dexProxyEnv is the environment of an authproxy signing in with dex as the demo client,
// redirected to redirectURL, in front of the shared legacy app.
func dexProxyEnv(dex *dexIdP, redirectURL, secret string, extra ...string) []string {
	return append(teststack.DemoClientEnv(teststack.Authproxy{
		Upstream:     stack.appURL,
		Issuer:       dex.issuer,
		RedirectURL:  redirectURL,
		CookieSecret: secret,
	}), extra...)
}

// dexIdP is a Dex of the test's own, with the demo's users and client.
type dexIdP struct {
	issuer    string // http://127.0.0.1:port/dex
	telemetry string // http://127.0.0.1:port (/healthz/ready, /metrics)
	p         *process
}

var (
	dexBinOnce sync.Once
	dexBinPath string
)

// dexOptions configure startDex.
type dexOptions struct {
	Callbacks []string // the demo client's redirect URIs
	IDTokens  string   // expiry.idTokens, a Go duration (Dex gives access tokens the same lifetime); empty: Dex's 24h
	// ExtraUsers adds users e2e-1@example.com, e2e-2@…, with alice's password and groups: Dex keeps
	// one refresh token per user and client, so sessions whose refreshes are counted need users
	// of their own.
	ExtraUsers int
	// ExtraGroups gives extra user i (from 1) these groups instead of alice's.
	ExtraGroups map[int][]string
}

// extraUser is startDex's i-th extra user (from 1).
func extraUser(i int) user {
	return user{fmt.Sprintf("e2e-%d@example.com", i), alice.password, fmt.Sprintf("e2e-%d", i), fmt.Sprintf("0e4b2f6c-5a1d-4c8e-9b7a-e2e00000%04d", i), alice.groups}
}

// startDex starts Dex with deploy/demo/dex.yaml's users and client, changed as opts say.
func startDex(t *testing.T, ps *procSet, opts dexOptions) *dexIdP {
	t.Helper()
	requireStack(t)
	dexBinOnce.Do(func() { dexBinPath, _ = locateComponents() })
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	demo, err := dexConfig(ports[0], ports[1], "proxy.invalid:1")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(demo, &cfg); err != nil {
		t.Fatalf("deploy/demo/dex.yaml: %v", err)
	}
	clients, _ := cfg["staticClients"].([]any)
	passwords, _ := cfg["staticPasswords"].([]any)
	if len(clients) != 1 || len(passwords) == 0 {
		t.Fatalf("deploy/demo/dex.yaml no longer has one static client and static passwords; update startDex")
	}
	clients[0].(map[string]any)["redirectURIs"] = opts.Callbacks
	if opts.IDTokens != "" {
		cfg["expiry"] = map[string]any{"idTokens": opts.IDTokens}
	}
	var template map[string]any
	for _, p := range passwords {
		if m, _ := p.(map[string]any); m["email"] == alice.email {
			template = m
		}
	}
	if template == nil {
		t.Fatalf("deploy/demo/dex.yaml no longer has %s; update startDex", alice.email)
	}
	for i := 1; i <= opts.ExtraUsers; i++ {
		u := extraUser(i)
		p := map[string]any{}
		for k, v := range template {
			p[k] = v
		}
		p["email"], p["username"], p["preferredUsername"], p["userID"] = u.email, u.preferredUsername, u.preferredUsername, u.userID
		if groups, ok := opts.ExtraGroups[i]; ok {
			p["groups"] = groups
		}
		passwords = append(passwords, p)
	}
	cfg["staticPasswords"] = passwords
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(ps.dir, "dex.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	d := &dexIdP{issuer: "http://" + ports[0] + "/dex", telemetry: "http://" + ports[1]}
	d.p = ps.startProc(t, "dex", nil, dexBinPath, "serve", path)
	if err := d.p.waitReady(d.telemetry + "/healthz/ready"); err != nil {
		t.Fatal(err)
	}
	return d
}

// log returns what Dex has logged so far.
func (d *dexIdP) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(d.p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tokenRequests returns how many token endpoint requests Dex has answered, by status code.
func (d *dexIdP) tokenRequests(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range scrape(t, d.telemetry+"/metrics", "http_requests_total") {
		if s.labels["handler"] == "/token" {
			out[s.labels["code"]] += s.value
		}
	}
	return out
}

// dexSignIn signs u in through the proxy at proxyURL with dex, starting from path, and checks
// that the tab lands back on path showing the legacy app's page.
func dexSignIn(t *testing.T, tab context.Context, proxyURL string, dex *dexIdP, u user, path string) {
	t.Helper()
	run(t, tab, "open "+proxyURL+path+" without a session",
		chromedp.Navigate(proxyURL+path),
		chromedp.WaitVisible("#login", chromedp.ByID),
	)
	if loc := location(t, tab); !strings.HasPrefix(loc, dex.issuer+"/auth/local/login?") {
		t.Fatalf("open %s%s without a session: want Dex's login form %s/auth/local/login?…, got %s", proxyURL, path, dex.issuer, loc)
	}
	run(t, tab, "sign in at Dex as "+u.email,
		chromedp.SendKeys("#login", u.email, chromedp.ByID),
		chromedp.SendKeys("#password", u.password, chromedp.ByID),
		chromedp.Click("#submit-login", chromedp.ByID),
		chromedp.WaitVisible("#preferred-username", chromedp.ByID),
	)
	if loc := location(t, tab); loc != proxyURL+path {
		t.Fatalf("after signing in as %s: want to land on %s%s, landed on %s", u.email, proxyURL, path, loc)
	}
}

// closeBrowser ends tab's browser now rather than when the test ends (newBrowser's clean-up then
// only removes its profile).
func closeBrowser(t *testing.T, tab context.Context) {
	t.Helper()
	if err := chromedp.Cancel(tab); err != nil {
		t.Errorf("close the browser: %v", err)
	}
}

// cookiesAt returns the cookies tab's browser would send to url, as the browser holds them.
// (Cookies do not tell ports apart: every server on 127.0.0.1 gets them all.)
func cookiesAt(t *testing.T, tab context.Context, url string) []*network.Cookie {
	t.Helper()
	var cookies []*network.Cookie
	run(t, tab, "read the browser's cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{url}).Do(ctx)
		return err
	}))
	return cookies
}

// httpCookies converts the browser's cookies for net/http requests.
func httpCookies(cookies []*network.Cookie) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

// proxyCookies returns the browser's authproxy cookies (named _authproxy…) for url.
func proxyCookies(t *testing.T, tab context.Context, url string) []*network.Cookie {
	t.Helper()
	var out []*network.Cookie
	for _, c := range cookiesAt(t, tab, url) {
		if strings.HasPrefix(c.Name, "_authproxy") {
			out = append(out, c)
		}
	}
	return out
}

// clearCookies deletes every cookie of tab's browser, so that it can sign in afresh.
func clearCookies(t *testing.T, tab context.Context) {
	t.Helper()
	run(t, tab, "clear the browser's cookies", network.ClearBrowserCookies())
}

// call sends method url with the cookies and headers, without following redirects, and returns
// the response with its body (at most 64 KiB).
func call(t *testing.T, method, url string, cookies []*http.Cookie, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := httpClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

// sample is one line of Prometheus' text format.
type sample struct {
	labels map[string]string
	value  float64
}

// scrape reads the samples of the metric named name from a Prometheus text endpoint.
func scrape(t *testing.T, url, name string) []sample {
	t.Helper()
	resp, body := call(t, http.MethodGet, url, nil, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := strings.TrimPrefix(line, name)
		if strings.HasPrefix(rest, "{") {
			// label="value",… where a value may hold any character, with \ and \" escaped.
			rest = rest[1:]
			for !strings.HasPrefix(rest, "}") {
				k, after, ok := strings.Cut(rest, `="`)
				if !ok {
					t.Fatalf("GET %s: cannot read %q", url, line)
				}
				var v strings.Builder
				i := 0
				for ; i < len(after) && after[i] != '"'; i++ {
					if after[i] == '\\' && i+1 < len(after) {
						i++
					}
					v.WriteByte(after[i])
				}
				if i == len(after) {
					t.Fatalf("GET %s: cannot read %q", url, line)
				}
				s.labels[strings.TrimPrefix(k, ",")] = v.String()
				rest = after[i+1:]
			}
			rest = rest[1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			t.Fatalf("GET %s: cannot read %q", url, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			t.Fatalf("GET %s: cannot read %q: %v", url, line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// metric returns the authproxy's metric name{label="value"} (0 when it has no such sample yet).
func (pp *proxyProc) metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	return proxyMetric(t, pp.url, name, label, value)
}

// proxyMetric returns metric name{label="value"} of the authproxy at proxyURL (0 when it has no
// such sample yet), summed over its other labels.
func proxyMetric(t *testing.T, proxyURL, name, label, value string) float64 {
	t.Helper()
	var sum float64
	for _, s := range scrape(t, proxyURL+"/metrics", name) {
		if s.labels[label] == value {
			sum += s.value
		}
	}
	return sum
}
