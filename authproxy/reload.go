package authproxy

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
)

// A configuration reload (SIGHUP, or a watched file that changed) reads every
// variable again through the same LoadConfig as at start, so a bad value is
// reported exactly as it would be then. Only a configuration that is valid as
// a whole is applied; what it changes of the live variables (the access
// policy, the claim headers, the cookie secrets, the client credentials)
// takes effect for the next request, in one step (Server.live). A change of
// any other variable is logged as needing a restart and left as it is, but
// for the identity providers themselves (which there are, which is the
// default, their issuers, which are bearer-only): the Server serves those it
// started with, and the policy judges users by them, so a configuration
// that names others is refused (idpSet.changes).

// fingerprints hold a hash of each variable's value, by name.
type fingerprints map[string][sha256.Size]byte

// fingerprint hashes the variable's raw value, or the error that reading it
// gave, and for a watched file its content (or why it cannot be read).
func (v variable) fingerprint(raw string, err error) [sha256.Size]byte {
	h := sha256.New()
	if err != nil {
		fmt.Fprintf(h, "error\x00%s", err)
	} else {
		fmt.Fprintf(h, "value\x00%s", raw)
	}
	if v.watch && err == nil && raw != "" {
		if b, ferr := os.ReadFile(raw); ferr != nil {
			fmt.Fprintf(h, "\x00file error\x00%s", ferr)
		} else {
			h.Write([]byte("\x00file\x00"))
			h.Write(b)
		}
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// currentFingerprints reads every variable through lookup, as LoadConfig
// does, and fingerprints it, without parsing anything but AUTHPROXY_IDPS:
// the default IdP's and those of the IdPs it names.
func currentFingerprints(lookup Lookup) fingerprints {
	sums := fingerprints{}
	for _, iv := range instances(lookupIdPNames(lookup)) {
		raw, err := iv.v.readAs(iv.name, lookup)
		sums[iv.name] = iv.v.fingerprint(raw, err)
	}
	return sums
}

// lookupIdPNames returns the IdP names AUTHPROXY_IDPS gives through
// lookup, or none when it is not valid (LoadConfig says why).
func lookupIdPNames(lookup Lookup) []string {
	v, _ := lookup("AUTHPROXY_IDPS")
	names, err := parseIdPNames(v)
	if err != nil {
		return nil
	}
	return names
}

// instance is a row of the table under one of its names: its own, or an
// IdP's for an IdP-level row.
type instance struct {
	v    variable
	name string
}

// instances lists every variable under every name it has with the IdPs
// idps names, in table order, each row's IdP names after its own.
func instances(idps []string) []instance {
	var out []instance
	for _, v := range variables {
		if !v.idpOnly {
			out = append(out, instance{v, v.name})
		}
		if !v.idp {
			continue
		}
		for _, n := range idps {
			out = append(out, instance{v, idpVars(n).rename(v.name)})
		}
	}
	return out
}

// changed lists, in table order, the live variables and the others (that
// only a restart applies) whose fingerprints differ between a and b, whose
// IdPs are those idps names.
func (a fingerprints) changed(b fingerprints, idps []string) (live, restart []string) {
	for _, iv := range instances(idps) {
		if a[iv.name] == b[iv.name] {
			continue
		}
		if iv.v.live {
			live = append(live, iv.name)
		} else {
			restart = append(restart, iv.name)
		}
	}
	return live, restart
}

// reloadState is what reloads are serialized by and compare against.
type reloadState struct {
	mu sync.Mutex
	// applied is the configuration whose live variables are in effect;
	// sums the fingerprints it was applied with, where a variable that
	// needs a restart keeps the fingerprint it had at start.
	applied *Config
	sums    fingerprints
	rebuild func(cfg *Config) (session.Store, *session.Codec, error)
}

// ReloadError is a configuration reload that was refused: the configuration
// in effect stays as it was. Problems are LoadConfig's, one a line, each
// naming its variable.
type ReloadError struct {
	Problems []string
}

func (e *ReloadError) Error() string {
	return "authproxy: configuration reload refused, the previous configuration stays in effect:\n" + strings.Join(e.Problems, "\n")
}

// Reload reads the configuration again through lookup and validates it as
// LoadConfig does at start. When it is valid, its live variables take
// effect for every request that starts afterwards, all at once; a change of
// any other variable is logged as needing a restart and not applied. When
// it is not, or it names other identity providers than the Server serves
// (AUTHPROXY_IDPS, AUTHPROXY_DEFAULT_IDP_NAME, an IdP's issuer or
// bearer-only changed), nothing changes and the returned error is a
// *ReloadError. Every reload is logged and counted
// (authproxy_config_reloads_total). Reload is safe to call while the Server
// serves; reloads run one at a time.
func (s *Server) Reload(lookup Lookup) error {
	s.reload.mu.Lock()
	defer s.reload.mu.Unlock()
	err := s.reloadLocked(lookup)
	if err != nil {
		var re *ReloadError
		if !errors.As(err, &re) {
			re = &ReloadError{Problems: []string{err.Error()}}
			err = re
		}
		s.metrics.configReloads.WithLabelValues("error").Inc()
		s.log.Error("configuration reload refused; the previous configuration stays in effect", "event", "config_reload", "result", "error", "problems", re.Problems)
		return err
	}
	s.metrics.configReloads.WithLabelValues("ok").Inc()
	return nil
}

func (s *Server) reloadLocked(lookup Lookup) error {
	cfg, err := LoadConfig(lookup)
	if err != nil {
		var problems []string
		for line := range strings.Lines(err.Error()) {
			problems = append(problems, strings.TrimSuffix(line, "\n"))
		}
		return &ReloadError{Problems: problems}
	}
	// The IdPs are the Server's, fixed at New: a configuration with other
	// ones would judge users by IdPs that do not sign them in.
	// With those unchanged, cfg's policy (LoadConfig's) is for the Server's
	// IdPs: their names, default and allow-lists.
	if problems := s.idps.changes(cfg); len(problems) > 0 {
		return &ReloadError{Problems: problems}
	}
	rs := &s.reload
	if rs.sums == nil {
		rs.sums = rs.applied.sums
	}
	idpNames := s.idps.names()[1:] // the others', as AUTHPROXY_IDPS names them
	live, restart := rs.sums.changed(cfg.sums, idpNames)
	old := s.live.Load()
	store, state := old.store, old.state
	if !slices.Equal(cfg.CookieSecrets, rs.applied.CookieSecrets) {
		if rs.rebuild == nil {
			// A Server built with a store of the caller's (New).
			live = slices.DeleteFunc(live, func(n string) bool { return n == "AUTHPROXY_COOKIE_SECRET" })
			restart = append(restart, "AUTHPROXY_COOKIE_SECRET")
			cfg.CookieSecrets = rs.applied.CookieSecrets
		} else if store, state, err = rs.rebuild(cfg); err != nil {
			return fmt.Errorf("AUTHPROXY_COOKIE_SECRET: %w", err)
		}
	}
	for _, p := range s.idps.list {
		if err := s.reloadIdP(cfg, p, cfg.idp(p.name()), live); err != nil {
			return err
		}
	}
	s.live.Store(newLive(cfg, store, state))
	if store != old.store {
		// Sessions opened with keys the new list may no longer hold.
		if s.cache != nil {
			s.cache.Reset()
		}
	}

	sums := fingerprints{}
	for _, iv := range instances(idpNames) {
		sums[iv.name] = cfg.sums[iv.name]
		if slices.Contains(restart, iv.name) {
			sums[iv.name] = rs.sums[iv.name]
		}
	}
	rs.applied, rs.sums = cfg, sums
	if len(restart) > 0 {
		s.log.Warn("configuration changed where only a restart applies it; those variables keep their values until then", "event", "config_reload", "needs_restart", restart)
	}
	s.log.Info("configuration reloaded", "event", "config_reload", "result", "ok", "changed", nonNil(live))
	return nil
}

// reloadIdP applies to IdP p what of the live variables ic (its reloaded
// configuration) changes: the client secret, and a renewed key or
// certificate, read and checked whole before anything is swapped.
func (s *Server) reloadIdP(cfg *Config, p *idp, ic *IdPConfig, live []string) error {
	keyChanged := slices.ContainsFunc(live, func(n string) bool {
		return n == ic.vars.of("CLIENT_PRIVATE_KEY_FILE") || n == ic.vars.of("CLIENT_PRIVATE_KEY_ID") ||
			n == ic.vars.of("CLIENT_TLS_CERT_FILE") || n == ic.vars.of("CLIENT_TLS_KEY_FILE")
	})
	if keyChanged {
		auth, err := clientAuth(ic)
		if err != nil {
			return err
		}
		if ca, ok := p.provider.(interface {
			SetClientAuth(*providers.ClientAuth) error
		}); ok {
			if err := ca.SetClientAuth(auth); err != nil {
				return ic.fieldError(err, "CLIENT_PRIVATE_KEY_FILE")
			}
		}
	}
	if rc, ok := p.provider.(providers.Reconfigurer); ok {
		if err := rc.Reconfigure(providerConfig(cfg, ic, s.log)); err != nil {
			return err
		}
	}
	return nil
}

// withSecrets returns a copy of c with the cookie secrets of other.
func (c *Config) withSecrets(other *Config) *Config {
	cp := *c
	cp.CookieSecrets = other.CookieSecrets
	return &cp
}
