package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/authproxy/authproxy/internal/teststack"
)

// This file runs a second, OpenID-certified provider, node's oidc-provider (e2e/oidcprovider),
// in front of which a test starts its own authproxy. Unlike Dex it has an end-session endpoint
// and sends back-channel logout tokens. scripts/install-deps.sh installs its npm packages.

// opUser is one of the users built into e2e/oidcprovider/server.mjs; keep the two in step.
// Any password signs in (oidc-provider's development interactions do not check it).
type opUser struct {
	login            string // typed into the login form; also the sub and preferred_username
	email            string
	groups           []string // the `groups` claim
	namespacedGroups []string // the claim named by opOptions.GroupsClaim (Okta/Auth0 style)
	roles            []string // realm_access.roles (Keycloak style)
}

var (
	opAda   = opUser{"ada", "ada@example.com", []string{"admins", "staff"}, []string{"ops:admins", "ops:staff"}, []string{"admin", "user"}}
	opGrace = opUser{"grace", "grace@example.org", []string{"staff"}, []string{"ops:staff"}, []string{"user"}}
)

// opOptions configure e2e/oidcprovider; see server.mjs for each variable. Zero values take the
// server's defaults, except where noted.
type opOptions struct {
	ClientID               string // default "authproxy-op"
	ClientSecret           string // empty: a public client (token_endpoint_auth_method none)
	Public                 bool   // startOPStack: keep the client public rather than give it a secret
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	AccessTokenTTL         time.Duration // whole seconds; default 1h
	IDTokenTTL             time.Duration // whole seconds; default 1h
	RefreshTokenTTL        time.Duration // whole seconds; default 24h
	GroupsClaim            string        // default "https://example.com/groups"
	RefreshTokens          string        // "always" (default) or "offline_access"
	SkipConsent            bool          // grant every scope without the consent page
	ClaimsInUserinfoOnly   bool          // the code flow's ID token carries only sub; claims via userinfo
	ExtraEnv               []string      // more OP_* variables of server.mjs (client authentication, mutual TLS)
}

// oidcProvider is a running e2e/oidcprovider.
type oidcProvider struct {
	issuer  string // http://127.0.0.1:port, also its origin
	opts    opOptions
	logPath string
}

// log returns what the provider has logged so far: a line per request answered, and lines such
// as "event backchannel.success client=… sub=… sid=…" or "event backchannel.error …: <reason>".
func (op *oidcProvider) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(op.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The provider's endpoints (oidc-provider's default routes).
func (op *oidcProvider) interactionURL() string { return op.issuer + "/interaction/" }
func (op *oidcProvider) endSessionURL() string  { return op.issuer + "/session/end" }

// opProcs holds a test's own child processes; they are stopped, and their logs printed if the
// test failed, when it ends.
func opProcs(t *testing.T) *testStack {
	t.Helper()
	s := &testStack{dir: t.TempDir()}
	t.Cleanup(func() {
		for _, problem := range s.stop() {
			t.Error(problem)
		}
		if t.Failed() {
			var logs strings.Builder
			s.dumpLogs(&logs)
			t.Logf("logs of the test's own processes:\n%s", logs.String())
		}
	})
	return s
}

// requireOIDCProvider returns node and the path of server.mjs, skipping the test when either is
// missing or its npm packages are not installed as locked (failing instead under CI=true).
func requireOIDCProvider(t *testing.T) (node, script string) {
	t.Helper()
	requireStack(t)
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + " (run scripts/install-deps.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this fails instead of skipping")
		}
		t.Skip(msg + "; under CI=true this fails")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("no node on PATH for e2e/oidcprovider")
	}
	script, err = filepath.Abs(filepath.Join("oidcprovider", "server.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	// The version package.json pins must be the one installed.
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	var installed struct {
		Version string `json:"version"`
	}
	raw, err := os.ReadFile(filepath.Join("oidcprovider", "package.json"))
	if err != nil || json.Unmarshal(raw, &pkg) != nil || pkg.Dependencies["oidc-provider"] == "" {
		t.Fatalf("e2e/oidcprovider/package.json does not name oidc-provider: %v", err)
	}
	raw, err = os.ReadFile(filepath.Join("oidcprovider", "node_modules", "oidc-provider", "package.json"))
	if err != nil {
		missing("e2e/oidcprovider/node_modules has no oidc-provider")
	}
	if json.Unmarshal(raw, &installed) != nil || installed.Version != pkg.Dependencies["oidc-provider"] {
		missing("e2e/oidcprovider/node_modules has oidc-provider %q, package.json pins %q", installed.Version, pkg.Dependencies["oidc-provider"])
	}
	return node, script
}

// startOIDCProviderIn starts e2e/oidcprovider among procs on a free loopback port and waits for
// its discovery document. It is stopped when the test ends; its log (one line per request) is
// printed if the test failed.
func startOIDCProviderIn(t *testing.T, procs *testStack, opts opOptions) *oidcProvider {
	t.Helper()
	node, script := requireOIDCProvider(t)
	for attempt := 1; ; attempt++ {
		op, p, err := startOIDCProviderOnce(t, procs, opts, node, script)
		if err == nil {
			return op
		}
		if attempt == 2 || !errors.Is(err, teststack.ErrNotReady) {
			t.Fatal(err)
		}
		// A start that never listened: seen a few times on a loaded machine (its log says how far it
		// got), never reproduced alone. Once more, on another port.
		var log strings.Builder
		teststack.DumpLog(&log, p.name, p.logPath)
		t.Logf("oidc-provider did not listen within %v; starting it again:\n%s", teststack.ReadyTimeout, log.String())
		procs.discard(p)
	}
}

// startOIDCProviderOnce starts e2e/oidcprovider on a free port and waits for its discovery document.
func startOIDCProviderOnce(t *testing.T, procs *testStack, opts opOptions, node, script string) (*oidcProvider, *process, error) {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	op := &oidcProvider{issuer: "http://" + ports[0], opts: opts}
	_, port, _ := strings.Cut(ports[0], ":")
	env := []string{
		"OP_PORT=" + port,
		"OP_ISSUER=" + op.issuer,
		"OP_CLIENT_ID=" + opts.ClientID,
		"OP_CLIENT_SECRET=" + opts.ClientSecret,
		"OP_REDIRECT_URIS=" + strings.Join(opts.RedirectURIs, ","),
		"OP_POST_LOGOUT_REDIRECT_URIS=" + strings.Join(opts.PostLogoutRedirectURIs, ","),
		"OP_BACKCHANNEL_LOGOUT_URI=" + opts.BackchannelLogoutURI,
		"OP_GROUPS_CLAIM=" + opts.GroupsClaim,
		"OP_REFRESH_TOKENS=" + opts.RefreshTokens,
		fmt.Sprintf("OP_SKIP_CONSENT=%t", opts.SkipConsent),
		fmt.Sprintf("OP_CLAIMS_IN_USERINFO_ONLY=%t", opts.ClaimsInUserinfoOnly),
		// No colours or debug output from node's libraries in the log.
		"NO_COLOR=1", "DEBUG=",
	}
	env = append(env, opts.ExtraEnv...)
	for name, d := range map[string]time.Duration{
		"OP_ACCESS_TOKEN_TTL":  opts.AccessTokenTTL,
		"OP_ID_TOKEN_TTL":      opts.IDTokenTTL,
		"OP_REFRESH_TOKEN_TTL": opts.RefreshTokenTTL,
	} {
		if d != 0 {
			if d < time.Second || d%time.Second != 0 {
				t.Fatalf("startOIDCProvider: %s %v is not a whole number of seconds", name, d)
			}
			env = append(env, fmt.Sprintf("%s=%d", name, d/time.Second))
		}
	}
	p, err := procs.start("oidcprovider", env, node, script)
	if err != nil {
		t.Fatal(err)
	}
	op.logPath = p.logPath
	return op, p, p.waitReady(op.issuer + "/.well-known/openid-configuration")
}

// opStack is e2e/oidcprovider with an authproxy of its own in front of the shared legacy app.
type opStack struct {
	op       *oidcProvider
	proxyURL string // http://127.0.0.1:port
	proxyLog string // the path of authproxy's log
}

// The authproxy endpoints the provider is told about.
func (s *opStack) callbackURL() string          { return s.proxyURL + "/oauth2/callback" }
func (s *opStack) backchannelLogoutURL() string { return s.proxyURL + "/oauth2/backchannel_logout" }
func (s *opStack) postLogoutURL() string        { return s.proxyURL + "/" }

// startOPStack starts e2e/oidcprovider and an authproxy signing in with it, both stopped when the
// test ends. opts' client and URLs are filled in where empty: a confidential client (unless
// opts.Public) whose redirect, post-logout and back-channel logout URIs are the proxy's. proxyEnv adds to (or, named
// again, overrides) the proxy's AUTHPROXY_* environment.
func startOPStack(t *testing.T, opts opOptions, proxyEnv ...string) *opStack {
	t.Helper()
	requireOIDCProvider(t) // skip before starting anything
	procs := opProcs(t)
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	s := &opStack{proxyURL: "http://" + ports[0]}
	if opts.ClientID == "" {
		opts.ClientID = "authproxy-op"
	}
	if opts.ClientSecret == "" && !opts.Public {
		opts.ClientSecret = "op-secret"
	}
	if opts.RedirectURIs == nil {
		opts.RedirectURIs = []string{s.callbackURL()}
	}
	if opts.PostLogoutRedirectURIs == nil {
		opts.PostLogoutRedirectURIs = []string{s.postLogoutURL()}
	}
	if opts.BackchannelLogoutURI == "" {
		opts.BackchannelLogoutURI = s.backchannelLogoutURL()
	}
	s.op = startOIDCProviderIn(t, procs, opts)

	secret := make([]byte, 32)
	rand.Read(secret)
	env := []string{
		"AUTHPROXY_LISTEN=" + ports[0],
		"AUTHPROXY_UPSTREAM=" + stack.appURL,
		"AUTHPROXY_OIDC_ISSUER=" + s.op.issuer,
		"AUTHPROXY_CLIENT_ID=" + opts.ClientID,
		"AUTHPROXY_CLIENT_SECRET=" + opts.ClientSecret,
		"AUTHPROXY_REDIRECT_URL=" + s.callbackURL(),
		"AUTHPROXY_POST_LOGOUT_REDIRECT_URL=" + s.postLogoutURL(),
		"AUTHPROXY_COOKIE_SECRET=" + base64.StdEncoding.EncodeToString(secret),
		"AUTHPROXY_COOKIE_SECURE=false",
		"AUTHPROXY_SCOPES=openid email profile groups offline_access",
		"AUTHPROXY_LOG_FORMAT=text",
	}
	// Later entries win in exec's environment, so proxyEnv overrides the defaults above.
	env = append(env, proxyEnv...)
	proxy, err := procs.start("authproxy-op", env, filepath.Join(stack.dir, "authproxy"))
	if err != nil {
		t.Fatal(err)
	}
	s.proxyLog = proxy.logPath
	if err := proxy.waitAuthproxy(strings.TrimPrefix(s.proxyURL, "http://")); err != nil {
		t.Fatal(err)
	}
	return s
}

// opPageJS tells which page a tab shows, as opPage reports it. A page marked by opAct (the
// one acted on) counts as not loaded yet.
const opPageJS = `(() => {
	if (document.documentElement.dataset.e2eActedOn || document.readyState === "loading") return "";
	if (location.origin !== %q) return "left";
	if (document.querySelector('form input[name="prompt"][value="login"]')) return "login";
	if (document.querySelector('form input[name="prompt"][value="consent"]')) return "consent";
	if (document.getElementById("op.logoutForm")) return "logout";
	return "other: " + document.title;
})()`

// opPage reports which page tab shows: "login" or "consent" (oidc-provider's interaction forms),
// "logout" (its end-session confirmation), "other: <title>" (another of its pages, such as an
// error), or "left" when the tab is no longer at the provider. It waits for a page acted on by
// opAct to be replaced.
func (op *oidcProvider) opPage(t *testing.T, tab context.Context, step string) string {
	t.Helper()
	js := fmt.Sprintf(opPageJS, op.issuer)
	deadline := time.Now().Add(stepTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tab, 2*time.Second)
		var page string
		// Evaluating fails while a navigation swaps the document: try again.
		last = chromedp.Run(ctx, chromedp.Evaluate(js, &page))
		cancel()
		if last == nil && page != "" {
			return page
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: no new page within %v (last error: %v)\n%s", step, stepTimeout, last, describe(tab))
	return ""
}

// opAct marks the page in tab, runs actions (which must make it navigate, such as submitting a
// form) and returns the next page, as opPage reports it.
func (op *oidcProvider) opAct(t *testing.T, tab context.Context, step string, actions ...chromedp.Action) string {
	t.Helper()
	mark := chromedp.Evaluate(`document.documentElement.dataset.e2eActedOn = "1"`, nil)
	run(t, tab, step, append([]chromedp.Action{mark}, actions...)...)
	return op.opPage(t, tab, step)
}

// signIn completes oidc-provider's sign-in in tab, which must show its login form (a navigation
// to a protected page has redirected there): it signs in as u with any password, confirms the
// consent page if it is shown, and returns once the tab has left the provider. It reports
// whether the consent page was shown.
func (op *oidcProvider) signIn(t *testing.T, tab context.Context, u opUser) (consented bool) {
	t.Helper()
	step := "sign in at oidc-provider as " + u.login
	if page := op.opPage(t, tab, step); page != "login" {
		t.Fatalf("%s: want its login form, the tab shows %q\n%s", step, page, describe(tab))
	}
	if loc := location(t, tab); !strings.HasPrefix(loc, op.interactionURL()) {
		t.Fatalf("%s: the login form is at %s, want %s<uid>", step, loc, op.interactionURL())
	}
	run(t, tab, step+": fill in the login form",
		chromedp.SendKeys(`form input[name="login"]`, u.login, chromedp.ByQuery),
		chromedp.SendKeys(`form input[name="password"]`, "any password", chromedp.ByQuery),
	)
	page := op.opAct(t, tab, step+": submit the login form", chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery))
	if page == "consent" {
		consented = true
		page = op.opAct(t, tab, step+": confirm the consent page", chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery))
	}
	if page != "left" {
		t.Fatalf("%s: want to leave the provider, the tab shows %q\n%s", step, page, describe(tab))
	}
	return consented
}

// TestOIDCProviderSignIn signs in through authproxy with oidc-provider, from a deep link, with
// groups read from a namespaced claim (AUTHPROXY_GROUPS_CLAIM), as with Okta or Auth0.
func TestOIDCProviderSignIn(t *testing.T) {
	const groupsClaim = "https://example.com/groups"
	s := startOPStack(t, opOptions{GroupsClaim: groupsClaim}, "AUTHPROXY_GROUPS_CLAIM="+groupsClaim)
	tab := newBrowser(t)

	const path, query = "/reports/q3", "view=full&n=2"
	run(t, tab, "open "+path+" without a session", chromedp.Navigate(s.proxyURL+path+"?"+query))
	if !s.op.signIn(t, tab, opAda) {
		t.Errorf("oidc-provider did not ask for consent on %s's first sign-in with the client", opAda.login)
	}
	run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
	if loc, want := location(t, tab), s.proxyURL+path+"?"+query; loc != want {
		t.Fatalf("after signing in: landed on %s, want %s", loc, want)
	}

	checkOPWhoami := func(step string) {
		t.Helper()
		var w whoami
		opBrowseJSON(t, tab, s.proxyURL+"/api/whoami", &w)
		// The namespaced claim, not `groups` (which holds other names): AUTHPROXY_GROUPS_CLAIM works.
		if w.User != opAda.login || w.Email != opAda.email || w.PreferredUsername != opAda.login || w.Groups != strings.Join(opAda.namespacedGroups, ",") {
			t.Errorf("%s: app saw X-Forwarded-User %q, -Email %q, -Preferred-Username %q, -Groups %q; want %q, %q, %q, %q (from %s)",
				step, w.User, w.Email, w.PreferredUsername, w.Groups, opAda.login, opAda.email, opAda.login, strings.Join(opAda.namespacedGroups, ","), groupsClaim)
		}
	}
	checkOPWhoami("after signing in")

	// Without authproxy's session but still signed in at the provider, which remembers the
	// consent: sign-in completes without a form.
	opDeleteCookies(t, tab, s.proxyURL, "_authproxy")
	run(t, tab, "open "+path+" again",
		chromedp.Navigate(s.proxyURL+path+"?again=1"),
		chromedp.WaitVisible("#preferred-username", chromedp.ByID),
	)
	if loc, want := location(t, tab), s.proxyURL+path+"?again=1"; loc != want {
		t.Fatalf("signing in again while signed in at the provider: landed on %s, want %s", loc, want)
	}
	checkOPWhoami("after signing in again")
}

// opDeleteCookies deletes the cookies tab's browser would send to url whose names start with
// prefix. (Cookies do not tell ports apart: the provider's, on the same 127.0.0.1, stay only
// because of their names.)
func opDeleteCookies(t *testing.T, tab context.Context, url, prefix string) {
	t.Helper()
	run(t, tab, "delete the cookies named "+prefix+"*", chromedp.ActionFunc(func(ctx context.Context) error {
		cookies, err := network.GetCookies().WithURLs([]string{url}).Do(ctx)
		if err != nil {
			return err
		}
		for _, c := range cookies {
			if strings.HasPrefix(c.Name, prefix) {
				if err := network.DeleteCookies(c.Name).WithDomain(c.Domain).WithPath(c.Path).Do(ctx); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}

// opBrowseJSON navigates tab to url and decodes the JSON document it shows.
func opBrowseJSON(t *testing.T, tab context.Context, url string, v any) {
	t.Helper()
	var text string
	run(t, tab, "open "+url,
		chromedp.Navigate(url),
		chromedp.Evaluate(`(document.querySelector("pre") || document.body).textContent`, &text),
	)
	if err := json.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("open %s: not JSON: %v\n%s", url, err, describe(tab))
	}
}
