package authproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Several IdPs behind one authproxy: the default fake IdP ("default") and
// another, "partners", each a fake OpenID Connect provider of its own
// (httptest servers speaking the real discovery, JWKS and token wire
// format; the end-to-end tests use real Dex and oidc-provider).

// multiPolicy routes /admin/ to the default IdP's admins, /portal/ to both
// IdPs, /partners/ to the partners only.
const multiPolicy = `rules:
  - path: /admin/
    allow: {idps: [default], groups: [admins]}
  - path: /partners/
    allow: {idps: [partners]}
  - path: /portal/
    allow: {idps: [default, partners]}
  - path: /
    allow: authenticated
`

func newMultiEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	opts = append([]envOption{withOtherIdP("partners"), withPolicy(multiPolicy),
		withVar("AUTHPROXY_DISPLAY_NAME", "Staff"), withVar("AUTHPROXY_IDP_PARTNERS_DISPLAY_NAME", "Partners <Inc>")}, opts...)
	e := newTestEnv(t, opts...)
	e.waitReady(t)
	return e
}

// waitReady waits for the discovery NewFromConfig started for the IdPs
// other than the (injected, discovered) default.
func (e *testEnv) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range e.srv.idps.list {
		for p.provider.Ready() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("IdP %s not ready: %v", p.name(), p.provider.Ready())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

var hrefRE = regexp.MustCompile(`href="([^"]*)"`)

// chooserLinks returns the sign-in links of a chooser page.
func chooserLinks(body string) []string {
	var links []string
	for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
		if l := html.UnescapeString(m[1]); strings.HasPrefix(l, startPath) {
			links = append(links, l)
		}
	}
	return links
}

// signInAt signs in at the fake IdP f from a start link and returns the
// final response.
func (e *testEnv) signInAt(t *testing.T, c *http.Client, f *fakeIdP, link string) reply {
	t.Helper()
	r := e.navigate(t, noFollow(c), link)
	loc := r.Header.Get("Location")
	if r.Status != http.StatusFound || !strings.HasPrefix(loc, f.URL()+"/auth?") {
		t.Fatalf("%s: got %d Location %q, want 302 to %s", link, r.Status, loc, f.URL())
	}
	cb := e.callback(t, c, f.authorize(t, loc))
	if cb.Status != http.StatusFound {
		t.Fatalf("callback: got %d, want 302; body: %.300s", cb.Status, cb.Body)
	}
	return e.navigate(t, c, cb.Header.Get("Location"))
}

func TestChooserAndSignInAtEachIdP(t *testing.T) {
	e := newMultiEnv(t)
	partner := e.others["partners"]
	partner.setClaims(map[string]any{"sub": "p-1", "email": "pat@partner.example", "email_verified": true, "groups": []any{"admins"}})

	// A fresh browser on a route both IdPs serve gets the chooser.
	r := e.navigate(t, noFollow(e.browser()), "/portal/x?y=1")
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "Staff") || !strings.Contains(r.Body, "Partners &lt;Inc&gt;") {
		t.Fatalf("chooser: %d %.500s", r.Status, r.Body)
	}
	links := chooserLinks(r.Body)
	want := []string{"/oauth2/start?idp=default&rd=%2Fportal%2Fx%3Fy%3D1", "/oauth2/start?idp=partners&rd=%2Fportal%2Fx%3Fy%3D1"}
	if !slices.Equal(links, want) {
		t.Fatalf("chooser links %q, want %q", links, want)
	}

	// An API client is told which IdPs the route accepts.
	api := e.api(t, e.browser(), "/partners/x")
	var body struct{ IdPs []string }
	if api.Status != http.StatusUnauthorized || json.Unmarshal([]byte(api.Body), &body) != nil || !slices.Equal(body.IdPs, []string{"partners"}) {
		t.Errorf("API 401: %d %s, want idps [partners]", api.Status, api.Body)
	}

	for _, tc := range []struct {
		idp      string
		f        *fakeIdP
		user     string
		admin    int // /admin/ for this IdP's admins
		partners int
	}{
		{"default", e.idp, "user-123", http.StatusOK, http.StatusForbidden},
		{"partners", partner, "p-1", http.StatusForbidden, http.StatusOK},
	} {
		t.Run(tc.idp, func(t *testing.T) {
			c := e.browser()
			r := e.signInAt(t, c, tc.f, "/oauth2/start?idp="+tc.idp+"&rd=%2Fportal%2F")
			up := fromUpstream(t, r)
			if got := up.Header.Get("X-Forwarded-Idp"); got != tc.idp {
				t.Errorf("X-Forwarded-Idp %q, want %q", got, tc.idp)
			}
			if got := up.Header.Get("X-Forwarded-User"); got != tc.user {
				t.Errorf("X-Forwarded-User %q, want %q", got, tc.user)
			}
			// Both have the group "admins"; only the default IdP's counts
			// for a rule naming it.
			if got := e.navigate(t, c, "/admin/").Status; got != tc.admin {
				t.Errorf("/admin/: %d, want %d", got, tc.admin)
			}
			if got := e.navigate(t, c, "/partners/").Status; got != tc.partners {
				t.Errorf("/partners/: %d, want %d", got, tc.partners)
			}
			var info map[string]any
			ui := e.api(t, c, userinfoPath)
			if json.Unmarshal([]byte(ui.Body), &info) != nil || info["idp"] != tc.idp {
				t.Errorf("userinfo %s, want idp %q", ui.Body, tc.idp)
			}
		})
	}

	// A fresh browser on a route with one IdP goes straight to it.
	for path, f := range map[string]*fakeIdP{"/admin/": e.idp, "/partners/": partner} {
		r := e.navigate(t, noFollow(e.browser()), path)
		if loc := r.Header.Get("Location"); r.Status != http.StatusFound || !strings.HasPrefix(loc, f.URL()+"/auth?") {
			t.Errorf("%s: %d to %q, want straight to %s", path, r.Status, loc, f.URL())
		}
	}
}

func TestStartRefusesUnknownIdP(t *testing.T) {
	e := newMultiEnv(t, withOtherIdP("robots"), withVar("AUTHPROXY_IDP_ROBOTS_BEARER_ONLY", "true"))
	for _, name := range []string{"nope", "robots", ""} {
		r := e.navigate(t, noFollow(e.browser()), "/oauth2/start?idp="+url.QueryEscape(name)+"&rd=%2F")
		if r.Status != http.StatusBadRequest {
			t.Errorf("idp=%q: %d, want 400", name, r.Status)
		}
	}
	// The bearer-only IdP is not on the chooser.
	r := e.navigate(t, noFollow(e.browser()), "/oauth2/start?rd=%2F")
	if links := chooserLinks(r.Body); len(links) != 2 || slices.ContainsFunc(links, func(l string) bool { return strings.Contains(l, "robots") }) {
		t.Errorf("chooser links %q: want default and partners only", links)
	}
}

// TestMixUpRefused: a sign-in started at one IdP and completed with the
// other's response is refused before any token request (RFC 9700 4.4, RFC
// 9207's iss).
func TestMixUpRefused(t *testing.T) {
	e := newMultiEnv(t)
	partner := e.others["partners"]
	for _, tc := range []struct {
		name         string
		start, other *fakeIdP
		idp          string
	}{
		{"started at default, partner's code and iss", e.idp, partner, "default"},
		{"started at partners, default's code and iss", partner, e.idp, "partners"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.browser()
			r := e.navigate(t, noFollow(c), "/oauth2/start?idp="+tc.idp+"&rd=%2F")
			authURL, _ := url.Parse(r.Header.Get("Location"))
			state := authURL.Query().Get("state")
			// The attacker's IdP's code for another sign-in of its own.
			other := e.navigate(t, noFollow(e.browser()), "/oauth2/start?idp="+map[string]string{"default": "partners", "partners": "default"}[tc.idp]+"&rd=%2F")
			cbOther := tc.other.authorize(t, other.Header.Get("Location"))
			q := url.Values{"code": {cbOther.Query().Get("code")}, "state": {state}, "iss": {tc.other.URL()}}
			before := tc.start.tokenCallCount() + tc.other.tokenCallCount()
			cb := e.navigate(t, noFollow(c), callbackPath+"?"+q.Encode())
			if cb.Status != http.StatusBadRequest || e.setsSession(cb.Cookies) {
				t.Errorf("mixed-up callback: %d, session set %t; want 400 and none", cb.Status, e.setsSession(cb.Cookies))
			}
			if after := tc.start.tokenCallCount() + tc.other.tokenCallCount(); after != before {
				t.Errorf("%d token requests after the mixed-up callback; want none", after-before)
			}
		})
	}
}

func TestBackchannelLogoutStaysWithinItsIdP(t *testing.T) {
	e := newMultiEnv(t)
	partner := e.others["partners"]
	// Both IdPs call their users the same: sub user-123, sid s-1.
	partner.setClaims(map[string]any{"sub": "user-123", "sid": "s-1", "email": "ada@partner.example", "email_verified": true})
	e.idp.setClaims(map[string]any{"sub": "user-123", "sid": "s-1", "email": "ada@example.com", "email_verified": true})
	staff, pat := e.browser(), e.browser()
	fromUpstream(t, e.signInAt(t, staff, e.idp, "/oauth2/start?idp=default&rd=%2Fportal%2F"))
	fromUpstream(t, e.signInAt(t, pat, partner, "/oauth2/start?idp=partners&rd=%2Fportal%2F"))

	logout := func(f *fakeIdP, clientID string, claims map[string]any) int {
		now := time.Now()
		c := map[string]any{"iss": f.URL(), "aud": clientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
			"jti": "jti-" + randomString(8), "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
		for k, v := range claims {
			c[k] = v
		}
		req, err := http.NewRequest(http.MethodPost, e.url(backchannelLogoutPath), strings.NewReader("logout_token="+url.QueryEscape(f.sign(c))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return doRequest(t, e.browser(), req).Status
	}
	signedIn := func(c *http.Client) bool { return e.api(t, noFollow(c), "/portal/").Status == http.StatusOK }

	// A partner token claiming the default IdP's issuer is signed with the
	// wrong keys; one with its own issuer and the default's audience is
	// not for it.
	if got := logout(partner, testClientID, map[string]any{"iss": e.idp.URL(), "sid": "s-1"}); got != http.StatusBadRequest {
		t.Errorf("partner-signed token with the default's iss: %d, want 400", got)
	}
	if got := logout(partner, testClientID, map[string]any{"sid": "s-1"}); got != http.StatusBadRequest {
		t.Errorf("partner token for the default's client: %d, want 400", got)
	}
	if !signedIn(staff) || !signedIn(pat) {
		t.Fatal("a refused logout token ended a session")
	}
	// The partner's own logout of sid s-1 ends the partner's session only.
	if got := logout(partner, "client-partners", map[string]any{"sid": "s-1"}); got != http.StatusOK {
		t.Fatalf("partner logout: %d, want 200", got)
	}
	if signedIn(pat) {
		t.Error("the partner's session survived its IdP's logout")
	}
	if !signedIn(staff) {
		t.Error("a partner logout token ended a default-IdP session with the same sid")
	}
	// And by sub, the default's ends only its own.
	fromUpstream(t, e.signInAt(t, pat, partner, "/oauth2/start?idp=partners&rd=%2Fportal%2F"))
	if got := logout(e.idp, testClientID, map[string]any{"sub": "user-123"}); got != http.StatusOK {
		t.Fatalf("default logout: %d, want 200", got)
	}
	if signedIn(staff) || !signedIn(pat) {
		t.Errorf("after the default's logout by sub: staff signed in %t (want false), partner %t (want true)", signedIn(staff), signedIn(pat))
	}
}

func TestBearerTokensOfSeveralIdPs(t *testing.T) {
	e := newMultiEnv(t, withOtherIdP("robots"), withVar("AUTHPROXY_IDP_ROBOTS_BEARER_ONLY", "true"),
		withVar("AUTHPROXY_IDP_ROBOTS_BEARER_AUDIENCES", "api://legacy"))
	robots := e.others["robots"]
	token := func(f *fakeIdP, change func(map[string]any)) string {
		now := time.Now()
		c := map[string]any{"iss": f.URL(), "aud": f.clientID, "sub": "svc-1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if change != nil {
			change(c)
		}
		return "Bearer " + f.sign(c)
	}
	for _, tc := range []struct {
		name, auth, path string
		want             int
		idp              string
	}{
		{"default's token", token(e.idp, nil), "/portal/", http.StatusOK, "default"},
		{"partner's token", token(e.others["partners"], nil), "/portal/", http.StatusOK, "partners"},
		{"robot's token, its own audience", token(robots, func(c map[string]any) { c["aud"] = "api://legacy" }), "/", http.StatusOK, "robots"},
		{"robot's token, its client id is no audience", token(robots, nil), "/", http.StatusUnauthorized, ""},
		{"partner's token where only the default's pass", token(e.others["partners"], nil), "/admin/", http.StatusForbidden, ""},
		{"default's token where only partners pass", token(e.idp, nil), "/partners/", http.StatusForbidden, ""},
		{"partner-signed, claiming the default's issuer", token(e.others["partners"], func(c map[string]any) { c["iss"] = e.idp.URL(); c["aud"] = testClientID }), "/", http.StatusUnauthorized, ""},
		{"unknown issuer", token(e.idp, func(c map[string]any) { c["iss"] = "https://elsewhere.example" }), "/", http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.request(t, e.browser(), http.MethodGet, tc.path, "Authorization", tc.auth, "Accept", "application/json")
			if r.Status != tc.want {
				t.Fatalf("%d, want %d: %.200s", r.Status, tc.want, r.Body)
			}
			if tc.want == http.StatusOK {
				if got := fromUpstream(t, r).Header.Get("X-Forwarded-Idp"); got != tc.idp {
					t.Errorf("X-Forwarded-Idp %q, want %q", got, tc.idp)
				}
			}
		})
	}
}

// TestOneIdPDown: with the partner IdP unreachable, its sign-ins are
// unavailable, the chooser says so, /readyz reports it and stays ready,
// and the default IdP's sign-ins work.
func TestOneIdPDown(t *testing.T) {
	e := newTestEnv(t, withOtherIdP("partners"), withIdP(func(f *fakeIdP) {}), withVar("AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER", "http://"+closedAddr(t)))
	r := e.navigate(t, noFollow(e.browser()), "/x")
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "unavailable right now") {
		t.Fatalf("chooser: %d %.400s", r.Status, r.Body)
	}
	if links := chooserLinks(r.Body); !slices.Equal(links, []string{"/oauth2/start?idp=default&rd=%2Fx"}) {
		t.Errorf("chooser links %q: want only the default's", links)
	}
	ready := e.api(t, e.browser(), readyPath)
	var ans readyAnswer
	if ready.Status != http.StatusOK || json.Unmarshal([]byte(ready.Body), &ans) != nil || ans.IdPs["partners"] != "unavailable" || ans.IdPs["default"] != "ok" {
		t.Errorf("/readyz: %d %s; want 200 with partners unavailable, default ok", ready.Status, ready.Body)
	}
	if got := e.navigate(t, noFollow(e.browser()), "/oauth2/start?idp=partners&rd=%2F").Status; got != http.StatusServiceUnavailable {
		t.Errorf("sign-in at the IdP that is down: %d, want 503", got)
	}
	fromUpstream(t, e.signInAt(t, e.browser(), e.idp, "/oauth2/start?idp=default&rd=%2F"))
}

// TestCheckOneBlockPerIdP: authproxy check reports each IdP on its own,
// naming it, and a problem with the partner IdP names its variable.
func TestCheckOneBlockPerIdP(t *testing.T) {
	staff, partner := newFakeIdP(t, "authproxy-test", "s"), newFakeIdP(t, "client-partners", "p")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	vars := map[string]string{
		"AUTHPROXY_UPSTREAM": up.URL, "AUTHPROXY_OIDC_ISSUER": staff.URL(), "AUTHPROXY_CLIENT_ID": "authproxy-test",
		"AUTHPROXY_REDIRECT_URL": "http://127.0.0.1:4180/oauth2/callback", "AUTHPROXY_COOKIE_SECRET": testCookieSecret,
		"AUTHPROXY_COOKIE_SECURE": "false", "AUTHPROXY_DEFAULT_IDP_NAME": "staff",
		"AUTHPROXY_IDPS": "partners,robots", "AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER": partner.URL(),
		"AUTHPROXY_IDP_PARTNERS_CLIENT_ID": "client-partners", "AUTHPROXY_IDP_PARTNERS_DISPLAY_NAME": "Partner login",
		"AUTHPROXY_IDP_ROBOTS_OIDC_ISSUER": "http://" + closedAddr(t), "AUTHPROXY_IDP_ROBOTS_BEARER_ONLY": "true",
		"AUTHPROXY_IDP_ROBOTS_BEARER_AUDIENCES": "api://x",
	}
	cfg, err := LoadConfig(mapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = Check(context.Background(), cfg, &out)
	for _, want := range []string{
		`ok    identity provider "staff" (staff, browser sign-in and bearer tokens): oidc provider, issuer ` + staff.URL(),
		`ok    identity provider "partners" (Partner login, browser sign-in and bearer tokens): oidc provider, issuer ` + partner.URL(),
		"FAIL  AUTHPROXY_IDP_ROBOTS_OIDC_ISSUER:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if err == nil || !strings.Contains(err.Error(), "AUTHPROXY_IDP_ROBOTS_OIDC_ISSUER") {
		t.Errorf("Check = %v, want the robots IdP's failure", err)
	}
}

// TestWrongIdPPageAndJWT: a partner user on a staff-only page gets the 403
// page that says so; with AUTHPROXY_UPSTREAM_JWT the signed identity names
// the IdP, so that the same sub from two IdPs is never one user upstream.
func TestWrongIdPPageAndJWT(t *testing.T) {
	e := newMultiEnv(t, withVar("AUTHPROXY_UPSTREAM_JWT", "true"))
	subs := map[string]string{}
	for name, f := range map[string]*fakeIdP{"default": e.idp, "partners": e.others["partners"]} {
		f.setClaims(map[string]any{"sub": "same-sub", "email": "x@example.com", "email_verified": true})
		c := e.browser()
		up := fromUpstream(t, e.signInAt(t, c, f, "/oauth2/start?idp="+name+"&rd=%2Fportal%2F"))
		tok, err := jwt.ParseSigned(up.Header.Get("X-Authproxy-Jwt"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("%s: X-Authproxy-Jwt: %v", name, err)
		}
		var claims struct {
			Sub string `json:"sub"`
			IdP string `json:"idp"`
		}
		if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil || claims.Sub != "same-sub" {
			t.Fatalf("%s: claims %+v, %v", name, claims, err)
		}
		subs[name] = claims.IdP
		if name == "partners" {
			r := e.navigate(t, c, "/admin/")
			if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "an account of a kind this page does not accept") {
				t.Errorf("partner on /admin/: %d %.300s", r.Status, r.Body)
			}
			if !strings.Contains(e.logs.String(), `"reason":"signed in, but with an identity provider the rule does not accept"`) {
				t.Errorf("no audit line with the wrong-IdP reason:\n%s", e.logs.String())
			}
		}
	}
	if subs["default"] != "default" || subs["partners"] != "partners" {
		t.Errorf("JWT idp claims %v", subs)
	}
}

// TestSessionFollowsItsIdP: a partner session refreshes at the partner's
// token endpoint (never the default's), and signs out at the partner's
// end-session endpoint with the partner's ID token as the hint.
func TestSessionFollowsItsIdP(t *testing.T) {
	e := newMultiEnv(t)
	partner := e.others["partners"]
	partner.mu.Lock()
	partner.expiresIn = 30 // inside the refresh margin: the next request refreshes
	partner.mu.Unlock()
	c := e.browser()
	fromUpstream(t, e.signInAt(t, c, partner, "/oauth2/start?idp=partners&rd=%2Fportal%2F"))
	refreshes := func() int {
		partner.mu.Lock()
		defer partner.mu.Unlock()
		return partner.refreshCalls
	}
	staffTokens, before := e.idp.tokenCallCount(), refreshes()
	fromUpstream(t, e.navigate(t, c, "/portal/again"))
	if refreshes() != before+1 || e.idp.tokenCallCount() != staffTokens {
		t.Errorf("refreshes at the partner %d → %d (want one more); the default's token calls %d → %d (want none)", before, refreshes(), staffTokens, e.idp.tokenCallCount())
	}
	r := e.navigate(t, noFollow(c), signOutPath)
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.Status != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), partner.URL()+"/logout?") {
		t.Fatalf("sign-out: %d to %q, want the partner's end-session endpoint", r.Status, r.Header.Get("Location"))
	}
	if q := loc.Query(); q.Get("client_id") != "client-partners" || q.Get("id_token_hint") != partner.lastIDToken() {
		t.Errorf("end-session query %v: want the partner's client id and its last ID token", q)
	}
}

// TestIdPThatStopsIsShownDown: an IdP that stops answering after its
// discovery is shown unavailable on the chooser and in /readyz after a
// probe, and offered again once it answers.
func TestIdPThatStopsIsShownDown(t *testing.T) {
	e := newMultiEnv(t)
	partner := e.others["partners"]
	partnerDown := stoppable(partner)
	state := func() (chooser string, ready string) {
		r := e.navigate(t, noFollow(e.browser()), "/portal/")
		var ans readyAnswer
		_ = json.Unmarshal([]byte(e.api(t, e.browser(), readyPath).Body), &ans)
		return strings.Join(chooserLinks(r.Body), " "), ans.IdPs["partners"]
	}
	e.srv.probeIdPs(t.Context())
	if links, ready := state(); !strings.Contains(links, "idp=partners") || ready != "ok" {
		t.Fatalf("partner up: links %q, readyz %q", links, ready)
	}
	partnerDown.Store(true)
	e.srv.probeIdPs(t.Context())
	if links, ready := state(); strings.Contains(links, "idp=partners") || ready != "unavailable" {
		t.Errorf("partner down: links %q (want none to it), readyz %q (want unavailable)", links, ready)
	}
	if got := e.navigate(t, noFollow(e.browser()), "/oauth2/start?idp=partners&rd=%2F").Status; got != http.StatusServiceUnavailable {
		t.Errorf("sign-in at the partner while down: %d, want 503", got)
	}
	partnerDown.Store(false)
	e.srv.probeIdPs(t.Context())
	if links, ready := state(); !strings.Contains(links, "idp=partners") || ready != "ok" {
		t.Errorf("partner back: links %q, readyz %q", links, ready)
	}
}
