package authproxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/authproxy/authproxy/policy"
)

// Config is authproxy's validated configuration. LoadConfig builds it once at
// start; nothing changes it afterwards. The zero value is not usable.
type Config struct {
	Listen   string
	Upstream *url.URL
	// UpstreamTimeout bounds the wait for the upstream's response headers.
	UpstreamTimeout time.Duration
	// IdPConfig is the default identity provider's configuration, from
	// the variables without an IdP name; IdPs are the others.
	IdPConfig
	// IdPs are the further identity providers AUTHPROXY_IDPS names, in
	// its order, each from AUTHPROXY_IDP_<NAME>_* (idps.go).
	IdPs        []*IdPConfig
	RedirectURL *url.URL

	// IdPTimeout bounds each call to the identity provider.
	IdPTimeout time.Duration

	// CookieSecrets are 32-byte keys; the first seals, all open.
	CookieSecrets  []Secret
	CookieName     string
	CookieSecure   bool
	CookieDomain   string
	CookieSameSite http.SameSite
	SessionStore   string
	SessionTTL     time.Duration
	// SessionIdleTimeout ends sessions unused this long; zero means off.
	SessionIdleTimeout time.Duration

	RedisURL            Secret
	RedisSentinelMaster string
	RedisSentinelAddrs  []string
	RedisClusterAddrs   []string

	// SkipAuthRoutes are the public routes of AUTHPROXY_SKIP_AUTH_ROUTES.
	SkipAuthRoutes []policy.Rule
	// PolicyFile is AUTHPROXY_POLICY_FILE's parsed rules; nil when unset.
	PolicyFile *policy.Policy
	// Policy is what is enforced: skip-auth routes, then the policy file.
	Policy *policy.Policy

	PassAccessToken bool
	// ClaimHeaders send more ID token claims upstream as headers.
	ClaimHeaders []ClaimHeader
	// UpstreamJWT sends X-Authproxy-Jwt, signed with the key in
	// UpstreamJWTKeyFile or a fresh one.
	UpstreamJWT        bool
	UpstreamJWTKeyFile string

	PostLogoutRedirectURL *url.URL
	TrustedProxies        []netip.Prefix
	// SignInRateLimit limits sign-in starts and, apart, callbacks per
	// client address; BackchannelRateLimit limits back-channel logouts per
	// address (the IdP's). The zero RateLimit is off.
	SignInRateLimit      RateLimit
	BackchannelRateLimit RateLimit

	MetricsListen string
	TLSCertFile   string
	TLSKeyFile    string
	// UpstreamCAFile, when set, replaces the system roots for https upstreams.
	UpstreamCAFile                string
	InsecureSkipUpstreamTLSVerify bool
	ShutdownGrace                 time.Duration
	LogFormat                     string
	TemplatesDir                  string

	// idpNames are AUTHPROXY_IDPS, whose configurations are in IdPs.
	idpNames []string

	// sums fingerprint each variable's value as LoadConfig read it (with
	// the content of a watched file), so that a reload can tell which
	// variables changed (reload.go). Never printed.
	sums fingerprints
}

// Secret is a configuration value that must never be printed. Its String
// and LogValue methods redact it; use Reveal to get the value itself.
type Secret string

// String returns a redacted placeholder, never the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue keeps the secret out of structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the secret out of JSON and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// GoString keeps the secret out of %#v.
func (s Secret) GoString() string { return `authproxy.Secret("` + s.String() + `")` }

// Reveal returns the secret's value. Do not log or print it.
func (s Secret) Reveal() string { return string(s) }

// Lookup reads one environment variable; os.LookupEnv is one.
type Lookup func(name string) (string, bool)

// LoadConfig reads every AUTHPROXY_* variable through lookup, applies the
// defaults and validates the result. It reports every problem at once, each
// naming its variable; the error is nil only for a usable configuration.
// A secret, an allow-list and AUTHPROXY_CLAIM_HEADERS may also be given as
// NAME_FILE, the path of a file holding it.
func LoadConfig(lookup Lookup) (*Config, error) {
	c := &Config{sums: fingerprints{}}
	var errs []error
	failed := map[string]bool{}
	for _, v := range variables {
		if v.idpOnly {
			continue
		}
		raw, err := v.read(lookup)
		c.sums[v.name] = v.fingerprint(raw, err)
		if err == nil && raw == "" && v.required {
			err = errors.New("required; " + v.help)
		}
		if err == nil && raw == "" {
			raw = v.defaultAs(v.name, lookup)
		}
		if err == nil {
			err = v.parse(c, raw)
		}
		if err != nil {
			failed[v.name] = true
			// One line per problem, each naming the variable.
			for line := range strings.Lines(err.Error()) {
				errs = append(errs, fmt.Errorf("%s: %s", v.name, strings.TrimSuffix(line, "\n")))
			}
		}
	}
	c.vars = defaultVars
	for _, name := range c.idpNames {
		if name == c.Name {
			errs = append(errs, fmt.Errorf("AUTHPROXY_IDPS: %q is the default IdP's name (AUTHPROXY_DEFAULT_IDP_NAME); give the other IdP another name", name))
			continue
		}
		idp, ie := loadIdP(lookup, name, c.sums, failed)
		c.IdPs = append(c.IdPs, idp)
		errs = append(errs, ie...)
	}
	errs = append(errs, c.crossCheck(failed)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// defaultAs is the value of the variable's row, under name (its own or an
// IdP's), when it is unset: its default, or none when the variable its
// default gives way to (defUnless) is set for the same IdP.
func (v variable) defaultAs(name string, lookup Lookup) string {
	if v.defUnless != "" {
		prefix := strings.TrimSuffix(name, strings.TrimPrefix(v.name, "AUTHPROXY_"))
		other := prefix + strings.TrimPrefix(v.defUnless, "AUTHPROXY_")
		if val, _ := lookup(other); strings.TrimSpace(val) != "" {
			return ""
		}
		if file, _ := lookup(other + "_FILE"); strings.TrimSpace(file) != "" {
			return ""
		}
	}
	return v.def
}

// read returns the variable's raw value, trimmed, or "" when it is unset.
func (v variable) read(lookup Lookup) (string, error) { return v.readAs(v.name, lookup) }

// readAs is read for the variable's row under another name: an IdP's.
func (v variable) readAs(name string, lookup Lookup) (string, error) {
	val, ok := lookup(name)
	if !v.secret && !v.file {
		return strings.TrimSpace(val), nil
	}
	file, fok := lookup(name + "_FILE")
	switch {
	case ok && val != "" && fok && file != "":
		return "", fmt.Errorf("set either %s or %s_FILE, not both", name, name)
	case fok && file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading %s_FILE: %w", name, err)
		}
		if v.file {
			return listFile(string(b)), nil
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return strings.TrimSpace(val), nil
}

// listFile turns a list file's content (items one a line or
// comma-separated; lines starting with # are comments) into the
// comma-separated form of the variable.
func listFile(content string) string {
	var items []string
	for line := range strings.Lines(content) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			items = append(items, line)
		}
	}
	return strings.Join(items, ", ")
}

// crossCheck validates rules that involve more than one variable, and fills
// defaults derived from others. It skips rules whose variables failed.
func (c *Config) crossCheck(failed map[string]bool) []error {
	var errs []error
	if !failed["AUTHPROXY_COOKIE_SAMESITE"] && !failed["AUTHPROXY_COOKIE_SECURE"] &&
		c.CookieSameSite == http.SameSiteNoneMode && !c.CookieSecure {
		errs = append(errs, errors.New("AUTHPROXY_COOKIE_SAMESITE: none requires AUTHPROXY_COOKIE_SECURE=true (browsers drop SameSite=None cookies without Secure)"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") && !failed["AUTHPROXY_TLS_CERT_FILE"] && !failed["AUTHPROXY_TLS_KEY_FILE"] {
		errs = append(errs, errors.New("AUTHPROXY_TLS_KEY_FILE: set both AUTHPROXY_TLS_CERT_FILE and AUTHPROXY_TLS_KEY_FILE, or neither"))
	}
	if c.SessionStore == "redis" && !c.usesRedis() && !failed["AUTHPROXY_REDIS_URL"] {
		errs = append(errs, errors.New("AUTHPROXY_REDIS_URL: required with AUTHPROXY_SESSION_STORE=redis (or AUTHPROXY_REDIS_SENTINEL_ADDRS, AUTHPROXY_REDIS_CLUSTER_ADDRS)"))
	}
	if (c.RedisSentinelMaster == "") != (len(c.RedisSentinelAddrs) == 0) {
		errs = append(errs, errors.New("AUTHPROXY_REDIS_SENTINEL_MASTER: set it together with AUTHPROXY_REDIS_SENTINEL_ADDRS, or neither"))
	}
	if len(c.RedisSentinelAddrs) > 0 && len(c.RedisClusterAddrs) > 0 {
		errs = append(errs, errors.New("AUTHPROXY_REDIS_CLUSTER_ADDRS: set either Sentinel or Cluster addresses, not both"))
	}
	errs = append(errs, c.checkIdPs(failed)...)
	c.Policy = c.newPolicy()
	errs = append(errs, c.checkPolicyIdPs()...)
	if c.PostLogoutRedirectURL == nil && c.RedirectURL != nil {
		u := *c.RedirectURL
		u.Path, u.RawPath, u.RawQuery, u.Fragment = "/", "", "", ""
		c.PostLogoutRedirectURL = &u
	}
	return errs
}

func sameSiteName(s http.SameSite) string {
	switch s {
	case http.SameSiteStrictMode:
		return "strict"
	case http.SameSiteNoneMode:
		return "none"
	}
	return "lax"
}

// isPolicyVariable reports whether a variable makes up the access policy:
// the rules and the allow-list.
func isPolicyVariable(name string) bool {
	switch name {
	case "AUTHPROXY_SKIP_AUTH_ROUTES", "AUTHPROXY_POLICY_FILE", "AUTHPROXY_IDPS", "AUTHPROXY_DEFAULT_IDP_NAME",
		"AUTHPROXY_ALLOWED_EMAIL_DOMAINS", "AUTHPROXY_ALLOWED_EMAILS", "AUTHPROXY_ALLOWED_GROUPS":
		return true
	}
	return false
}

// LoadPolicy reads only the variables that make up the access policy
// (AUTHPROXY_SKIP_AUTH_ROUTES, AUTHPROXY_POLICY_FILE, the IdPs' names and
// each one's AUTHPROXY_ALLOWED_* allow-list), for `authproxy policy
// explain`, which must work without the rest. It returns the policy and
// the configured IdPs' names, the default first: those an Identity's IdP
// may name. As LoadConfig, it refuses a policy rule naming an IdP that is
// not configured, and reports every problem at once.
func LoadPolicy(lookup Lookup) (*policy.Policy, []string, error) {
	c := &Config{}
	var errs []error
	parse := func(c *Config, v variable, name string) {
		raw, err := v.readAs(name, lookup)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		if raw == "" {
			raw = v.defaultAs(name, lookup)
		}
		if err := v.parse(c, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	for _, v := range variables {
		if isPolicyVariable(v.name) {
			parse(c, v, v.name)
		}
	}
	for _, name := range c.idpNames {
		scratch := &Config{}
		for _, v := range variables {
			if v.idp && isPolicyVariable(v.name) {
				parse(scratch, v, idpVars(name).rename(v.name))
			}
		}
		idp := scratch.IdPConfig
		idp.Name = name
		c.IdPs = append(c.IdPs, &idp)
	}
	errs = append(errs, c.checkPolicyIdPs()...)
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return c.newPolicy(), namesOf(c.allIdPs()), nil
}

// newPolicy is the policy enforced: the skip-auth routes, then the policy
// file, every rule that is not public under the allow-list of the user's
// IdP.
func (c *Config) newPolicy() *policy.Policy {
	opts := []policy.Option{policy.WithDefaultIdP(c.Name)}
	for _, idp := range c.IdPs {
		opts = append(opts, policy.WithIdPAllowList(idp.Name, idp.allowList()))
	}
	return policy.New(c.SkipAuthRoutes, c.PolicyFile, c.allowList(), opts...)
}

// checkPolicyIdPs refuses a policy rule that names an IdP that is not
// configured: a typo there would lock that IdP's users out, or let none in.
func (c *Config) checkPolicyIdPs() []error {
	if c.PolicyFile == nil {
		return nil
	}
	var errs []error
	for _, r := range c.PolicyFile.Rules {
		for _, name := range r.IdPs {
			if c.idp(name) == nil {
				errs = append(errs, fmt.Errorf("AUTHPROXY_POLICY_FILE: %s names IdP %q, which is not configured (the default IdP is %q; AUTHPROXY_IDPS names the others)", r.Source, name, c.Name))
			}
		}
	}
	return errs
}

// allowList is the policy's allow-list from AUTHPROXY_ALLOWED_*.
func (c *IdPConfig) allowList() policy.AllowList {
	return policy.AllowList{Domains: c.AllowedEmailDomains, Emails: c.AllowedEmails, Groups: c.AllowedGroups}
}

// ClaimHeader is one entry of AUTHPROXY_CLAIM_HEADERS: the claim Claim of
// the ID token is sent upstream as the header Header.
type ClaimHeader struct {
	Header string
	Claim  string
}

// claimNames lists the claims AUTHPROXY_CLAIM_HEADERS asks for.
func (c *Config) claimNames() []string {
	names := make([]string, len(c.ClaimHeaders))
	for i, ch := range c.ClaimHeaders {
		names[i] = ch.Claim
	}
	return names
}
