package providers

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// GoogleOptions configure the google kind.
type GoogleOptions struct {
	// HostedDomains, when set, admit only Google Workspace accounts whose
	// ID token's hd claim is one of them; "*" admits every Workspace
	// account but no consumer account (which has no hd). With exactly one
	// entry it is also sent as the hd hint of the authorization URL, which
	// only narrows Google's account chooser: the claim is what is enforced.
	HostedDomains []string
}

// hooks returns the google kind's hooks. email_verified needs nothing:
// Google sends it, and ClaimsIdentity reads it.
func (o GoogleOptions) hooks() Hooks {
	h := Hooks{
		Kind:       "google",
		GroupsHint: "Google ID tokens carry no groups at all: leave AUTHPROXY_ALLOWED_GROUPS empty and use AUTHPROXY_GOOGLE_HOSTED_DOMAIN, AUTHPROXY_ALLOWED_EMAIL_DOMAINS or AUTHPROXY_ALLOWED_EMAILS",
	}
	if len(o.HostedDomains) == 0 {
		return h
	}
	domains := make([]string, len(o.HostedDomains))
	for i, d := range o.HostedDomains {
		domains[i] = strings.ToLower(d)
	}
	if len(domains) == 1 {
		h.AuthParams = url.Values{"hd": {domains[0]}}
	}
	h.Describe = "hosted domain (hd) must be " + strings.Join(domains, " or ")
	h.Identity = func(_ context.Context, t *Token, _ *Identity) error {
		hd := strings.ToLower(claimString(t.Claims["hd"]))
		switch {
		case hd == "":
			return fmt.Errorf("%w: a consumer Google account (no hd claim), while AUTHPROXY_GOOGLE_HOSTED_DOMAIN admits only Workspace accounts", ErrDenied)
		case !slices.Contains(domains, "*") && !slices.Contains(domains, hd):
			return fmt.Errorf("%w: Google hosted domain %q is not in AUTHPROXY_GOOGLE_HOSTED_DOMAIN", ErrDenied, hd)
		}
		return nil
	}
	return h
}
