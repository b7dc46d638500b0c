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
// any other variable is logged as needing a restart and left as it is.

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
// does, and fingerprints it, without parsing anything.
func currentFingerprints(lookup Lookup) fingerprints {
	sums := fingerprints{}
	for _, v := range variables {
		raw, err := v.read(lookup)
		sums[v.name] = v.fingerprint(raw, err)
	}
	return sums
}

// changed lists, in table order, the live variables and the others (that
// only a restart applies) whose fingerprints differ between a and b.
func (a fingerprints) changed(b fingerprints) (live, restart []string) {
	for _, v := range variables {
		if a[v.name] == b[v.name] {
			continue
		}
		if v.live {
			live = append(live, v.name)
		} else {
			restart = append(restart, v.name)
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
// it is not, nothing changes and the returned error is a *ReloadError. Every
// reload is logged and counted (authproxy_config_reloads_total). Reload is
// safe to call while the Server serves; reloads run one at a time.
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
	rs := &s.reload
	if rs.sums == nil {
		rs.sums = rs.applied.sums
	}
	live, restart := rs.sums.changed(cfg.sums)
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
	var auth *providers.ClientAuth
	keyChanged := slices.ContainsFunc(live, func(n string) bool {
		return strings.HasPrefix(n, "AUTHPROXY_CLIENT_PRIVATE_KEY_") || strings.HasPrefix(n, "AUTHPROXY_CLIENT_TLS_")
	})
	if keyChanged {
		// A renewed key or certificate: read and checked whole before
		// anything is swapped.
		if auth, err = clientAuth(cfg); err != nil {
			return err
		}
	}
	if ca, ok := s.provider.(interface {
		SetClientAuth(*providers.ClientAuth) error
	}); ok && keyChanged {
		if err := ca.SetClientAuth(auth); err != nil {
			return err
		}
	}
	if rc, ok := s.provider.(providers.Reconfigurer); ok {
		if err := rc.Reconfigure(providerConfig(cfg, s.log)); err != nil {
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
	for _, v := range variables {
		sums[v.name] = cfg.sums[v.name]
		if slices.Contains(restart, v.name) {
			sums[v.name] = rs.sums[v.name]
		}
	}
	rs.applied, rs.sums = cfg, sums
	if len(restart) > 0 {
		s.log.Warn("configuration changed where only a restart applies it; those variables keep their values until then", "event", "config_reload", "needs_restart", restart)
	}
	s.log.Info("configuration reloaded", "event", "config_reload", "result", "ok", "changed", nonNil(live))
	return nil
}

// withSecrets returns a copy of c with the cookie secrets of other.
func (c *Config) withSecrets(other *Config) *Config {
	cp := *c
	cp.CookieSecrets = other.CookieSecrets
	return &cp
}
