package providers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Two tenant ids (the shape of Entra's; not real tenants).
const (
	tenantA = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	tenantB = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
)

// newEntraIdP makes the test IdP look like login.microsoftonline.com, which
// tests cannot reach: discovery at /<tenant>/v2.0, a multi-tenant document
// naming the issuer template https://…/{tenantid}/v2.0 (docIssuer changes
// it), and v2.0 ID tokens of tenant tid with no email_verified, as Entra
// issues them. edit changes each ID token's claims after iss is set.
func newEntraIdP(t *testing.T, tid string, docIssuer func(base string) string, edit func(c map[string]any)) *testIdP {
	t.Helper()
	f := newTestIdP(t, "secret")
	f.set(func(f *testIdP) {
		f.discovery = func(d map[string]any) {
			d["issuer"] = f.srv.URL + "/{tenantid}/v2.0"
			if docIssuer != nil {
				d["issuer"] = docIssuer(f.srv.URL)
			}
		}
		f.claims = map[string]any{
			"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "oid": "00000000-0000-0000-66f3-3332eca7ea81",
			"tid": tid, "ver": "2.0", "name": "Ada Lovelace", "preferred_username": "ada@contoso.com",
			"email": "ada@contoso.com", "xms_edov": true, "groups": []any{graphGroupA},
		}
		f.tweak = func(c map[string]any) {
			c["iss"] = f.srv.URL + "/" + claimString(c["tid"]) + "/v2.0"
			if edit != nil {
				edit(c)
			}
		}
	})
	return f
}

// entraProvider returns a discovered entra provider for f at issuer path
// (such as /common/v2.0) admitting tenants.
func entraProvider(t *testing.T, f *testIdP, path string, tenants []string, edit func(c *Config)) *OIDC {
	t.Helper()
	return f.kindProvider(t, "entra", func(c *Config) {
		c.IssuerURL, c.Entra.Tenants = f.srv.URL+path, tenants
		if edit != nil {
			edit(c)
		}
	})
}

func TestEntraMultiTenant(t *testing.T) {
	for _, tc := range []struct {
		name    string
		path    string
		tenants []string
		tid     string
		edit    func(c map[string]any)
		wantErr error // nil: signed in
	}{
		{"allowed tenant", "/common/v2.0", []string{tenantA}, tenantA, nil, nil},
		{"organizations endpoint", "/organizations/v2.0", []string{tenantB, tenantA}, tenantA, nil, nil},
		{"any tenant", "/common/v2.0", []string{"*"}, tenantB, nil, nil},
		{"allow-list in capitals", "/common/v2.0", []string{strings.ToUpper(tenantA)}, tenantA, nil, nil},

		{"tenant not allowed", "/common/v2.0", []string{tenantA}, tenantB, nil, ErrDenied},
		{"issuer of another tenant than tid", "/common/v2.0", []string{"*"}, tenantA,
			func(c map[string]any) { c["iss"] = strings.Replace(c["iss"].(string), tenantA, tenantB, 1) }, ErrRejected},
		{"tid not a tenant id", "/common/v2.0", []string{"*"}, "common", nil, ErrRejected},
		{"tid a path", "/common/v2.0", []string{"*"}, "../" + tenantA, nil, ErrRejected},
		{"no tid", "/common/v2.0", []string{"*"}, tenantA, func(c map[string]any) { delete(c, "tid") }, ErrRejected},
		{"issuer on another host", "/common/v2.0", []string{"*"}, tenantA,
			func(c map[string]any) { c["iss"] = "https://login.evil.example/" + tenantA + "/v2.0" }, ErrRejected},
		{"issuer is the template itself", "/common/v2.0", []string{"*"}, tenantA,
			func(c map[string]any) { c["iss"] = strings.Replace(c["iss"].(string), tenantA, "{tenantid}", 1) }, ErrRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newEntraIdP(t, tc.tid, nil, tc.edit)
			p := entraProvider(t, f, tc.path, tc.tenants, nil)
			id, err := exchange(t, f, p)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || id != nil {
					t.Errorf("Exchange = %+v, %v; want %v", id, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if id.User != "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ" || id.Email != "ada@contoso.com" || !id.EmailVerified {
				t.Errorf("Identity = %+v", id)
			}
		})
	}
}

func TestEntraSingleTenant(t *testing.T) {
	for _, tc := range []struct {
		name      string
		path      string // configured issuer's
		docTenant string
		tid       string
		rejected  bool
	}{
		{"by tenant id", "/" + tenantA + "/v2.0", tenantA, tenantA, false},
		{"by domain name", "/contoso.onmicrosoft.com/v2.0", tenantA, tenantA, false},
		{"token of another tenant", "/" + tenantA + "/v2.0", tenantA, tenantB, true},
		{"by domain name, token of another tenant", "/contoso.onmicrosoft.com/v2.0", tenantA, tenantB, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newEntraIdP(t, tc.tid, func(base string) string { return base + "/" + tc.docTenant + "/v2.0" }, nil)
			p := entraProvider(t, f, tc.path, nil, nil)
			id, err := exchange(t, f, p)
			if tc.rejected != (err != nil) || tc.rejected && !errors.Is(err, ErrRejected) {
				t.Errorf("Exchange = %+v, %v; want rejected %t", id, err, tc.rejected)
			}
		})
	}
}

// TestEntraDiscoveryIssuer: the discovery document's issuer must fit the
// configured one; a misfit fails discovery, naming AUTHPROXY_OIDC_ISSUER.
func TestEntraDiscoveryIssuer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		path      string
		docIssuer func(base string) string
		want      string
	}{
		{"template on another host", "/common/v2.0", func(string) string { return "https://login.evil.example/{tenantid}/v2.0" }, "is not on"},
		{"multi-tenant naming one tenant", "/common/v2.0", func(b string) string { return b + "/" + tenantA + "/v2.0" }, "want the {tenantid} template"},
		{"tenant id naming another", "/" + tenantA + "/v2.0", func(b string) string { return b + "/" + tenantB + "/v2.0" }, "names tenant " + tenantA},
		{"domain name naming the template", "/contoso.com/v2.0", func(b string) string { return b + "/{tenantid}/v2.0" }, "names no tenant id"},
		{"v1 issuer", "/common/v2.0", func(b string) string { return b + "/" + tenantA + "/" }, "is not https://<host>/<tenant>/v2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newEntraIdP(t, tenantA, tc.docIssuer, nil)
			p, err := New("entra", f.kindConfig(func(c *Config) { c.IssuerURL, c.Entra.Tenants = f.srv.URL+tc.path, []string{"*"} }))
			if err != nil {
				t.Fatal(err)
			}
			err = p.(*OIDC).Discover(t.Context())
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "AUTHPROXY_OIDC_ISSUER") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Discover: %v; want ErrUnavailable naming AUTHPROXY_OIDC_ISSUER, saying %q", err, tc.want)
			}
		})
	}
}

// TestEntraEmail: Entra sends no email_verified; only xms_edov vouches for
// the email (see emailDomainVerified), and its absence is logged once.
func TestEntraEmail(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edov     any // nil: no xms_edov claim
		want     bool
		wantWarn bool
	}{
		{"xms_edov true", true, true, false},
		{"xms_edov as the string 1", "1", true, false},
		{"xms_edov as the number 1", 1, true, false},
		{"xms_edov false", false, false, false},
		{"no xms_edov", nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newEntraIdP(t, tenantA, nil, func(c map[string]any) {
				c["email_verified"] = true // ignored: Entra does not send it, so it means nothing
				if delete(c, "xms_edov"); tc.edov != nil {
					c["xms_edov"] = tc.edov
				}
			})
			var logs logBuffer
			p := entraProvider(t, f, "/common/v2.0", []string{tenantA}, func(c *Config) { c.Logger = logs.logger() })
			for range 2 {
				id, err := exchange(t, f, p)
				if err != nil {
					t.Fatal(err)
				}
				if id.EmailVerified != tc.want {
					t.Errorf("EmailVerified = %t, want %t", id.EmailVerified, tc.want)
				}
			}
			if n := strings.Count(logs.String(), "xms_edov optional claim"); n != map[bool]int{true: 1, false: 0}[tc.wantWarn] {
				t.Errorf("xms_edov warning logged %d times, want it once: %t\n%s", n, tc.wantWarn, logs.String())
			}
		})
	}
}

// TestEntraBearerAndLogoutTokens: every token, not only ID tokens, goes
// through the tenant issuer check.
func TestEntraBearerAndLogoutTokens(t *testing.T) {
	f := newEntraIdP(t, tenantA, nil, nil)
	p := entraProvider(t, f, "/common/v2.0", []string{tenantA}, nil)
	now := time.Now()
	token := func(iss string, edit func(c map[string]any)) string {
		c := map[string]any{
			"iss": f.srv.URL + "/" + iss + "/v2.0", "aud": f.clientID, "tid": tenantA, "sub": "user-1",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1", "sid": "s1",
			"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
		}
		if edit != nil {
			edit(c)
		}
		return f.sign(c)
	}
	ctx := context.Background()
	if _, err := p.VerifyBearer(ctx, token(tenantA, nil), []string{f.clientID}); err != nil {
		t.Errorf("VerifyBearer of a tenant A token: %v", err)
	}
	if _, err := p.VerifyBearer(ctx, token(tenantB, nil), []string{f.clientID}); !errors.Is(err, ErrRejected) {
		t.Errorf("VerifyBearer of tenant B's issuer with tid A: %v, want ErrRejected", err)
	}
	overage := func(c map[string]any) {
		c["_claim_names"] = map[string]any{"groups": "src1"}
		c["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": "https://graph.windows.net/" + tenantA + "/users/x/getMemberObjects"}}
	}
	if _, err := p.VerifyBearer(ctx, token(tenantA, overage), []string{f.clientID}); !errors.Is(err, ErrRejected) {
		t.Errorf("VerifyBearer with a groups overage: %v, want ErrRejected", err)
	}
	if _, err := p.VerifyBearer(ctx, token(tenantB, func(c map[string]any) { c["tid"] = tenantB }), []string{f.clientID}); !errors.Is(err, ErrDenied) {
		t.Errorf("VerifyBearer of tenant B (not allowed): %v, want ErrDenied", err)
	}
	if _, err := p.VerifyLogoutToken(ctx, token(tenantA, nil)); err != nil {
		t.Errorf("VerifyLogoutToken of tenant A: %v", err)
	}
	if _, err := p.VerifyLogoutToken(ctx, token(tenantB, nil)); !errors.Is(err, ErrRejected) {
		t.Errorf("VerifyLogoutToken of tenant B's issuer with tid A: %v, want ErrRejected", err)
	}
}
