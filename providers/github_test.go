package providers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// githubProvider returns the github provider for the fake g.
func githubProvider(t *testing.T, g *githubFake, edit func(c *Config)) *GitHub {
	t.Helper()
	cfg := Config{OIDCConfig: OIDCConfig{
		ClientID: "Iv1.8a61f9b3a7aba766", ClientSecret: "gh-secret", RedirectURL: "https://app.example.com/oauth2/callback",
	}}
	cfg.GitHub.URL = g.srv.URL
	if edit != nil {
		edit(&cfg)
	}
	p, err := New("github", cfg)
	if err != nil {
		t.Fatalf("New(github): %v", err)
	}
	return p.(*GitHub)
}

// githubSignIn runs AuthCodeURL, lets the fake authorize it, and exchanges
// the code; edit may spoil the code or verifier first.
func githubSignIn(t *testing.T, g *githubFake, p *GitHub, edit func(code, verifier *string)) (*Identity, error) {
	t.Helper()
	verifier := "verifier-" + strings.Repeat("v", 40)
	authURL, err := p.AuthCodeURL("state-"+strings.Repeat("s", 20), "nonce-unused", verifier)
	if err != nil {
		t.Fatal(err)
	}
	code := g.code(authURL)
	if edit != nil {
		edit(&code, &verifier)
	}
	return p.Exchange(context.Background(), code, verifier, "nonce-unused")
}

func TestGitHubAuthCodeURL(t *testing.T) {
	for _, tc := range []struct {
		name, org, wantScope string
	}{
		{"no organization", "", "read:user user:email"},
		{"organization", "acme", "read:user user:email read:org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGitHubFake(t)
			p := githubProvider(t, g, func(c *Config) { c.GitHub.Org = tc.org })
			raw, _ := p.AuthCodeURL("the-state", "the-nonce", "the-verifier")
			u, _ := url.Parse(raw)
			q := u.Query()
			if u.Path != "/login/oauth/authorize" || q.Get("client_id") != "Iv1.8a61f9b3a7aba766" || q.Get("state") != "the-state" ||
				q.Get("scope") != tc.wantScope || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
				q.Get("redirect_uri") != "https://app.example.com/oauth2/callback" || q.Has("nonce") {
				t.Errorf("authorization URL %s", raw)
			}
		})
	}
}

// TestGitHubSignIn covers the sign-in against the fake's REST API.
func TestGitHubSignIn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(g *githubFake)
		edit  func(c *Config)
		want  func(id *Identity) string // "" when id is as wanted
	}{
		{"no organization: user id, verified primary email, no groups", nil, nil, func(id *Identity) string {
			if id.User != "583231" || id.Subject != "583231" || id.Email != "octocat@github.com" || !id.EmailVerified ||
				id.PreferredUsername != "octocat" || len(id.Groups) != 0 || id.AccessToken == "" || id.IDToken != "" || id.RefreshToken != "" || !id.Expiry.IsZero() {
				return "want user 583231, octocat@github.com verified, no groups, a non-expiring token"
			}
			return ""
		}},
		{"user claim login, extra claims", nil, func(c *Config) { c.UserClaim, c.ExtraClaims = "login", []string{"name", "id"} }, func(id *Identity) string {
			if id.User != "octocat" || !reflect.DeepEqual(id.Extra, map[string]string{"name": "The Octocat", "id": "583231"}) {
				return "want user octocat and the extra claims"
			}
			return ""
		}},
		{"organization: teams of every page as groups", nil, func(c *Config) { c.GitHub.Org = "acme" }, func(id *Identity) string {
			if !reflect.DeepEqual(id.Groups, []string{"acme/platform", "other/ops", "acme/web"}) {
				return "want the three teams as org/slug"
			}
			return ""
		}},
		{"team on the second page", nil, func(c *Config) { c.GitHub.Org, c.GitHub.Teams = "acme", []string{"admins", "web"} }, func(id *Identity) string {
			if len(id.Groups) != 3 {
				return "want the three teams"
			}
			return ""
		}},
		{"GitHub App expiring token", func(g *githubFake) { g.expiring = true }, nil, func(id *Identity) string {
			if id.RefreshToken != "ghr_next" || id.Expiry.Before(time.Now().Add(7*time.Hour)) {
				return "want the refresh token and an expiry 8 hours on"
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGitHubFake(t)
			if tc.setup != nil {
				g.set(tc.setup)
			}
			p := githubProvider(t, g, tc.edit)
			id, err := githubSignIn(t, g, p, nil)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if msg := tc.want(id); msg != "" {
				t.Errorf("Identity = %+v: %s", id, msg)
			}
			g.set(func(g *githubFake) {
				if g.tokenForm.Get("code_verifier") == "" || g.tokenForm.Get("client_secret") != "gh-secret" {
					t.Errorf("token request %v: want the verifier and the client's credentials in the form", g.tokenForm)
				}
			})
		})
	}
}

// TestGitHubSignInRefused covers every way the sign-in fails: wantIs is
// the error it must be (nil: neither ErrRejected nor ErrDenied, an
// operator's or GitHub's problem), want a part of its message.
func TestGitHubSignInRefused(t *testing.T) {
	withOrg := func(c *Config) { c.GitHub.Org = "acme" }
	for _, tc := range []struct {
		name   string
		setup  func(g *githubFake)
		edit   func(c *Config)
		spoil  func(code, verifier *string)
		wantIs error
		want   string
	}{
		{"primary email not verified", func(g *githubFake) {
			g.emails = []any{map[string]any{"email": "octocat@github.com", "verified": false, "primary": true, "visibility": "public"}}
		}, nil, nil, ErrDenied, "no verified primary email"},
		{"verified email not primary", func(g *githubFake) { g.emails = g.emails[:1] }, nil, nil, ErrDenied, "no verified primary email"},
		{"emails not readable", func(g *githubFake) { g.failPath, g.failStatus = "/api/v3/user/emails", http.StatusNotFound }, nil, nil, nil, "user:email scope"},
		{"bad credentials", func(g *githubFake) { g.revoked = true }, nil, nil, ErrRejected, "401 Bad credentials"},
		{"not an organization member", func(g *githubFake) { g.memberStatus = http.StatusNotFound }, withOrg, nil, ErrDenied, "not a member of the organization acme"},
		{"invitation pending", func(g *githubFake) { g.memberState = "pending" }, withOrg, nil, ErrDenied, `membership of acme is "pending"`},
		{"organization restricts OAuth apps", func(g *githubFake) { g.memberStatus = http.StatusForbidden }, withOrg, nil, nil, "Third-party access"},
		{"rate limited", func(g *githubFake) {
			g.failPath, g.failStatus, g.rateLimited = "/api/v3/user/teams", http.StatusForbidden, true
		}, withOrg, nil, nil, "rate limited"},
		{"GitHub fails", func(g *githubFake) { g.failPath, g.failStatus = "/api/v3/user", http.StatusBadGateway }, nil, nil, nil, "502"},
		{"in none of the teams", nil, func(c *Config) { c.GitHub.Org, c.GitHub.Teams = "acme", []string{"admins", "ops"} }, nil, ErrDenied, "in none of the teams"},
		{"next page outside the API", func(g *githubFake) { g.teamsNext = "https://evil.example/api/v3/user/teams?page=2" }, withOrg, nil, nil, "outside the API"},
		{"code used or made up", nil, nil, func(code, _ *string) { *code = "made-up" }, ErrRejected, "bad_verification_code"},
		{"wrong PKCE verifier", nil, nil, func(_, verifier *string) { *verifier += "x" }, ErrRejected, "bad_verification_code"},
		{"wrong client secret", nil, func(c *Config) { c.ClientSecret = "wrong" }, nil, nil, "check AUTHPROXY_CLIENT_ID and AUTHPROXY_CLIENT_SECRET"},
		{"redirect URL not registered", func(g *githubFake) { g.tokenErr = "redirect_uri_mismatch" }, nil, nil, nil, "AUTHPROXY_REDIRECT_URL"},
		{"GitHub App refuses an unverified email", func(g *githubFake) { g.tokenErr = "unverified_user_email" }, nil, nil, ErrDenied, "not verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGitHubFake(t)
			if tc.setup != nil {
				g.set(tc.setup)
			}
			p := githubProvider(t, g, tc.edit)
			id, err := githubSignIn(t, g, p, tc.spoil)
			switch {
			case err == nil || id != nil:
				t.Fatalf("Exchange = %+v, %v; want an error", id, err)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Errorf("Exchange: %v; want %v", err, tc.wantIs)
			case tc.wantIs == nil && errors.Is(err, ErrRejected):
				t.Errorf("Exchange: %v; want an error that is not ErrRejected", err)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("Exchange: %v; want it to say %q", err, tc.want)
			}
		})
	}
}

func TestGitHubRefresh(t *testing.T) {
	g := newGitHubFake(t)
	g.set(func(g *githubFake) { g.expiring = true })
	p := githubProvider(t, g, func(c *Config) { c.GitHub.Org = "acme" })
	ctx := context.Background()

	if _, err := p.Refresh(ctx, ""); !errors.Is(err, ErrRejected) {
		t.Errorf("Refresh of an OAuth app's session (no refresh token): %v, want ErrRejected", err)
	}
	id, err := p.Refresh(ctx, "ghr_good")
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if id.AccessToken == "" || id.RefreshToken != "ghr_next" || id.IDToken != "" || id.Subject != "583231" {
		t.Errorf("Refresh = %+v; want new tokens and no ID token", id)
	}
	if _, err := p.Refresh(ctx, "ghr_expired"); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "bad_refresh_token") {
		t.Errorf("Refresh with a spent token: %v, want ErrRejected (bad_refresh_token)", err)
	}
	g.set(func(g *githubFake) { g.memberStatus = http.StatusNotFound })
	if _, err := p.Refresh(ctx, "ghr_good"); !errors.Is(err, ErrDenied) {
		t.Errorf("Refresh after leaving the organization: %v, want ErrDenied", err)
	}
}

func TestGitHubURLs(t *testing.T) {
	for _, tc := range []struct {
		url, wantAuth, wantAPI string
	}{
		{"", "https://github.com/login/oauth/authorize", "https://api.github.com"},
		{"https://github.com/", "https://github.com/login/oauth/authorize", "https://api.github.com"},
		{"https://ghe.example.com/", "https://ghe.example.com/login/oauth/authorize", "https://ghe.example.com/api/v3"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			p, err := NewGitHub(OIDCConfig{ClientID: "c"}, GitHubOptions{URL: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := p.AuthCodeURL("s", "n", "v")
			if !strings.HasPrefix(raw, tc.wantAuth+"?") || p.api != tc.wantAPI || p.Ready() != nil {
				t.Errorf("authorization URL %s, API %s; want %s, %s", raw, p.api, tc.wantAuth, tc.wantAPI)
			}
		})
	}
}

func TestGitHubCheck(t *testing.T) {
	g := newGitHubFake(t)
	p := githubProvider(t, g, func(c *Config) { c.GitHub.Org, c.GitHub.Teams = "acme", []string{"web"} })
	msg, err := p.Check(context.Background())
	if err != nil || !strings.Contains(msg, "github provider, "+g.srv.URL+" (API "+g.srv.URL+"/api/v3), user claim sub, organization acme, teams web") {
		t.Errorf("Check() = %q, %v", msg, err)
	}
	g.srv.Close()
	if _, err := p.Check(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "AUTHPROXY_GITHUB_URL: ") {
		t.Errorf("Check() with GitHub down: %v, want an error naming AUTHPROXY_GITHUB_URL", err)
	}
}

func TestNextLink(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{`<https://api.github.com/user/teams?page=2>; rel="next", <https://api.github.com/user/teams?page=5>; rel="last"`, "https://api.github.com/user/teams?page=2"},
		{`<https://api.github.com/user/teams?page=1>; rel="prev", <https://api.github.com/user/teams?page=3>; rel="next"`, "https://api.github.com/user/teams?page=3"},
		{`<https://api.github.com/user/teams?page=1>; rel="first"`, ""},
		{``, ""},
		{`https://api.github.com/x; rel="next"`, ""},
		{`<https://api.github.com/x>`, ""},
	} {
		if got := nextLink(tc.header); got != tc.want {
			t.Errorf("nextLink(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}
