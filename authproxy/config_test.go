package authproxy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/policy"
)

// validEnv returns every required variable with a valid value.
func validEnv() map[string]string {
	return map[string]string{
		"AUTHPROXY_UPSTREAM":      "http://127.0.0.1:8080",
		"AUTHPROXY_OIDC_ISSUER":   "https://idp.example.com/realms/main",
		"AUTHPROXY_CLIENT_ID":     "app",
		"AUTHPROXY_REDIRECT_URL":  "https://app.example.com/oauth2/callback",
		"AUTHPROXY_COOKIE_SECRET": testCookieSecret,
	}
}

// loadWith loads validEnv with overrides; an override of "\x00unset"
// removes the variable.
func loadWith(overrides map[string]string) (*Config, error) {
	env := validEnv()
	for k, v := range overrides {
		if v == "\x00unset" {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return LoadConfig(mapLookup(env))
}

// errorLines splits a joined error into its problems.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadWith(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"Listen", c.Listen, ":4180"},
		{"Upstream", c.Upstream.String(), "http://127.0.0.1:8080"},
		{"UpstreamTimeout", c.UpstreamTimeout, 30 * time.Second},
		{"MetricsListen", c.MetricsListen, ""},
		{"TLSCertFile", c.TLSCertFile, ""},
		{"TLSKeyFile", c.TLSKeyFile, ""},
		{"UpstreamCAFile", c.UpstreamCAFile, ""},
		{"InsecureSkipUpstreamTLSVerify", c.InsecureSkipUpstreamTLSVerify, false},
		{"ShutdownGrace", c.ShutdownGrace, 20 * time.Second},
		{"Issuer", c.Issuer.String(), "https://idp.example.com/realms/main"},
		{"ClientID", c.ClientID, "app"},
		{"ClientSecret", c.ClientSecret.Reveal(), ""},
		{"RedirectURL", c.RedirectURL.String(), "https://app.example.com/oauth2/callback"},
		{"Scopes", c.Scopes, []string{"openid", "email", "profile"}},
		{"CookieSecrets", len(c.CookieSecrets), 1},
		{"CookieName", c.CookieName, "_authproxy"},
		{"CookieSecure", c.CookieSecure, true},
		{"CookieDomain", c.CookieDomain, ""},
		{"CookieSameSite", c.CookieSameSite, http.SameSiteLaxMode},
		{"SessionStore", c.SessionStore, "cookie"},
		{"SessionTTL", c.SessionTTL, 168 * time.Hour},
		{"AllowedEmailDomains", c.AllowedEmailDomains, []string{"*"}},
		{"AllowedEmails", c.AllowedEmails, []string(nil)},
		{"AllowedGroups", c.AllowedGroups, []string(nil)},
		{"InsecureAllowUnverifiedEmail", c.InsecureAllowUnverifiedEmail, false},
		{"SkipAuthRoutes", c.SkipAuthRoutes, []policy.Rule(nil)},
		{"UserClaim", c.UserClaim, "sub"},
		{"GroupsClaim", c.GroupsClaim, "groups"},
		{"PassAccessToken", c.PassAccessToken, false},
		{"PostLogoutRedirectURL", c.PostLogoutRedirectURL.String(), "https://app.example.com/"},
		{"TrustedProxies", c.TrustedProxies, []netip.Prefix(nil)},
		{"SignInRateLimit", c.SignInRateLimit, RateLimit{N: 30, Per: time.Minute, Burst: 10}},
		{"BackchannelRateLimit", c.BackchannelRateLimit, RateLimit{N: 600, Per: time.Minute, Burst: 100}},
		{"LogFormat", c.LogFormat, "json"},
		{"TemplatesDir", c.TemplatesDir, ""},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.field, tc.got, tc.want)
		}
	}
}

// validCase is a value LoadConfig accepts and what it makes of it. In value
// and also, "@file" stands for the path of a readable file.
type validCase struct {
	variable, value string
	got             func(c *Config) any
	want            any
	also            map[string]string // other variables the value needs
}

// invalidCase is a value LoadConfig refuses and part of its message.
type invalidCase struct{ variable, value, want string }

// validCases give, per variable, values LoadConfig accepts and what it
// makes of them.
var validCases = []validCase{
	{"AUTHPROXY_LISTEN", "127.0.0.1:9000", func(c *Config) any { return c.Listen }, "127.0.0.1:9000", nil},
	{"AUTHPROXY_LISTEN", "[::1]:80", func(c *Config) any { return c.Listen }, "[::1]:80", nil},
	{"AUTHPROXY_LISTEN", " :0 ", func(c *Config) any { return c.Listen }, ":0", nil},
	{"AUTHPROXY_UPSTREAM", "https://app.internal:8443", func(c *Config) any { return c.Upstream.String() }, "https://app.internal:8443", nil},
	{"AUTHPROXY_UPSTREAM", "http://127.0.0.1:8080/base", func(c *Config) any { return c.Upstream.Path }, "/base", nil},
	{"AUTHPROXY_UPSTREAM", "unix:///run/app.sock", func(c *Config) any { return c.Upstream.Scheme + " " + c.Upstream.Path }, "unix /run/app.sock", nil},
	{"AUTHPROXY_UPSTREAM_TIMEOUT", "5s", func(c *Config) any { return c.UpstreamTimeout }, 5 * time.Second, nil},
	{"AUTHPROXY_IDP_TIMEOUT", "3s", func(c *Config) any { return c.IdPTimeout }, 3 * time.Second, nil},
	{"AUTHPROXY_OIDC_ISSUER", "http://localhost:5556/dex", func(c *Config) any { return c.Issuer.String() }, "http://localhost:5556/dex", nil},
	{"AUTHPROXY_CLIENT_ID", "my-app", func(c *Config) any { return c.ClientID }, "my-app", nil},
	{"AUTHPROXY_CLIENT_SECRET", "s3cr3t", func(c *Config) any { return c.ClientSecret.Reveal() }, "s3cr3t", nil},
	{"AUTHPROXY_REDIRECT_URL", "http://localhost:4180/oauth2/callback", func(c *Config) any { return c.RedirectURL.String() }, "http://localhost:4180/oauth2/callback", nil},
	{"AUTHPROXY_SCOPES", "openid,email groups", func(c *Config) any { return c.Scopes }, []string{"openid", "email", "groups"}, nil},
	{"AUTHPROXY_SCOPES", "openid", func(c *Config) any { return c.Scopes }, []string{"openid"}, nil},
	{"AUTHPROXY_PROVIDER", "oidc", func(c *Config) any { return c.Provider }, "oidc", nil},
	{"AUTHPROXY_PROVIDER", "keycloak", func(c *Config) any { return c.Provider }, "keycloak", nil},
	{"AUTHPROXY_PROVIDER", "github", func(c *Config) any { return c.Issuer == nil }, true, map[string]string{"AUTHPROXY_OIDC_ISSUER": "\x00unset"}},
	{"AUTHPROXY_KEYCLOAK_ROLES", "realm, client", func(c *Config) any { return c.KeycloakRoles }, []string{"realm", "client"}, map[string]string{"AUTHPROXY_PROVIDER": "keycloak"}},
	{"AUTHPROXY_ENTRA_TENANTS", "*", func(c *Config) any { return c.EntraTenants }, []string{"*"},
		map[string]string{"AUTHPROXY_PROVIDER": "entra", "AUTHPROXY_OIDC_ISSUER": "https://login.microsoftonline.com/common/v2.0"}},
	{"AUTHPROXY_ENTRA_TENANTS", "72f988bf-86f1-41af-91ab-2d7cd011db47", func(c *Config) any { return c.EntraTenants }, []string{"72f988bf-86f1-41af-91ab-2d7cd011db47"},
		map[string]string{"AUTHPROXY_PROVIDER": "entra", "AUTHPROXY_OIDC_ISSUER": "https://login.microsoftonline.com/organizations/v2.0"}},
	{"AUTHPROXY_ENTRA_GRAPH_URL", "https://graph.microsoft.us", func(c *Config) any { return c.EntraGraphURL.String() }, "https://graph.microsoft.us",
		map[string]string{"AUTHPROXY_PROVIDER": "entra", "AUTHPROXY_OIDC_ISSUER": "https://login.microsoftonline.us/contoso.onmicrosoft.us/v2.0"}},
	{"AUTHPROXY_ENTRA_GROUP_NAMES", "true", func(c *Config) any { return c.EntraGroupNames }, true,
		map[string]string{"AUTHPROXY_PROVIDER": "entra", "AUTHPROXY_OIDC_ISSUER": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"}},
	{"AUTHPROXY_GOOGLE_HOSTED_DOMAIN", "Example.com, *", func(c *Config) any { return c.GoogleHostedDomains }, []string{"example.com", "*"},
		map[string]string{"AUTHPROXY_PROVIDER": "google", "AUTHPROXY_OIDC_ISSUER": "https://accounts.google.com"}},
	{"AUTHPROXY_GITHUB_URL", "https://github.example.com", func(c *Config) any { return c.GitHubURL.String() }, "https://github.example.com",
		map[string]string{"AUTHPROXY_PROVIDER": "github", "AUTHPROXY_OIDC_ISSUER": "\x00unset"}},
	{"AUTHPROXY_GITHUB_ORG", "acme-corp", func(c *Config) any { return c.GitHubOrg }, "acme-corp",
		map[string]string{"AUTHPROXY_PROVIDER": "github", "AUTHPROXY_OIDC_ISSUER": "\x00unset"}},
	{"AUTHPROXY_GITHUB_TEAM", "platform, site_reliability", func(c *Config) any { return c.GitHubTeams }, []string{"platform", "site_reliability"},
		map[string]string{"AUTHPROXY_PROVIDER": "github", "AUTHPROXY_OIDC_ISSUER": "\x00unset", "AUTHPROXY_GITHUB_ORG": "acme"}},
	{"AUTHPROXY_COOKIE_SECRET", strings.Repeat("ab", 32), func(c *Config) any { return c.CookieSecrets[0].Reveal() }, strings.Repeat("\xab", 32), nil},
	{"AUTHPROXY_COOKIE_SECRET", testCookieSecret + ", " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("z"), 32)),
		func(c *Config) any { return []string{c.CookieSecrets[0].Reveal(), c.CookieSecrets[1].Reveal()} },
		[]string{"0123456789abcdef0123456789abcdef", strings.Repeat("z", 32)}, nil},
	{"AUTHPROXY_COOKIE_NAME", "__Host-app_session", func(c *Config) any { return c.CookieName }, "__Host-app_session", nil},
	{"AUTHPROXY_COOKIE_SECURE", "false", func(c *Config) any { return c.CookieSecure }, false, nil},
	{"AUTHPROXY_COOKIE_SECURE", "true", func(c *Config) any { return c.CookieSecure }, true, nil},
	{"AUTHPROXY_COOKIE_DOMAIN", ".example.com", func(c *Config) any { return c.CookieDomain }, ".example.com", nil},
	{"AUTHPROXY_COOKIE_DOMAIN", "example.com", func(c *Config) any { return c.CookieDomain }, "example.com", nil},
	{"AUTHPROXY_COOKIE_SAMESITE", "strict", func(c *Config) any { return c.CookieSameSite }, http.SameSiteStrictMode, nil},
	{"AUTHPROXY_COOKIE_SAMESITE", "none", func(c *Config) any { return c.CookieSameSite }, http.SameSiteNoneMode, nil},
	{"AUTHPROXY_COOKIE_SAMESITE", "lax", func(c *Config) any { return c.CookieSameSite }, http.SameSiteLaxMode, nil},
	{"AUTHPROXY_SESSION_STORE", "cookie", func(c *Config) any { return c.SessionStore }, "cookie", nil},
	{"AUTHPROXY_SESSION_STORE", "redis", func(c *Config) any { return c.SessionStore }, "redis",
		map[string]string{"AUTHPROXY_REDIS_URL": "redis://127.0.0.1:6379/0"}},
	{"AUTHPROXY_REDIS_URL", "rediss://user:pw@redis.example:6380/2", func(c *Config) any { return c.RedisURL.Reveal() }, "rediss://user:pw@redis.example:6380/2", nil},
	{"AUTHPROXY_REDIS_SENTINEL_MASTER", "mymaster", func(c *Config) any { return c.RedisSentinelMaster }, "mymaster",
		map[string]string{"AUTHPROXY_REDIS_SENTINEL_ADDRS": "10.0.0.1:26379"}},
	{"AUTHPROXY_REDIS_SENTINEL_ADDRS", "10.0.0.1:26379, 10.0.0.2:26379", func(c *Config) any { return c.RedisSentinelAddrs }, []string{"10.0.0.1:26379", "10.0.0.2:26379"},
		map[string]string{"AUTHPROXY_REDIS_SENTINEL_MASTER": "mymaster"}},
	{"AUTHPROXY_REDIS_CLUSTER_ADDRS", "10.0.0.1:7000,10.0.0.2:7000", func(c *Config) any { return c.RedisClusterAddrs }, []string{"10.0.0.1:7000", "10.0.0.2:7000"}, nil},
	{"AUTHPROXY_SESSION_IDLE_TIMEOUT", "30m", func(c *Config) any { return c.SessionIdleTimeout }, 30 * time.Minute, nil},
	{"AUTHPROXY_SESSION_TTL", "12h", func(c *Config) any { return c.SessionTTL }, 12 * time.Hour, nil},
	{"AUTHPROXY_SESSION_TTL", "90s", func(c *Config) any { return c.SessionTTL }, 90 * time.Second, nil},
	{"AUTHPROXY_ALLOWED_EMAIL_DOMAINS", "example.com, @Corp.Example", func(c *Config) any { return c.AllowedEmailDomains }, []string{"example.com", "corp.example"}, nil},
	{"AUTHPROXY_ALLOWED_EMAILS", "Ada@Example.com, bob@x.org", func(c *Config) any { return c.AllowedEmails }, []string{"ada@example.com", "bob@x.org"}, nil},
	// The email list alone lets in only those emails: the domains' default, *, gives way.
	{"AUTHPROXY_ALLOWED_EMAILS", "ada@example.com", func(c *Config) any { return c.AllowedEmailDomains }, []string(nil), nil},
	{"AUTHPROXY_ALLOWED_EMAILS", "ada@example.com", func(c *Config) any { return c.AllowedEmailDomains }, []string{"example.org"},
		map[string]string{"AUTHPROXY_ALLOWED_EMAIL_DOMAINS": "example.org"}},
	{"AUTHPROXY_ALLOWED_GROUPS", "admins, ops ,,", func(c *Config) any { return c.AllowedGroups }, []string{"admins", "ops"}, nil},
	{"AUTHPROXY_INSECURE_ALLOW_UNVERIFIED_EMAIL", "true", func(c *Config) any { return c.InsecureAllowUnverifiedEmail }, true, nil},
	{"AUTHPROXY_SKIP_AUTH_ROUTES", "GET /healthz, /public/, post /hook", func(c *Config) any {
		var out []string
		for _, r := range c.SkipAuthRoutes {
			out = append(out, r.String())
		}
		return out
	}, []string{"GET /healthz allow public", "/public/ allow public", "POST /hook allow public"}, nil},
	{"AUTHPROXY_POLICY_FILE", "@policy", func(c *Config) any { return len(c.PolicyFile.Rules) }, 2, nil},
	{"AUTHPROXY_USER_CLAIM", "email", func(c *Config) any { return c.UserClaim }, "email", nil},
	{"AUTHPROXY_GROUPS_CLAIM", "realm_access.roles", func(c *Config) any { return c.GroupsClaim }, "realm_access.roles", nil},
	{"AUTHPROXY_PASS_ACCESS_TOKEN", "true", func(c *Config) any { return c.PassAccessToken }, true, nil},
	{"AUTHPROXY_POST_LOGOUT_REDIRECT_URL", "https://app.example.com/bye", func(c *Config) any { return c.PostLogoutRedirectURL.String() }, "https://app.example.com/bye", nil},
	{"AUTHPROXY_TRUSTED_PROXIES", "10.1.2.3/8, 192.168.1.7, ::1", func(c *Config) any { return c.TrustedProxies },
		[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}, nil},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "30/m", func(c *Config) any { return c.SignInRateLimit }, RateLimit{N: 30, Per: time.Minute, Burst: 10}, nil},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "5/s burst=20", func(c *Config) any { return c.SignInRateLimit }, RateLimit{N: 5, Per: time.Second, Burst: 20}, nil},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "100/h", func(c *Config) any { return c.SignInRateLimit.String() }, "100/h burst=34", nil},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "1/m", func(c *Config) any { return c.SignInRateLimit }, RateLimit{N: 1, Per: time.Minute, Burst: 1}, nil},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", " 30/m  burst=3 ", func(c *Config) any { return c.SignInRateLimit.Burst }, 3, nil},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "off", func(c *Config) any { return c.SignInRateLimit.Off() }, true, nil},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "OFF", func(c *Config) any { return c.SignInRateLimit.String() }, "off", nil},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "0", func(c *Config) any { return c.SignInRateLimit }, RateLimit{}, nil},
	{"AUTHPROXY_BACKCHANNEL_LOGOUT_RATE_LIMIT", "60/m burst=60", func(c *Config) any { return c.BackchannelRateLimit }, RateLimit{N: 60, Per: time.Minute, Burst: 60}, nil},
	{"AUTHPROXY_BACKCHANNEL_LOGOUT_RATE_LIMIT", "off", func(c *Config) any { return c.BackchannelRateLimit.Off() }, true, nil},
	{"AUTHPROXY_LOG_FORMAT", "text", func(c *Config) any { return c.LogFormat }, "text", nil},
	{"AUTHPROXY_METRICS_LISTEN", "127.0.0.1:9090", func(c *Config) any { return c.MetricsListen }, "127.0.0.1:9090", nil},
	{"AUTHPROXY_TLS_CERT_FILE", "@file", func(c *Config) any { return c.TLSCertFile != "" && c.TLSKeyFile != "" }, true,
		map[string]string{"AUTHPROXY_TLS_KEY_FILE": "@file"}},
	{"AUTHPROXY_TLS_KEY_FILE", "@file", func(c *Config) any { return c.TLSKeyFile != "" }, true,
		map[string]string{"AUTHPROXY_TLS_CERT_FILE": "@file"}},
	{"AUTHPROXY_UPSTREAM_CA_FILE", "@file", func(c *Config) any { return c.UpstreamCAFile != "" }, true, nil},
	{"AUTHPROXY_INSECURE_SKIP_UPSTREAM_TLS_VERIFY", "true", func(c *Config) any { return c.InsecureSkipUpstreamTLSVerify }, true, nil},
	{"AUTHPROXY_SHUTDOWN_GRACE", "5s", func(c *Config) any { return c.ShutdownGrace }, 5 * time.Second, nil},
	{"AUTHPROXY_BEARER_AUDIENCES", "api://legacy, authproxy-test", func(c *Config) any { return c.BearerAudiences }, []string{"api://legacy", "authproxy-test"}, nil},
	{"AUTHPROXY_CLAIM_HEADERS", "X-Tenant=tenant_id, x-dept = org.department", func(c *Config) any { return c.ClaimHeaders },
		[]ClaimHeader{{"X-Tenant", "tenant_id"}, {"X-Dept", "org.department"}}, nil},
	{"AUTHPROXY_UPSTREAM_JWT", "true", func(c *Config) any { return c.UpstreamJWT }, true, nil},
	{"AUTHPROXY_UPSTREAM_JWT_KEY_FILE", "@file", func(c *Config) any { return c.UpstreamJWTKeyFile != "" }, true, nil},
	{"AUTHPROXY_TEMPLATES_DIR", "/etc/authproxy/templates", func(c *Config) any { return c.TemplatesDir }, "/etc/authproxy/templates", nil},
	{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE", "@clientkey", func(c *Config) any { return c.ClientPrivateKeyFile != "" }, true, nil},
	{"AUTHPROXY_CLIENT_PRIVATE_KEY_ID", "key-2026-01", func(c *Config) any { return c.ClientPrivateKeyID }, "key-2026-01",
		map[string]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": "@clientkey"}},
	{"AUTHPROXY_CLIENT_TLS_CERT_FILE", "@clientcert", func(c *Config) any { return c.ClientTLSCertFile != "" }, true,
		map[string]string{"AUTHPROXY_CLIENT_TLS_KEY_FILE": "@clienttlskey"}},
	{"AUTHPROXY_CLIENT_TLS_KEY_FILE", "@clienttlskey", func(c *Config) any { return c.ClientTLSKeyFile != "" }, true,
		map[string]string{"AUTHPROXY_CLIENT_TLS_CERT_FILE": "@clientcert"}},
	{"AUTHPROXY_IDPS", "partners, robots-2", func(c *Config) any { return []string{c.IdPs[0].Name, c.IdPs[1].Name} }, []string{"partners", "robots-2"},
		map[string]string{"AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER": "https://p.example", "AUTHPROXY_IDP_PARTNERS_CLIENT_ID": "p",
			"AUTHPROXY_IDP_ROBOTS_2_OIDC_ISSUER": "https://r.example", "AUTHPROXY_IDP_ROBOTS_2_CLIENT_ID": "r"}},
	{"AUTHPROXY_IDPS", "", func(c *Config) any { return len(c.IdPs) }, 0, nil},
	{"AUTHPROXY_DEFAULT_IDP_NAME", "staff", func(c *Config) any { return c.Name + " " + c.DisplayName }, "staff staff", nil},
	{"AUTHPROXY_DISPLAY_NAME", "Acme staff (SSO)", func(c *Config) any { return c.DisplayName }, "Acme staff (SSO)", nil},
}

func TestLoadConfigValidValues(t *testing.T) {
	file := filepath.Join(t.TempDir(), "readable.pem")
	if err := os.WriteFile(file, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("rules:\n  - path: /admin/\n    allow: {groups: [admins]}\n  - path: /\n    allow: authenticated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clientKey := writeClientKey(t)
	clientCert, clientTLSKey := writeClientCert(t)
	for _, tc := range validCases {
		t.Run(tc.variable+"="+tc.value, func(t *testing.T) {
			env := map[string]string{tc.variable: tc.value}
			maps.Copy(env, tc.also)
			for k, v := range env {
				env[k] = strings.NewReplacer("@file", file, "@policy", policyFile, "@clientkey", clientKey,
					"@clientcert", clientCert, "@clienttlskey", clientTLSKey).Replace(v)
			}
			c, err := loadWith(env)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if got := tc.got(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// invalidCases give, per variable, values LoadConfig refuses and a part of
// the message it must give.
var invalidCases = []invalidCase{
	{"AUTHPROXY_IDPS", "Partners", "want names of lower-case letters, digits and -"},
	{"AUTHPROXY_IDPS", "a,b,a", `"a" is named twice`},
	{"AUTHPROXY_IDPS", "default", `"default" is the default IdP's name`},
	{"AUTHPROXY_DEFAULT_IDP_NAME", "Staff", "want a name of lower-case letters"},
	{"AUTHPROXY_DEFAULT_IDP_NAME", "-x", "want a name of lower-case letters"},
	{"AUTHPROXY_IDPS", "partners,unknown", `"unknown" is reserved`},
	{"AUTHPROXY_DEFAULT_IDP_NAME", "unknown", `"unknown" is reserved`},
	{"AUTHPROXY_DISPLAY_NAME", "a\x01b", "without control characters"},
	{"AUTHPROXY_LISTEN", "4180", "want host:port"},
	{"AUTHPROXY_LISTEN", "localhost:http", `want a port between 0 and 65535, got "http"`},
	{"AUTHPROXY_LISTEN", ":70000", `got "70000"`},
	{"AUTHPROXY_UPSTREAM", "127.0.0.1:8080", "want http://host:port"},
	{"AUTHPROXY_UPSTREAM", "ftp://files.example", "want http://host:port"},
	{"AUTHPROXY_UPSTREAM", "http://", "want http://host:port"},
	{"AUTHPROXY_UPSTREAM", "http://user:pw@app:8080", "want http://host:port"},
	{"AUTHPROXY_UPSTREAM", "http://app:8080/?x=1", "want http://host:port"},
	{"AUTHPROXY_UPSTREAM", "unix://relative.sock", "unix:///path.sock"},
	{"AUTHPROXY_UPSTREAM_TIMEOUT", "fast", "want a positive Go duration"},
	{"AUTHPROXY_UPSTREAM_TIMEOUT", "0s", "want a positive Go duration"},
	{"AUTHPROXY_IDP_TIMEOUT", "-1s", "want a positive Go duration"},
	{"AUTHPROXY_OIDC_ISSUER", "idp.example.com", "want an absolute http:// or https:// URL"},
	{"AUTHPROXY_OIDC_ISSUER", "https://user@idp.example.com", "without user info"},
	{"AUTHPROXY_OIDC_ISSUER", "https://idp.example.com/#x", "without user info or fragment"},
	{"AUTHPROXY_REDIRECT_URL", "https://app.example.com/callback", "want a URL whose path is /oauth2/callback"},
	{"AUTHPROXY_REDIRECT_URL", "/oauth2/callback", "want an absolute http:// or https:// URL"},
	{"AUTHPROXY_REDIRECT_URL", "https://app.example.com/oauth2/callback?x=1", "and no query"},
	{"AUTHPROXY_SCOPES", "email profile", "includes openid"},
	{"AUTHPROXY_PROVIDER", "azure", `want one of oidc, keycloak, entra, google, gitlab, okta, auth0, github, got "azure"`},
	{"AUTHPROXY_KEYCLOAK_ROLES", "realm, groups", `want realm and/or client, got "groups"`},
	{"AUTHPROXY_KEYCLOAK_ROLES", "realm", "only used with AUTHPROXY_PROVIDER=keycloak"},
	{"AUTHPROXY_ENTRA_TENANTS", "contoso.onmicrosoft.com", "want tenant ids (GUIDs) or *"},
	{"AUTHPROXY_ENTRA_GRAPH_URL", "graph.microsoft.com", "want an absolute http:// or https:// URL"},
	{"AUTHPROXY_ENTRA_GROUP_NAMES", "yes", `want true or false, got "yes"`},
	{"AUTHPROXY_GOOGLE_HOSTED_DOMAIN", "exa mple.com", "want a domain name"},
	{"AUTHPROXY_GOOGLE_HOSTED_DOMAIN", "example.com", "only used with AUTHPROXY_PROVIDER=google"},
	{"AUTHPROXY_GITHUB_URL", "github.example.com", "want an absolute http:// or https:// URL"},
	{"AUTHPROXY_GITHUB_ORG", "acme corp", "want an organization login"},
	{"AUTHPROXY_GITHUB_TEAM", "platform/web", "want team slugs"},
	{"AUTHPROXY_COOKIE_SECRET", "dHdlbHZlIGJ5dGVz", "want 32 bytes base64-encoded, got 12 bytes"},
	{"AUTHPROXY_COOKIE_SECRET", "!!!!", "got 4 characters that are neither"},
	{"AUTHPROXY_COOKIE_NAME", "my cookie", "want a cookie name"},
	{"AUTHPROXY_COOKIE_NAME", "a;b", "want a cookie name"},
	{"AUTHPROXY_COOKIE_NAME", "sëssion", "want a cookie name"},
	{"AUTHPROXY_COOKIE_SECURE", "yes", `want true or false, got "yes"`},
	{"AUTHPROXY_COOKIE_SECURE", "1", `want true or false, got "1"`},
	{"AUTHPROXY_COOKIE_DOMAIN", "exa mple.com", "want a domain name"},
	{"AUTHPROXY_COOKIE_DOMAIN", "example.com:443", "want a domain name"},
	{"AUTHPROXY_COOKIE_DOMAIN", "a..b", "want a domain name"},
	{"AUTHPROXY_COOKIE_DOMAIN", ".", "want a domain name"},
	{"AUTHPROXY_COOKIE_SAMESITE", "relaxed", `want lax, strict or none, got "relaxed"`},
	{"AUTHPROXY_SESSION_STORE", "memory", `want cookie or redis, got "memory"`},
	{"AUTHPROXY_REDIS_URL", "http://127.0.0.1:6379", "want a redis:// or rediss:// URL"},
	{"AUTHPROXY_REDIS_SENTINEL_MASTER", "mymaster", "set it together with AUTHPROXY_REDIS_SENTINEL_ADDRS"},
	{"AUTHPROXY_REDIS_SENTINEL_ADDRS", "sentinel-without-port", "want host:port"},
	{"AUTHPROXY_REDIS_CLUSTER_ADDRS", "127.0.0.1", "want host:port"},
	{"AUTHPROXY_SESSION_IDLE_TIMEOUT", "soon", "want a positive Go duration"},
	{"AUTHPROXY_SESSION_TTL", "7d", "want a positive Go duration"},
	{"AUTHPROXY_SESSION_TTL", "0s", "want a positive Go duration"},
	{"AUTHPROXY_SESSION_TTL", "-1h", "want a positive Go duration"},
	{"AUTHPROXY_ALLOWED_EMAIL_DOMAINS", "exa mple.com", "want a domain name"},
	{"AUTHPROXY_ALLOWED_EMAILS", "ada", "want email addresses"},
	{"AUTHPROXY_ALLOWED_EMAILS", "@example.com", "want email addresses"},
	{"AUTHPROXY_ALLOWED_EMAILS", "ada@", "want email addresses"},
	{"AUTHPROXY_INSECURE_ALLOW_UNVERIFIED_EMAIL", "yes", `want true or false, got "yes"`},
	{"AUTHPROXY_SKIP_AUTH_ROUTES", "healthz", "want a path starting with /"},
	{"AUTHPROXY_POLICY_FILE", "/nonexistent/policy.yaml", "no such file"},
	{"AUTHPROXY_SKIP_AUTH_ROUTES", "GET /a /b", "want [METHOD] /path"},
	{"AUTHPROXY_SKIP_AUTH_ROUTES", "/public/../admin", "want a clean path"},
	{"AUTHPROXY_SKIP_AUTH_ROUTES", "/a//b", "want a clean path"},
	{"AUTHPROXY_SKIP_AUTH_ROUTES", "/a%2fb", "want the path unescaped"},
	{"AUTHPROXY_SKIP_AUTH_ROUTES", `/a\b`, "it contains a backslash"},
	{"AUTHPROXY_SKIP_AUTH_ROUTES", "/a/.", "want a clean path"},
	{"AUTHPROXY_PASS_ACCESS_TOKEN", "on", `want true or false, got "on"`},
	{"AUTHPROXY_POST_LOGOUT_REDIRECT_URL", "/bye", "want an absolute http:// or https:// URL"},
	{"AUTHPROXY_TRUSTED_PROXIES", "10.0.0.0/33", "want CIDRs"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "30", "want N/s, N/m or N/h"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "30/min", "want N/s, N/m or N/h"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "30/d", "want N/s, N/m or N/h"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "-1/m", "want N/s, N/m or N/h"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "0/m", "want N/s, N/m or N/h"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "2000000/s", "want N/s, N/m or N/h"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "30/m burst=0", "want N/s, N/m or N/h"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "30/m burst 10", "want N/s, N/m or N/h"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "30/m,burst=10", "want N/s, N/m or N/h"},
	{"AUTHPROXY_SIGNIN_RATE_LIMIT", "no", `got "no"`},
	{"AUTHPROXY_BACKCHANNEL_LOGOUT_RATE_LIMIT", "fast", "want N/s, N/m or N/h"},
	{"AUTHPROXY_BACKCHANNEL_LOGOUT_RATE_LIMIT", "100/m burst=x", "want N/s, N/m or N/h"},
	{"AUTHPROXY_TRUSTED_PROXIES", "localhost", "want CIDRs"},
	{"AUTHPROXY_METRICS_LISTEN", "9090", "want host:port"},
	{"AUTHPROXY_TLS_CERT_FILE", "/nonexistent/cert.pem", "want a readable file"},
	{"AUTHPROXY_TLS_KEY_FILE", "/nonexistent/key.pem", "want a readable file"},
	{"AUTHPROXY_UPSTREAM_CA_FILE", "/nonexistent/ca.pem", "want a readable file"},
	{"AUTHPROXY_INSECURE_SKIP_UPSTREAM_TLS_VERIFY", "yes", `want true or false, got "yes"`},
	{"AUTHPROXY_SHUTDOWN_GRACE", "0s", "want a positive Go duration"},
	{"AUTHPROXY_BEARER_AUDIENCES", "api legacy", "want audiences without blanks"},
	{"AUTHPROXY_CLAIM_HEADERS", "X-Tenant", "want Header=claim pairs"},
	{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE", "/nonexistent/client-key.pem", "want a readable file"},
	{"AUTHPROXY_CLIENT_PRIVATE_KEY_ID", "key-1", "only used with AUTHPROXY_CLIENT_PRIVATE_KEY_FILE"},
	{"AUTHPROXY_CLIENT_PRIVATE_KEY_ID", "key\x01", "without control characters"},
	{"AUTHPROXY_CLIENT_TLS_CERT_FILE", "/nonexistent/client.crt", "want a readable file"},
	{"AUTHPROXY_CLIENT_TLS_KEY_FILE", "/nonexistent/client.key", "want a readable file"},
	{"AUTHPROXY_CLAIM_HEADERS", "X-Forwarded-Email=mail", "reserved"},
	{"AUTHPROXY_CLAIM_HEADERS", "Cookie=c", "reserved"},
	{"AUTHPROXY_CLAIM_HEADERS", "X Tenant=t", "want a header name"},
	{"AUTHPROXY_CLAIM_HEADERS", "X-T=a, x-t=b", "listed twice"},
	{"AUTHPROXY_UPSTREAM_JWT", "1", `want true or false, got "1"`},
	{"AUTHPROXY_UPSTREAM_JWT_KEY_FILE", "/nonexistent/key.pem", "want a readable file"},
	{"AUTHPROXY_LOG_FORMAT", "xml", `want json or text, got "xml"`},
}

func TestLoadConfigInvalidValues(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.variable+"="+tc.value, func(t *testing.T) {
			c, err := loadWith(map[string]string{tc.variable: tc.value})
			if err == nil {
				t.Fatalf("LoadConfig accepted %s=%q", tc.variable, tc.value)
			}
			if c != nil {
				t.Errorf("LoadConfig returned a Config with an error")
			}
			lines := errorLines(err)
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.variable+": ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("error %q: want one problem, %q…, saying %q", err, tc.variable+": ", tc.want)
			}
		})
	}
}

// TestConfigCasesCoverEveryVariable keeps the tables above in step with the
// variables table.
func TestConfigCasesCoverEveryVariable(t *testing.T) {
	noInvalidValue := map[string]bool{ // any string is a valid value of these
		"AUTHPROXY_CLIENT_ID": true, "AUTHPROXY_CLIENT_SECRET": true, "AUTHPROXY_USER_CLAIM": true,
		"AUTHPROXY_GROUPS_CLAIM": true, "AUTHPROXY_ALLOWED_GROUPS": true, "AUTHPROXY_TEMPLATES_DIR": true,
	}
	for _, v := range variables {
		if v.idpOnly {
			continue // only under an IdP's name: idps_test.go
		}
		if !slices.ContainsFunc(validCases, func(c validCase) bool { return c.variable == v.name }) {
			t.Errorf("%s has no valid-value case", v.name)
		}
		hasInvalid := slices.ContainsFunc(invalidCases, func(c invalidCase) bool { return c.variable == v.name })
		if !hasInvalid && !noInvalidValue[v.name] {
			t.Errorf("%s has no invalid-value case", v.name)
		}
		if !strings.HasPrefix(v.name, "AUTHPROXY_") || v.help == "" {
			t.Errorf("variable %q: want an AUTHPROXY_ name and help text", v.name)
		}
	}
}

func TestLoadConfigRequired(t *testing.T) {
	for _, v := range variables {
		if !v.required {
			continue
		}
		for _, value := range []string{"\x00unset", "", "   "} {
			t.Run(fmt.Sprintf("%s=%q", v.name, value), func(t *testing.T) {
				_, err := loadWith(map[string]string{v.name: value})
				lines := errorLines(err)
				if len(lines) != 1 || !strings.HasPrefix(lines[0], v.name+": required") {
					t.Errorf("error %q: want one problem, %q", err, v.name+": required…")
				}
			})
		}
	}
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	bad := map[string]string{
		"AUTHPROXY_LISTEN":          "nope",
		"AUTHPROXY_UPSTREAM":        "\x00unset",
		"AUTHPROXY_COOKIE_SECRET":   "dHdlbHZlIGJ5dGVz",
		"AUTHPROXY_SESSION_TTL":     "forever",
		"AUTHPROXY_LOG_FORMAT":      "xml",
		"AUTHPROXY_COOKIE_SECURE":   "maybe",
		"AUTHPROXY_REDIRECT_URL":    "https://app.example.com/",
		"AUTHPROXY_TRUSTED_PROXIES": "everyone",
	}
	_, err := loadWith(bad)
	lines := errorLines(err)
	if len(lines) != len(bad) {
		t.Errorf("got %d problems, want %d:\n%v", len(lines), len(bad), err)
	}
	for name := range bad {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, name+": ") }) {
			t.Errorf("no problem reported for %s:\n%v", name, err)
		}
	}
}

func TestLoadConfigCrossChecks(t *testing.T) {
	const noneWithoutSecure = "AUTHPROXY_COOKIE_SAMESITE: none requires AUTHPROXY_COOKIE_SECURE=true"
	const tlsPair = "AUTHPROXY_TLS_KEY_FILE: set both AUTHPROXY_TLS_CERT_FILE and AUTHPROXY_TLS_KEY_FILE, or neither"
	file := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(file, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // each problem's start, in order
	}{
		{"SameSite=none without Secure", map[string]string{"AUTHPROXY_COOKIE_SAMESITE": "none", "AUTHPROXY_COOKIE_SECURE": "false"},
			[]string{noneWithoutSecure}},
		{"SameSite=none with Secure", map[string]string{"AUTHPROXY_COOKIE_SAMESITE": "none"}, nil},
		{"reported with other problems", map[string]string{
			"AUTHPROXY_COOKIE_SAMESITE": "none", "AUTHPROXY_COOKIE_SECURE": "false", "AUTHPROXY_LOG_FORMAT": "xml",
			"AUTHPROXY_REDIRECT_URL": "\x00unset",
		}, []string{"AUTHPROXY_REDIRECT_URL: required", "AUTHPROXY_LOG_FORMAT: ", noneWithoutSecure}},
		{"TLS certificate without key", map[string]string{"AUTHPROXY_TLS_CERT_FILE": file}, []string{tlsPair}},
		{"TLS key without certificate", map[string]string{"AUTHPROXY_TLS_KEY_FILE": file}, []string{tlsPair}},
		{"redis store without Redis", map[string]string{"AUTHPROXY_SESSION_STORE": "redis"}, []string{"AUTHPROXY_REDIS_URL: required with AUTHPROXY_SESSION_STORE=redis"}},
		{"Sentinel and Cluster at once", map[string]string{"AUTHPROXY_REDIS_SENTINEL_MASTER": "m", "AUTHPROXY_REDIS_SENTINEL_ADDRS": "a:1", "AUTHPROXY_REDIS_CLUSTER_ADDRS": "b:2"},
			[]string{"AUTHPROXY_REDIS_CLUSTER_ADDRS: set either Sentinel or Cluster addresses, not both"}},
		{"TLS pair", map[string]string{"AUTHPROXY_TLS_CERT_FILE": file, "AUTHPROXY_TLS_KEY_FILE": file}, nil},
		{"not reported when its own variable is bad", map[string]string{"AUTHPROXY_COOKIE_SAMESITE": "none", "AUTHPROXY_COOKIE_SECURE": "no"},
			[]string{"AUTHPROXY_COOKIE_SECURE: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(tc.env)
			lines := errorLines(err)
			if len(lines) != len(tc.want) {
				t.Fatalf("error %q: want %d problems: %q", err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d is %q, want %q…", i+1, lines[i], w)
				}
			}
		})
	}
}

// TestLoadConfigProvider covers what AUTHPROXY_PROVIDER implies for the
// other variables, and the problems only the provider itself sees.
func TestLoadConfigProvider(t *testing.T) {
	const entraCommon = "https://login.microsoftonline.com/common/v2.0"
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // each problem's start, in order
	}{
		{"issuer required", map[string]string{"AUTHPROXY_OIDC_ISSUER": "\x00unset"}, []string{"AUTHPROXY_OIDC_ISSUER: required, except with AUTHPROXY_PROVIDER=github"}},
		{"issuer required by every OIDC kind", map[string]string{"AUTHPROXY_PROVIDER": "google", "AUTHPROXY_OIDC_ISSUER": ""}, []string{"AUTHPROXY_OIDC_ISSUER: required"}},
		{"github without issuer", map[string]string{"AUTHPROXY_PROVIDER": "github", "AUTHPROXY_OIDC_ISSUER": "\x00unset"}, nil},
		{"github with issuer", map[string]string{"AUTHPROXY_PROVIDER": "github"}, []string{"AUTHPROXY_OIDC_ISSUER: not used with AUTHPROXY_PROVIDER=github"}},
		{"another kind's variables", map[string]string{"AUTHPROXY_PROVIDER": "keycloak", "AUTHPROXY_ENTRA_GROUP_NAMES": "true", "AUTHPROXY_GITHUB_ORG": "acme"},
			[]string{"AUTHPROXY_ENTRA_GROUP_NAMES: only used with AUTHPROXY_PROVIDER=entra", "AUTHPROXY_GITHUB_ORG: only used with AUTHPROXY_PROVIDER=github"}},
		{"github team without org", map[string]string{"AUTHPROXY_PROVIDER": "github", "AUTHPROXY_OIDC_ISSUER": "\x00unset", "AUTHPROXY_GITHUB_TEAM": "web"},
			[]string{"AUTHPROXY_GITHUB_TEAM: needs AUTHPROXY_GITHUB_ORG"}},
		{"entra issuer not v2.0", map[string]string{"AUTHPROXY_PROVIDER": "entra"}, []string{"AUTHPROXY_OIDC_ISSUER: with the entra provider, want https://login.microsoftonline.com/<tenant>/v2.0"}},
		{"entra multi-tenant without tenants", map[string]string{"AUTHPROXY_PROVIDER": "entra", "AUTHPROXY_OIDC_ISSUER": entraCommon},
			[]string{"AUTHPROXY_ENTRA_TENANTS: required with the multi-tenant issuer"}},
		{"not checked when a variable is bad", map[string]string{"AUTHPROXY_PROVIDER": "entra", "AUTHPROXY_OIDC_ISSUER": entraCommon, "AUTHPROXY_LOG_FORMAT": "xml"},
			[]string{"AUTHPROXY_LOG_FORMAT: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(tc.env)
			lines := errorLines(err)
			if len(lines) != len(tc.want) {
				t.Fatalf("error %q: want %d problems: %q", err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d is %q, want %q…", i+1, lines[i], w)
				}
			}
		})
	}
}

func FuzzLoadConfig(f *testing.F) {
	f.Add(":4180", "http://127.0.0.1:8080", "https://app.example.com/oauth2/callback", testCookieSecret, "GET /healthz, /public/", "12h")
	f.Add("", "", "", "", "", "")
	f.Add("x", "unix:///s.sock", "http://a/oauth2/callback?x", "dHdlbHZlIGJ5dGVz,,"+testCookieSecret, "GET /a /b", "-1s")
	f.Add("[::1]:99999", "http://u@h", "//a/oauth2/callback", strings.Repeat("ab", 32), `/a\b, /%2f, /..;/`, "1e9h")
	f.Add("\n", "http://%zz", "https://a/oauth2/callback#f", "\xff\xfe", "FETCH /x, get /y/", "9999999999h")
	f.Fuzz(func(t *testing.T, listen, upstream, redirect, secret, routes, ttl string) {
		env := validEnv()
		maps.Copy(env, map[string]string{
			"AUTHPROXY_LISTEN": listen, "AUTHPROXY_UPSTREAM": upstream, "AUTHPROXY_REDIRECT_URL": redirect,
			"AUTHPROXY_COOKIE_SECRET": secret, "AUTHPROXY_SKIP_AUTH_ROUTES": routes, "AUTHPROXY_SESSION_TTL": ttl,
		})
		c, err := LoadConfig(mapLookup(env))
		if err != nil {
			if c != nil {
				t.Fatalf("Config and error both returned")
			}
			for _, line := range errorLines(err) {
				name, _, ok := strings.Cut(line, ": ")
				if !ok || !slices.ContainsFunc(variables, func(v variable) bool { return v.name == name }) {
					t.Fatalf("problem %q does not start with an AUTHPROXY_ variable", line)
				}
			}
			return
		}
		if c.RedirectURL.Path != callbackPath || c.RedirectURL.Host == "" {
			t.Errorf("accepted redirect URL %q", c.RedirectURL)
		}
		if c.Upstream.Scheme != "unix" && c.Upstream.Host == "" {
			t.Errorf("accepted upstream %q", c.Upstream)
		}
		for _, k := range c.CookieSecrets {
			if len(k.Reveal()) != 32 {
				t.Errorf("accepted a %d-byte cookie secret", len(k.Reveal()))
			}
		}
		if len(c.CookieSecrets) == 0 || c.SessionTTL <= 0 {
			t.Errorf("accepted %d cookie secrets, TTL %v", len(c.CookieSecrets), c.SessionTTL)
		}
		for _, rt := range c.SkipAuthRoutes {
			if clean, err := policy.CleanPath(rt.Path); err != nil || clean != rt.Path {
				t.Errorf("accepted unclean route %q", rt.Path)
			}
		}
	})
}

// An email allow-list set alone, as a value or a file, for the default IdP
// or another, is the only way in: the domains' default (*) would let
// everyone in beside it. Set, the domains still add to it.
func TestAllowedEmailsAloneRestrict(t *testing.T) {
	list := filepath.Join(t.TempDir(), "emails")
	if err := os.WriteFile(list, []byte("# staff\nada@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		idp  string
		want []string
	}{
		{"nothing set", nil, "default", []string{"*"}},
		{"emails", map[string]string{"AUTHPROXY_ALLOWED_EMAILS": "ada@example.com"}, "default", nil},
		{"emails file", map[string]string{"AUTHPROXY_ALLOWED_EMAILS_FILE": list}, "default", nil},
		{"emails and domains", map[string]string{"AUTHPROXY_ALLOWED_EMAILS": "ada@example.com", "AUTHPROXY_ALLOWED_EMAIL_DOMAINS": "*"}, "default", []string{"*"}},
		{"partner's emails", map[string]string{"AUTHPROXY_IDP_PARTNERS_ALLOWED_EMAILS": "ada@example.com"}, "partners", nil},
		{"partner's emails leave the default's domains", map[string]string{"AUTHPROXY_IDP_PARTNERS_ALLOWED_EMAILS": "ada@example.com"}, "default", []string{"*"}},
		{"default's emails leave the partner's domains", map[string]string{"AUTHPROXY_ALLOWED_EMAILS": "ada@example.com"}, "partners", []string{"*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := partnerEnv()
			maps.Copy(env, tc.env)
			c, err := LoadConfig(mapLookup(env))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			for _, idp := range c.allIdPs() {
				if idp.Name == tc.idp && !slices.Equal(idp.AllowedEmailDomains, tc.want) {
					t.Errorf("%s's AllowedEmailDomains = %q, want %q", idp.Name, idp.AllowedEmailDomains, tc.want)
				}
			}
			pol, _, err := LoadPolicy(mapLookup(env))
			if err != nil {
				t.Fatalf("LoadPolicy: %v", err)
			}
			// The policy explain uses agrees: with the list alone, only ada.
			for email, want := range map[string]bool{"ada@example.com": true, "eve@example.com": tc.want != nil} {
				if d := pol.Admit(&policy.Identity{IdP: tc.idp, Email: email}); d.Allow != want {
					t.Errorf("LoadPolicy's Admit(%s at %s) = %t (%s), want %t", email, tc.idp, d.Allow, d.Reason, want)
				}
			}
		})
	}
}
