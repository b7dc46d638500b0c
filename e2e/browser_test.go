package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// stepTimeout bounds each browser step, so a stuck step fails with its own name.
const stepTimeout = 20 * time.Second

// user is one of the demo users in deploy/demo/dex.yaml.
type user struct {
	email, password, preferredUsername string
	userID                             string // Dex's userID; the ID token's sub encodes it
	groups                             []string
}

var (
	alice = user{"alice@example.com", "alice", "alice", "0e4b2f6c-5a1d-4c8e-9b7a-a11ce0000001", []string{"admins", "staff"}}
	bob   = user{"bob@example.com", "bob", "bob", "0e4b2f6c-5a1d-4c8e-9b7a-b0b000000002", []string{"staff"}}
)

// newBrowser starts a headless Chromium with a fresh profile and returns its first tab,
// closed when the test ends. Chromium's own output is printed if the test fails.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	requireStack(t)
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	logPath := filepath.Join(dir, "chromium.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Resolve nothing but loopback: the browser must never reach the internet.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"),
		chromedp.CombinedOutput(logFile),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		logFile.Close()
		removeProfile(t, profile)
		if t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil && len(log) > 0 {
				t.Logf("chromium output:\n%s", log)
			}
		}
	})
	// The first Run starts the browser; it must not carry a timeout, which would end the browser with it.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// removeProfile removes a browser profile. Chromium's helper processes can still write to it for a
// moment after the browser has exited, so it tries for a few seconds.
func removeProfile(t *testing.T, dir string) {
	var err error
	for range 50 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("remove the browser profile: %v", err)
}

// newTab opens another tab in tab's browser (same cookies), closed when the test ends.
func newTab(t *testing.T, tab context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(tab)
	t.Cleanup(cancel)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("open a second tab: %v", err)
	}
	return ctx
}

// run runs actions in tab within stepTimeout, failing the test with step's name, the tab's
// location and the start of its page if they fail.
func run(t *testing.T, tab context.Context, step string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\n%s", step, err, describe(tab))
	}
}

// describe reports where tab is and what it shows, for failure messages.
func describe(tab context.Context) string {
	ctx, cancel := context.WithTimeout(tab, 5*time.Second)
	defer cancel()
	var loc, text string
	if err := chromedp.Run(ctx,
		chromedp.Location(&loc),
		chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &text),
	); err != nil {
		return fmt.Sprintf("(the tab cannot be read: %v)", err)
	}
	if len(text) > 1500 {
		text = text[:1500] + "…"
	}
	return fmt.Sprintf("the tab is at %s and shows:\n%s", loc, text)
}

// location returns the tab's current URL.
func location(t *testing.T, tab context.Context) string {
	t.Helper()
	var loc string
	run(t, tab, "read the location", chromedp.Location(&loc))
	return loc
}

// navigate opens path through the proxy.
func navigate(path string) chromedp.Action { return chromedp.Navigate(stack.proxyURL + path) }

// dexLoginURL is the prefix of Dex's username-and-password form.
func dexLoginURL() string { return stack.issuer + "/auth/local/login" }

// openToDexLogin navigates tab to path through the proxy and checks it ends at Dex's login form.
func openToDexLogin(t *testing.T, tab context.Context, path string) {
	t.Helper()
	run(t, tab, "open "+path+" without a session",
		chromedp.Navigate(stack.proxyURL+path),
		chromedp.WaitVisible("#login", chromedp.ByID),
	)
	if loc := location(t, tab); !strings.HasPrefix(loc, dexLoginURL()+"?") {
		t.Fatalf("open %s without a session: want Dex's login form %s?…, got %s", path, dexLoginURL(), loc)
	}
}

// submitDexLogin fills in Dex's login form in tab as u, submits it, and checks that the tab
// comes back to path through the proxy, showing the legacy app's page.
func submitDexLogin(t *testing.T, tab context.Context, u user, path string) {
	t.Helper()
	run(t, tab, "sign in at Dex as "+u.email+", expecting the legacy app's page for "+path,
		chromedp.SendKeys("#login", u.email, chromedp.ByID),
		chromedp.SendKeys("#password", u.password, chromedp.ByID),
		chromedp.Click("#submit-login", chromedp.ByID),
		// #preferred-username is on the legacy app's page only.
		chromedp.WaitVisible("#preferred-username", chromedp.ByID),
	)
	if loc, want := location(t, tab), stack.proxyURL+path; loc != want {
		t.Fatalf("after signing in as %s: want to land on %s, landed on %s", u.email, want, loc)
	}
}

// signIn signs u in through the proxy, starting from path.
func signIn(t *testing.T, tab context.Context, u user, path string) {
	t.Helper()
	openToDexLogin(t, tab, path)
	submitDexLogin(t, tab, u, path)
}

// legacyPage is what the legacy app's HTML page shows.
type legacyPage struct {
	User, Email, PreferredUsername, Path, Query string
	Groups                                      []string
}

func readLegacyPage(t *testing.T, tab context.Context) legacyPage {
	t.Helper()
	var p legacyPage
	run(t, tab, "read the legacy app's page",
		chromedp.Text("#user", &p.User, chromedp.ByID),
		chromedp.Text("#email", &p.Email, chromedp.ByID),
		chromedp.Text("#preferred-username", &p.PreferredUsername, chromedp.ByID),
		chromedp.Text("#path", &p.Path, chromedp.ByID),
		chromedp.Evaluate(`document.getElementById("query").textContent`, &p.Query),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("#groups li"), li => li.textContent)`, &p.Groups),
	)
	return p
}

// checkLegacyPage checks that the legacy app's page in tab shows u at path and query.
func checkLegacyPage(t *testing.T, tab context.Context, u user, path, query string) legacyPage {
	t.Helper()
	p := readLegacyPage(t, tab)
	if p.Email != u.email || p.PreferredUsername != u.preferredUsername || !slices.Equal(p.Groups, u.groups) || p.User == "" {
		t.Errorf("legacy page identity: got user %q, email %q, preferred username %q, groups %q; want a user, email %q, preferred username %q, groups %q",
			p.User, p.Email, p.PreferredUsername, p.Groups, u.email, u.preferredUsername, u.groups)
	}
	if p.Path != path || p.Query != query {
		t.Errorf("legacy page request: got path %q query %q; want path %q query %q", p.Path, p.Query, path, query)
	}
	return p
}

// browseJSON navigates tab to path through the proxy and decodes the JSON document it shows.
func browseJSON(t *testing.T, tab context.Context, path string, v any) {
	t.Helper()
	var text string
	run(t, tab, "open "+path,
		chromedp.Navigate(stack.proxyURL+path),
		// Chromium shows a JSON document as text in a <pre>, sometimes with a pretty-print control beside it.
		chromedp.Evaluate(`(document.querySelector("pre") || document.body).textContent`, &text),
	)
	if err := json.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("open %s: not JSON: %v\n%s", path, err, describe(tab))
	}
}

// fetchResult is what a page's fetch() saw.
type fetchResult struct {
	Status      int    `json:"status"`
	Type        string `json:"type"` // "opaqueredirect" when the answer was a redirect
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

// browserFetch runs fetch(path) from the page open in tab (which must be on the proxy's origin),
// not following redirects, as a single-page app's script would.
func browserFetch(t *testing.T, tab context.Context, path string) fetchResult {
	t.Helper()
	var r fetchResult
	js := fmt.Sprintf(`fetch(%q, {credentials: "same-origin", redirect: "manual"}).then(async r => ({
		status: r.status, type: r.type, contentType: r.headers.get("content-type") || "", body: await r.text()}))`, path)
	run(t, tab, "fetch("+path+") from the page",
		chromedp.Evaluate(js, &r, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
			return p.WithAwaitPromise(true)
		}),
	)
	return r
}

// browserCookies returns the cookies tab's browser would send to the proxy.
func browserCookies(t *testing.T, tab context.Context) []*http.Cookie {
	t.Helper()
	var cookies []*network.Cookie
	run(t, tab, "export the browser's cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{stack.proxyURL + "/api/whoami"}).Do(ctx)
		return err
	}))
	var out []*http.Cookie
	for _, c := range cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

// cookieNames lists cookies' names, for messages.
func cookieNames(cookies []*http.Cookie) []string {
	var names []string
	for _, c := range cookies {
		names = append(names, c.Name)
	}
	return names
}
