package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// EntraOptions configure the entra kind (Microsoft Entra ID, formerly Azure
// AD), whose issuer is https://login.microsoftonline.com/<tenant>/v2.0.
type EntraOptions struct {
	// Tenants are the tenant ids (GUIDs) whose users may sign in; "*" admits
	// every tenant. Required with a multi-tenant issuer (common,
	// organizations), where any Microsoft account could otherwise sign in;
	// with a tenant's own issuer only its users can sign in anyway.
	Tenants []string
	// GraphURL is Microsoft Graph's base URL; "" means
	// https://graph.microsoft.com (national clouds have their own).
	GraphURL string
	// GroupNames adds each group's displayName beside its id in
	// Identity.Groups, read from Microsoft Graph at every sign-in. Names
	// are not unique and can be chosen by whoever may create groups: write
	// access rules with ids.
	GroupNames bool
}

// DefaultGraphURL is Microsoft Graph's global endpoint.
const DefaultGraphURL = "https://graph.microsoft.com"

// multiTenants are the Entra tenant names whose discovery document names no
// single issuer but the template https://…/{tenantid}/v2.0.
var multiTenants = []string{"common", "organizations"}

var (
	entraIssuerPath = regexp.MustCompile(`^/([^/]+)/v2\.0/?$`)
	guidPattern     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// IsGUID reports whether s is a GUID such as an Entra tenant id.
func IsGUID(s string) bool { return guidPattern.MatchString(s) }

// hooks returns the entra kind's hooks: issuer validation that works for
// multi-tenant issuers, the tenant allow-list, email trust, and groups from
// Microsoft Graph when the ID token cannot hold them all.
func (o EntraOptions) hooks(cfg OIDCConfig) (Hooks, error) {
	u, err := url.Parse(cfg.IssuerURL)
	var m []string
	if err == nil {
		m = entraIssuerPath.FindStringSubmatch(u.Path)
	}
	if m == nil {
		return Hooks{}, configError("IssuerURL", "with the entra provider, want https://login.microsoftonline.com/<tenant>/v2.0, got %q", cfg.IssuerURL)
	}
	multi := slices.Contains(multiTenants, strings.ToLower(m[1]))
	tenants := make([]string, 0, len(o.Tenants))
	for _, t := range o.Tenants {
		if t != "*" && !IsGUID(t) {
			return Hooks{}, configError("Entra.Tenants", "want tenant ids (GUIDs) or *, got %q", t)
		}
		tenants = append(tenants, strings.ToLower(t))
	}
	if multi && len(tenants) == 0 {
		return Hooks{}, configError("Entra.Tenants", "required with the multi-tenant issuer %q: list the tenant ids whose users may sign in, or * for every Microsoft Entra tenant", cfg.IssuerURL)
	}
	graph := strings.TrimSuffix(o.GraphURL, "/")
	if graph == "" {
		graph = DefaultGraphURL
	}
	if g, err := url.Parse(graph); err != nil || (g.Scheme != "https" && g.Scheme != "http") || g.Host == "" {
		return Hooks{}, configError("Entra.GraphURL", "want an absolute URL, got %q", o.GraphURL)
	}
	e := &entra{tenants: tenants, graph: graph, names: o.GroupNames, groupsClaim: cfg.GroupsClaim, log: cfg.Logger}
	if e.groupsClaim == "" {
		e.groupsClaim = "groups"
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	describe := "tenant " + m[1]
	if len(tenants) > 0 {
		describe += ", tenants allowed: " + strings.Join(tenants, ", ")
	}
	describe += "; groups overage resolved through " + graph
	return Hooks{
		Kind:       "entra",
		Issuer:     e.issuer,
		Identity:   e.identity,
		GroupsHint: `set "groupMembershipClaims": "SecurityGroup" in the app registration's manifest (Token configuration > Add groups claim), or use app roles with AUTHPROXY_GROUPS_CLAIM=roles`,
		Describe:   describe,
	}, nil
}

// entra holds the entra kind's settings for its hooks.
type entra struct {
	tenants     []string
	graph       string
	names       bool
	groupsClaim string
	log         *slog.Logger
	warnEdov    sync.Once
}

// issuer implements Hooks.Issuer. The discovery document must be on the
// configured issuer's host. A multi-tenant document names the template
// https://<host>/{tenantid}/v2.0: a token's iss must then be that template
// with the token's own tid, a GUID, put in. This is safe because the token
// is verified against the keys Microsoft publishes for every tenant and its
// audience must be this client, and because the tid it is checked against is
// part of the same signed token; the tenant allow-list (identity) then says
// which tenants may sign in. A tenant-specific document (configured by
// tenant id or by domain name) names the tenant's issuer with its id: every
// token's iss must be exactly that.
func (e *entra) issuer(configured, discovered string) (IssuerCheck, error) {
	cu, err := url.Parse(configured)
	if err != nil {
		return nil, err
	}
	du, err := url.Parse(discovered)
	if err != nil || du.Scheme != cu.Scheme || du.Host != cu.Host {
		return nil, fmt.Errorf("the discovery document's issuer %q is not on %s://%s", discovered, cu.Scheme, cu.Host)
	}
	dm := entraIssuerPath.FindStringSubmatch(du.Path)
	cm := entraIssuerPath.FindStringSubmatch(cu.Path)
	multi := slices.Contains(multiTenants, strings.ToLower(cm[1]))
	switch {
	case dm == nil:
		return nil, fmt.Errorf("the discovery document's issuer %q is not https://<host>/<tenant>/v2.0", discovered)
	case multi && dm[1] != "{tenantid}":
		return nil, fmt.Errorf("the multi-tenant issuer %q has a discovery document naming the issuer %q, want the {tenantid} template", configured, discovered)
	case multi:
		return func(iss string, claims map[string]any) error {
			tid := claimString(claims["tid"])
			if !IsGUID(tid) {
				return fmt.Errorf("entra: token's tid %q is not a tenant id", tid)
			}
			if want := strings.Replace(discovered, "{tenantid}", tid, 1); iss != want {
				return fmt.Errorf("entra: token issued by %q, want %q for its tenant %s", iss, want, tid)
			}
			return nil
		}, nil
	case !IsGUID(dm[1]):
		return nil, fmt.Errorf("the discovery document's issuer %q names no tenant id", discovered)
	case IsGUID(cm[1]) && !strings.EqualFold(cm[1], dm[1]):
		return nil, fmt.Errorf("AUTHPROXY_OIDC_ISSUER names tenant %s but its discovery document's issuer is %q", cm[1], discovered)
	}
	return func(iss string, _ map[string]any) error {
		if iss != discovered {
			return fmt.Errorf("entra: token issued by %q, want %q", iss, discovered)
		}
		return nil
	}, nil
}

// identity implements Hooks.Identity: the tenant allow-list, the email's
// trust and the groups overage.
func (e *entra) identity(ctx context.Context, t *Token, id *Identity) error {
	tid := strings.ToLower(claimString(t.Claims["tid"]))
	if len(e.tenants) > 0 && !slices.Contains(e.tenants, "*") && !slices.Contains(e.tenants, tid) {
		return fmt.Errorf("%w: Entra tenant %q is not in AUTHPROXY_ENTRA_TENANTS", ErrDenied, tid)
	}
	id.EmailVerified = emailDomainVerified(t.Claims)
	if _, ok := t.Claims["xms_edov"]; id.Email != "" && !ok {
		e.warnEdov.Do(func() {
			e.log.Warn("entra: ID tokens carry email but no xms_edov claim, so their email counts as unverified and the sign-in is refused; add the xms_edov optional claim to the app registration (Token configuration), or set AUTHPROXY_INSECURE_ALLOW_UNVERIFIED_EMAIL=true")
		})
	}
	overage := hasGroupsOverage(t.Claims) && e.groupsClaim == "groups"
	switch {
	case !overage && !e.names:
		return nil
	case t.Bearer && overage:
		return fmt.Errorf("%w: bearer token's groups overflowed into Microsoft Graph (over 200), which authproxy cannot ask with this token", ErrRejected)
	case t.Bearer:
		return nil // names need Graph, which a bearer token is not for
	case t.AccessToken == "":
		return errors.New("no access token to read the user's groups from Microsoft Graph with")
	}
	groups, err := graphGroups(ctx, t.HTTPClient, e.graph, t.AccessToken, e.names)
	if err != nil {
		return err
	}
	id.Groups = addGroups(id.Groups, groups...)
	return nil
}

// emailDomainVerified reports whether an Entra token's email may be trusted.
// Entra sends no email_verified, and its email claim is whatever the user's
// mail attribute says, which a tenant's admin can set to anyone's address
// ("nOAuth"). Only the optional claim xms_edov ("email domain owner
// verified") vouches for it: true when the email's domain is verified by
// the user's tenant.
func emailDomainVerified(claims map[string]any) bool {
	switch v := claims["xms_edov"].(type) {
	case bool:
		return v
	case string:
		return v == "true" || v == "1"
	case json.Number:
		return v.String() == "1"
	}
	return false
}

// hasGroupsOverage reports whether an Entra ID token says the user has more
// groups than it can hold: a _claim_names entry for groups (authorization
// code flow, over 200 groups) or hasgroups (implicit flow).
func hasGroupsOverage(claims map[string]any) bool {
	if names, ok := claims["_claim_names"].(map[string]any); ok {
		if _, ok := names["groups"]; ok {
			return true
		}
	}
	return claimBool(claims["hasgroups"])
}
