package authproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/teststack"
	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
)

const (
	testClientID     = "authproxy-test"
	testClientSecret = "test-client-secret-0123456789"
)

// testCookieSecret is the AUTHPROXY_COOKIE_SECRET of every test server.
var testCookieSecret = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// testRateLimit is the sign-in and back-channel rate limit of test servers
// unless a test sets its own: the limiter runs on every sign-in, but the
// attack corpora, which start hundreds of sign-ins from 127.0.0.1, stay
// under it. ratelimit_test.go tests the limits themselves.
const testRateLimit = "100000/m burst=100000"

// mapLookup is a Lookup over a map, for LoadConfig.
func mapLookup(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// testEnv is one authproxy under test, with its fake IdP and echoing upstream,
// served on a real loopback port.
type testEnv struct {
	idp      *fakeIdP
	up       *echoUpstream
	proxy    *httptest.Server
	srv      *Server
	cfg      *Config
	provider *providers.OIDC
	store    session.Store // the server's own, as NewFromConfig built it
	logs     *lockedBuffer
	lookup   Lookup // the server's environment, for Reload
	// others are the fake IdPs of withOtherIdP, by name; NewFromConfig
	// built their providers, as production does.
	others map[string]*fakeIdP
}

type envSetup struct {
	vars         map[string]string
	idpDown      bool
	upstreamDown bool
	idp          []func(f *fakeIdP)
	now          func() time.Time
	backend      session.Backend // when set, the server keeps sessions in a ticket store on it
	tracing      *Tracing        // when set, requests and IdP calls are traced (tracing_test.go)
	others       []string        // names of further fake IdPs (withOtherIdP)
	policy       string          // a policy file's YAML (withPolicy)
}

type envOption func(*envSetup)

// withVar sets an AUTHPROXY_* variable of the server under test.
func withVar(name, value string) envOption {
	return func(s *envSetup) { s.vars[name] = value }
}

// withOtherIdP adds a further IdP called name to AUTHPROXY_IDPS, served by
// a fake IdP of its own (client id "client-<name>"); more variables of it
// may follow with withVar.
func withOtherIdP(name string) envOption {
	return func(s *envSetup) { s.others = append(s.others, name) }
}

// withPolicy gives the server under test a policy file holding yaml
// (AUTHPROXY_POLICY_FILE).
func withPolicy(yaml string) envOption { return func(s *envSetup) { s.policy = yaml } }

// withIdPDown points the issuer at a closed port: discovery never succeeds.
func withIdPDown() envOption { return func(s *envSetup) { s.idpDown = true } }

// withIdP changes the fake IdP before discovery.
func withIdP(fn func(f *fakeIdP)) envOption {
	return func(s *envSetup) { s.idp = append(s.idp, fn) }
}

// withNow gives the server under test its clock (Options.Now).
func withNow(now func() time.Time) envOption { return func(s *envSetup) { s.now = now } }

// withUpstreamDown points the upstream at a closed port.
func withUpstreamDown() envOption { return func(s *envSetup) { s.upstreamDown = true } }

// withBackend makes the server keep sessions in a ticket store on b, as
// with AUTHPROXY_SESSION_STORE=redis (which it sets; the URL is never
// dialed). Only b's Backend methods are seen: without a Broadcaster, as
// with a Redis whose subscription is down, nothing is cached, so every
// request reaches b (and its failures).
func withBackend(b session.Backend) envOption {
	return func(s *envSetup) {
		s.backend = backendOnly{b}
		s.vars["AUTHPROXY_SESSION_STORE"] = "redis"
		s.vars["AUTHPROXY_REDIS_URL"] = "redis://127.0.0.1:1/0"
	}
}

// backendOnly hides every method of a Backend but the interface's own.
type backendOnly struct{ session.Backend }

// newTestEnv builds a Server with NewFromConfig, as production does, with
// the fake IdP injected (its discovery run once, synchronously) and logs
// going to testEnv.logs.
func newTestEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	setup := envSetup{vars: map[string]string{}}
	for _, o := range opts {
		o(&setup)
	}
	if setup.policy != "" {
		pf := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(pf, []byte(setup.policy), 0o600); err != nil {
			t.Fatal(err)
		}
		setup.vars["AUTHPROXY_POLICY_FILE"] = pf
	}
	e := &testEnv{logs: &lockedBuffer{}}
	e.idp = newFakeIdP(t, testClientID, testClientSecret)
	for _, fn := range setup.idp {
		e.idp.set(fn)
	}
	e.up = newEchoUpstream(t)
	issuer, upstreamURL := e.idp.URL(), e.up.srv.URL
	if setup.idpDown {
		issuer = "http://" + closedAddr(t)
	}
	if setup.upstreamDown {
		upstreamURL = "http://" + closedAddr(t)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"AUTHPROXY_UPSTREAM":      upstreamURL,
		"AUTHPROXY_OIDC_ISSUER":   issuer,
		"AUTHPROXY_CLIENT_ID":     testClientID,
		"AUTHPROXY_CLIENT_SECRET": testClientSecret,
		"AUTHPROXY_REDIRECT_URL":  "http://" + ln.Addr().String() + callbackPath,
		"AUTHPROXY_COOKIE_SECRET": testCookieSecret,
		"AUTHPROXY_COOKIE_SECURE": "false",

		"AUTHPROXY_SIGNIN_RATE_LIMIT":             testRateLimit,
		"AUTHPROXY_BACKCHANNEL_LOGOUT_RATE_LIMIT": testRateLimit,
	}
	e.others = map[string]*fakeIdP{}
	for _, name := range setup.others {
		f := newFakeIdP(t, "client-"+name, "secret-"+name+"-0123456789")
		e.others[name] = f
		n := idpVars(name)
		vars["AUTHPROXY_IDPS"] = strings.Trim(vars["AUTHPROXY_IDPS"]+","+name, ",")
		vars[n.of("OIDC_ISSUER")] = f.URL()
		vars[n.of("CLIENT_ID")] = f.clientID
		vars[n.of("CLIENT_SECRET")] = f.clientSecret
	}
	maps.Copy(vars, setup.vars)
	e.lookup = mapLookup(vars)
	cfg, err := LoadConfig(e.lookup)
	if err != nil {
		ln.Close()
		t.Fatalf("LoadConfig: %v", err)
	}
	e.cfg = cfg

	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pc := providerConfig(cfg, &cfg.IdPConfig, log)
	if setup.tracing != nil {
		pc.WrapTransport = idpTransport(setup.tracing.Provider)
	}
	e.provider = providers.NewOIDC(pc)
	err = e.provider.Discover(context.Background())
	switch {
	case setup.idpDown && err == nil:
		t.Fatal("Discover succeeded against a closed port")
	case !setup.idpDown && err != nil:
		t.Fatalf("Discover: %v", err)
	}

	// The production wiring, with the fake IdP (discovered above) and, where
	// a test gives them, its backend and clock.
	rt := Runtime{Logger: log, Provider: e.provider, Now: setup.now}
	if setup.backend != nil {
		rt.Backend = setup.backend
	}
	rt.Tracing = setup.tracing
	if e.srv, err = NewFromConfig(context.Background(), cfg, rt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.srv.Close() })
	e.store = e.srv.current(context.Background()).store
	e.proxy = httptest.NewUnstartedServer(e.srv)
	e.proxy.Listener.Close()
	e.proxy.Listener = ln
	e.proxy.Start()
	t.Cleanup(e.proxy.Close)
	return e
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	// Not a port the kernel handed out and took back: the next listener in
	// this process (the package's tests run side by side) may be given it.
	// teststack's ports lie below the ephemeral range and are reserved.
	addrs, err := teststack.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0]
}

// url returns the absolute URL of path (which may carry a query) on the proxy.
func (e *testEnv) url(path string) string { return e.proxy.URL + path }

// addr is the proxy's host:port.
func (e *testEnv) addr() string { return e.proxy.Listener.Addr().String() }

// browser returns a client with its own cookie jar that follows redirects
// within authproxy but stops at any other host (the IdP).
func (e *testEnv) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err)
	}
	host := e.addr()
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second, // a guard against hangs, not an assertion
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != host {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
}

// noFollow returns a copy of c, sharing its jar, that follows no redirect.
func noFollow(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// reply is a response read in full.
type reply struct {
	Status  int
	Header  http.Header
	Body    string
	URL     *url.URL       // the URL of the request that got this response
	Cookies []*http.Cookie // this response's Set-Cookie
}

func doRequest(t testing.TB, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: string(body), URL: resp.Request.URL, Cookies: resp.Cookies()}
}

// request sends method target (a path on the proxy, or an absolute URL) with
// headers given as name, value pairs.
func (e *testEnv) request(t testing.TB, c *http.Client, method, target string, headers ...string) reply {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = e.url(target)
	}
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return doRequest(t, c, req)
}

const acceptHTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// navigate is a browser loading target as a page.
func (e *testEnv) navigate(t testing.TB, c *http.Client, target string) reply {
	t.Helper()
	return e.request(t, c, http.MethodGet, target, "Accept", acceptHTML, "Sec-Fetch-Mode", "navigate")
}

// api is a script's JSON request.
func (e *testEnv) api(t testing.TB, c *http.Client, target string) reply {
	t.Helper()
	return e.request(t, c, http.MethodGet, target, "Accept", "application/json")
}

// toIdP fails the test unless r is a redirect to the fake IdP's /auth, and
// returns its Location.
func (e *testEnv) toIdP(t testing.TB, r reply) string {
	t.Helper()
	loc := r.Header.Get("Location")
	if r.Status != http.StatusFound || !strings.HasPrefix(loc, e.idp.URL()+"/auth?") {
		t.Fatalf("got %d Location %q, want 302 to the IdP; body: %.300s", r.Status, loc, r.Body)
	}
	return loc
}

// startSignIn opens /oauth2/start?rd=rd and returns the IdP URL it sends to.
func (e *testEnv) startSignIn(t testing.TB, c *http.Client, rd string) string {
	t.Helper()
	return e.toIdP(t, e.navigate(t, noFollow(c), startPath+"?rd="+url.QueryEscape(rd)))
}

// callback loads the callback URL without following its redirect.
func (e *testEnv) callback(t testing.TB, c *http.Client, cb *url.URL) reply {
	t.Helper()
	return e.navigate(t, noFollow(c), cb.String())
}

// signIn navigates to target without a session, signs in at the fake IdP
// and follows the callback's redirect; it returns the final response.
func (e *testEnv) signIn(t testing.TB, c *http.Client, target string) reply {
	t.Helper()
	authURL := e.toIdP(t, e.navigate(t, c, target))
	cb := e.callback(t, c, e.idp.authorize(t, authURL))
	if cb.Status != http.StatusFound {
		t.Fatalf("callback: got %d, want 302; body: %.300s", cb.Status, cb.Body)
	}
	return e.navigate(t, c, cb.Header.Get("Location"))
}

// sessionCookie returns the value of the session cookie in c's jar, or "".
func (e *testEnv) sessionCookie(c *http.Client) string {
	u, _ := url.Parse(e.proxy.URL + "/")
	var parts []string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == e.cfg.CookieName || strings.HasPrefix(ck.Name, e.cfg.CookieName+"_") && isDigitsTest(strings.TrimPrefix(ck.Name, e.cfg.CookieName+"_")) {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	return strings.Join(parts, "; ")
}

// setsSession reports whether cookies (a response's Set-Cookie) give the
// browser a session cookie, as opposed to expiring one.
func (e *testEnv) setsSession(cookies []*http.Cookie) bool {
	for _, c := range cookies {
		owned := c.Name == e.cfg.CookieName ||
			strings.HasPrefix(c.Name, e.cfg.CookieName+"_") && isDigitsTest(strings.TrimPrefix(c.Name, e.cfg.CookieName+"_"))
		if owned && c.Value != "" && c.MaxAge >= 0 {
			return true
		}
	}
	return false
}

func isDigitsTest(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// testSession is a valid session for the fake IdP's default user.
func testSession() *session.Session {
	now := time.Now()
	return &session.Session{
		ID: "sess-1", User: "user-123", Subject: "user-123", Email: "ada@example.com",
		PreferredUsername: "ada", Groups: []string{"staff", "admins"},
		AccessToken: "at-minted", CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
}

// mintSession seals s with the server's own store and returns the Cookie
// header value a browser holding it would send.
func (e *testEnv) mintSession(t testing.TB, s *session.Session) string {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := e.store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), s); err != nil {
		t.Fatalf("minting session: %v", err)
	}
	var parts []string
	for _, c := range rec.Result().Cookies() {
		if c.Value != "" {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	return strings.Join(parts, "; ")
}

// echoUpstream is the protected app: it records every request and answers with
// it as JSON.
type echoUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []upstreamEcho
}

// upstreamEcho is what the upstream saw of one request.
type upstreamEcho struct {
	Method      string
	Path        string // r.URL.Path
	EscapedPath string
	RequestURI  string
	Host        string
	Header      http.Header
	Trailer     http.Header
}

func newEchoUpstream(t testing.TB) *echoUpstream {
	u := &echoUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // trailers arrive after the body
		e := upstreamEcho{
			Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(),
			RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Trailer: r.Trailer.Clone(),
		}
		u.mu.Lock()
		u.seen = append(u.seen, e)
		u.mu.Unlock()
		writeTestJSON(w, http.StatusOK, e)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// requests returns every request the upstream has seen.
func (u *echoUpstream) requests() []upstreamEcho {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamEcho(nil), u.seen...)
}

// fromUpstream fails the test unless r is the upstream's echo, and decodes it.
func fromUpstream(t testing.TB, r reply) upstreamEcho {
	t.Helper()
	var e upstreamEcho
	if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Body), &e) != nil || e.Method == "" {
		t.Fatalf("got %d, want the upstream's 200 echo; body: %.300s", r.Status, r.Body)
	}
	return e
}

// rawHTTP writes request verbatim to addr and reads one response. The
// request should carry "Connection: close".
func rawHTTP(t testing.TB, addr, request string) reply {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a guard against hangs
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response to %.80q: %v", request, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Cookies: resp.Cookies()}
}

// lockedBuffer is an io.Writer safe for concurrent use, for logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
