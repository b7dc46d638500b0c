package authproxy

import (
	"net/http"
	"testing"
)

// TestClaimHeaders sends configured claims upstream and removes every
// client-sent copy of those headers, in any spelling, on every path.
func TestClaimHeaders(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_CLAIM_HEADERS", "X-Tenant=tenant_id, X-Dept=org.department"),
		withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	e.idp.setTweak(func(c map[string]any) {
		c["tenant_id"] = "t-42"
		c["org"] = map[string]any{"department": "research"}
	})
	c := e.browser()
	e.signIn(t, c, "/")
	up := fromUpstream(t, e.request(t, c, http.MethodGet, "/app", "Accept", "application/json",
		"X-Tenant", "spoofed", "x_dept", "spoofed", "X-TENANT", "spoofed"))
	if got := up.Header.Values("X-Tenant"); len(got) != 1 || got[0] != "t-42" {
		t.Errorf("upstream X-Tenant = %q, want [t-42]", got)
	}
	if got := up.Header.Values("X-Dept"); len(got) != 1 || got[0] != "research" {
		t.Errorf("upstream X-Dept = %q, want [research]", got)
	}
	for name := range up.Header {
		if n := normalizeHeaderName(name); (n == "x-tenant" || n == "x-dept") && name != "X-Tenant" && name != "X-Dept" {
			t.Errorf("client's %s reached the upstream", name)
		}
	}
	pub := fromUpstream(t, e.request(t, e.browser(), http.MethodGet, "/public/x", "X-Tenant", "spoofed", "x_dept", "spoofed"))
	for name := range pub.Header {
		if n := normalizeHeaderName(name); n == "x-tenant" || n == "x-dept" {
			t.Errorf("public route: client's %s: %q reached the upstream", name, pub.Header[name])
		}
	}
}
