package policy

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// String returns "public", "authenticated", "restricted", or "invalid" for
// the zero Access and any other value.
func (a Access) String() string {
	switch a {
	case Public:
		return "public"
	case Authenticated:
		return "authenticated"
	case Restricted:
		return "restricted"
	}
	return "invalid"
}

// String formats the rule in one line, as Explain and Parse's errors show
// it: "GET,HEAD /health allow public", "/admin/ allow groups [admins]",
// "/ops/ allow idps [staff] groups [ops]", and "/partners/ allow idps
// [partners]" for an Authenticated rule with IdPs. Source is not part of it.
func (r *Rule) String() string {
	var b strings.Builder
	if len(r.Methods) > 0 {
		b.WriteString(strings.Join(r.Methods, ","))
		b.WriteByte(' ')
	}
	b.WriteString(r.Path)
	b.WriteString(" allow")
	switch {
	case r.Access == Public, r.Access == Authenticated && len(r.IdPs) == 0:
		b.WriteString(" " + r.Access.String())
	case r.Access == Authenticated:
		fmt.Fprintf(&b, " idps [%s]", strings.Join(r.IdPs, " "))
	case r.Access == Restricted:
		for _, l := range []struct {
			name string
			list []string
		}{{"idps", r.IdPs}, {"groups", r.Groups}, {"emails", r.Emails}, {"domains", r.Domains}} {
			if len(l.list) > 0 {
				fmt.Fprintf(&b, " %s [%s]", l.name, strings.Join(l.list, " "))
			}
		}
	default:
		b.WriteString(" nobody (no valid access kind)")
	}
	return b.String()
}

// Explain says in a few plain lines what the policy does with a request,
// for "authproxy policy explain METHOD PATH [--email E --groups G --idp I]":
// the cleaned path or why it is refused, which rule decides (its number,
// source and text) or that none does, and the verdict for id (when not
// nil) and for an anonymous user. rawPath may carry a query, which is
// ignored, and may be escaped as on the wire. The output is deterministic
// and ends in a newline. The allow-list of id's IdP (the default IdP's,
// AUTHPROXY_ALLOWED_*, when id is nil) is shown and applied, as Decide
// applies it. When the policy or id names IdPs, the allow-list and the user
// are shown with their IdP.
func (p *Policy) Explain(method, rawPath string, id *Identity) string {
	var b strings.Builder
	fmt.Fprintf(&b, "request:   %s %s\n", printable(method), printable(rawPath))
	switch {
	case ValidMethod(method):
	case ValidMethod(strings.ToUpper(method)):
		fmt.Fprintf(&b, "method:    refused (400): %q is not upper-case; methods are case-sensitive, so a %q rule would not match it\n", method, strings.ToUpper(method))
		return b.String()
	default:
		fmt.Fprintf(&b, "method:    refused (400): %q is not an HTTP method\n", method)
		return b.String()
	}
	escaped, _, hasQuery := strings.Cut(rawPath, "?")
	if hash := strings.IndexByte(escaped, '#'); hash >= 0 {
		escaped, hasQuery = escaped[:hash], true
	}
	clean, err := CleanPath(escaped)
	if err != nil {
		reason := strings.TrimPrefix(err.Error(), ErrAmbiguousPath.Error()+": ")
		fmt.Fprintf(&b, "path:      refused (400), before any rule: %s\n", reason)
		return b.String()
	}
	note := ""
	if hasQuery {
		note = " (the query is not part of the path)"
	}
	fmt.Fprintf(&b, "path:      %s%s\n", clean, note)

	d := p.Decide(method, clean, id)
	switch {
	case d.Rule != nil:
		n := 1 + p.index(d.Rule)
		src := ""
		if d.Rule.Source != "" {
			src = ", from " + d.Rule.Source
		}
		fmt.Fprintf(&b, "rule:      %d of %d%s: %s\n", n, len(p.Rules), src, d.Rule)
	case p == nil || len(p.Rules) == 0:
		b.WriteString("rule:      none; with no rules at all, any signed-in user may pass\n")
	default:
		fmt.Fprintf(&b, "rule:      none of the %d rules matches; a policy denies what it does not allow\n", len(p.Rules))
	}
	idp := ""
	if id != nil {
		idp = id.IdP
	}
	idp = p.idpName(idp)
	multi := p.namesIdPs() || id != nil && id.IdP != ""
	allow := p.allowList(idp)
	switch line := allow.describe(); {
	case d.Rule.Public():
	case multi && line == "":
		fmt.Fprintf(&b, "allow-list: of %s: none, it restricts nobody\n", p.describeIdP(idp))
	case multi:
		fmt.Fprintf(&b, "allow-list: of %s: %s\n", p.describeIdP(idp), line)
	case line != "":
		fmt.Fprintf(&b, "allow-list: %s\n", line)
	}
	if id != nil {
		verdict := "denied (403)"
		if d.Allow {
			verdict = "allowed"
		}
		who := describe(id, "")
		if multi {
			who = describe(id, p.describeIdP(idp))
		}
		fmt.Fprintf(&b, "%s: %s: %s\n", who, verdict, d.Reason)
	}
	if d.NeedsSession {
		b.WriteString("anonymous: sent to sign in (a browser is redirected; other clients get 401)\n")
	} else {
		b.WriteString("anonymous: allowed: " + d.Reason + "\n")
	}
	return b.String()
}

// describe says what the allow-list requires of every signed-in user, or ""
// when it restricts nobody.
func (a *AllowList) describe() string {
	var parts []string
	if a.restrictsEmail() {
		var of []string
		if len(a.Domains) > 0 {
			of = append(of, "domains ["+strings.Join(a.Domains, " ")+"]")
		}
		if len(a.Emails) > 0 {
			of = append(of, "emails ["+strings.Join(a.Emails, " ")+"]")
		}
		parts = append(parts, "email in "+strings.Join(of, " or "))
	}
	if len(a.Groups) > 0 {
		parts = append(parts, "in one of the groups ["+strings.Join(a.Groups, " ")+"]")
	}
	return strings.Join(parts, ", and ")
}

// index returns the position of r in p.Rules.
func (p *Policy) index(r *Rule) int {
	for i := range p.Rules {
		if &p.Rules[i] == r {
			return i
		}
	}
	return -1
}

// printable returns s, or s quoted when it holds control characters that
// would break the output's lines or the terminal.
func printable(s string) string {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}

// namesIdPs reports whether the policy knows of IdPs by name: a named
// default IdP, another IdP's allow-list, or a rule that lists IdPs.
func (p *Policy) namesIdPs() bool {
	return p != nil && (p.DefaultIdP != "" || len(p.IdPAllow) > 0 || len(p.IdPNames()) > 0)
}

// describeIdP names the IdP idp, a name idpName returned, in one phrase:
// "IdP partners", "IdP staff, the default" or "the default IdP".
func (p *Policy) describeIdP(idp string) string {
	switch {
	case idp != p.defaultIdP():
		return "IdP " + printable(idp)
	case idp == "":
		return "the default IdP"
	}
	return "IdP " + printable(idp) + ", the default"
}

// describe names an identity in one phrase, with its IdP when idp (a
// describeIdP phrase) is not "".
func describe(id *Identity, idp string) string {
	who := id.Email
	if who == "" {
		who = "signed-in user without email"
	}
	groups := "no groups"
	if len(id.Groups) > 0 {
		groups = "groups " + printable(strings.Join(id.Groups, ", "))
	}
	if idp != "" {
		return printable(who) + " (" + idp + "; " + groups + ")"
	}
	return printable(who) + " (" + groups + ")"
}
