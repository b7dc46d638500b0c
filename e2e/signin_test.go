package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// whoami is the legacy app's /api/whoami answer (see deploy/demo/legacyapp).
type whoami struct {
	User              string              `json:"X-Forwarded-User"`
	Email             string              `json:"X-Forwarded-Email"`
	PreferredUsername string              `json:"X-Forwarded-Preferred-Username"`
	Groups            string              `json:"X-Forwarded-Groups"`
	IdP               string              `json:"X-Forwarded-Idp"`
	AccessToken       bool                `json:"X-Forwarded-Access-Token-Present"`
	ForwardedFor      string              `json:"X-Forwarded-For"`
	ForwardedProto    string              `json:"X-Forwarded-Proto"`
	ForwardedHost     string              `json:"X-Forwarded-Host"`
	IdentityHeaders   map[string][]string `json:"identity_headers"`
	Cookies           []string            `json:"cookies"`
	Path              string              `json:"path"`
	Query             string              `json:"query"`
}

// userinfo is authproxy's /oauth2/userinfo answer.
type userinfo struct {
	User              string   `json:"user"`
	Email             string   `json:"email"`
	PreferredUsername string   `json:"preferred_username"`
	Groups            []string `json:"groups"`
}

// identityHeaders are the headers authproxy sets; the app must get each once, spelled this way.
var identityHeaders = []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups", "X-Forwarded-Access-Token"}

// checkWhoami checks that the app saw u's identity, and nothing a client could have slipped in.
func checkWhoami(t *testing.T, w whoami, u user) {
	t.Helper()
	if w.User == "" || w.Email != u.email || w.PreferredUsername != u.preferredUsername || w.Groups != strings.Join(u.groups, ",") {
		t.Errorf("app saw X-Forwarded-User %q, -Email %q, -Preferred-Username %q, -Groups %q; want a user, %q, %q, %q",
			w.User, w.Email, w.PreferredUsername, w.Groups, u.email, u.preferredUsername, strings.Join(u.groups, ","))
	}
	if w.AccessToken {
		t.Errorf("app got X-Forwarded-Access-Token, but AUTHPROXY_PASS_ACCESS_TOKEN is off")
	}
	for name, values := range w.IdentityHeaders {
		norm := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		switch {
		case strings.HasPrefix(norm, "x-auth-request-"):
			t.Errorf("app got %s: %q; the X-Auth-Request-* family must never reach it", name, values)
		case slices.ContainsFunc(identityHeaders, func(h string) bool { return strings.EqualFold(h, norm) }):
			if !slices.Contains(identityHeaders, name) {
				t.Errorf("app got the variant %s: %q, which it could take for an identity header", name, values)
			} else if len(values) != 1 {
				t.Errorf("app got %s %d times: %q; want once", name, len(values), values)
			}
		}
	}
	for _, c := range w.Cookies {
		if strings.HasPrefix(c, "_authproxy") {
			t.Errorf("app got authproxy's cookie %s; authproxy must remove its own cookies (app got %q)", c, w.Cookies)
		}
	}
	proxyHost := strings.TrimPrefix(stack.proxyURL, "http://")
	if w.ForwardedFor != "127.0.0.1" || w.ForwardedProto != "http" || w.ForwardedHost != proxyHost {
		t.Errorf("app saw X-Forwarded-For %q, -Proto %q, -Host %q; want %q, %q, %q (no trusted proxies are configured)",
			w.ForwardedFor, w.ForwardedProto, w.ForwardedHost, "127.0.0.1", "http", proxyHost)
	}
}

// checkDexSubject checks that sub is a Dex subject for u: Dex encodes the user's ID and the
// connector ("local") rather than using the configured userID as it is.
func checkDexSubject(t *testing.T, sub string, u user) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(sub)
	if err != nil || !bytes.Contains(raw, []byte(u.userID)) || !bytes.Contains(raw, []byte("local")) {
		t.Errorf("X-Forwarded-User %q is not Dex's sub for %s (want base64url of its userID %s and connector \"local\")", sub, u.email, u.userID)
	}
}

// TestSignInReturnsToOriginalURL signs in from a deep link and checks what the app then sees.
func TestSignInReturnsToOriginalURL(t *testing.T) {
	tab := newBrowser(t)
	const path, query = "/some/page", "x=1&y=two"
	signIn(t, tab, alice, path+"?"+query)
	page := checkLegacyPage(t, tab, alice, path, query)

	var w whoami
	browseJSON(t, tab, "/api/whoami", &w)
	checkWhoami(t, w, alice)
	if w.User != page.User {
		t.Errorf("X-Forwarded-User differs between requests: page %q, /api/whoami %q", page.User, w.User)
	}
	checkDexSubject(t, w.User, alice)

	var info userinfo
	browseJSON(t, tab, "/oauth2/userinfo", &info)
	if info.User == "" || info.User != w.User || info.Email != alice.email || info.PreferredUsername != alice.preferredUsername || !slices.Equal(info.Groups, alice.groups) {
		t.Errorf("/oauth2/userinfo = %+v; want user %q (the app's X-Forwarded-User), email %q, preferred_username %q, groups %q",
			info, w.User, alice.email, alice.preferredUsername, alice.groups)
	}

	// A script on one of the proxy's pages calls the app's API with the session.
	r := browserFetch(t, tab, "/api/whoami?from=fetch")
	if r.Status != 200 {
		t.Fatalf("fetch(/api/whoami) with a session: got status %d (%s) %q; want 200", r.Status, r.Type, r.Body)
	}
	var fw whoami
	if err := json.Unmarshal([]byte(r.Body), &fw); err != nil {
		t.Fatalf("fetch(/api/whoami): %v: %q", err, r.Body)
	}
	checkWhoami(t, fw, alice)
	if fw.Query != "from=fetch" {
		t.Errorf("fetch(/api/whoami?from=fetch): app saw query %q", fw.Query)
	}
}

// TestTwoTabsSignInAtOnce starts sign-in in two tabs of one browser (one cookie jar) before
// finishing either: each tab must come back to its own page, whichever finishes first.
func TestTwoTabsSignInAtOnce(t *testing.T) {
	targets := [2]struct {
		u           user
		path, query string
	}{
		{alice, "/first/tab", "n=1"},
		{bob, "/second/tab", "n=2&next=%2Fa%3Fb"},
	}
	for _, tc := range []struct {
		name  string
		order [2]int // the order in which the tabs submit Dex's form
	}{
		{"first started ends first", [2]int{0, 1}},
		{"last started ends first", [2]int{1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := newBrowser(t)
			tabs := [2]context.Context{first, newTab(t, first)}
			for i, tab := range tabs {
				openToDexLogin(t, tab, targets[i].path+"?"+targets[i].query)
			}
			for _, i := range tc.order {
				tg := targets[i]
				submitDexLogin(t, tabs[i], tg.u, tg.path+"?"+tg.query)
				checkLegacyPage(t, tabs[i], tg.u, tg.path, tg.query)
			}
		})
	}
}
