package providers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Hooks adapt the OIDC provider to one identity provider's ways, in the
// manner of httputil.ReverseProxy's hooks: every field is optional, and the
// zero Hooks is plain OpenID Connect. New chooses them by kind; a hook never
// weakens a check it does not replace.
type Hooks struct {
	// Kind names the provider in logs, errors and Describe; "" means "oidc".
	Kind string
	// AuthParams are added to every authorization URL (Google's hd). They
	// must not name a parameter the flow sets itself (state, nonce, PKCE).
	AuthParams url.Values
	// Issuer, when not nil, takes issuer validation over from go-oidc, for
	// IdPs whose discovery document does not name the configured issuer
	// (Entra's common and organizations endpoints). Discover calls it once
	// with the configured issuer and the document's; it returns the check
	// every token's iss must then pass (ID, bearer and logout tokens alike).
	// Both must refuse whatever they do not expect: go-oidc's comparisons
	// are skipped, not kept.
	Issuer func(configured, discovered string) (IssuerCheck, error)
	// Identity runs for every verified token after its standard claims are
	// in id. It may add groups, decide EmailVerified, or refuse: wrap
	// ErrDenied for a user who may not sign in, ErrRejected for a token not
	// to be trusted; any other error counts as the IdP being unavailable.
	Identity func(ctx context.Context, t *Token, id *Identity) error
	// GroupsHint ends the warning logged when a sign-in has no groups while
	// groups are required: what to set up at this IdP to get them.
	GroupsHint string
	// AssertionAudienceIsIssuer makes private_key_jwt client assertions'
	// aud the issuer (Auth0 wants it) instead of the token endpoint URL
	// (OpenID Connect Core 1.0 section 9).
	AssertionAudienceIsIssuer bool
	// Describe says, for `authproxy check`, what the hooks do; "" for none.
	Describe string
}

// IssuerCheck reports whether a verified token's issuer, iss, is one the
// provider accepts, given the token's other claims (Entra's tid).
type IssuerCheck func(iss string, claims map[string]any) error

// Token is a verified token as an Identity hook sees it.
type Token struct {
	// Claims are the token's claims, numbers as json.Number. Do not modify.
	Claims map[string]any
	// AccessToken was issued with the ID token; "" for a bearer token, whose
	// own value is an access token for authproxy's API, not the IdP's.
	AccessToken string
	// Bearer is true for an API client's bearer token, false for the ID
	// token of a sign-in or refresh.
	Bearer bool
	// HTTPClient is the client the provider uses for every call.
	HTTPClient *http.Client

	userInfo     func(ctx context.Context) (map[string]any, error)
	accessClaims func(ctx context.Context) (map[string]any, error)
}

// AccessTokenClaims returns the claims of the access token issued with the
// ID token when it is a JWT that the IdP's keys verify, with the IdP as
// issuer, unexpired and for this client (azp or aud); nil, nil when it is
// not a JWT. For a bearer token they are Claims. Keycloak puts roles there.
func (t *Token) AccessTokenClaims(ctx context.Context) (map[string]any, error) {
	if t.Bearer {
		return t.Claims, nil
	}
	if t.accessClaims == nil {
		return nil, nil
	}
	return t.accessClaims(ctx)
}

// UserInfo returns the userinfo endpoint's claims about this token's
// subject, or nil, nil when the IdP has none or there is no access token.
func (t *Token) UserInfo(ctx context.Context) (map[string]any, error) {
	if t.userInfo == nil {
		return nil, nil
	}
	return t.userInfo(ctx)
}

// userInfoFunc returns Token.UserInfo for an access token and the subject
// it must be about, or nil when the IdP has no userinfo endpoint.
func (p *OIDC) userInfoFunc(d *discovered, accessToken, subject string) func(context.Context) (map[string]any, error) {
	if accessToken == "" || d.provider.UserInfoEndpoint() == "" {
		return nil
	}
	return func(ctx context.Context) (map[string]any, error) {
		ctx = withOperation(oidc.ClientContext(ctx, p.client), OpUserinfo)
		ui, err := d.provider.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"}))
		if err != nil {
			return nil, fmt.Errorf("providers: userinfo: %w", err)
		}
		if ui.Subject != subject {
			return nil, fmt.Errorf("%w: userinfo is about subject %q, not the token's", ErrRejected, ui.Subject)
		}
		return decodeClaims(ui.Claims)
	}
}

// accessClaimsFunc returns Token.AccessTokenClaims for an access token, or
// nil when it is not a JWT.
func (p *OIDC) accessClaimsFunc(d *discovered, accessToken string) func(context.Context) (map[string]any, error) {
	if strings.Count(accessToken, ".") != 2 {
		return nil
	}
	return func(ctx context.Context) (map[string]any, error) {
		v := d.provider.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: p.cfg.Now, SkipIssuerCheck: d.issuer != nil})
		at, claims, err := d.verify(oidc.ClientContext(ctx, p.client), v, accessToken)
		if err != nil {
			return nil, fmt.Errorf("%w: access token: %w", ErrRejected, err)
		}
		if claimString(claims["azp"]) != p.cfg.ClientID && !slices.Contains(at.Audience, p.cfg.ClientID) {
			return nil, fmt.Errorf("%w: access token is for %q (azp %q), not this client", ErrRejected, at.Audience, claimString(claims["azp"]))
		}
		return claims, nil
	}
}

// applyHooks runs the Identity hook, if any, classifying what it returns,
// and then warns when groups are required but the token gave none.
func (p *OIDC) applyHooks(ctx context.Context, d *discovered, t *Token, id *Identity) error {
	if h := p.cfg.Hooks.Identity; h != nil {
		t.HTTPClient = p.client
		if !t.Bearer {
			t.userInfo = p.userInfoFunc(d, t.AccessToken, id.Subject)
			t.accessClaims = p.accessClaimsFunc(d, t.AccessToken)
		}
		if err := h(ctx, t, id); err != nil {
			if errors.Is(err, ErrRejected) || errors.Is(err, ErrUnavailable) {
				return err
			}
			return fmt.Errorf("providers: %s: %w", p.kind(), err)
		}
	}
	if p.live.Load().groupsRequired && len(id.Groups) == 0 && lookupClaim(t.Claims, p.cfg.GroupsClaim) == nil {
		hint := p.cfg.Hooks.GroupsHint
		if hint == "" {
			hint = "configure the IdP to send it, and request the scope that carries it in AUTHPROXY_SCOPES (Dex and many others need the groups scope)"
		}
		p.log.Warn("token has no groups claim while AUTHPROXY_ALLOWED_GROUPS is set: this user cannot be allowed by group",
			"groups_claim", p.cfg.GroupsClaim, "scopes", strings.Join(p.cfg.Scopes, " "),
			"claims_present", slices.Sorted(maps.Keys(t.Claims)), "hint", "AUTHPROXY_GROUPS_CLAIM names the claim; "+hint)
	}
	return nil
}

// kind is the provider's kind for messages.
func (p *OIDC) kind() string {
	if p.cfg.Hooks.Kind == "" {
		return "oidc"
	}
	return p.cfg.Hooks.Kind
}

// addGroups appends to groups those of more it does not have yet.
func addGroups(groups []string, more ...string) []string {
	for _, g := range more {
		if g != "" && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return groups
}
