package authproxy

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/authproxy/authproxy/policy"
)

// The value parsers and checks of the configuration table (variables.go).

// splitList splits a comma-separated list, trimming blanks and dropping empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parseHostPorts(v string) ([]string, error) {
	items := splitList(v)
	for _, hp := range items {
		if err := checkHostPort(hp); err != nil {
			return nil, err
		}
	}
	return items, nil
}

func parseClaimHeaders(c *Config, v string) error {
	c.ClaimHeaders = nil
	seen := map[string]bool{}
	for _, item := range splitList(v) {
		header, claim, ok := strings.Cut(item, "=")
		header, claim = strings.TrimSpace(header), strings.TrimSpace(claim)
		if !ok || header == "" || claim == "" {
			return fmt.Errorf("want Header=claim pairs such as X-Tenant=tenant_id, got %q", item)
		}
		n := normalizeHeaderName(header)
		switch {
		case !validHeaderName(header):
			return fmt.Errorf("header %q: want a header name of letters, digits and -", header)
		case isIdentityHeader(header) || reservedHeaders[n]:
			return fmt.Errorf("header %q: reserved; pick a name of your own such as X-Tenant", header)
		case seen[n]:
			return fmt.Errorf("header %q: listed twice", header)
		}
		seen[n] = true
		c.ClaimHeaders = append(c.ClaimHeaders, ClaimHeader{Header: http.CanonicalHeaderKey(header), Claim: claim})
	}
	return nil
}

// reservedHeaders may not carry claims: the proxy or HTTP itself owns them.
var reservedHeaders = map[string]bool{
	"host": true, "cookie": true, "authorization": true, "connection": true, "content-length": true,
	"transfer-encoding": true, "upgrade": true, "te": true, "trailer": true, "x-forwarded-for": true,
	"x-forwarded-host": true, "x-forwarded-proto": true, "forwarded": true, "x-real-ip": true,
}

func validHeaderName(h string) bool {
	for _, r := range h {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return h != ""
}

func parseBool(v string) (bool, error) {
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", v)
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive Go duration such as 90s or 12h, got %q", v)
	}
	return d, nil
}

func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port such as :4180 or 127.0.0.1:4180, got %q", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("want a port between 0 and 65535, got %q", port)
	}
	return nil
}

func checkReadable(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("want a readable file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		return fmt.Errorf("want a readable file, got a directory: %s", path)
	}
	return nil
}

func parseHTTPURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("want an absolute http:// or https:// URL, got %q", v)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("want a URL without user info or fragment, got %q", v)
	}
	return u, nil
}

func parseUpstream(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil {
		return nil, fmt.Errorf("want http://host:port, https://host:port or unix:///path.sock, got %q", v)
	}
	switch {
	case u.Scheme == "unix" && u.Host == "" && path.IsAbs(u.Path):
		return u, nil
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == "":
		return u, nil
	}
	return nil, fmt.Errorf("want http://host:port, https://host:port or unix:///path.sock, got %q", v)
}

func parseRedirectURL(v string) (*url.URL, error) {
	u, err := parseHTTPURL(v)
	if err != nil {
		return nil, err
	}
	if u.Path != callbackPath || u.RawQuery != "" {
		return nil, fmt.Errorf("want a URL whose path is %s and no query, got path %q", callbackPath, u.Path)
	}
	return u, nil
}

func parseScopes(c *Config, v string) error {
	c.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	for _, s := range c.Scopes {
		if s == "openid" {
			return nil
		}
	}
	return fmt.Errorf("want a list that includes openid, got %q", v)
}

// cookieSecretLen is the size of one cookie secret, in bytes.
const cookieSecretLen = 32

func parseCookieSecrets(c *Config, v string) error {
	// Comma-separated, or one a line in AUTHPROXY_COOKIE_SECRET_FILE:
	// neither base64 nor hex has a comma or a blank.
	items := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n' })
	if len(items) == 0 {
		return errors.New("required; " + cookieSecretHelp)
	}
	c.CookieSecrets = nil
	for i, item := range items {
		key, err := decodeSecret(item)
		if err != nil {
			if len(items) > 1 {
				return fmt.Errorf("item %d: %w", i+1, err)
			}
			return err
		}
		c.CookieSecrets = append(c.CookieSecrets, Secret(key))
	}
	return nil
}

const cookieSecretHelp = "want 32 random bytes base64-encoded (or 64 hex characters); `authproxy secret` prints one"

// decodeSecret accepts 64 hex characters or any base64 flavour of 32 bytes.
func decodeSecret(s string) ([]byte, error) {
	if len(s) == 2*cookieSecretLen {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != cookieSecretLen {
			return nil, fmt.Errorf("want 32 bytes base64-encoded, got %d bytes", len(b))
		}
		return b, nil
	}
	return nil, fmt.Errorf("%s; got %d characters that are neither", cookieSecretHelp, len(s))
}

func parseCookieName(c *Config, v string) error {
	c.CookieName = v
	for _, r := range v {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return fmt.Errorf("want a cookie name of letters, digits, _ and -, got %q", v)
		}
	}
	return nil
}

func checkDomain(v string) error {
	if v == "" {
		return nil
	}
	d := strings.TrimPrefix(v, ".")
	if d == "" || strings.ContainsAny(d, " /:;,") || strings.Contains(d, "..") {
		return fmt.Errorf("want a domain name such as example.com, got %q", v)
	}
	return nil
}

func parseSameSite(c *Config, v string) error {
	switch strings.ToLower(v) {
	case "lax":
		c.CookieSameSite = http.SameSiteLaxMode
	case "strict":
		c.CookieSameSite = http.SameSiteStrictMode
	case "none":
		c.CookieSameSite = http.SameSiteNoneMode
	default:
		return fmt.Errorf("want lax, strict or none, got %q", v)
	}
	return nil
}

func parseDomains(v string) ([]string, error) {
	var out []string
	for _, d := range splitList(v) {
		d = strings.ToLower(strings.TrimPrefix(d, "@"))
		if d != "*" {
			if err := checkDomain(d); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func parseEmails(v string) ([]string, error) {
	var out []string
	for _, e := range splitList(v) {
		at := strings.LastIndexByte(e, '@')
		if at <= 0 || at == len(e)-1 {
			return nil, fmt.Errorf("want email addresses such as ada@example.com, got %q", e)
		}
		out = append(out, strings.ToLower(e))
	}
	return out, nil
}

// policyProblems returns a policy error as its problems, one a line, for
// the caller to put after the variable's name (LoadConfig does, one line
// each).
func policyProblems(err error) error {
	var perr *policy.Error
	if errors.As(err, &perr) {
		return errors.New(strings.Join(perr.Problems, "\n"))
	}
	return err
}

func parseTrustedProxies(c *Config, v string) error {
	c.TrustedProxies = nil
	for _, item := range splitList(v) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return fmt.Errorf("want CIDRs such as 10.0.0.0/8 or addresses, got %q", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	return nil
}
