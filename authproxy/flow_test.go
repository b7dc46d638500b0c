package authproxy

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSignInReturnsToOriginalRequest(t *testing.T) {
	e := newTestEnv(t)
	for _, target := range []string{
		"/",
		"/app/page?x=1&y=two",
		"/a%20b/c%C3%A9?q=%2F%2Fevil.example&flag",
		"/reports/?sort=-date&sort=name",
	} {
		t.Run(target, func(t *testing.T) {
			c := e.browser()
			got := fromUpstream(t, e.signIn(t, c, target))
			if got.RequestURI != target {
				t.Errorf("upstream got %q, want the original %q", got.RequestURI, target)
			}
			want := map[string]string{
				"X-Forwarded-User":               "user-123",
				"X-Forwarded-Email":              "ada@example.com",
				"X-Forwarded-Preferred-Username": "ada",
				"X-Forwarded-Groups":             "staff,admins",
			}
			for name, v := range want {
				if got := got.Header[name]; len(got) != 1 || got[0] != v {
					t.Errorf("upstream %s = %q, want [%q]", name, got, v)
				}
			}
			if v, ok := got.Header["X-Forwarded-Access-Token"]; ok {
				t.Errorf("upstream got X-Forwarded-Access-Token %q with AUTHPROXY_PASS_ACCESS_TOKEN unset", v)
			}
		})
	}
}

func TestStartRedirectParameter(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct{ name, rd, want string }{
		{"local path and query", "/x/y?z=1", "/x/y?z=1"},
		{"empty", "", "/"},
		{"scheme-relative", "//evil.example/x", "/"},
		{"absolute", "https://evil.example/", "/"},
		{"backslash", "/\\evil.example", "/"},
		{"encoded slashes", "/%2F%2Fevil.example", "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.browser()
			authURL := e.startSignIn(t, c, tc.rd)
			cb := e.callback(t, c, e.idp.authorize(t, authURL))
			if loc := cb.Header.Get("Location"); cb.Status != http.StatusFound || loc != tc.want {
				t.Fatalf("callback: got %d Location %q, want 302 to %q", cb.Status, loc, tc.want)
			}
		})
	}
}

func TestAuthorizationRequest(t *testing.T) {
	e := newTestEnv(t)
	c := e.browser()
	r := e.navigate(t, noFollow(c), "/app")
	authURL := e.toIdP(t, r)
	q := e.idp.checkAuthRequest(t, authURL)

	if got, want := q.Get("redirect_uri"), e.cfg.RedirectURL.String(); got != want {
		t.Errorf("redirect_uri = %q, want %q", got, want)
	}
	if got := q.Get("scope"); got != "openid email profile" {
		t.Errorf("scope = %q, want the default %q", got, "openid email profile")
	}
	b64url := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	if ch := q.Get("code_challenge"); len(ch) != 43 || !b64url.MatchString(ch) {
		t.Errorf("code_challenge %q is not a base64url SHA-256", ch)
	}
	state, nonce := q.Get("state"), q.Get("nonce")
	if len(state) < 32 || len(nonce) < 32 || state == nonce {
		t.Errorf("state %q and nonce %q: want two different values of at least 32 characters", state, nonce)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	var sc *http.Cookie
	for _, ck := range r.Cookies {
		if strings.HasPrefix(ck.Name, e.cfg.CookieName+"_csrf_") {
			sc = ck
		}
	}
	if sc == nil {
		t.Fatalf("no state cookie among %v", r.Cookies)
	}
	if !sc.HttpOnly || sc.Path != callbackPath || sc.SameSite != http.SameSiteLaxMode || sc.MaxAge != int(stateTTL.Seconds()) {
		t.Errorf("state cookie %s: want HttpOnly, Path=%s, SameSite=Lax, Max-Age=%d", sc, callbackPath, int(stateTTL.Seconds()))
	}
	if strings.Contains(sc.Value, state) || strings.Contains(sc.Value, nonce) {
		t.Errorf("state cookie carries state or nonce in clear")
	}

	again := e.idp.checkAuthRequest(t, e.startSignIn(t, c, "/"))
	for _, name := range []string{"state", "nonce", "code_challenge"} {
		if again.Get(name) == q.Get(name) {
			t.Errorf("a second sign-in reused %s %q", name, q.Get(name))
		}
	}
}

func TestAccessTokenForwarding(t *testing.T) {
	for _, tc := range []struct {
		name string
		pass string
		want bool
	}{
		{"off by default", "", false},
		{"off", "false", false},
		{"on", "true", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []envOption
			if tc.pass != "" {
				opts = append(opts, withVar("AUTHPROXY_PASS_ACCESS_TOKEN", tc.pass))
			}
			e := newTestEnv(t, opts...)
			got := fromUpstream(t, e.signIn(t, e.browser(), "/app"))
			v, ok := got.Header["X-Forwarded-Access-Token"]
			switch {
			case tc.want && (len(v) != 1 || v[0] != e.idp.lastAccessToken()):
				t.Errorf("X-Forwarded-Access-Token = %q, want [%q]", v, e.idp.lastAccessToken())
			case !tc.want && ok:
				t.Errorf("X-Forwarded-Access-Token = %q, want none", v)
			}
		})
	}
}

// signInFailure checks that a sign-in attempt that should fail did: the
// callback answered want, set no session, and nothing reached the upstream.
func signInFailure(t *testing.T, e *testEnv, c *http.Client, cb reply, want int) {
	t.Helper()
	if cb.Status != want {
		t.Errorf("callback: got %d, want %d; body: %.300s", cb.Status, want, cb.Body)
	}
	if e.setsSession(cb.Cookies) {
		t.Errorf("callback set a session cookie: %v", cb.Cookies)
	}
	if v := e.sessionCookie(c); v != "" {
		t.Errorf("browser holds a session cookie after a failed sign-in: %.40s…", v)
	}
	if r := e.api(t, c, userinfoPath); r.Status != http.StatusUnauthorized {
		t.Errorf("%s after a failed sign-in: got %d, want 401", userinfoPath, r.Status)
	}
	if n := len(e.up.requests()); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}

func TestCallbackRefusesBadIDToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeIdP)
		want  int
	}{
		{"wrong nonce", func(f *fakeIdP) {
			f.setTweak(func(c map[string]any) { c["nonce"] = "not-this-sign-ins-nonce" })
		}, http.StatusBadRequest},
		{"no nonce", func(f *fakeIdP) {
			f.setTweak(func(c map[string]any) { delete(c, "nonce") })
		}, http.StatusBadRequest},
		{"wrong audience", func(f *fakeIdP) {
			f.setTweak(func(c map[string]any) { c["aud"] = "another-client" })
		}, http.StatusBadRequest},
		{"audience list without this client", func(f *fakeIdP) {
			f.setTweak(func(c map[string]any) { c["aud"] = []any{"a", "b"} })
		}, http.StatusBadRequest},
		{"wrong issuer", func(f *fakeIdP) {
			f.setTweak(func(c map[string]any) { c["iss"] = "https://evil.example" })
		}, http.StatusBadRequest},
		{"expired", func(f *fakeIdP) {
			f.setTweak(func(c map[string]any) {
				c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
				c["exp"] = time.Now().Add(-time.Hour).Unix()
			})
		}, http.StatusBadRequest},
		{"signed with a key not in the JWKS", func(f *fakeIdP) { f.signWithOtherKey() }, http.StatusBadRequest},
		{"no user claim", func(f *fakeIdP) {
			f.setTweak(func(c map[string]any) { delete(c, "sub") })
		}, http.StatusBadRequest},
		{"token endpoint refuses", func(f *fakeIdP) { f.failTokenWith(http.StatusBadRequest) }, http.StatusBadRequest},
		{"token endpoint fails", func(f *fakeIdP) { f.failTokenWith(http.StatusInternalServerError) }, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			tc.setup(e.idp)
			c := e.browser()
			cb := e.callback(t, c, e.idp.authorize(t, e.startSignIn(t, c, "/app")))
			signInFailure(t, e, c, cb, tc.want)
		})
	}
}

func TestCallbackRefusesBadState(t *testing.T) {
	// Each case returns the callback response of an attempt that must fail,
	// made by the browser it returns.
	for _, tc := range []struct {
		name    string
		attempt func(t *testing.T, e *testEnv) (*http.Client, reply)
	}{
		{"no state cookie", func(t *testing.T, e *testEnv) (*http.Client, reply) {
			cb := e.idp.authorize(t, e.startSignIn(t, e.browser(), "/"))
			other := e.browser()
			return other, e.callback(t, other, cb)
		}},
		{"state does not match the cookie", func(t *testing.T, e *testEnv) (*http.Client, reply) {
			c := e.browser()
			cb := e.idp.authorize(t, e.startSignIn(t, c, "/"))
			q := cb.Query()
			q.Set("state", base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("x", 32))))
			cb.RawQuery = q.Encode()
			return c, e.callback(t, c, cb)
		}},
		{"state shares the cookie's name prefix only", func(t *testing.T, e *testEnv) (*http.Client, reply) {
			c := e.browser()
			cb := e.idp.authorize(t, e.startSignIn(t, c, "/"))
			q := cb.Query()
			q.Set("state", q.Get("state")[:12]+strings.Repeat("A", 31))
			cb.RawQuery = q.Encode()
			return c, e.callback(t, c, cb)
		}},
		{"no state parameter", func(t *testing.T, e *testEnv) (*http.Client, reply) {
			c := e.browser()
			cb := e.idp.authorize(t, e.startSignIn(t, c, "/"))
			q := cb.Query()
			q.Del("state")
			cb.RawQuery = q.Encode()
			return c, e.callback(t, c, cb)
		}},
		{"no code", func(t *testing.T, e *testEnv) (*http.Client, reply) {
			c := e.browser()
			cb := e.idp.authorize(t, e.startSignIn(t, c, "/"))
			q := cb.Query()
			q.Del("code")
			cb.RawQuery = q.Encode()
			return c, e.callback(t, c, cb)
		}},
		{"unknown code", func(t *testing.T, e *testEnv) (*http.Client, reply) {
			c := e.browser()
			cb := e.idp.authorize(t, e.startSignIn(t, c, "/"))
			q := cb.Query()
			q.Set("code", "made-up")
			cb.RawQuery = q.Encode()
			return c, e.callback(t, c, cb)
		}},
		{"code of another sign-in in the same browser", func(t *testing.T, e *testEnv) (*http.Client, reply) {
			c := e.browser()
			first := e.idp.authorize(t, e.startSignIn(t, c, "/"))
			second := e.idp.authorize(t, e.startSignIn(t, c, "/"))
			q := first.Query()
			q.Set("code", second.Query().Get("code"))
			first.RawQuery = q.Encode()
			return c, e.callback(t, c, first)
		}},
		{"callback replayed with the captured state cookie", func(t *testing.T, e *testEnv) (*http.Client, reply) {
			victim := e.browser()
			start := e.navigate(t, noFollow(victim), startPath+"?rd=/")
			cb := e.idp.authorize(t, e.toIdP(t, start))
			if r := e.callback(t, victim, cb); r.Status != http.StatusFound {
				t.Fatalf("first callback: got %d, want 302", r.Status)
			}
			attacker := &http.Client{CheckRedirect: noFollow(victim).CheckRedirect}
			req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
			req.Header.Set("Accept", acceptHTML)
			for _, ck := range start.Cookies {
				req.AddCookie(ck)
			}
			return attacker, doRequest(t, attacker, req)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			c, r := tc.attempt(t, e)
			if r.Status != http.StatusBadRequest {
				t.Errorf("callback: got %d, want 400; body: %.300s", r.Status, r.Body)
			}
			if e.setsSession(r.Cookies) {
				t.Errorf("callback set a session cookie: %v", r.Cookies)
			}
			if c.Jar != nil {
				if v := e.sessionCookie(c); v != "" {
					t.Errorf("browser holds a session after a refused callback")
				}
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML page for a browser", ct)
			}
		})
	}
}

func TestCallbackReplayedInSameBrowser(t *testing.T) {
	e := newTestEnv(t)
	c := e.browser()
	cb := e.idp.authorize(t, e.startSignIn(t, c, "/"))
	first := e.callback(t, c, cb)
	if first.Status != http.StatusFound || !e.setsSession(first.Cookies) {
		t.Fatalf("first callback: got %d, want 302 with a session", first.Status)
	}
	expired := false
	for _, ck := range first.Cookies {
		expired = expired || strings.HasPrefix(ck.Name, e.cfg.CookieName+"_csrf_") && ck.MaxAge < 0 && ck.Path == callbackPath
	}
	if !expired {
		t.Errorf("callback did not expire its state cookie: %v", first.Cookies)
	}
	before := e.sessionCookie(c)

	r := e.callback(t, c, cb)
	if r.Status != http.StatusBadRequest {
		t.Errorf("replayed callback: got %d, want 400", r.Status)
	}
	if e.setsSession(r.Cookies) {
		t.Errorf("replayed callback set a new session: %v", r.Cookies)
	}
	if after := e.sessionCookie(c); after != before {
		t.Errorf("replayed callback changed the browser's session")
	}
}

func TestCallbackIdPErrorDetailStaysValidUTF8(t *testing.T) {
	for _, desc := range []string{
		strings.Repeat("a", 300-len("access_denied: ")-1) + "ééé",
		strings.Repeat("€", 200),
		"invalid \xff\xfe UTF-8",
	} {
		e := newTestEnv(t)
		c := e.browser()
		r := e.callback(t, c, e.idp.refuse(t, e.startSignIn(t, c, "/"), "access_denied", desc))
		if r.Status != http.StatusBadRequest || !utf8.ValidString(r.Body) {
			t.Errorf("error_description %.20q…: got %d, valid UTF-8 %t; want 400 and a valid page", desc, r.Status, utf8.ValidString(r.Body))
		}
	}
}

func TestCallbackShowsIdPErrorEscaped(t *testing.T) {
	const (
		errCode = `<script>alert(1)</script>`
		desc    = `<img src=x onerror=alert(2)> & "quoted"`
	)
	for _, tc := range []struct {
		name        string
		stateCookie bool
	}{
		{"in the browser that started", true},
		{"in another browser", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			c := e.browser()
			cb := e.idp.refuse(t, e.startSignIn(t, c, "/app"), errCode, desc)
			if !tc.stateCookie {
				c = e.browser()
			}
			r := e.callback(t, c, cb)
			signInFailure(t, e, c, r, http.StatusBadRequest)
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want text/html", ct)
			}
			for _, raw := range []string{"<script>alert", "<img src=x"} {
				if strings.Contains(r.Body, raw) {
					t.Errorf("page contains raw markup %q", raw)
				}
			}
			for _, escaped := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt; &amp; &#34;quoted&#34;"} {
				if !strings.Contains(r.Body, escaped) {
					t.Errorf("page lacks the escaped text %q; body: %.1000s", escaped, r.Body)
				}
			}
		})
	}
}

func TestSignInsCompletedInReverseOrder(t *testing.T) {
	e := newTestEnv(t)
	c := e.browser()
	first := e.idp.authorize(t, e.startSignIn(t, c, "/first?n=1"))
	second := e.idp.authorize(t, e.startSignIn(t, c, "/second?n=2"))

	for _, tc := range []struct {
		cb   *url.URL
		want string
	}{{second, "/second?n=2"}, {first, "/first?n=1"}} {
		r := e.callback(t, c, tc.cb)
		if loc := r.Header.Get("Location"); r.Status != http.StatusFound || loc != tc.want {
			t.Fatalf("callback: got %d Location %q, want 302 to %q; body: %.300s", r.Status, loc, tc.want, r.Body)
		}
		if !e.setsSession(r.Cookies) {
			t.Errorf("callback for %s set no session", tc.want)
		}
		if got := fromUpstream(t, e.navigate(t, c, tc.want)); got.RequestURI != tc.want {
			t.Errorf("landed on %q, want %q", got.RequestURI, tc.want)
		}
	}
}

func TestCallbackDeniesDisallowedUser(t *testing.T) {
	unverified := func(v any) envOption {
		return withIdP(func(f *fakeIdP) {
			f.claims["email"] = "ceo@example.com"
			if v == nil {
				delete(f.claims, "email_verified")
			} else {
				f.claims["email_verified"] = v
			}
		})
	}
	for _, tc := range []struct {
		name string
		opts []envOption
		want int // 302: signed in
	}{
		{"email domain", []envOption{withVar("AUTHPROXY_ALLOWED_EMAIL_DOMAINS", "corp.example")}, http.StatusForbidden},
		{"group", []envOption{withVar("AUTHPROXY_ALLOWED_GROUPS", "wheel")}, http.StatusForbidden},
		{"email_verified false", []envOption{withVar("AUTHPROXY_ALLOWED_EMAIL_DOMAINS", "example.com"), unverified(false)}, http.StatusForbidden},
		{"email_verified missing", []envOption{unverified(nil)}, http.StatusForbidden},
		{"email_verified as a string", []envOption{unverified("false")}, http.StatusForbidden},
		{"email_verified false, allowed by the insecure switch", []envOption{
			withVar("AUTHPROXY_ALLOWED_EMAIL_DOMAINS", "example.com"), unverified(false),
			withVar("AUTHPROXY_INSECURE_ALLOW_UNVERIFIED_EMAIL", "true"),
		}, http.StatusFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, tc.opts...)
			c := e.browser()
			r := e.callback(t, c, e.idp.authorize(t, e.startSignIn(t, c, "/")))
			if tc.want == http.StatusFound {
				if r.Status != http.StatusFound || !e.setsSession(r.Cookies) {
					t.Errorf("callback: got %d, want 302 with a session", r.Status)
				}
				return
			}
			signInFailure(t, e, c, r, tc.want)
		})
	}
}

func TestSameSiteStrictContinuePage(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_COOKIE_SAMESITE", "strict"))
	c := e.browser()
	r := e.callback(t, c, e.idp.authorize(t, e.startSignIn(t, c, "/dest?a=1&b=2")))
	if r.Status != http.StatusOK || !e.setsSession(r.Cookies) {
		t.Fatalf("callback: got %d, want 200 with a session; body %.300s", r.Status, r.Body)
	}
	if !strings.Contains(r.Body, `href="/dest?a=1&amp;b=2"`) {
		t.Errorf("continue page lacks a link to the original request; body: %.2000s", r.Body)
	}
	for _, ck := range r.Cookies {
		if ck.Name == e.cfg.CookieName && ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("session cookie SameSite = %v, want Strict", ck.SameSite)
		}
	}
}

func TestLogsKeepSecretsOut(t *testing.T) {
	e := newTestEnv(t)
	c := e.browser()
	authURL := e.startSignIn(t, c, "/private?token=query-secret-value")
	cb := e.idp.authorize(t, authURL)
	if r := e.callback(t, c, cb); r.Status != http.StatusFound {
		t.Fatalf("callback: got %d", r.Status)
	}
	fromUpstream(t, e.navigate(t, c, "/private?token=query-secret-value"))
	e.callback(t, c, cb) // a replay, logged as a failure

	// A refused ID token, which is logged with its error.
	e.idp.setTweak(func(c map[string]any) { c["aud"] = "another-client" })
	c2 := e.browser()
	cb2 := e.idp.authorize(t, e.startSignIn(t, c2, "/"))
	e.callback(t, c2, cb2)

	logs := e.logs.String()
	for _, want := range []string{`"signed in"`, `"sign-in rejected"`, `"msg":"request"`, `"path":"/private"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("logs lack %s; got:\n%s", want, logs)
		}
	}
	secrets := map[string]string{
		"code":                cb.Query().Get("code"),
		"state":               cb.Query().Get("state"),
		"refused code":        cb2.Query().Get("code"),
		"access token":        e.idp.lastAccessToken(),
		"session cookie":      strings.TrimPrefix(e.sessionCookie(c), e.cfg.CookieName+"="),
		"query string":        "query-secret-value",
		"client secret":       testClientSecret,
		"cookie secret":       testCookieSecret,
		"cookie secret (raw)": "0123456789abcdef0123456789abcdef",
		"nonce":               e.idp.checkAuthRequest(t, authURL).Get("nonce"),
		"PKCE code challenge": e.idp.checkAuthRequest(t, authURL).Get("code_challenge"),
	}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("no %s to look for", what)
		}
		if strings.Contains(logs, s) {
			t.Errorf("logs contain the %s", what)
		}
	}
}
