package policy

// Cause is why the policy decided as it did: the typed form of
// Decision.Reason, for callers that branch on it. The zero Cause is not
// returned by any method.
type Cause int

// The causes Judge, Decide and Admit give.
const (
	// CausePublic: the rule makes the path public.
	CausePublic Cause = iota + 1
	// CauseSignedIn: the rule lets any signed-in user through.
	CauseSignedIn
	// CauseNoPolicy: there are no rules, so any signed-in user may pass.
	CauseNoPolicy
	// CauseGroup, CauseEmail, CauseDomain: a Restricted rule names one of
	// the user's groups, the user's email, or its domain.
	CauseGroup
	CauseEmail
	CauseDomain
	// CauseAllowListed: Admit lets the user sign in.
	CauseAllowListed

	// CauseAnonymous: the request has no session and the path needs one.
	CauseAnonymous
	// CauseNoRule: no rule matches, and a policy denies what it does not allow.
	CauseNoRule
	// CauseNotListed: a Restricted rule names none of the user's groups,
	// email or domain.
	CauseNotListed
	// CauseInvalidRule: the matching rule has no valid Access.
	CauseInvalidRule
	// CauseNoEmail: the allow-list limits email addresses and the user has none.
	CauseNoEmail
	// CauseEmailNotAllowed: the user's email is not on the allow-list.
	CauseEmailNotAllowed
	// CauseGroupNotAllowed: the user is in none of the allow-list's groups.
	CauseGroupNotAllowed

	// CauseIdP: an Authenticated rule that lists IdPs (allow: {idps: [...]}
	// alone) lists the user's IdP.
	CauseIdP
	// CauseWrongIdP: the user signed in with an IdP the rule does not
	// accept: not among its IdPs or, for a rule naming groups, emails or
	// domains but no IdPs, not the default IdP. It is not an allow-list
	// refusal (ByAllowList).
	CauseWrongIdP
)

// String returns the cause as one plain sentence, as Decision.Reason holds it.
func (c Cause) String() string {
	switch c {
	case CausePublic:
		return "the rule makes the path public"
	case CauseSignedIn:
		return "signed in, and the rule lets any signed-in user through"
	case CauseNoPolicy:
		return "signed in, and without a policy any signed-in user may pass"
	case CauseGroup:
		return "in a group the rule allows"
	case CauseEmail:
		return "the rule allows this email address"
	case CauseDomain:
		return "the rule allows this email domain"
	case CauseAllowListed:
		return "allowed by AUTHPROXY_ALLOWED_EMAIL_DOMAINS, _EMAILS and _GROUPS"
	case CauseAnonymous:
		return "not signed in, and the path needs a session"
	case CauseNoRule:
		return "no rule matches this method and path, and a policy denies what it does not allow"
	case CauseNotListed:
		return "signed in, but not in the groups, emails or domains the rule allows"
	case CauseInvalidRule:
		return "the rule has no valid access kind, so it denies everyone"
	case CauseNoEmail:
		return "no email address in the ID token, and AUTHPROXY_ALLOWED_EMAIL_DOMAINS or _EMAILS needs one"
	case CauseEmailNotAllowed:
		return "email not in AUTHPROXY_ALLOWED_EMAIL_DOMAINS or AUTHPROXY_ALLOWED_EMAILS"
	case CauseGroupNotAllowed:
		return "not in any of AUTHPROXY_ALLOWED_GROUPS"
	case CauseIdP:
		return "signed in with an identity provider the rule accepts"
	case CauseWrongIdP:
		return "signed in, but with an identity provider the rule does not accept"
	}
	return "unknown cause"
}

// ByAllowList reports whether the cause is one of the allow-list's
// refusals (CauseNoEmail, CauseEmailNotAllowed, CauseGroupNotAllowed).
func (c Cause) ByAllowList() bool {
	return c == CauseNoEmail || c == CauseEmailNotAllowed || c == CauseGroupNotAllowed
}
