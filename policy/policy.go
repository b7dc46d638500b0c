// Package policy is authproxy's policy language: which requests may pass,
// and who may make them.
//
// A request is first reduced to its method and its cleaned path
// (ValidMethod, CleanPath); anything ambiguous is refused there, before any
// rule is consulted. A Policy is an ordered list of Rules; the first rule
// whose path and methods match decides (Policy.Decide). Rules come from a
// YAML policy file (Parse, Load) and from AUTHPROXY_SKIP_AUTH_ROUTES
// (ParseSkipRoutes); New puts the two together. Policy.Explain says in
// plain words what the policy does with one request, for operators.
//
// The package is pure logic: no I/O beyond Load, no global state, nothing
// from the rest of authproxy. A Policy is not modified by any method, so one
// value may serve concurrent requests; callers must not change its rules
// while it does.
package policy

import (
	"slices"
	"strings"
)

// Access says who a rule lets through. The zero value is not a valid
// Access: a rule left without one denies everyone, signed in or not.
type Access int

const (
	// Public lets every request through, signed in or not, without
	// looking at the session.
	Public Access = iota + 1
	// Authenticated lets through any signed-in user. It does not check
	// AUTHPROXY_ALLOWED_EMAIL_DOMAINS, _EMAILS or _GROUPS: the caller applies
	// those global allow-lists to every signed-in user, on top of the policy.
	Authenticated
	// Restricted lets through signed-in users named by the rule's Groups,
	// Emails or Domains (any one suffices), again on top of the global
	// allow-lists.
	Restricted
)

// Rule is one line of a policy: a path, optionally methods, and who may pass.
//
// Path is matched against the cleaned request path, exactly and
// case-sensitively, or as a prefix when it ends in "/": "/admin/" covers
// "/admin/" and "/admin/x" but not "/admin", "/Admin/x" or "/admin.x". An
// exact rule such as "/admin" does not cover "/admin/" or "/admin;x" either,
// which some upstreams serve as "/admin"; so do not protect a page with an
// exact rule that a broader rule after it would let through. Restrict with
// prefixes, open up with narrow rules before them, and leave the rest to
// the default (deny).
type Rule struct {
	// Path is a clean path as CleanPath returns it; a rule whose Path is
	// not clean never matches anything it was meant to.
	Path string
	// Methods limits the rule to these upper-case methods; empty means
	// every method. A rule that lists GET also matches HEAD, as a GET
	// handler serves HEAD in most servers (Go's included).
	Methods []string
	// Access says who may pass. The zero value denies everyone.
	Access Access
	// Groups, Emails and Domains name who may pass a Restricted rule:
	// groups match exactly; emails, and domains (the part after the last
	// "@" of the email), case-insensitively. They are ignored for Public
	// and Authenticated rules.
	Groups, Emails, Domains []string
	// Source says where the rule came from, for Explain and logs, such as
	// "policy file rule 3" or "AUTHPROXY_SKIP_AUTH_ROUTES".
	Source string
}

// Policy is an ordered list of rules; the first one that matches a request
// decides. The zero Policy (and a nil *Policy) has no rules and lets any
// signed-in user through everywhere, as authproxy did before policies; a
// policy with rules denies whatever none of them matches.
type Policy struct {
	Rules []Rule
}

// Identity is who made a request, from their session. A nil *Identity
// means the request has no session. Callers must fill it only from a
// validated session, never from request headers.
type Identity struct {
	Email  string
	Groups []string
}

// Decision is what the policy does with one request.
type Decision struct {
	// Rule is the rule that decided, or nil when none matched.
	Rule *Rule
	// Allow says whether the request may pass to the upstream (subject to
	// the global allow-lists, which the caller applies to signed-in users).
	Allow bool
	// NeedsSession says whether the request needs a session at all: when
	// true and there is none, the caller starts sign-in (or answers 401);
	// when true and there is one but Allow is false, it answers 403.
	NeedsSession bool
	// Reason is one plain sentence for operators and logs. It never holds
	// the path, the email or any other request data.
	Reason string
}

// New returns the policy authproxy enforces: the skip-auth routes first, then
// the policy file's rules. With no file (nil), a last rule lets any
// signed-in user through everything else, as before policy files existed;
// with a file, what no rule matches is denied. Neither argument is modified.
func New(skipRoutes []Rule, file *Policy) *Policy {
	p := &Policy{Rules: slices.Clone(skipRoutes)}
	if file == nil {
		p.Rules = append(p.Rules, Rule{Path: "/", Access: Authenticated, Source: "default without a policy file"})
		return p
	}
	p.Rules = append(p.Rules, file.Rules...)
	return p
}

// Match returns the first rule that matches a request with this method and
// cleaned path, or nil. cleanPath must come from CleanPath and method must
// pass ValidMethod; Match does not check either.
func (p *Policy) Match(method, cleanPath string) *Rule {
	if p == nil {
		return nil
	}
	for i := range p.Rules {
		if p.Rules[i].matches(method, cleanPath) {
			return &p.Rules[i]
		}
	}
	return nil
}

func (r *Rule) matches(method, cleanPath string) bool {
	if strings.HasSuffix(r.Path, "/") {
		if !strings.HasPrefix(cleanPath, r.Path) {
			return false
		}
	} else if cleanPath != r.Path {
		return false
	}
	return r.methodMatches(method)
}

// methodMatches reports whether the rule applies to method: it lists no
// methods, lists this one, or lists GET and method is HEAD.
func (r *Rule) methodMatches(method string) bool {
	if len(r.Methods) == 0 {
		return true
	}
	for _, m := range r.Methods {
		if m == method || m == "GET" && method == "HEAD" {
			return true
		}
	}
	return false
}

// Reasons Decide gives.
const (
	reasonPublic       = "the rule makes the path public"
	reasonAnonymous    = "not signed in, and the path needs a session"
	reasonSignedIn     = "signed in, and the rule lets any signed-in user through"
	reasonNoPolicy     = "signed in, and without a policy any signed-in user may pass"
	reasonNoRule       = "no rule matches this method and path, and a policy denies what it does not allow"
	reasonGroup        = "in a group the rule allows"
	reasonEmail        = "the rule allows this email address"
	reasonDomain       = "the rule allows this email domain"
	reasonNotListed    = "signed in, but not in the groups, emails or domains the rule allows"
	reasonInvalidRules = "the rule has no valid access kind, so it denies everyone"
)

// Decide says what the policy does with a request with this method and
// cleaned path, from a user with this identity (nil: no session). The
// method and path must have passed ValidMethod and CleanPath; Decide trusts
// them. It does not allocate.
func (p *Policy) Decide(method, cleanPath string, id *Identity) Decision {
	r := p.Match(method, cleanPath)
	if r == nil {
		if p == nil || len(p.Rules) == 0 {
			if id == nil {
				return Decision{NeedsSession: true, Reason: reasonAnonymous}
			}
			return Decision{Allow: true, NeedsSession: true, Reason: reasonNoPolicy}
		}
		return Decision{NeedsSession: true, Reason: reasonNoRule}
	}
	d := Decision{Rule: r, NeedsSession: true}
	switch {
	case r.Access == Public:
		d.Allow, d.NeedsSession, d.Reason = true, false, reasonPublic
	case r.Access != Authenticated && r.Access != Restricted:
		d.Reason = reasonInvalidRules
	case id == nil:
		d.Reason = reasonAnonymous
	case r.Access == Authenticated:
		d.Allow, d.Reason = true, reasonSignedIn
	default:
		d.Reason = r.admits(id)
		d.Allow = d.Reason != reasonNotListed
	}
	return d
}

// admits returns the reason a Restricted rule lets id through, or
// reasonNotListed.
func (r *Rule) admits(id *Identity) string {
	for _, g := range id.Groups {
		if g != "" && slices.Contains(r.Groups, g) {
			return reasonGroup
		}
	}
	if id.Email == "" {
		return reasonNotListed
	}
	for _, e := range r.Emails {
		if strings.EqualFold(e, id.Email) {
			return reasonEmail
		}
	}
	at := strings.LastIndexByte(id.Email, '@')
	if at < 0 {
		return reasonNotListed
	}
	domain := id.Email[at+1:]
	for _, d := range r.Domains {
		if domain != "" && strings.EqualFold(d, domain) {
			return reasonDomain
		}
	}
	return reasonNotListed
}
