package authproxy

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
)

// idp is one identity provider as the Server uses it.
type idp struct {
	cfg      *IdPConfig // as at start; its allow-list lives in the policy
	provider providers.Provider
	// issuer is the configured issuer as a token's iss states it (""
	// with github, which issues no tokens to verify).
	issuer string
	// header is X-Forwarded-Idp's value, made once (len == cap, so that
	// an Add to it copies).
	header []string
	// down is whether the last probe (watchIdPs, with several IdPs) found
	// the IdP not answering.
	down atomic.Bool
}

// available returns nil when p can serve a sign-in now: its discovery is
// loaded and, with several IdPs, its last probe found it answering.
func (p *idp) available() error {
	if err := p.provider.Ready(); err != nil {
		return err
	}
	if p.down.Load() {
		return fmt.Errorf("%w: identity provider %q did not answer its last probe", providers.ErrUnavailable, p.name())
	}
	return nil
}

// name is the IdP's name, as sessions, rules, metrics and X-Forwarded-Idp
// carry it.
func (p *idp) name() string { return p.cfg.Name }

// idpSet is every IdP of a Server, the default first. It never changes
// after New.
type idpSet struct {
	list []*idp
	// browsers are the IdPs that serve browser sign-in (not bearer-only),
	// in configuration order.
	browsers []*idp
}

// newIdPSet pairs each IdP's configuration with its provider.
func newIdPSet(cfg *Config, provs map[string]providers.Provider) (idpSet, error) {
	var set idpSet
	for _, c := range cfg.allIdPs() {
		p := provs[c.Name]
		if p == nil {
			return set, fmt.Errorf("authproxy: no provider for IdP %q", c.Name)
		}
		i := &idp{cfg: c, provider: p, issuer: issuerOf(c), header: []string{c.Name}[:1:1]}
		set.list = append(set.list, i)
		if !c.BearerOnly {
			set.browsers = append(set.browsers, i)
		}
	}
	return set, nil
}

// def returns the default IdP.
func (s idpSet) def() *idp { return s.list[0] }

// several reports whether there is more than the default IdP.
func (s idpSet) several() bool { return len(s.list) > 1 }

// get returns the IdP called name; "" (a session from before IdPs had
// names) is the default. It returns nil for a name not configured (a
// session or sign-in from a configuration since changed).
func (s idpSet) get(name string) *idp {
	if name == "" {
		return s.def()
	}
	for _, p := range s.list {
		if p.name() == name {
			return p
		}
	}
	return nil
}

// sessionName is the name a session records for p: "" for the default
// IdP (as sessions made before several IdPs, so that renaming the default
// keeps its sessions, and session.Scope leaves its sids and subs as they
// are), else p's name.
func (s idpSet) sessionName(p *idp) string {
	if p == s.def() {
		return ""
	}
	return p.name()
}

// nameOf returns the name of sess's IdP ("" when it is no longer
// configured, which the session's load refuses before anything reads it).
func (s idpSet) nameOf(sess *session.Session) string {
	if p := s.get(sess.IdP); p != nil {
		return p.name()
	}
	return ""
}

// errUnknownIssuer is a token whose iss names no configured IdP.
var errUnknownIssuer = errors.New("the token's issuer is not a configured identity provider")

// forToken returns the IdP that must verify a JWT (a bearer access token or
// a logout token): with one IdP, that one; with several, the one whose
// issuer the token's (unverified) iss names exactly. The iss only picks
// whose keys verify the token; that IdP's verifier checks it, iss
// included, before anything of it is used.
func (s idpSet) forToken(raw string) (*idp, error) {
	if !s.several() {
		return s.def(), nil
	}
	iss, err := providers.UnverifiedIssuer(raw)
	if err != nil {
		return nil, err
	}
	for _, p := range s.list {
		if p.issuer != "" && p.issuer == iss {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: %w", providers.ErrRejected, errUnknownIssuer)
}

// startURL is the sign-in start at IdP p (nil: no IdP named), returning
// to rd.
func startURL(p *idp, rd string) string {
	u := startPath + "?"
	if p != nil {
		u += "idp=" + url.QueryEscape(p.name()) + "&"
	}
	return u + "rd=" + url.QueryEscape(rd)
}

// names returns the IdPs' names, the default first.
func (s idpSet) names() []string {
	names := make([]string, len(s.list))
	for i, p := range s.list {
		names[i] = p.name()
	}
	return names
}

// changes lists how cfg's IdPs differ from s's in what only a restart
// changes (the names in AUTHPROXY_IDPS, the default IdP's name, and each
// IdP's issuer and bearer-only), one problem each naming its variable, for
// a reload to refuse cfg with. It is empty when cfg has s's IdPs (in any
// order).
func (s idpSet) changes(cfg *Config) []string {
	var problems []string
	was, now := s.names(), namesOf(cfg.allIdPs())
	if !sameSet(was[1:], now[1:]) {
		problems = append(problems, fmt.Sprintf("AUTHPROXY_IDPS: the identity providers changed (was %s; now %s); changing them needs a restart",
			strings.Join(was, ","), strings.Join(now, ",")))
	}
	if was[0] != now[0] {
		problems = append(problems, fmt.Sprintf("AUTHPROXY_DEFAULT_IDP_NAME: the default identity provider changed (was %s; now %s); changing it needs a restart", was[0], now[0]))
	}
	for _, p := range s.list {
		ic := cfg.idp(p.name())
		if ic == nil {
			continue // said above
		}
		if iss := issuerOf(ic); iss != p.issuer {
			problems = append(problems, fmt.Sprintf("%s: the issuer changed (was %s; now %s); changing it needs a restart",
				ic.vars.of("OIDC_ISSUER"), orNone(p.issuer), orNone(iss)))
		}
		if ic.BearerOnly != p.cfg.BearerOnly {
			problems = append(problems, fmt.Sprintf("%s: changed (was %t; now %t); changing it needs a restart",
				ic.vars.of("BEARER_ONLY"), p.cfg.BearerOnly, ic.BearerOnly))
		}
	}
	return problems
}

// issuerOf is the issuer of c as an idp holds it: "" when none is set.
func issuerOf(c *IdPConfig) string {
	if c.Issuer == nil {
		return ""
	}
	return c.Issuer.String()
}

// orNone returns s, or "none" when it is empty.
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// namesOf returns the names of idps, in their order.
func namesOf(idps []*IdPConfig) []string {
	names := make([]string, len(idps))
	for i, c := range idps {
		names[i] = c.Name
	}
	return names
}

// sameSet reports whether a and b hold the same names, in any order; each
// holds a name at most once.
func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(n string) bool { return !slices.Contains(b, n) })
}
