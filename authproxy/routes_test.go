package authproxy

import (
	"encoding/json"
	"net/http"
	"path"
	"reflect"
	"strings"
	"testing"
)

// wantJSONError checks a small JSON error answer.
func wantJSONError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %d, want %d; body: %.300s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if loc := r.Header.Get("Location"); loc != "" {
		t.Errorf("Location %q on a JSON error", loc)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil || body["error"] != code {
		t.Errorf("body %q: want JSON with error %q", r.Body, code)
	}
}

func TestUnauthenticatedBrowserVsAPI(t *testing.T) {
	e := newTestEnv(t)
	c := noFollow(e.browser())
	for _, tc := range []struct {
		name    string
		method  string
		headers []string
		browser bool
	}{
		{"page load", http.MethodGet, []string{"Accept", acceptHTML}, true},
		{"page load marked navigate", http.MethodGet, []string{"Accept", acceptHTML, "Sec-Fetch-Mode", "navigate"}, true},
		{"HEAD page load", http.MethodHead, []string{"Accept", "text/html"}, true},
		{"Accept in upper case", http.MethodGet, []string{"Accept", "TEXT/HTML"}, true},
		{"fetch in cors mode", http.MethodGet, []string{"Accept", acceptHTML, "Sec-Fetch-Mode", "cors"}, false},
		{"fetch in no-cors mode", http.MethodGet, []string{"Accept", acceptHTML, "Sec-Fetch-Mode", "no-cors"}, false},
		{"fetch in same-origin mode", http.MethodGet, []string{"Accept", acceptHTML, "Sec-Fetch-Mode", "same-origin"}, false},
		{"XMLHttpRequest", http.MethodGet, []string{"Accept", acceptHTML, "X-Requested-With", "XMLHttpRequest"}, false},
		{"POST form", http.MethodPost, []string{"Accept", acceptHTML}, false},
		{"PUT", http.MethodPut, []string{"Accept", acceptHTML}, false},
		{"DELETE", http.MethodDelete, []string{"Accept", acceptHTML}, false},
		{"JSON API", http.MethodGet, []string{"Accept", "application/json"}, false},
		{"curl", http.MethodGet, []string{"Accept", "*/*"}, false},
		{"no Accept", http.MethodGet, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.request(t, c, tc.method, "/app/data?x=1", tc.headers...)
			switch {
			case tc.browser:
				e.toIdP(t, r)
			case tc.method == http.MethodHead:
				if r.Status != http.StatusUnauthorized {
					t.Errorf("got %d, want 401", r.Status)
				}
			default:
				wantJSONError(t, r, http.StatusUnauthorized, "unauthorized")
			}
		})
	}
	if n := len(e.up.requests()); n != 0 {
		t.Errorf("upstream saw %d unauthenticated requests", n)
	}
}

func TestUserinfo(t *testing.T) {
	e := newTestEnv(t)
	c := e.browser()
	wantJSONError(t, e.api(t, c, userinfoPath), http.StatusUnauthorized, "unauthorized")

	fromUpstream(t, e.signIn(t, c, "/"))
	r := e.api(t, c, userinfoPath)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q, want 200 application/json", r.Status, r.Header.Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"user":               "user-123",
		"email":              "ada@example.com",
		"preferred_username": "ada",
		"groups":             []any{"staff", "admins"},
		"idp":                "default",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("userinfo = %v, want %v", got, want)
	}
}

func TestForwardAuth(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_ALLOWED_GROUPS", "admins"))
	notAdmin := testSession()
	notAdmin.Groups = []string{"staff"}
	for _, tc := range []struct {
		name       string
		cookie     string
		want       int
		wantHeader map[string]string
	}{
		{"signed in and allowed", e.mintSession(t, testSession()), http.StatusAccepted, map[string]string{
			"X-Auth-Request-User":               "user-123",
			"X-Auth-Request-Email":              "ada@example.com",
			"X-Auth-Request-Preferred-Username": "ada",
			"X-Auth-Request-Groups":             "staff,admins",
		}},
		{"no session", "", http.StatusUnauthorized, nil},
		{"signed in but not allowed", e.mintSession(t, notAdmin), http.StatusForbidden, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				headers := []string{"Accept", acceptHTML, "X-Forwarded-Uri", "/app"}
				if tc.cookie != "" {
					headers = append(headers, "Cookie", tc.cookie)
				}
				r := e.request(t, noFollow(e.browser()), method, authPath, headers...)
				if r.Status != tc.want {
					t.Fatalf("%s: got %d, want %d", method, r.Status, tc.want)
				}
				for name, v := range tc.wantHeader {
					if got := r.Header.Values(name); len(got) != 1 || got[0] != v {
						t.Errorf("%s: %s = %q, want [%q]", method, name, got, v)
					}
				}
				if tc.wantHeader == nil {
					for name := range r.Header {
						if strings.HasPrefix(name, "X-Auth-Request-") {
							t.Errorf("%s: %d answer carries %s", method, r.Status, name)
						}
					}
				}
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []envOption
		wantReady int
	}{
		{"IdP discovered", nil, http.StatusOK},
		{"IdP never discovered", []envOption{withIdPDown()}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, tc.opts...)
			c := e.browser()
			if r := e.api(t, c, healthPath); r.Status != http.StatusOK {
				t.Errorf("%s: got %d, want 200", healthPath, r.Status)
			}
			r := e.api(t, c, readyPath)
			var body readyAnswer
			if r.Status != tc.wantReady || json.Unmarshal([]byte(r.Body), &body) != nil {
				t.Fatalf("%s: got %d %q, want %d with a JSON body", readyPath, r.Status, r.Body, tc.wantReady)
			}
			if tc.wantReady != http.StatusOK && len(body.NotReady) == 0 {
				t.Errorf("%s: 503 without saying what is not ready: %q", readyPath, r.Body)
			}
		})
	}
}

func TestIdPUnavailable(t *testing.T) {
	e := newTestEnv(t, withIdPDown())
	for _, target := range []string{"/app?x=1", startPath + "?rd=/app"} {
		t.Run(target, func(t *testing.T) {
			c := e.browser()
			r := e.navigate(t, c, target)
			if r.Status != http.StatusServiceUnavailable {
				t.Fatalf("got %d, want 503; body %.300s", r.Status, r.Body)
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(strings.ToLower(r.Body), "identity provider unavailable") {
				t.Errorf("want the HTML \"identity provider unavailable\" page; got %q: %.500s", r.Header.Get("Content-Type"), r.Body)
			}
			if len(r.Cookies) != 0 {
				t.Errorf("a sign-in that cannot start set cookies: %v", r.Cookies)
			}
		})
	}
	t.Run("API request", func(t *testing.T) {
		wantJSONError(t, e.api(t, e.browser(), "/app"), http.StatusUnauthorized, "unauthorized")
	})
}

func TestUpstreamUnavailable(t *testing.T) {
	e := newTestEnv(t, withUpstreamDown(), withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	cookie := e.mintSession(t, testSession())
	for _, tc := range []struct {
		name, path, accept, cookie string
		html                       bool
	}{
		{"signed-in page", "/app", acceptHTML, cookie, true},
		{"signed-in API", "/app", "application/json", cookie, false},
		{"skip-auth route", "/public/x", acceptHTML, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := []string{"Accept", tc.accept}
			if tc.cookie != "" {
				headers = append(headers, "Cookie", tc.cookie)
			}
			r := e.request(t, noFollow(e.browser()), http.MethodGet, tc.path, headers...)
			if !tc.html {
				wantJSONError(t, r, http.StatusBadGateway, "bad_gateway")
				return
			}
			if r.Status != http.StatusBadGateway || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
				t.Errorf("got %d %q, want a 502 page", r.Status, r.Header.Get("Content-Type"))
			}
			if strings.Contains(r.Body, e.cfg.Upstream.Host) || strings.Contains(r.Body, "connection refused") {
				t.Errorf("502 page reveals the upstream or the error: %.500s", r.Body)
			}
		})
	}
}

func TestSkipAuthRoutes(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "GET /healthz2, /public/"))
	onSkipRoute := func(method, cleaned string) bool {
		// A route for GET also serves HEAD (the policy package's rule).
		return (method == http.MethodGet || method == http.MethodHead) && cleaned == "/healthz2" || strings.HasPrefix(cleaned, "/public/")
	}
	// Each request is written raw, so the request-target reaches authproxy
	// exactly as given. want is the status; 200 means the upstream answered.
	for _, tc := range []struct {
		name, method, target string
		want                 int
		upstreamPath         string // for 200: the path the upstream decodes
	}{
		{"exact route", "GET", "/healthz2", 200, "/healthz2"},
		{"exact route with query", "GET", "/healthz2?verbose=1", 200, "/healthz2"},
		{"exact route, other method", "POST", "/healthz2", 401, ""},
		{"exact route, HEAD", "HEAD", "/healthz2", 200, "/healthz2"},
		{"exact route plus slash", "GET", "/healthz2/", 401, ""},
		{"exact route plus segment", "GET", "/healthz2/x", 401, ""},
		{"prefix route root", "GET", "/public/", 200, "/public/"},
		{"prefix route deep", "GET", "/public/a/b?c=d", 200, "/public/a/b"},
		{"prefix route, any method", "POST", "/public/form", 200, "/public/form"},
		{"prefix without slash", "GET", "/public", 401, ""},
		{"prefix as word prefix", "GET", "/publicity", 401, ""},
		{"other case", "GET", "/PUBLIC/x", 401, ""},
		{"escaped letter", "GET", "/p%75blic/x", 200, "/public/x"},
		{"doubled leading slash", "GET", "//public/x", 200, "/public/x"},
		{"doubled leading slash, as a host", "GET", "//public/admin", 200, "/public/admin"},
		{"doubled slashes everywhere", "GET", "//public//a///b", 200, "/public/a/b"},
		{"doubled inner slash", "GET", "/public//x", 200, "/public/x"},
		// An upstream that decodes twice would read "..": refused.
		{"double-encoded dots", "GET", "/public/%252e%252e/secret", 400, ""},

		{"dot-dot", "GET", "/public/../secret", 400, ""},
		{"encoded dot-dot", "GET", "/public/%2e%2e/secret", 400, ""},
		{"encoded dot-dot, upper case", "GET", "/public/%2E%2E/secret", 400, ""},
		{"half-encoded dot-dot", "GET", "/public/.%2e/secret", 400, ""},
		{"dot-dot-semicolon", "GET", "/public/..;/secret", 400, ""},
		{"dot-dot with path parameter", "GET", "/public/..;x=1/secret", 400, ""},
		{"dot then dot-dot", "GET", "/public/./../secret", 400, ""},
		{"climb past the prefix", "GET", "/public/x/../../secret", 400, ""},
		{"encoded slash", "GET", "/public%2fsecret", 400, ""},
		{"encoded slash, upper case", "GET", "/public%2Fsecret", 400, ""},
		{"encoded slash and dots", "GET", "/public%2f..%2fsecret", 400, ""},
		{"backslash", "GET", `/public\secret`, 400, ""},
		{"backslash dot-dot", "GET", `/public/..\secret`, 400, ""},
		{"encoded backslash dot-dot", "GET", "/public/..%5csecret", 400, ""},
		{"encoded NUL", "GET", "/public/%00/../secret", 400, ""},
		{"encoded newline", "GET", "/public/%0a", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.up.requests())
			r := rawHTTP(t, e.addr(), tc.method+" "+tc.target+" HTTP/1.1\r\nHost: "+e.addr()+"\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
			if r.Status != tc.want {
				t.Fatalf("got %d, want %d; body: %.300s", r.Status, tc.want, r.Body)
			}
			seen := e.up.requests()[before:]
			switch {
			case tc.want == http.StatusOK && len(seen) != 1:
				t.Fatalf("upstream saw %d requests, want 1", len(seen))
			case tc.want != http.StatusOK && len(seen) != 0:
				t.Fatalf("refused request reached the upstream as %q", seen[0].RequestURI)
			}
			for _, s := range seen {
				// The upstream gets the path the route matched, in a form no
				// URL parser reads as scheme-relative ("//host/...").
				if s.Path != tc.upstreamPath || strings.HasPrefix(s.RequestURI, "//") {
					t.Errorf("upstream got %q (path %q), want path %q", s.RequestURI, s.Path, tc.upstreamPath)
				}
			}
		})
	}
	// Whatever reached the upstream without a session was on a skip-auth
	// route as the upstream itself reads the path.
	for _, s := range e.up.requests() {
		if !onSkipRoute(s.Method, cleanKeepSlash(s.Path)) {
			t.Errorf("unauthenticated %s %q reached the upstream", s.Method, s.RequestURI)
		}
		if v := s.Header.Get("X-Forwarded-User"); v != "" {
			t.Errorf("skip-auth request %q carried X-Forwarded-User %q", s.RequestURI, v)
		}
	}
}

func TestOnlyOwnCookiesStripped(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_COOKIE_NAME", "session"), withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	const app = "session_id=abc; session_lang=en; sessions=2; session_0x=1; session_csrf=3; app=1"
	own := "session=x; session_0=y; session_12=z; session_csrf_AbCdEfGhIjKl=w"
	for _, tc := range []struct{ name, path, cookie string }{
		{"skip-auth route", "/public/x", app + "; " + own},
		{"signed in", "/app", e.mintSession(t, testSession()) + "; " + app},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromUpstream(t, e.request(t, noFollow(e.browser()), http.MethodGet, tc.path, "Accept", "application/json", "Cookie", tc.cookie))
			if c := got.Header["Cookie"]; len(c) != 1 || c[0] != app {
				t.Errorf("upstream Cookie = %q, want [%q]", c, app)
			}
		})
	}
}

// cleanKeepSlash is path.Clean keeping a trailing slash: how an echoUpstream
// that normalizes paths reads one.
func cleanKeepSlash(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func TestOwnCookiesNotForwarded(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	sess := e.mintSession(t, testSession())
	big := testSession()
	for _, g := range randomGroups(150) {
		big.Groups = append(big.Groups, g.(string))
	}
	chunked := e.mintSession(t, big)
	if !strings.Contains(chunked, e.cfg.CookieName+"_1=") {
		t.Fatalf("big session is not split over cookies: %.60s", chunked)
	}
	state := e.cfg.CookieName + "_csrf_AbCdEfGhIjKl=sealed-state"
	const app = `app=1; theme="dark mode"; pair=a=b; empty=`

	for _, tc := range []struct{ name, path, cookie, want string }{
		{"session around app cookies", "/app", "app=1; " + sess + `; theme="dark mode"; pair=a=b; ` + state + "; empty=", app},
		{"chunked session", "/app", chunked + "; " + app, app},
		{"only authproxy cookies", "/app", sess + "; " + state, ""},
		{"skip-auth route with a session", "/public/x", app + "; " + sess, app},
		{"skip-auth route with a forged session", "/public/x", e.cfg.CookieName + "=forged; " + app, app},
		{"skip-auth route with app cookies only", "/public/x", app, app},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromUpstream(t, e.request(t, noFollow(e.browser()), http.MethodGet, tc.path, "Accept", "application/json", "Cookie", tc.cookie))
			switch {
			case tc.want == "" && len(got.Header["Cookie"]) != 0:
				t.Errorf("upstream Cookie = %q, want none", got.Header["Cookie"])
			case tc.want != "" && (len(got.Header["Cookie"]) != 1 || got.Header["Cookie"][0] != tc.want):
				t.Errorf("upstream Cookie = %q, want [%q]", got.Header["Cookie"], tc.want)
			}
			for name, vs := range got.Header {
				for _, v := range vs {
					if strings.Contains(v, "sealed-state") || strings.Contains(v, e.cfg.CookieName+"=") || strings.Contains(v, e.cfg.CookieName+"_") {
						t.Errorf("upstream header %s carries an authproxy cookie: %.80s", name, v)
					}
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	e := newTestEnv(t)
	c := e.browser()
	fromUpstream(t, e.signIn(t, c, "/private/path?q=secret-query"))
	e.api(t, e.browser(), "/app")
	r := e.request(t, c, http.MethodGet, "/metrics")
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: got %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`authproxy_requests_total{outcome="proxied"}`,
		`authproxy_requests_total{outcome="sign_in"}`,
		`authproxy_requests_total{outcome="unauthorized"}`,
		`authproxy_sign_ins_total{idp="default",result="ok"} 1`,
	} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, secret := range []string{"user-123", "ada@example.com", "/private/path", "secret-query"} {
		if strings.Contains(r.Body, secret) {
			t.Errorf("/metrics reveals %q", secret)
		}
	}
}
