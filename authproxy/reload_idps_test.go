package authproxy

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// The identity providers a Server serves are fixed at its start. The
// process environment that holds AUTHPROXY_IDPS, AUTHPROXY_DEFAULT_IDP_NAME,
// the issuers and AUTHPROXY_IDP_<NAME>_BEARER_ONLY does not change, but
// Reload and WatchConfig read the configuration through the Lookup they are
// given, which an embedder's (or a test's) may answer differently each time.

// overriding returns base with the variables of set answered from it.
func overriding(base Lookup, set map[string]string) Lookup {
	return func(name string) (string, bool) {
		if v, ok := set[name]; ok {
			return v, true
		}
		return base(name)
	}
}

// callbackAt signs a user in at IdP name (its fake IdP f), which returns
// email, and answers the status of authproxy's callback: 302 when the user
// may sign in, 403 when the allow-list refuses them.
func (e *testEnv) callbackAt(t *testing.T, f *fakeIdP, name, email string) int {
	t.Helper()
	f.setClaims(map[string]any{"sub": "u-" + email, "email": email, "email_verified": true})
	c := e.browser()
	r := e.navigate(t, noFollow(c), "/oauth2/start?idp="+name+"&rd=%2F")
	loc := r.Header.Get("Location")
	if r.Status != http.StatusFound || !strings.HasPrefix(loc, f.URL()+"/auth?") {
		t.Fatalf("start at %s: %d to %q, want 302 to %s", name, r.Status, loc, f.URL())
	}
	return e.callback(t, c, f.authorize(t, loc)).Status
}

// newPartnersEnv is a server with the default IdP and partners, whose
// allow-lists let in staff.example and ok@partner.example (or those
// opts set) alone.
func newPartnersEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	// The emails add to the domains, whose default (*) would let anyone in.
	opts = append([]envOption{withOtherIdP("partners"), withVar("AUTHPROXY_ALLOWED_EMAIL_DOMAINS", "staff.example"),
		withVar("AUTHPROXY_IDP_PARTNERS_ALLOWED_EMAILS", "ok@partner.example"),
		withVar("AUTHPROXY_IDP_PARTNERS_ALLOWED_EMAIL_DOMAINS", "staff.partner.example")}, opts...)
	e := newTestEnv(t, opts...)
	e.waitReady(t)
	return e
}

// refusesUnlisted checks that both IdPs' allow-lists refuse an unlisted user.
func (e *testEnv) refusesUnlisted(t *testing.T, when string) {
	t.Helper()
	if got := e.callbackAt(t, e.idp, "default", "eve@elsewhere.example"); got != http.StatusForbidden {
		t.Errorf("an unlisted user's sign-in at the default IdP %s: %d, want 403", when, got)
	}
	if got := e.callbackAt(t, e.others["partners"], "partners", "eve@partner.example"); got != http.StatusForbidden {
		t.Errorf("an unlisted partner's sign-in %s: %d, want 403", when, got)
	}
}

// A reload whose configuration names other identity providers than the
// server runs (one dropped or added, the default renamed, an IdP's issuer
// or bearer-only changed) is refused whole: the running IdPs keep the
// allow-lists they had, the problem names the variable, the refusal is
// counted and the server stays ready. Before, a dropped IdP went on
// serving sign-ins without its allow-list, and a renamed default IdP's
// users were judged as another IdP's, by no allow-list.
func TestReloadRefusesAnotherIdPSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(e *testEnv) map[string]string
		want func(e *testEnv) string
	}{
		{"an IdP dropped",
			func(*testEnv) map[string]string { return map[string]string{"AUTHPROXY_IDPS": ""} },
			func(*testEnv) string {
				return "AUTHPROXY_IDPS: the identity providers changed (was default,partners; now default); changing them needs a restart"
			}},
		{"an IdP added",
			func(*testEnv) map[string]string {
				return map[string]string{"AUTHPROXY_IDPS": "partners,robots",
					"AUTHPROXY_IDP_ROBOTS_OIDC_ISSUER": "https://robots.example", "AUTHPROXY_IDP_ROBOTS_CLIENT_ID": "robots"}
			},
			func(*testEnv) string {
				return "AUTHPROXY_IDPS: the identity providers changed (was default,partners; now default,partners,robots); changing them needs a restart"
			}},
		{"the default IdP renamed",
			func(*testEnv) map[string]string { return map[string]string{"AUTHPROXY_DEFAULT_IDP_NAME": "staff"} },
			func(*testEnv) string {
				return "AUTHPROXY_DEFAULT_IDP_NAME: the default identity provider changed (was default; now staff); changing it needs a restart"
			}},
		{"an IdP made bearer-only",
			func(*testEnv) map[string]string {
				return map[string]string{"AUTHPROXY_IDP_PARTNERS_BEARER_ONLY": "true"}
			},
			func(*testEnv) string {
				return "AUTHPROXY_IDP_PARTNERS_BEARER_ONLY: changed (was false; now true); changing it needs a restart"
			}},
		{"an IdP's issuer changed",
			func(*testEnv) map[string]string {
				return map[string]string{"AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER": "https://partners.example"}
			},
			func(e *testEnv) string {
				return "AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER: the issuer changed (was " + e.others["partners"].URL() + "; now https://partners.example); changing it needs a restart"
			}},
		{"the default IdP's issuer changed",
			func(e *testEnv) map[string]string {
				return map[string]string{"AUTHPROXY_OIDC_ISSUER": e.idp.URL() + "/"}
			},
			func(e *testEnv) string {
				return "AUTHPROXY_OIDC_ISSUER: the issuer changed (was " + e.idp.URL() + "; now " + e.idp.URL() + "/); changing it needs a restart"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newPartnersEnv(t)
			e.refusesUnlisted(t, "before any reload")
			before := e.srv.live.Load()
			want := tc.want(e)
			err := e.srv.Reload(overriding(e.lookup, tc.set(e)))
			var re *ReloadError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), want) {
				t.Errorf("Reload: %v; want a *ReloadError saying %q", err, want)
			}
			if e.srv.live.Load() != before {
				t.Error("a refused reload replaced the configuration in effect")
			}
			if ok, bad := e.reloads(t, "ok"), e.reloads(t, "error"); ok != 0 || bad != 1 {
				t.Errorf(`authproxy_config_reloads_total: ok %v, error %v; want 0 and 1`, ok, bad)
			}
			last := lastLogLine(e.logs.String(), "configuration reload refused")
			inJSON, _ := json.Marshal(want)
			if !strings.Contains(last, strings.Trim(string(inJSON), `"`)) {
				t.Errorf("the log line of the refusal does not say %q: %s", want, last)
			}
			e.refusesUnlisted(t, "after the refused reload")
			if got := e.statusOf(t, "", "/readyz"); got != http.StatusOK {
				t.Errorf("/readyz after the refused reload: %d, want 200", got)
			}
		})
	}
}

// The allow-list of an IdP other than the default still reloads, from its
// file, and the policy after the reload is the running IdPs'.
func TestReloadIdPAllowList(t *testing.T) {
	emails := filepath.Join(t.TempDir(), "partner-emails")
	writeConfigFile(t, emails, "ok@partner.example\n")
	e := newPartnersEnv(t, withVar("AUTHPROXY_IDP_PARTNERS_ALLOWED_EMAILS", ""), withVar("AUTHPROXY_IDP_PARTNERS_ALLOWED_EMAILS_FILE", emails))
	partner := e.others["partners"]
	e.refusesUnlisted(t, "before the reload")
	writeConfigFile(t, emails, "ok@partner.example\neve@partner.example\n")
	if err := e.srv.Reload(e.lookup); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := e.callbackAt(t, partner, "partners", "eve@partner.example"); got != http.StatusFound {
		t.Errorf("the partner added to the allow-list, after the reload: %d, want 302", got)
	}
	if got := e.callbackAt(t, partner, "partners", "mallory@partner.example"); got != http.StatusForbidden {
		t.Errorf("a partner still unlisted, after the reload: %d, want 403", got)
	}
	if got := e.callbackAt(t, e.idp, "default", "eve@elsewhere.example"); got != http.StatusForbidden {
		t.Errorf("an unlisted user of the default IdP, after the reload: %d, want 403", got)
	}
	if line := lastLogLine(e.logs.String(), "configuration reloaded"); !strings.Contains(line, `"changed":["AUTHPROXY_IDP_PARTNERS_ALLOWED_EMAILS"]`) {
		t.Errorf("the log does not say the reload changed AUTHPROXY_IDP_PARTNERS_ALLOWED_EMAILS: %s", line)
	}
	pol := e.srv.live.Load().policy
	if pol.DefaultIdP != "default" || len(pol.IdPAllow) != 1 || len(pol.IdPAllow["partners"].Emails) != 2 {
		t.Errorf("the policy after the reload: default IdP %q, allow-lists %v; want default and partners' two emails", pol.DefaultIdP, pol.IdPAllow)
	}
}
