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

// AllowList says who may use the application at all: the global
// AUTHPROXY_ALLOWED_EMAIL_DOMAINS, _EMAILS and _GROUPS. It applies to every
// signed-in user on every rule that is not Public (Decide), and at sign-in
// (Admit). The zero value restricts nobody.
type AllowList struct {
	// Domains are the email domains allowed, compared case-insensitively;
	// empty, or just "*", allows any domain.
	Domains []string
	// Emails are addresses allowed whatever Domains say, compared
	// case-insensitively. When Emails or Domains restrict, a user without
	// an email address is refused.
	Emails []string
	// Groups, when not empty, are the groups of which the user must be in
	// at least one (exact match).
	Groups []string
}

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
	// Allow is applied to every signed-in user on every rule that is not
	// Public, before the rule itself.
	Allow AllowList
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
	// Allow says whether the request may pass to the upstream.
	Allow bool
	// NeedsSession says whether the request needs a session at all: when
	// true and there is none, the caller starts sign-in (or answers 401);
	// when true and there is one but Allow is false, it answers 403.
	NeedsSession bool
	// Cause says why, for callers that branch on it (the 403 page, audit
	// lines); Reason is the same in one plain sentence for operators and
	// logs. Neither holds the path, the email or any other request data.
	Cause  Cause
	Reason string
}

// New returns the policy authproxy enforces: the skip-auth routes first, then
// the policy file's rules, every one that is not public under allow. With no file (nil), a last rule lets any
// signed-in user through everything else, as before policy files existed;
// with a file, what no rule matches is denied. Neither argument is modified.
func New(skipRoutes []Rule, file *Policy, allow AllowList) *Policy {
	p := &Policy{Rules: slices.Clone(skipRoutes), Allow: allow}
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

// Decide says what the policy does with a request with this method and
// cleaned path, from a user with this identity (nil: no session). The
// method and path must have passed ValidMethod and CleanPath; Decide trusts
// them. It is Judge(Match(method, cleanPath), id), and does not allocate.
func (p *Policy) Decide(method, cleanPath string, id *Identity) Decision {
	return p.Judge(p.Match(method, cleanPath), id)
}

// Public reports whether r, a rule Match returned (nil when none matched),
// lets every request through without a session: a caller that matched once
// serves such a request without identifying anyone.
func (r *Rule) Public() bool {
	return r != nil && r.Access == Public
}

// Judge says what rule r, which Match returned for the request (nil when
// none matched), does with a request from a user with this identity (nil:
// no session): the allow-list first, for every rule that is not public,
// then the rule. It does not allocate.
func (p *Policy) Judge(r *Rule, id *Identity) Decision {
	if r.Public() {
		return decision(r, true, false, CausePublic)
	}
	if r != nil && r.Access != Authenticated && r.Access != Restricted {
		return decision(r, false, true, CauseInvalidRule)
	}
	if id == nil {
		return decision(r, false, true, CauseAnonymous)
	}
	var allow AllowList
	if p != nil {
		allow = p.Allow
	}
	if c := allow.check(id); c != 0 {
		return decision(r, false, true, c)
	}
	switch {
	case r == nil && (p == nil || len(p.Rules) == 0):
		return decision(nil, true, true, CauseNoPolicy)
	case r == nil:
		return decision(nil, false, true, CauseNoRule)
	case r.Access == Authenticated:
		return decision(r, true, true, CauseSignedIn)
	}
	c := r.admits(id)
	return decision(r, c != CauseNotListed, true, c)
}

// Admit says whether a user with this identity may sign in at all: the
// allow-list alone, as no request path is known yet.
func (p *Policy) Admit(id *Identity) Decision {
	var allow AllowList
	if p != nil {
		allow = p.Allow
	}
	if c := allow.check(id); c != 0 {
		return decision(nil, false, true, c)
	}
	return decision(nil, true, true, CauseAllowListed)
}

func decision(r *Rule, allow, needsSession bool, c Cause) Decision {
	return Decision{Rule: r, Allow: allow, NeedsSession: needsSession, Cause: c, Reason: c.String()}
}

// admits returns the cause for which a Restricted rule lets id through, or
// CauseNotListed.
func (r *Rule) admits(id *Identity) Cause {
	for _, g := range id.Groups {
		if g != "" && slices.Contains(r.Groups, g) {
			return CauseGroup
		}
	}
	if id.Email == "" {
		return CauseNotListed
	}
	for _, e := range r.Emails {
		if strings.EqualFold(e, id.Email) {
			return CauseEmail
		}
	}
	if domain, ok := emailDomain(id.Email); ok {
		for _, d := range r.Domains {
			if strings.EqualFold(d, domain) {
				return CauseDomain
			}
		}
	}
	return CauseNotListed
}

// emailDomain returns the part of email after its last "@", if not empty.
func emailDomain(email string) (string, bool) {
	at := strings.LastIndexByte(email, '@')
	if at < 0 || at == len(email)-1 {
		return "", false
	}
	return email[at+1:], true
}

// restrictsEmail reports whether the allow-list limits email addresses.
func (a *AllowList) restrictsEmail() bool {
	return len(a.Emails) > 0 || len(a.Domains) > 0 && !(len(a.Domains) == 1 && a.Domains[0] == "*")
}

// check returns 0 when id is on the allow-list, else the cause it is not.
func (a *AllowList) check(id *Identity) Cause {
	if a.restrictsEmail() && !a.emailAllowed(id.Email) {
		if id.Email == "" {
			return CauseNoEmail
		}
		return CauseEmailNotAllowed
	}
	if len(a.Groups) > 0 && !slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(a.Groups, g) }) {
		return CauseGroupNotAllowed
	}
	return 0
}

func (a *AllowList) emailAllowed(email string) bool {
	if email == "" {
		return false
	}
	for _, e := range a.Emails {
		if strings.EqualFold(e, email) {
			return true
		}
	}
	domain, ok := emailDomain(email)
	for _, d := range a.Domains {
		if d == "*" || ok && strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}
