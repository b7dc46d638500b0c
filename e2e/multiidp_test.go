package e2e

// Several identity providers at once (README "Several identity providers"): one authproxy in front
// of the legacy app with two real IdPs, Dex as the default IdP "staff" and node oidc-provider as
// "partners", one callback URL for both, and a policy whose rules name IdPs.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The partners IdP's client at oidc-provider, and the resource (RFC 8707) its client-credentials
// JWTs are issued for: their aud, so AUTHPROXY_IDP_PARTNERS_BEARER_AUDIENCES.
const (
	partnersClientID = "authproxy-op"
	partnersSecret   = "op-secret"
	partnersResource = "https://partners-api.example/"
)

// opLoginForm is a selector found only on oidc-provider's login form: after a click on the
// chooser, op.signIn may begin only once the browser shows that page, not the chooser it leaves.
const opLoginForm = `form input[name="prompt"][value="login"]`

// multiIdPPolicy is the policy file of TestMultiIdP.
const multiIdPPolicy = `rules:
  - path: /admin/
    allow: {idps: [staff], groups: [admins]}
  - path: /portal/
    allow: {idps: [staff, partners]}
  - path: /partners/
    allow: {idps: [partners]}
  - path: /
    allow: authenticated
`

// multiIdP is TestMultiIdP's stack: Dex ("staff", the default IdP), oidc-provider ("partners")
// and one authproxy signing in with both, in front of the shared legacy app.
type multiIdP struct {
	ps  *procSet
	pp  *proxyProc
	dex *dexIdP
	op  *oidcProvider
}

// startMultiIdP starts TestMultiIdP's stack, stopped when the test ends.
//
// oidc-provider's client has back-channel logout without sid (its logout tokens name the user by
// sub alone, so that the test can show that a sub is only ever the IdP's own), an extra user whose
// sub is alice's sub at Dex, and client-credentials JWTs that carry groups [admins].
func startMultiIdP(t *testing.T) *multiIdP {
	t.Helper()
	requireOIDCProvider(t) // skip (or fail under CI=true) before starting anything
	m := &multiIdP{ps: newProcSet(t)}
	m.pp = newProxy(t, m.ps, "authproxy-multiidp")
	m.dex = startDex(t, m.ps, dexOptions{Callbacks: []string{m.pp.callbackURL()}})
	m.op = startOIDCProviderIn(t, m.ps.testStack, opOptions{
		ClientID:               partnersClientID,
		ClientSecret:           partnersSecret,
		RedirectURIs:           []string{m.pp.callbackURL()}, // the same callback URL as Dex's
		PostLogoutRedirectURIs: []string{m.pp.url + "/"},
		BackchannelLogoutURI:   m.pp.url + "/oauth2/backchannel_logout",
		SkipConsent:            true,
		ExtraEnv: []string{
			"OP_BACKCHANNEL_LOGOUT_SESSION_REQUIRED=false",
			"OP_EXTRA_USERS=" + dexSubject(alice),
			"OP_CLIENT_CREDENTIALS_RESOURCE=" + partnersResource,
			"OP_CLIENT_CREDENTIALS_GROUPS=admins",
		},
	})
	policy := filepath.Join(m.ps.dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(multiIdPPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	m.pp.start(t, dexProxyEnv(m.dex, m.pp.callbackURL(), newSecret(),
		"AUTHPROXY_DEFAULT_IDP_NAME=staff",
		"AUTHPROXY_DISPLAY_NAME=Staff",
		"AUTHPROXY_IDPS=partners",
		"AUTHPROXY_IDP_PARTNERS_DISPLAY_NAME=Partners",
		"AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER="+m.op.issuer,
		"AUTHPROXY_IDP_PARTNERS_CLIENT_ID="+partnersClientID,
		"AUTHPROXY_IDP_PARTNERS_CLIENT_SECRET="+partnersSecret,
		"AUTHPROXY_IDP_PARTNERS_SCOPES=openid email profile groups",
		"AUTHPROXY_IDP_PARTNERS_BEARER_AUDIENCES="+partnersResource,
		"AUTHPROXY_POLICY_FILE="+policy,
	)...)
	return m
}

// dexSubject is the sub Dex's ID tokens give u of its local password database: the protobuf
// message {1: userID, 2: connector id "local"}, base64url without padding.
func dexSubject(u user) string {
	b := append([]byte{0x0a, byte(len(u.userID))}, u.userID...)
	b = append(b, 0x12, byte(len("local")))
	b = append(b, "local"...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestMultiIdP runs one authproxy with Dex ("staff", the default IdP) and oidc-provider
// ("partners") at once, under multiIdPPolicy. Its subtests share the stack; the last stops Dex.
//   - chooser in Chromium: /portal/ lists both IdPs; each choice signs in there, and the app gets
//     that IdP's user and X-Forwarded-Idp;
//   - routes naming one IdP: they send a browser straight to it, and refuse (403) the other IdP's
//     users, even a partner user whose IdP says she is in admins;
//   - bearer tokens: a Dex access token and an oidc-provider JWT pass on /portal/ as their IdP's,
//     and are refused (403) on the route that names only the other IdP;
//   - back-channel logout: oidc-provider's logout token (from its end-session page) ends its user's
//     session, and not a Dex session of the same sub;
//   - mix-up: a sign-in started at one IdP and completed with the other's code is refused before
//     any token request, and sets no session;
//   - Dex down: partner sign-ins go on; the running proxy (after a probe) and one started then
//     show Staff unavailable in /readyz, and the latter on the chooser.
func TestMultiIdP(t *testing.T) {
	m := startMultiIdP(t)
	aliceSub := dexSubject(alice)

	t.Run("chooser in Chromium", func(t *testing.T) {
		tab := newBrowser(t)
		const path = "/portal/chooser"
		for _, tc := range []struct {
			idp    string
			signIn func()
			user   string
			email  string
			groups []string
		}{
			{"staff", func() {
				run(t, tab, "wait for Dex's login form", chromedp.WaitVisible("#login", chromedp.ByID))
				if loc := location(t, tab); !strings.HasPrefix(loc, m.dex.issuer+"/auth/local/login?") {
					t.Fatalf("after choosing Staff: at %s, want Dex's login form %s/auth/local/login?…", loc, m.dex.issuer)
				}
				run(t, tab, "sign in at Dex as "+alice.email,
					chromedp.SendKeys("#login", alice.email, chromedp.ByID),
					chromedp.SendKeys("#password", alice.password, chromedp.ByID),
					chromedp.Click("#submit-login", chromedp.ByID),
				)
			}, aliceSub, alice.email, alice.groups},
			{"partners", func() {
				run(t, tab, "wait for oidc-provider's login form", chromedp.WaitReady(opLoginForm, chromedp.ByQuery))
				m.op.signIn(t, tab, opAda)
			}, opAda.login, opAda.email, opAda.groups},
		} {
			clearCookies(t, tab)
			run(t, tab, "open "+path+" without a session",
				chromedp.Navigate(m.pp.url+path),
				chromedp.WaitVisible("ul.choices", chromedp.ByQuery),
			)
			var choices []string
			run(t, tab, "read the chooser", chromedp.Evaluate(
				`[...document.querySelectorAll("ul.choices li")].map(li => { const a = li.querySelector("a"); return li.textContent.trim() + " " + (a ? a.getAttribute("href") : "(no link)"); })`, &choices))
			want := []string{"Staff /oauth2/start?idp=staff&rd=%2Fportal%2Fchooser", "Partners /oauth2/start?idp=partners&rd=%2Fportal%2Fchooser"}
			if !slices.Equal(choices, want) {
				t.Fatalf("the chooser on %s lists %q, want %q", path, choices, want)
			}
			run(t, tab, "choose "+tc.idp, chromedp.Click(`ul.choices a[href*="idp=`+tc.idp+`&"]`, chromedp.ByQuery))
			tc.signIn()
			run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
			if loc := location(t, tab); loc != m.pp.url+path {
				t.Fatalf("signed in at %s: landed on %s, want %s", tc.idp, loc, m.pp.url+path)
			}
			p := readLegacyPage(t, tab)
			var idp string
			run(t, tab, "read X-Forwarded-Idp", chromedp.Text("#idp", &idp, chromedp.ByID))
			if idp != tc.idp || p.User != tc.user || p.Email != tc.email || !slices.Equal(p.Groups, tc.groups) {
				t.Errorf("signed in at %s, the app saw X-Forwarded-Idp %q, -User %q, -Email %q, -Groups %q; want %q, %q, %q, %q",
					tc.idp, idp, p.User, p.Email, p.Groups, tc.idp, tc.user, tc.email, tc.groups)
			}
		}
	})

	t.Run("routes naming one IdP", func(t *testing.T) {
		// ada's partner IdP says she is in admins, as alice's Dex does; /admin/ names only staff.
		ada := m.signInHTTP(t, "partners", opAda.login, "any password")
		aliceJar := m.signInHTTP(t, "staff", alice.email, alice.password)
		bobJar := m.signInHTTP(t, "staff", bob.email, bob.password)
		if _, w, _ := whoamiAt(t, m.pp.url, ada); w.IdP != "partners" || w.Groups != "admins,staff" {
			t.Fatalf("ada's session: X-Forwarded-Idp %q, -Groups %q; want partners, admins,staff", w.IdP, w.Groups)
		}
		for _, tc := range []struct {
			who     string
			cookies []*http.Cookie
			path    string
			want    int
		}{
			{"ada (partners, admins)", ada, "/admin/x", http.StatusForbidden},
			{"alice (staff, admins)", aliceJar, "/admin/x", http.StatusOK},
			{"bob (staff, not admins)", bobJar, "/admin/x", http.StatusForbidden},
			{"ada (partners)", ada, "/partners/x", http.StatusOK},
			{"alice (staff)", aliceJar, "/partners/x", http.StatusForbidden},
			{"ada (partners)", ada, "/portal/x", http.StatusOK},
			{"alice (staff)", aliceJar, "/portal/x", http.StatusOK},
		} {
			resp, body := call(t, http.MethodGet, m.pp.url+tc.path, tc.cookies, http.Header{"Accept": {"text/html"}}, nil)
			if resp.StatusCode != tc.want {
				t.Errorf("%s on %s: %s; want %d\n%.300s", tc.who, tc.path, resp.Status, tc.want, body)
			}
			if tc.want == http.StatusForbidden && !strings.Contains(string(body), "Access denied") {
				t.Errorf("%s on %s: not the 403 page: %.300s", tc.who, tc.path, body)
			}
		}

		// A fresh browser on a route that accepts one IdP goes straight to it, no chooser.
		tab := newBrowser(t)
		run(t, tab, "open /admin/direct without a session",
			chromedp.Navigate(m.pp.url+"/admin/direct"),
			chromedp.WaitVisible("#login", chromedp.ByID),
		)
		if loc := location(t, tab); !strings.HasPrefix(loc, m.dex.issuer+"/auth/local/login?") {
			t.Errorf("/admin/ without a session: at %s, want Dex's login form", loc)
		}
		clearCookies(t, tab)
		const path = "/partners/direct"
		run(t, tab, "open "+path+" without a session", chromedp.Navigate(m.pp.url+path))
		m.op.signIn(t, tab, opAda) // fails unless the tab shows oidc-provider's login form first
		run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
		if loc := location(t, tab); loc != m.pp.url+path {
			t.Fatalf("signed in from %s: landed on %s", path, loc)
		}
		// The partner user on /admin/: the 403 page, in the browser too.
		run(t, tab, "open /admin/ as ada", chromedp.Navigate(m.pp.url+"/admin/"), chromedp.WaitVisible("main", chromedp.ByQuery))
		var text string
		var status int
		run(t, tab, "read the page",
			chromedp.Evaluate(`document.body.innerText`, &text),
			chromedp.Evaluate(`performance.getEntriesByType("navigation")[0].responseStatus`, &status),
		)
		if status != http.StatusForbidden || !strings.Contains(text, "Access denied") {
			t.Errorf("ada on /admin/ in Chromium: status %d, page %q; want the 403 page", status, text)
		}
	})

	t.Run("bearer tokens", func(t *testing.T) {
		dexToken := dexPasswordToken(t, m.dex, alice)
		opToken := partnersClientToken(t, m.op)
		if c := jwtClaims(t, opToken); c["iss"] != m.op.issuer || c["aud"] != partnersResource || fmt.Sprint(c["groups"]) != "[admins]" {
			t.Fatalf("oidc-provider's client-credentials JWT: iss %v, aud %v, groups %v; want %s, %s, [admins]", c["iss"], c["aud"], c["groups"], m.op.issuer, partnersResource)
		}
		for _, tc := range []struct {
			name, token, path string
			want              int
			idp, user         string
		}{
			{"Dex's token", dexToken, "/portal/bearer", http.StatusOK, "staff", aliceSub},
			{"Dex's token", dexToken, "/admin/bearer", http.StatusOK, "staff", aliceSub},
			{"Dex's token", dexToken, "/partners/bearer", http.StatusForbidden, "", ""},
			{"oidc-provider's token", opToken, "/portal/bearer", http.StatusOK, "partners", partnersClientID},
			{"oidc-provider's token", opToken, "/partners/bearer", http.StatusOK, "partners", partnersClientID},
			// Its groups claim says admins, but groups are the partner IdP's own.
			{"oidc-provider's token", opToken, "/admin/bearer", http.StatusForbidden, "", ""},
		} {
			resp, body := call(t, http.MethodGet, m.pp.url+tc.path, nil, http.Header{"Authorization": {"Bearer " + tc.token}}, nil)
			if resp.StatusCode != tc.want {
				t.Errorf("%s on %s: %s %.300s; want %d", tc.name, tc.path, resp.Status, body, tc.want)
				continue
			}
			if tc.want != http.StatusOK {
				continue
			}
			for _, cell := range []string{`<td id="idp">` + tc.idp + `</td>`, `<td id="user">` + tc.user + `</td>`} {
				if !strings.Contains(string(body), cell) {
					t.Errorf("%s on %s: the app's page lacks %s:\n%.1500s", tc.name, tc.path, cell, body)
				}
			}
		}
	})

	t.Run("back-channel logout", func(t *testing.T) {
		// alice at Dex, and at oidc-provider a user whose sub is the same string; ada at oidc-provider.
		aliceJar := m.signInHTTP(t, "staff", alice.email, alice.password)
		ada := m.signInHTTP(t, "partners", opAda.login, "any password")
		mirror := opUser{login: aliceSub}
		tab := newBrowser(t)
		run(t, tab, "open /partners/bcl without a session", chromedp.Navigate(m.pp.url+"/partners/bcl"))
		m.op.signIn(t, tab, mirror)
		run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
		mirrorJar := httpCookies(proxyCookies(t, tab, m.pp.url))
		for _, s := range []struct {
			name      string
			jar       []*http.Cookie
			user, idp string
		}{{"alice", aliceJar, aliceSub, "staff"}, {"the partner user with alice's sub", mirrorJar, aliceSub, "partners"}, {"ada", ada, opAda.login, "partners"}} {
			if code, w, body := whoamiAt(t, m.pp.url, s.jar); code != http.StatusOK || w.User != s.user || w.IdP != s.idp {
				t.Fatalf("%s before the logout: %d, X-Forwarded-User %q, -Idp %q; want 200, %q, %q\n%s", s.name, code, w.User, w.IdP, s.user, s.idp, body)
			}
		}
		ok := func() float64 { return m.resultMetric(t, "authproxy_backchannel_logouts_total", "ok", "partners") }
		okBefore := ok()

		// The partner user logs out at oidc-provider, which posts a logout token naming sub only.
		opTab := newTab(t, tab)
		run(t, opTab, "open the provider's end-session endpoint", chromedp.Navigate(m.op.endSessionURL()))
		if page := m.op.opPage(t, opTab, "open the end-session endpoint"); page != "logout" {
			t.Fatalf("the provider's end-session endpoint shows %q; want its logout confirmation\n%s", page, describe(opTab))
		}
		m.op.opAct(t, opTab, "confirm the logout at the provider", chromedp.Click(`button[name="logout"][value="yes"]`, chromedp.ByQuery))
		if log := m.op.log(t); !strings.Contains(log, "event backchannel.success client="+partnersClientID+" sub="+aliceSub+" sid=") {
			t.Fatalf("the provider did not log a back-channel logout for sub %s:\n%s", aliceSub, log)
		}
		if got := ok() - okBefore; got != 1 {
			t.Errorf("authproxy_backchannel_logouts_total{result=\"ok\",idp=\"partners\"} rose by %v; want 1", got)
		}
		wantSignedOut(t, "the partner user after the back-channel logout", m.pp.url, mirrorJar)
		if code, w, body := whoamiAt(t, m.pp.url, aliceJar); code != http.StatusOK || w.User != aliceSub || w.IdP != "staff" {
			t.Errorf("alice (Dex, the same sub) after oidc-provider's logout token for that sub: %d %q %q; want her session to go on\n%s", code, w.User, w.IdP, body)
		}
		if code, w, _ := whoamiAt(t, m.pp.url, ada); code != http.StatusOK || w.User != opAda.login {
			t.Errorf("ada (another partner user) after the logout: %d %q; want her session to go on", code, w.User)
		}
	})

	t.Run("mix-up", func(t *testing.T) {
		// One client, two sign-ins: one started at each IdP and signed in there, neither callback followed.
		hb := m.newHTTPBrowser(t)
		staffCB := m.authorize(t, hb, "staff", "/portal/mixup-staff", alice.email, alice.password).Query()
		partnersCB := m.authorize(t, hb, "partners", "/portal/mixup-partners", opAda.login, "any password").Query()
		if partnersCB.Get("iss") != m.op.issuer || partnersCB.Get("code") == "" {
			t.Fatalf("oidc-provider's callback: iss %q, code %q; want iss %s and a code", partnersCB.Get("iss"), partnersCB.Get("code"), m.op.issuer)
		}
		t.Logf("Dex's callback has iss: %t; oidc-provider's: %t", staffCB.Has("iss"), partnersCB.Has("iss"))

		// Each sign-in's state with the other IdP's code and iss (Dex's iss only if it sent one).
		mixed := func(state, other url.Values) url.Values {
			q := url.Values{"state": {state.Get("state")}, "code": {other.Get("code")}}
			if other.Has("iss") {
				q.Set("iss", other.Get("iss"))
			}
			return q
		}
		dexTokensBefore := sumValues(m.dex.tokenRequests(t))
		opTokensBefore := strings.Count(m.op.log(t), " POST /token ")
		for _, tc := range []struct {
			name, startedAt string
			q               url.Values
		}{
			{"started at Dex, completed with oidc-provider's code and iss", "staff", mixed(staffCB, partnersCB)},
			{"started at oidc-provider, completed with Dex's code", "partners", mixed(partnersCB, staffCB)},
		} {
			rejected := m.resultMetric(t, "authproxy_sign_ins_total", "rejected", tc.startedAt)
			resp, body := hb.get(t, m.pp.callbackURL()+"?"+tc.q.Encode())
			if resp.StatusCode/100 != 4 || !strings.Contains(string(body), "Sign-in was not completed") {
				t.Errorf("%s: %s %.300s; want a 4xx page", tc.name, resp.Status, body)
			}
			for _, c := range resp.Cookies() {
				if strings.HasPrefix(c.Name, "_authproxy") && !strings.HasPrefix(c.Name, "_authproxy_csrf_") {
					t.Errorf("%s: the callback set the session cookie %s", tc.name, c.Name)
				}
			}
			if got := m.resultMetric(t, "authproxy_sign_ins_total", "rejected", tc.startedAt) - rejected; got != 1 {
				t.Errorf("%s: authproxy_sign_ins_total{result=\"rejected\",idp=%q} rose by %v; want 1", tc.name, tc.startedAt, got)
			}
		}
		if got := sumValues(m.dex.tokenRequests(t)) - dexTokensBefore; got != 0 {
			t.Errorf("Dex answered %v token requests during the mix-ups; want none", got)
		}
		if got := strings.Count(m.op.log(t), " POST /token ") - opTokensBefore; got != 0 {
			t.Errorf("oidc-provider answered %d token requests during the mix-ups; want none", got)
		}
		if code, _, body := whoamiAt(t, m.pp.url, hb.cookies(m.pp.url)); code != http.StatusUnauthorized {
			t.Errorf("after the mix-ups the client has a session: %d %.200s", code, body)
		}
	})

	t.Run("Dex down", func(t *testing.T) {
		aliceJar := m.signInHTTP(t, "staff", alice.email, alice.password)
		m.ps.stopProc(t, m.dex.p)

		// The running proxy discovered Dex before it stopped: partner sign-ins and staff sessions go on.
		m.signInHTTP(t, "partners", opAda.login, "any password")
		if code, w, body := whoamiAt(t, m.pp.url, aliceJar); code != http.StatusOK || w.IdP != "staff" {
			t.Errorf("alice's session with Dex down: %d %q\n%s", code, w.IdP, body)
		}
		// With several IdPs each is probed every 10 s: the proxy that discovered Dex before it
		// stopped notices, and says so in /readyz (still ready: the partners serve).
		want := readyAnswer{Status: "ok", IdPs: map[string]string{"partners": "ok", "staff": "unavailable"}}
		waitReadyz := func(what string) {
			t.Helper()
			deadline := time.Now().Add(40 * time.Second)
			for {
				resp, body := call(t, http.MethodGet, m.pp.url+"/readyz", nil, nil, nil)
				var got readyAnswer
				if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &got) == nil && got.Status == want.Status && maps.Equal(got.IdPs, want.IdPs) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz of the proxy %s: %s %s; want 200 %+v", what, resp.Status, body, want)
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
		waitReadyz("that discovered Dex before it stopped")
		// and so does its chooser: Staff greyed, without a link.
		if resp, body := call(t, http.MethodGet, m.pp.url+"/portal/down", nil, http.Header{"Accept": {"text/html"}}, nil); resp.StatusCode != http.StatusOK ||
			!strings.Contains(string(body), "unavailable right now") || strings.Contains(string(body), "idp=staff") || !strings.Contains(string(body), "idp=partners") {
			t.Errorf("the chooser of the proxy that discovered Dex, with Dex down: %s %.600s; want Staff unavailable, only the partners' link", resp.Status, body)
		}

		// Started with Dex down, the proxy keeps retrying Dex's discovery and serves the partners.
		m.pp.restart(t)
		waitReadyz("started with Dex down")
		if resp, body := call(t, http.MethodGet, m.pp.url+"/admin/down", nil, http.Header{"Accept": {"text/html"}}, nil); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "Identity provider unavailable") {
			t.Errorf("/admin/ (staff only) with Dex down: %s %.300s; want the 503 page", resp.Status, body)
		}
		if code, w, _ := whoamiAt(t, m.pp.url, aliceJar); code != http.StatusOK || w.IdP != "staff" {
			t.Errorf("alice's session after the restart with Dex down: %d %q; want it to go on", code, w.IdP)
		}

		tab := newBrowser(t)
		const path = "/portal/down"
		run(t, tab, "open "+path+" without a session",
			chromedp.Navigate(m.pp.url+path),
			chromedp.WaitVisible("ul.choices", chromedp.ByQuery),
		)
		var links []string
		var text string
		run(t, tab, "read the chooser",
			chromedp.Evaluate(`[...document.querySelectorAll("ul.choices a")].map(a => a.textContent.trim() + " " + a.getAttribute("href"))`, &links),
			chromedp.Evaluate(`document.querySelector("ul.choices").innerText`, &text),
		)
		if want := []string{"Partners /oauth2/start?idp=partners&rd=%2Fportal%2Fdown"}; !slices.Equal(links, want) {
			t.Errorf("the chooser's links with Dex down: %q, want %q", links, want)
		}
		if !strings.Contains(text, "Staff") || !strings.Contains(text, "unavailable right now") {
			t.Errorf("the chooser with Dex down reads %q; want Staff unavailable right now", text)
		}
		run(t, tab, "choose Partners",
			chromedp.Click(`ul.choices a[href*="idp=partners&"]`, chromedp.ByQuery),
			chromedp.WaitReady(opLoginForm, chromedp.ByQuery),
		)
		m.op.signIn(t, tab, opAda)
		run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
		var idp string
		run(t, tab, "read X-Forwarded-Idp", chromedp.Text("#idp", &idp, chromedp.ByID))
		if loc := location(t, tab); loc != m.pp.url+path || idp != "partners" {
			t.Errorf("signed in at the partners with Dex down: at %s, X-Forwarded-Idp %q; want %s, partners", loc, idp, m.pp.url+path)
		}
	})
}

// readyAnswer is authproxy's /readyz answer.
type readyAnswer struct {
	Status   string            `json:"status"`
	NotReady []string          `json:"not_ready"`
	IdPs     map[string]string `json:"idps"`
}

// resultMetric returns authproxy's metric name{result, idp} (0 before its first sample).
func (m *multiIdP) resultMetric(t *testing.T, name, result, idp string) float64 {
	t.Helper()
	var v float64
	for _, s := range scrape(t, m.pp.url+"/metrics", name) {
		if s.labels["result"] == result && s.labels["idp"] == idp {
			v += s.value
		}
	}
	return v
}

// sumValues adds up m's values.
func sumValues(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// httpBrowser is a browser without a browser: an HTTP client with a cookie jar of its own that
// follows redirects, except to the proxy's callback, which it leaves to the test.
type httpBrowser struct {
	c        *http.Client
	callback string
}

func (m *multiIdP) newHTTPBrowser(t *testing.T) *httpBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hb := &httpBrowser{callback: m.pp.callbackURL() + "?"}
	hb.c = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), hb.callback) {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}}
	return hb
}

// cookies returns the jar's authproxy session cookies for origin (not the sign-ins' state cookies).
func (hb *httpBrowser) cookies(origin string) []*http.Cookie {
	base, _ := url.Parse(origin)
	var out []*http.Cookie
	for _, c := range hb.c.Jar.Cookies(base) {
		if strings.HasPrefix(c.Name, "_authproxy") && !strings.HasPrefix(c.Name, "_authproxy_csrf_") {
			out = append(out, c)
		}
	}
	return out
}

// get GETs u (Accept text/html, as a browser navigates); post posts form to u.
func (hb *httpBrowser) get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	return hb.do(t, http.MethodGet, u, nil)
}

func (hb *httpBrowser) post(t *testing.T, u string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	return hb.do(t, http.MethodPost, u, form)
}

func (hb *httpBrowser) do(t *testing.T, method, u string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hb.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp, b
}

// authorize starts a sign-in at idp through the proxy (/oauth2/start?idp=…&rd=rd) in hb, fills in
// the IdP's login form (Dex's, or oidc-provider's) as login with password, and returns the
// callback URL the IdP then sends the browser to, not followed: its state cookie is in hb.
func (m *multiIdP) authorize(t *testing.T, hb *httpBrowser, idp, rd, login, password string) *url.URL {
	t.Helper()
	resp, body := hb.get(t, m.pp.url+"/oauth2/start?idp="+idp+"&rd="+url.QueryEscape(rd))
	form := url.Values{"login": {login}, "password": {password}}
	at := resp.Request.URL.String()
	switch idp {
	case "staff":
		if !strings.HasPrefix(at, m.dex.issuer+"/auth/local/login?") {
			t.Fatalf("sign-in at %s: at %s (%s), want Dex's login form\n%.300s", idp, at, resp.Status, body)
		}
	case "partners":
		if !strings.HasPrefix(at, m.op.interactionURL()) {
			t.Fatalf("sign-in at %s: at %s (%s), want oidc-provider's login form\n%.300s", idp, at, resp.Status, body)
		}
		form.Set("prompt", "login")
	}
	resp, body = hb.post(t, at, form)
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, hb.callback) {
		t.Fatalf("sign-in at %s as %s: %s to %q, want a redirect to %s…\n%.300s", idp, login, resp.Status, loc, hb.callback, body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// signInHTTP signs in at idp as login without a browser and returns the proxy's session cookies.
func (m *multiIdP) signInHTTP(t *testing.T, idp, login, password string) []*http.Cookie {
	t.Helper()
	hb := m.newHTTPBrowser(t)
	const rd = "/portal/signed-in"
	cb := m.authorize(t, hb, idp, rd, login, password)
	resp, body := hb.get(t, cb.String())
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != m.pp.url+rd || !strings.Contains(string(body), `<td id="idp">`+idp+`</td>`) {
		t.Fatalf("sign-in at %s as %s: the callback led to %s %s, want the app's page at %s for %s\n%.300s", idp, login, resp.Request.URL, resp.Status, rd, idp, body)
	}
	out := hb.cookies(m.pp.url)
	if len(out) == 0 {
		t.Fatalf("sign-in at %s as %s: no session cookie", idp, login)
	}
	return out
}

// dexPasswordToken returns an access token (a JWT) from dex's password grant for u, as the demo client.
func dexPasswordToken(t *testing.T, dex *dexIdP, u user) string {
	t.Helper()
	return tokenRequest(t, dex.issuer+"/token", "authproxy-demo", "demo-secret", url.Values{
		"grant_type": {"password"},
		"username":   {u.email},
		"password":   {u.password},
		"scope":      {"openid email profile groups"},
	})
}

// partnersClientToken returns a JWT access token from op's client-credentials grant for partnersResource.
func partnersClientToken(t *testing.T, op *oidcProvider) string {
	t.Helper()
	return tokenRequest(t, op.issuer+"/token", partnersClientID, partnersSecret, url.Values{
		"grant_type": {"client_credentials"},
		"resource":   {partnersResource},
		"scope":      {"api"},
	})
}

// tokenRequest posts form to a token endpoint as the client (HTTP Basic) and returns the access token, which must be a JWT.
func tokenRequest(t *testing.T, endpoint, clientID, secret string, form url.Values) string {
	t.Helper()
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)))
	resp, body := call(t, http.MethodPost, endpoint, nil, http.Header{
		"Content-Type":  {"application/x-www-form-urlencoded"},
		"Authorization": {"Basic " + basic},
	}, strings.NewReader(form.Encode()))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || resp.StatusCode != http.StatusOK || strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatalf("%s grant at %s: %s %v %q", form.Get("grant_type"), endpoint, resp.Status, err, body)
	}
	return tok.AccessToken
}
