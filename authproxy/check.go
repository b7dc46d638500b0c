package authproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/authproxy/authproxy/providers"
)

// Check runs the checks an operator wants when something is wrong: the
// configuration (already loaded), the IdP's discovery document, the shape of
// the redirect URL, the cookie secret, cookie security against the scheme,
// and whether the upstream answers. It writes one line per check to w and
// returns an error naming every failed check.
func Check(ctx context.Context, cfg *Config, w io.Writer) error {
	var failed []error
	report := func(err error, ok string) {
		if err != nil {
			failed = append(failed, err)
			fmt.Fprintf(w, "FAIL  %v\n", err)
			return
		}
		fmt.Fprintf(w, "ok    %s\n", ok)
	}
	warn := func(msg string) { fmt.Fprintf(w, "warn  %s\n", msg) }

	report(nil, fmt.Sprintf("configuration: %d variables valid", len(variables)))

	for _, idp := range cfg.allIdPs() {
		checkIdP(ctx, cfg, idp, report)
	}

	report(nil, fmt.Sprintf("redirect URL: %s (callback path %s)", cfg.RedirectURL, callbackPath))
	switch {
	case cfg.RedirectURL.Scheme == "https" && !cfg.CookieSecure:
		report(errors.New("AUTHPROXY_COOKIE_SECURE=false with an https redirect URL: session cookies would also travel over plain http"), "")
	case cfg.RedirectURL.Scheme == "http" && cfg.CookieSecure && !isLoopback(cfg.RedirectURL.Hostname()):
		report(errors.New("AUTHPROXY_COOKIE_SECURE=true with a plain http redirect URL: browsers will not send the session cookie back"), "")
	default:
		report(nil, fmt.Sprintf("cookies: %s, secure=%t, samesite=%s, store %s, ttl %s",
			cfg.CookieName, cfg.CookieSecure, sameSiteName(cfg.CookieSameSite), cfg.SessionStore, cfg.SessionTTL))
	}
	for i, k := range cfg.CookieSecrets {
		if distinctBytes([]byte(k.Reveal())) < 16 {
			report(fmt.Errorf("AUTHPROXY_COOKIE_SECRET: key %d has few distinct bytes and looks hand-made, not random; use `authproxy secret`", i+1), "")
		}
	}
	if len(cfg.CookieSecrets) > 1 {
		warn(fmt.Sprintf("cookie secret: %d keys; the first seals, the others only open (rotation in progress)", len(cfg.CookieSecrets)))
	}

	if cfg.usesRedis() {
		report(checkRedis(ctx, cfg), "redis: answers")
	}
	report(checkUpstream(ctx, cfg), fmt.Sprintf("upstream: %s answers", cfg.Upstream.Redacted()))

	if len(failed) > 0 {
		return fmt.Errorf("%d check(s) failed: %w", len(failed), errors.Join(failed...))
	}
	return nil
}

// checkIdP reports, as one block, whether IdP idp answers and how it is
// configured; with several IdPs each block names its IdP.
func checkIdP(ctx context.Context, cfg *Config, idp *IdPConfig, report func(error, string)) {
	what := "identity provider"
	if cfg.idpNames != nil {
		kind := "browser sign-in and bearer tokens"
		if idp.BearerOnly {
			kind = "bearer tokens only"
		}
		what = fmt.Sprintf("identity provider %q (%s, %s)", idp.Name, idp.DisplayName, kind)
	}
	p, err := newProvider(cfg, idp, nil, nil)
	if err != nil {
		report(err, "")
	} else if c, ok := p.(providers.Checker); ok {
		msg, err := c.Check(ctx)
		if err != nil {
			err = nameVariable(err, idp.vars.of("OIDC_ISSUER"))
		}
		report(err, what+": "+msg)
	}
	if auth, err := clientAuth(idp); err == nil && auth != nil && auth.PublicJWKS() != nil {
		// Printed even when the IdP refuses: it is what to register there.
		report(nil, fmt.Sprintf("client key%s: %s; the public JWKS to register at the IdP for client %s: %s", idp.label(), auth.Describe(), idp.ClientID, auth.PublicJWKS()))
	}
}

// nameVariable makes err's message start with the variable it names
// (dropping the package's prefixes before it), or with fallback when it
// names none.
func nameVariable(err error, fallback string) error {
	msg := err.Error()
	if i := strings.Index(msg, "AUTHPROXY_"); i >= 0 {
		return errors.New(msg[i:])
	}
	return fmt.Errorf("%s: %w", fallback, err)
}

// checkUpstream reports whether the upstream answers HTTP at all (any
// status will do: it is the app's business what / returns).
func checkUpstream(ctx context.Context, cfg *Config) error {
	transport, target, err := upstreamTransport(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return fmt.Errorf("AUTHPROXY_UPSTREAM: %w", err)
	}
	resp, err := transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("AUTHPROXY_UPSTREAM: %s does not answer: %w", cfg.Upstream.Redacted(), err)
	}
	resp.Body.Close()
	return nil
}

// checkRedis reports whether the configured Redis answers a PING.
func checkRedis(ctx context.Context, cfg *Config) error {
	b, err := newBackend(cfg, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.Ping(ctx); err != nil {
		return fmt.Errorf("AUTHPROXY_REDIS_URL: Redis does not answer: %w", err)
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func distinctBytes(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}
