package authproxy

// The environment of conformance_test.go: a Server built by NewFromConfig,
// as production builds it (the cookie store with its revocation list, the
// in-memory locker), with the OIDC provider injected, signing in at internal/hostileop's OP, a
// deliberately hostile fake that speaks the real wire formats and records
// every call. Its browser follows redirects itself, through the OP's
// authorization endpoint and back, and stops at the callback's answer.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/hostileop"
	"github.com/authproxy/authproxy/providers"
)

// hostileClientSecret is long enough to be an HS256 key (alg confusion rows).
const hostileClientSecret = "conformance-client-secret-0123456789abcdef"

// hostileEnv is one authproxy signing in at a hostile OP.
type hostileEnv struct {
	op       *hostileop.OP
	up       *echoUpstream
	proxy    *httptest.Server
	cfg      *Config
	provider *providers.OIDC
	logs     *lockedBuffer
	// discoverErr is what the one discovery at start-up returned.
	discoverErr error
}

type hostileSetup struct {
	vars map[string]string
}

type hostileOption func(*hostileSetup)

// withHostileVar sets an AUTHPROXY_* variable.
func withHostileVar(name, value string) hostileOption {
	return func(s *hostileSetup) { s.vars[name] = value }
}

// newHostileEnv starts authproxy in front of an echoing upstream, with op's
// URL as the issuer. Set op's Behaviour before: discovery runs once, here.
func newHostileEnv(t *testing.T, op *hostileop.OP, opts ...hostileOption) *hostileEnv {
	t.Helper()
	setup := hostileSetup{vars: map[string]string{}}
	for _, o := range opts {
		o(&setup)
	}
	e := &hostileEnv{op: op, up: newEchoUpstream(t), logs: &lockedBuffer{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"AUTHPROXY_UPSTREAM":      e.up.srv.URL,
		"AUTHPROXY_OIDC_ISSUER":   op.URL(),
		"AUTHPROXY_CLIENT_ID":     op.ClientID,
		"AUTHPROXY_CLIENT_SECRET": op.ClientSecret,
		"AUTHPROXY_REDIRECT_URL":  "http://" + ln.Addr().String() + callbackPath,
		"AUTHPROXY_COOKIE_SECRET": testCookieSecret,
		"AUTHPROXY_COOKIE_SECURE": "false",
	}
	maps.Copy(vars, setup.vars)
	cfg, err := LoadConfig(mapLookup(vars))
	if err != nil {
		ln.Close()
		t.Fatalf("LoadConfig: %v", err)
	}
	e.cfg = cfg
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.provider = providers.NewOIDC(providerConfig(cfg, &cfg.IdPConfig, log))
	e.discoverErr = e.provider.Discover(context.Background())

	srv, err := NewFromConfig(context.Background(), cfg, Runtime{Logger: log, Provider: e.provider})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e.proxy = httptest.NewUnstartedServer(srv)
	e.proxy.Listener.Close()
	e.proxy.Listener = ln
	e.proxy.Start()
	t.Cleanup(e.proxy.Close)
	return e
}

// browser returns a client with its own cookie jar that follows every
// redirect (to the OP and back) but stops at the callback's answer.
func (e *hostileEnv) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err)
	}
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second, // a guard against hangs, not an assertion
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if via[len(via)-1].URL.Path == callbackPath || len(via) >= 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// navigate loads path on the proxy as a page.
func (e *hostileEnv) navigate(t testing.TB, c *http.Client, path string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.proxy.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", acceptHTML)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	return doRequest(t, c, req)
}

// signIn starts a sign-in for /app, lets the OP answer and returns the
// callback's answer (or what stopped the flow before it).
func (e *hostileEnv) signIn(t testing.TB, c *http.Client) reply {
	t.Helper()
	return e.navigate(t, c, startPath+"?rd=%2Fapp")
}

// accepted fails the test unless r is the callback sending the browser on
// to /app with a session, and the app then serves the signed-in user.
func (e *hostileEnv) accepted(t testing.TB, c *http.Client, r reply) upstreamEcho {
	t.Helper()
	if r.URL.Path != callbackPath || r.Status != http.StatusFound || r.Header.Get("Location") != "/app" || !e.setsSession(r.Cookies) {
		t.Fatalf("callback: got %d at %s, Location %q, session set %t; want 302 to /app with a session; body: %.300s",
			r.Status, r.URL.Path, r.Header.Get("Location"), e.setsSession(r.Cookies), r.Body)
	}
	echo := fromUpstream(t, e.navigate(t, c, "/app"))
	if got := echo.Header.Get("X-Forwarded-User"); got != hostileop.Subject {
		t.Errorf("X-Forwarded-User = %q, want %q", got, hostileop.Subject)
	}
	return echo
}

// refused fails the test unless r is the callback's clean error page with
// status, setting no session, and the app is not reached afterwards.
func (e *hostileEnv) refused(t testing.TB, c *http.Client, r reply, status int) {
	t.Helper()
	if r.URL.Path != callbackPath {
		t.Fatalf("the flow stopped at %s (%d), not at the callback; body: %.300s", r.URL.Path, r.Status, r.Body)
	}
	e.errorPage(t, r, status)
	if e.setsSession(r.Cookies) {
		t.Errorf("a refused callback set a session cookie")
	}
	before := len(e.up.requests())
	app := e.navigate(t, noFollow(c), "/app")
	if app.Status != http.StatusFound || !strings.HasPrefix(app.Header.Get("Location"), e.op.URL()+"/authorize?") {
		t.Errorf("/app after a refused sign-in: got %d Location %q, want 302 to sign in again", app.Status, app.Header.Get("Location"))
	}
	if n := len(e.up.requests()); n != before {
		t.Errorf("the app was reached %d time(s) after a refused sign-in", n-before)
	}
}

// errorPage fails the test unless r is an HTML error page with status that
// shows none of the internal error text.
func (e *hostileEnv) errorPage(t testing.TB, r reply, status int) {
	t.Helper()
	if r.Status != status {
		t.Errorf("got %d, want %d; body: %.300s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(r.Body, "<title>") {
		t.Errorf("got Content-Type %q, want an HTML error page; body: %.300s", ct, r.Body)
	}
	for _, leak := range []string{"providers:", "oidc:", "oauth2:", "authproxy:"} {
		if strings.Contains(r.Body, leak) {
			t.Errorf("the error page shows an internal error (%q): %.300s", leak, r.Body)
		}
	}
}

// setsSession reports whether cookies give the browser a session cookie.
func (e *hostileEnv) setsSession(cookies []*http.Cookie) bool {
	for _, c := range cookies {
		owned := c.Name == e.cfg.CookieName ||
			strings.HasPrefix(c.Name, e.cfg.CookieName+"_") && isDigitsTest(strings.TrimPrefix(c.Name, e.cfg.CookieName+"_"))
		if owned && c.Value != "" && c.MaxAge >= 0 {
			return true
		}
	}
	return false
}

// api requests path as a script would, JSON.
func (e *hostileEnv) api(t testing.TB, c *http.Client, path string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.proxy.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	return doRequest(t, noFollow(c), req)
}

// signedIn reports whether c's session works, by /oauth2/userinfo.
func (e *hostileEnv) signedIn(t testing.TB, c *http.Client) bool {
	t.Helper()
	switch r := e.api(t, c, userinfoPath); r.Status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		return false
	default:
		t.Fatalf("%s: got %d %.200s", userinfoPath, r.Status, r.Body)
		return false
	}
}

// jwtHeader decodes a compact JWT's header, to check what the OP sent.
func jwtHeader(t testing.TB, raw string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// lastCall is the last call op received at path; it fails the test if none.
func lastCall(t testing.TB, op *hostileop.OP, path string) hostileop.Call {
	t.Helper()
	calls := op.Calls(path)
	if len(calls) == 0 {
		t.Fatalf("the OP received no call at %s", path)
	}
	return calls[len(calls)-1]
}

// parseURL parses s or fails the test.
func parseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
