package authproxy

import (
	"errors"
	"fmt"
	"os"

	"github.com/authproxy/authproxy/providers"
)

// clientAuth builds the token endpoint authentication that cfg configures
// instead of a client secret: private_key_jwt with
// AUTHPROXY_CLIENT_PRIVATE_KEY_FILE, tls_client_auth with
// AUTHPROXY_CLIENT_TLS_CERT_FILE/_KEY_FILE, or nil for neither. It reads
// the files each time: call it again to pick up a changed key or
// certificate (and hand the result to providers.OIDC.SetClientAuth, or to a
// new provider). The error names the variable to fix.
func clientAuth(cfg *IdPConfig) (*providers.ClientAuth, error) {
	auth, err := providers.NewClientAuth(providers.ClientAuthConfig{
		ClientID:       cfg.ClientID,
		PrivateKeyFile: cfg.ClientPrivateKeyFile,
		KeyID:          cfg.ClientPrivateKeyID,
		TLSCertFile:    cfg.ClientTLSCertFile,
		TLSKeyFile:     cfg.ClientTLSKeyFile,
	})
	if err != nil {
		return nil, cfg.fieldError(err, "CLIENT_PRIVATE_KEY_FILE")
	}
	return auth, nil
}

// fieldError names, before err, the variable of this IdP that a
// providers.ConfigError's field is about, or (for any other error) the
// variable called fallback (without its AUTHPROXY_ prefix).
func (cfg *IdPConfig) fieldError(err error, fallback string) error {
	var ce *providers.ConfigError
	if errors.As(err, &ce) {
		return fmt.Errorf("%s: %w", cfg.vars.rename(providerFieldVariable(ce.Field)), ce.Err)
	}
	return fmt.Errorf("%s: %w", cfg.vars.of(fallback), err)
}

// parseClientKeyFile checks at start that AUTHPROXY_CLIENT_PRIVATE_KEY_FILE
// holds a key authproxy can sign with.
func parseClientKeyFile(c *Config, v string) error {
	c.ClientPrivateKeyFile = v
	if v == "" {
		return nil
	}
	raw, err := os.ReadFile(v)
	if err != nil {
		return fmt.Errorf("want a readable file: %w", err)
	}
	_, err = providers.ParseClientKey(raw)
	return err
}

// checkClientAuth refuses the combinations of client credentials that
// cannot work, naming the variable to fix: one method at a time, the TLS
// certificate with its key, a kid only with a key, and no secret beside a
// key or certificate. What the IdP supports is known only after discovery
// (providers.OIDC.Discover says then).
func (c *IdPConfig) checkClientAuth(failed map[string]bool) []error {
	n := c.vars
	for _, name := range []string{"CLIENT_ID", "CLIENT_SECRET", "CLIENT_PRIVATE_KEY_FILE",
		"CLIENT_PRIVATE_KEY_ID", "CLIENT_TLS_CERT_FILE", "CLIENT_TLS_KEY_FILE", "PROVIDER"} {
		if failed[n.of(name)] {
			return nil // said already
		}
	}
	var errs []error
	keySet, certSet, tlsKeySet := c.ClientPrivateKeyFile != "", c.ClientTLSCertFile != "", c.ClientTLSKeyFile != ""
	other := ""
	switch {
	case keySet && (certSet || tlsKeySet):
		errs = append(errs, fmt.Errorf("%s: set it or %s/_KEY_FILE, not both: one client authentication method at a time", n.of("CLIENT_PRIVATE_KEY_FILE"), n.of("CLIENT_TLS_CERT_FILE")))
	case certSet != tlsKeySet:
		errs = append(errs, fmt.Errorf("%s: set both %s and %s, or neither", n.of("CLIENT_TLS_KEY_FILE"), n.of("CLIENT_TLS_CERT_FILE"), n.of("CLIENT_TLS_KEY_FILE")))
	case keySet:
		other = n.of("CLIENT_PRIVATE_KEY_FILE") + " (private_key_jwt)"
	case certSet:
		other = n.of("CLIENT_TLS_CERT_FILE") + " (tls_client_auth)"
	}
	if c.ClientPrivateKeyID != "" && !keySet {
		errs = append(errs, fmt.Errorf("%s: only used with %s", n.of("CLIENT_PRIVATE_KEY_ID"), n.of("CLIENT_PRIVATE_KEY_FILE")))
	}
	if c.ClientSecret != "" && other != "" {
		errs = append(errs, fmt.Errorf("%s: not used with %s: unset one of them", n.of("CLIENT_SECRET"), other))
	}
	if c.Provider == "github" && (keySet || certSet) {
		errs = append(errs, fmt.Errorf("%s: github authenticates clients only with %s, not with a key or certificate", n.of("PROVIDER"), n.of("CLIENT_SECRET")))
	}
	if len(errs) == 0 && certSet {
		// Load the pair now: a certificate whose key does not match is
		// known without the network.
		if _, err := clientAuth(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
