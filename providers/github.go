package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// GitHubOptions configure the github kind.
type GitHubOptions struct {
	// URL is GitHub's web address; "" means https://github.com, whose API is
	// https://api.github.com. For GitHub Enterprise Server, its address: the
	// API is then URL + "/api/v3".
	URL string
	// Org, when set, admits only active members of this organization, and
	// adds the read:org scope to check it.
	Org string
	// Teams, when set, admit only members of at least one of these teams
	// (slugs) of Org. Requires Org.
	Teams []string
}

// GitHub is a Provider for GitHub and GitHub Enterprise Server, which speak
// plain OAuth 2.0: no discovery and no ID token. The user comes from the
// REST API, read with the access token right after the exchange: GET /user,
// the verified primary address of GET /user/emails (no sign-in without
// one), and with an organization GET /user/memberships/orgs/{org} and GET
// /user/teams. Its claims, for AUTHPROXY_USER_CLAIM and
// AUTHPROXY_CLAIM_HEADERS, are sub (the numeric user id as a string, which
// a rename does not change), id, login, name, email, preferred_username
// (the login) and groups ("org/team-slug" for each team, with an org only).
// It is safe for concurrent use.
type GitHub struct {
	cfg    OIDCConfig
	opts   GitHubOptions
	oauth  oauth2.Config // ClientSecret: see live
	live   atomic.Pointer[live]
	web    string
	api    string
	client *http.Client
	log    *slog.Logger
}

// NewGitHub returns the GitHub provider. It needs no discovery: Ready is
// always nil.
func NewGitHub(cfg OIDCConfig, opts GitHubOptions) (*GitHub, error) {
	web := strings.TrimSuffix(opts.URL, "/")
	if web == "" {
		web = "https://github.com"
	}
	if u, err := url.Parse(web); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return nil, configError("GitHub.URL", "want an absolute URL such as https://github.example.com, got %q", opts.URL)
	}
	api := web + "/api/v3"
	if web == "https://github.com" {
		api = "https://api.github.com"
	}
	if len(opts.Teams) > 0 && opts.Org == "" {
		return nil, configError("GitHub.Teams", "needs GitHub.Org, the organization the teams belong to")
	}
	scopes := []string{"read:user", "user:email"}
	if opts.Org != "" {
		scopes = append(scopes, "read:org")
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "sub"
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	client = wrapTransport(client, cfg.WrapTransport)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &GitHub{
		cfg: cfg, opts: opts, web: web, api: api, client: client, log: log,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       scopes,
			Endpoint: oauth2.Endpoint{
				AuthURL:   web + "/login/oauth/authorize",
				TokenURL:  web + "/login/oauth/access_token",
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
	}
	g.live.Store(newLive(cfg))
	return g, nil
}

// oauthConfig returns the OAuth2 configuration with the client secret now
// in effect, for one call to the token endpoint.
func (g *GitHub) oauthConfig() *oauth2.Config {
	c := g.oauth
	c.ClientSecret = g.live.Load().clientSecret
	return &c
}

// Ready implements Provider: GitHub has no discovery to wait for.
func (g *GitHub) Ready() error { return nil }

// AuthCodeURL implements Provider. GitHub has no ID token, so nonce is not
// sent; state and the PKCE S256 challenge are.
func (g *GitHub) AuthCodeURL(state, _, verifier string) (string, error) {
	return g.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

// Exchange implements Provider: it trades the code (with the PKCE verifier)
// for an access token and reads the user from the API. nonce is unused.
func (g *GitHub) Exchange(ctx context.Context, code, verifier, _ string) (*Identity, error) {
	ctx = withOperation(context.WithValue(ctx, oauth2.HTTPClient, g.client), OpToken)
	tok, err := g.oauthConfig().Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, githubTokenError("exchanging code", err)
	}
	return g.identity(ctx, tok)
}

// Refresh implements Provider. Only a GitHub App's expiring user tokens
// come with a refresh token; an OAuth app's tokens never expire, so there
// is nothing to refresh and an empty refreshToken is ErrRejected. The
// organization and teams are checked again; the returned Identity has no
// IDToken, so callers keep the claims they had.
func (g *GitHub) Refresh(ctx context.Context, refreshToken string) (*Identity, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("%w: no refresh token (GitHub OAuth app tokens do not expire)", ErrRejected)
	}
	ctx = withOperation(context.WithValue(ctx, oauth2.HTTPClient, g.client), OpRefresh)
	tok, err := g.oauthConfig().TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, githubTokenError("refreshing", err)
	}
	id, err := g.identity(ctx, tok)
	if err != nil {
		return nil, err
	}
	id.IDToken = ""
	return id, nil
}

// githubTokenError classifies a failed token request. GitHub answers
// errors with 200 and an error code in the body.
func githubTokenError(op string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode == "" {
		return fmt.Errorf("providers: github: %s: %w", op, err)
	}
	switch re.ErrorCode {
	case "incorrect_client_credentials":
		return fmt.Errorf("providers: github: %s: GitHub refused this client (%s): check AUTHPROXY_CLIENT_ID and AUTHPROXY_CLIENT_SECRET", op, re.ErrorCode)
	case "redirect_uri_mismatch":
		return fmt.Errorf("providers: github: %s: GitHub refused the redirect URL (%s): AUTHPROXY_REDIRECT_URL must be the app's Authorization callback URL", op, re.ErrorCode)
	case "unverified_user_email":
		return fmt.Errorf("%w: github: the account's primary email address is not verified", ErrDenied)
	}
	if re.Response != nil && re.Response.StatusCode >= 500 {
		return fmt.Errorf("providers: github: %s: %w", op, err)
	}
	return fmt.Errorf("%w: github: %s: %s", ErrRejected, op, re.ErrorCode)
}

// githubUser is the part of GET /user authproxy uses.
type githubUser struct {
	Login string      `json:"login"`
	ID    json.Number `json:"id"`
	Name  string      `json:"name"`
}

// identity reads the user behind tok from the API and checks the rules.
func (g *GitHub) identity(ctx context.Context, tok *oauth2.Token) (*Identity, error) {
	ctx = withOperation(ctx, OpUserinfo)
	var u githubUser
	if _, err := g.get(ctx, tok.AccessToken, g.api+"/user", &u); err != nil {
		return nil, err
	}
	if u.ID == "" || u.Login == "" {
		return nil, fmt.Errorf("providers: github: GET /user gave no id or login")
	}
	email, err := g.primaryEmail(ctx, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	var groups []string
	if g.opts.Org != "" {
		if err := g.checkMembership(ctx, tok.AccessToken); err != nil {
			return nil, err
		}
		if groups, err = g.teams(ctx, tok.AccessToken); err != nil {
			return nil, err
		}
	}
	if len(g.opts.Teams) > 0 && !slices.ContainsFunc(g.opts.Teams, func(t string) bool {
		return slices.ContainsFunc(groups, func(gr string) bool { return strings.EqualFold(gr, g.opts.Org+"/"+t) })
	}) {
		return nil, fmt.Errorf("%w: github: %s is in none of the teams %q of %s (AUTHPROXY_GITHUB_TEAM)", ErrDenied, u.Login, g.opts.Teams, g.opts.Org)
	}
	claims := map[string]any{
		"sub": u.ID.String(), "id": u.ID, "login": u.Login, "name": u.Name,
		"email": email, "email_verified": true, "preferred_username": u.Login, "groups": toAny(groups),
	}
	id := ClaimsIdentity(claims, g.cfg.UserClaim, "groups")
	if id.User == "" {
		return nil, fmt.Errorf("%w: github: the user has no %q (AUTHPROXY_USER_CLAIM: sub, id, login, name or email)", ErrRejected, g.cfg.UserClaim)
	}
	id.Extra = extraClaims(claims, g.live.Load().extraClaims)
	id.AccessToken = tok.AccessToken
	id.RefreshToken = tok.RefreshToken
	id.Expiry = tok.Expiry
	return id, nil
}

// primaryEmail returns the user's primary email address, refusing the
// sign-in when GitHub has not verified it.
func (g *GitHub) primaryEmail(ctx context.Context, token string) (string, error) {
	type email struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	emails, err := getAll[email](ctx, g, token, g.api+"/user/emails?per_page=100")
	var ge *githubError
	if errors.As(err, &ge) && (ge.Status == http.StatusNotFound || ge.Status == http.StatusForbidden) {
		return "", fmt.Errorf("providers: github: GitHub did not list the user's email addresses (%s): an OAuth app needs the user:email scope, a GitHub App the Email addresses (read) permission", ge)
	}
	if err != nil {
		return "", err
	}
	for _, e := range emails {
		if e.Primary && e.Verified && e.Email != "" {
			return e.Email, nil
		}
	}
	return "", fmt.Errorf("%w: github: the account has no verified primary email address", ErrDenied)
}

// checkMembership refuses a user who is not an active member of the org.
func (g *GitHub) checkMembership(ctx context.Context, token string) error {
	var m struct {
		State string `json:"state"`
	}
	_, err := g.get(ctx, token, g.api+"/user/memberships/orgs/"+url.PathEscape(g.opts.Org), &m)
	var ge *githubError
	switch {
	case errors.As(err, &ge) && ge.Status == http.StatusNotFound:
		return fmt.Errorf("%w: github: not a member of the organization %s (AUTHPROXY_GITHUB_ORG)", ErrDenied, g.opts.Org)
	case errors.As(err, &ge) && ge.Status == http.StatusForbidden:
		return fmt.Errorf("providers: github: GitHub would not show membership of %s (%s): an organization owner must approve this OAuth app (Settings > Third-party access), or a GitHub App needs the Members (read) permission", g.opts.Org, ge)
	case err != nil:
		return err
	case m.State != "active":
		return fmt.Errorf("%w: github: membership of %s is %q, not active (AUTHPROXY_GITHUB_ORG)", ErrDenied, g.opts.Org, m.State)
	}
	return nil
}

// teams returns the user's teams, in every organization, as "org/slug".
func (g *GitHub) teams(ctx context.Context, token string) ([]string, error) {
	type team struct {
		Slug         string `json:"slug"`
		Organization struct {
			Login string `json:"login"`
		} `json:"organization"`
	}
	list, err := getAll[team](ctx, g, token, g.api+"/user/teams?per_page=100")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range list {
		if t.Slug != "" && t.Organization.Login != "" {
			out = addGroups(out, t.Organization.Login+"/"+t.Slug)
		}
	}
	return out, nil
}

// Describe says what the provider is set up to do.
func (g *GitHub) Describe() string {
	s := fmt.Sprintf("github provider, %s (API %s), user claim %s", g.web, g.api, g.cfg.UserClaim)
	if g.opts.Org != "" {
		s += ", organization " + g.opts.Org
	}
	if len(g.opts.Teams) > 0 {
		s += ", teams " + strings.Join(g.opts.Teams, ", ")
	}
	return s
}

// Check implements Checker: it asks the API's public GET /meta.
func (g *GitHub) Check(ctx context.Context) (string, error) {
	var meta map[string]any
	if _, err := g.get(ctx, "", g.api+"/meta", &meta); err != nil {
		return "", fmt.Errorf("AUTHPROXY_GITHUB_URL: %w", err)
	}
	return g.Describe(), nil
}

func toAny(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}
