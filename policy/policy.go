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
// Users may come from several identity providers (IdPs), each known by its
// name (ValidIdPName). One of them is the default (Policy.DefaultIdP); an
// Identity whose IdP is "" is the default IdP's. Group names, emails and
// domains are per IdP: only the IdP a rule names (Rule.IdPs), or the
// default IdP when the rule names none, vouches for them. So a rule
// {groups: [admins]} is never satisfied by "admins" from another IdP, and
// another IdP asserting a default IdP user's email gets nothing. Each IdP has
// its own allow-list (Policy.Allow for the default, Policy.IdPAllow for the
// others).
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
// AUTHPROXY_ALLOWED_EMAIL_DOMAINS, _EMAILS and _GROUPS for the default IdP,
// or one IdP's own. It applies to every signed-in user of its IdP on every
// rule that is not Public (Decide), and at sign-in (Admit). The zero value
// restricts nobody.
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
	// Authenticated lets through any signed-in user of any IdP or, when
	// the rule lists IdPs, of one of those: the policy file's
	// allow: authenticated, and allow: {idps: [...]} alone. On top of it,
	// Judge applies the allow-list of the user's IdP.
	Authenticated
	// Restricted lets through signed-in users named by the rule's Groups,
	// Emails or Domains (any one suffices), who must also come from one of
	// the rule's IdPs or, when it lists none, from the default IdP; again
	// on top of the allow-list of the user's IdP. A Restricted rule that
	// names no groups, emails or domains lets nobody through, whatever its
	// IdPs.
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
	// and Authenticated rules. They are the claims of the rule's IdPs, or
	// of the default IdP when IdPs is empty: a user of any other IdP never
	// satisfies them.
	Groups, Emails, Domains []string
	// IdPs, when not empty, are the names of the IdPs whose users the rule
	// lets through (an Identity's IdP "" counts as Policy.DefaultIdP);
	// users of any other IdP are refused with CauseWrongIdP. Empty means
	// any IdP for an Authenticated rule and the default IdP alone for a
	// Restricted one. Ignored for Public rules, which look at no session.
	IdPs []string
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
	// DefaultIdP is the default IdP's name; "" is allowed. An Identity
	// whose IdP is "" or DefaultIdP is the default IdP's: only its users
	// satisfy the groups, emails and domains of rules that name no IdPs,
	// and Allow applies to them.
	DefaultIdP string
	// Allow is the default IdP's allow-list: applied to each of its
	// signed-in users on every rule that is not Public, before the rule
	// itself, and at sign-in.
	Allow AllowList
	// IdPAllow holds the allow-lists of the other IdPs, by name, applied
	// as Allow is to the default IdP's users. An IdP without an entry has
	// the zero AllowList, which restricts nobody. An entry for DefaultIdP
	// is ignored: the default IdP's allow-list is Allow.
	IdPAllow map[string]AllowList
}

// Identity is who made a request, from their session. A nil *Identity
// means the request has no session. Callers must fill it only from a
// validated session, never from request headers.
type Identity struct {
	Email  string
	Groups []string
	// IdP is the name of the IdP that signed the user in, which vouches
	// for Email and Groups; "" means the default IdP (Policy.DefaultIdP).
	IdP string
}

// Option configures the Policy that New returns.
type Option func(*Policy)

// WithDefaultIdP names the default IdP (Policy.DefaultIdP). Without it the
// default IdP's name is "", and only identities whose IdP is "" are the
// default IdP's.
func WithDefaultIdP(name string) Option {
	return func(p *Policy) { p.DefaultIdP = name }
}

// WithIdPAllowList sets the allow-list of the IdP name, one that is not the
// default (Policy.IdPAllow). Without it, that IdP's users are restricted
// by no allow-list, only by the rules. The default IdP's allow-list is
// New's allow argument: passing the default IdP's name here does nothing.
func WithIdPAllowList(name string, allow AllowList) Option {
	return func(p *Policy) {
		if p.IdPAllow == nil {
			p.IdPAllow = make(map[string]AllowList)
		}
		p.IdPAllow[name] = allow
	}
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
// the policy file's rules, every one that is not public under the
// allow-list of the user's IdP: allow for the default IdP, and the others'
// from WithIdPAllowList. With no file (nil), a last rule lets any signed-in
// user of any IdP through everything else, as before policy files existed;
// with a file, what no rule matches is denied. Neither argument is
// modified. New does not check that the IdPs the file names exist; see
// IdPNames.
func New(skipRoutes []Rule, file *Policy, allow AllowList, opts ...Option) *Policy {
	p := &Policy{Rules: slices.Clone(skipRoutes), Allow: allow}
	for _, o := range opts {
		o(p)
	}
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
// no session): the allow-list of the user's IdP first, for every rule that
// is not public, then the rule: its IdPs (CauseWrongIdP when the user's
// IdP is not among them, or, for a Restricted rule that names none, is not
// the default IdP), then its groups, emails and domains. It does not
// allocate.
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
	idp := p.idpName(id.IdP)
	allow := p.allowList(idp)
	if c := allow.check(id); c != 0 {
		return decision(r, false, true, c)
	}
	switch {
	case r == nil && (p == nil || len(p.Rules) == 0):
		return decision(nil, true, true, CauseNoPolicy)
	case r == nil:
		return decision(nil, false, true, CauseNoRule)
	case !p.accepts(r, idp):
		return decision(r, false, true, CauseWrongIdP)
	case r.Access == Authenticated && len(r.IdPs) > 0:
		return decision(r, true, true, CauseIdP)
	case r.Access == Authenticated:
		return decision(r, true, true, CauseSignedIn)
	}
	c := r.admits(id)
	return decision(r, c != CauseNotListed, true, c)
}

// Accepts reports whether a user of the IdP idp ("": the default IdP)
// could pass rule r, which Match returned (nil when none matched), whatever
// their email and groups; authproxy offers at sign-in only the IdPs that
// the request's rule accepts. It is true for a Public rule, for an
// Authenticated rule that lists no IdPs, and, when no rule matched, for a
// policy without rules (any signed-in user may pass). It is false when no
// rule matched in a policy with rules, for a rule without a valid Access,
// for a rule whose IdPs do not list idp, for a Restricted rule that lists
// no IdPs when idp is not the default IdP, and for a Restricted rule that
// names no groups, emails or domains. It ignores the allow-lists.
func (p *Policy) Accepts(r *Rule, idp string) bool {
	switch {
	case r == nil:
		return p == nil || len(p.Rules) == 0
	case r.Access == Public:
		return true
	case r.Access == Restricted && len(r.Groups)+len(r.Emails)+len(r.Domains) == 0:
		return false
	case r.Access == Authenticated, r.Access == Restricted:
		return p.accepts(r, p.idpName(idp))
	}
	return false
}

// accepts reports whether rule r, Authenticated or Restricted, lets users
// of the IdP idp (a name idpName returned) through, as far as their IdP
// goes. A default IdP without a name is never among a rule's IdPs.
func (p *Policy) accepts(r *Rule, idp string) bool {
	if len(r.IdPs) > 0 {
		return idp != "" && slices.Contains(r.IdPs, idp)
	}
	return r.Access == Authenticated || idp == p.defaultIdP()
}

// defaultIdP returns the default IdP's name; "" for a nil *Policy.
func (p *Policy) defaultIdP() string {
	if p == nil {
		return ""
	}
	return p.DefaultIdP
}

// idpName returns the name of the IdP idp: DefaultIdP for "".
func (p *Policy) idpName(idp string) string {
	if idp == "" {
		return p.defaultIdP()
	}
	return idp
}

// allowList returns the allow-list of the IdP idp, a name idpName
// returned: Allow for the default IdP, else its entry in IdPAllow, or the
// zero AllowList.
func (p *Policy) allowList(idp string) AllowList {
	switch {
	case p == nil:
		return AllowList{}
	case idp == p.DefaultIdP:
		return p.Allow
	}
	return p.IdPAllow[idp]
}

// IdPNames returns the names of every IdP that a rule names, sorted and
// each once, or nil when no rule names any: authproxy checks that each is
// a configured IdP, as the policy file cannot know which are.
func (p *Policy) IdPNames() []string {
	if p == nil {
		return nil
	}
	var names []string
	for i := range p.Rules {
		names = append(names, p.Rules[i].IdPs...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// ValidIdPName reports whether name can name an IdP: not empty, and only
// lower-case ASCII letters, digits and '-'.
func ValidIdPName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Admit says whether a user with this identity may sign in at all: the
// allow-list of the user's IdP alone, as no request path is known yet.
func (p *Policy) Admit(id *Identity) Decision {
	idp := ""
	if id != nil {
		idp = id.IdP
	}
	allow := p.allowList(p.idpName(idp))
	if c := allow.check(id); c != 0 {
		return decision(nil, false, true, c)
	}
	return decision(nil, true, true, CauseAllowListed)
}

func decision(r *Rule, allow, needsSession bool, c Cause) Decision {
	return Decision{Rule: r, Allow: allow, NeedsSession: needsSession, Cause: c, Reason: c.String()}
}

// admits returns the cause for which a Restricted rule lets id through, or
// CauseNotListed. The caller has checked id's IdP (accepts).
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
