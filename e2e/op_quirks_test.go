package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestOIDCProviderKeycloakRolesAndRefresh runs the second real provider
// configured like Keycloak: realm roles (realm_access.roles) become groups
// with AUTHPROXY_PROVIDER=keycloak, and with 62-second access tokens the
// session refreshes against oidc-provider and keeps serving.
func TestOIDCProviderKeycloakRolesAndRefresh(t *testing.T) {
	s := startOPStack(t, opOptions{AccessTokenTTL: 62 * time.Second, IDTokenTTL: 62 * time.Second, SkipConsent: true},
		"AUTHPROXY_PROVIDER=keycloak", "AUTHPROXY_KEYCLOAK_ROLES=realm", "AUTHPROXY_GROUPS_CLAIM=groups")
	tab := newBrowser(t)
	run(t, tab, "open a protected page", chromedp.Navigate(s.proxyURL+"/roles"))
	s.op.signIn(t, tab, opAda)
	run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))

	wantGroups := strings.Join(append(append([]string{}, opAda.groups...), opAda.roles...), ",")
	var w whoami
	opBrowseJSON(t, tab, s.proxyURL+"/api/whoami", &w)
	if w.Groups != wantGroups {
		t.Errorf("groups %q, want the groups claim and the realm roles: %q", w.Groups, wantGroups)
	}

	// 62 s tokens are within the one-minute margin after 2 s: the next
	// request refreshes at the provider.
	before := proxyMetric(t, s.proxyURL, "authproxy_refreshes_total", "result", "ok")
	time.Sleep(3 * time.Second)
	opBrowseJSON(t, tab, s.proxyURL+"/api/whoami", &w)
	if w.Email != opAda.email || w.Groups != wantGroups {
		t.Errorf("after refresh: email %q groups %q", w.Email, w.Groups)
	}
	if after := proxyMetric(t, s.proxyURL, "authproxy_refreshes_total", "result", "ok"); after != before+1 {
		t.Errorf("refreshes: %v before, %v after; want exactly one refresh at oidc-provider", before, after)
	}
}
