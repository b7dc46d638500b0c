package providers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// githubFake is a fake GitHub Enterprise Server, because github.com cannot be
// reached from tests. It speaks GitHub's real wire formats as documented:
// the OAuth token endpoint at /login/oauth/access_token answers
// form-encoded, and errors with 200 and error fields; the REST API at
// /api/v3 answers GitHub's JSON shapes, pages lists with Link headers
// (two items a page, so paging is always exercised) and refuses with
// {"message","documentation_url","status"}.
type githubFake struct {
	t   testing.TB
	srv *httptest.Server

	mu           sync.Mutex
	codes        map[string]string // code -> PKCE challenge
	tokenErr     string            // when set, the token endpoint's error code
	expiring     bool              // issue a GitHub App's expiring user tokens
	revoked      bool              // tokens are issued but the API refuses them
	issued       map[string]bool   // access tokens the API accepts
	user         map[string]any
	emails       []any
	memberStatus int    // GET /user/memberships/orgs/acme: 200, 403 or 404
	memberState  string // its state when 200
	teams        []any
	failPath     string // this API path answers failStatus
	failStatus   int
	rateLimited  bool   // failStatus 403 is a rate limit
	teamsNext    string // when set, the first teams page's next link
	tokenForm    url.Values
}

func newGitHubFake(t testing.TB) *githubFake {
	g := &githubFake{
		t: t, codes: map[string]string{}, issued: map[string]bool{},
		user: map[string]any{
			"login": "octocat", "id": 583231, "node_id": "MDQ6VXNlcjU4MzIzMQ==", "type": "User",
			"name": "The Octocat", "email": nil, "site_admin": false,
		},
		emails: []any{
			map[string]any{"email": "octocat@users.noreply.github.com", "verified": true, "primary": false, "visibility": nil},
			map[string]any{"email": "old@example.com", "verified": false, "primary": false, "visibility": nil},
			map[string]any{"email": "octocat@github.com", "verified": true, "primary": true, "visibility": "public"},
		},
		memberStatus: http.StatusOK, memberState: "active",
		teams: []any{
			githubTeam("acme", "platform"), githubTeam("other", "ops"), githubTeam("acme", "web"),
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", g.serveToken)
	mux.HandleFunc("GET /api/v3/user", g.api(func() (any, int) { return g.user, http.StatusOK }))
	mux.HandleFunc("GET /api/v3/user/emails", g.list(func() []any { return g.emails }))
	mux.HandleFunc("GET /api/v3/user/teams", g.list(func() []any { return g.teams }))
	mux.HandleFunc("GET /api/v3/user/memberships/orgs/{org}", g.api(func() (any, int) {
		switch g.memberStatus {
		case http.StatusNotFound:
			return githubErrorBody("Not Found", 404), 404
		case http.StatusForbidden:
			return githubErrorBody("Although you appear to have the correct authorization credentials, the `acme` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited.", 403), 403
		}
		return map[string]any{"state": g.memberState, "role": "member", "organization": map[string]any{"login": "acme", "id": 1}}, http.StatusOK
	}))
	mux.HandleFunc("GET /api/v3/meta", func(w http.ResponseWriter, _ *http.Request) {
		writeTestJSON(w, http.StatusOK, map[string]any{"verifiable_password_authentication": false, "installed_version": "3.14.0"})
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func githubTeam(org, slug string) map[string]any {
	return map[string]any{
		"id": 1, "name": slug, "slug": slug, "privacy": "closed", "permission": "pull",
		"organization": map[string]any{"login": org, "id": 2},
	}
}

func githubErrorBody(msg string, status int) map[string]any {
	return map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest", "status": strconv.Itoa(status)}
}

func (g *githubFake) set(fn func(g *githubFake)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fn(g)
}

// code plays the user authorizing the app at the authorization URL.
func (g *githubFake) code(authURL string) string {
	u, err := url.Parse(authURL)
	if err != nil {
		g.t.Fatal(err)
	}
	code := rand.Text()
	g.set(func(g *githubFake) { g.codes[code] = u.Query().Get("code_challenge") })
	return code
}

func (g *githubFake) serveToken(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokenForm = r.PostForm
	form := url.Values{}
	fail := func(code, desc string) {
		form.Set("error", code)
		form.Set("error_description", desc)
		form.Set("error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#"+code)
	}
	switch f := r.PostForm; {
	case g.tokenErr != "":
		fail(g.tokenErr, "as configured by the test")
	case f.Get("client_id") != "Iv1.8a61f9b3a7aba766" || f.Get("client_secret") != "gh-secret":
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
	case f.Get("grant_type") == "refresh_token" && f.Get("refresh_token") != "ghr_good":
		fail("bad_refresh_token", "The refresh token passed is incorrect or expired.")
	case f.Get("grant_type") != "refresh_token":
		challenge, ok := g.codes[f.Get("code")]
		delete(g.codes, f.Get("code"))
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
			fail("bad_verification_code", "The code passed is incorrect or expired.")
		}
	}
	if form.Get("error") == "" {
		tok := "gho_" + rand.Text()
		form.Set("access_token", tok)
		form.Set("scope", "read:org,read:user,user:email")
		form.Set("token_type", "bearer")
		if g.expiring {
			tok = "ghu_" + rand.Text()
			form.Set("access_token", tok)
			form.Set("expires_in", "28800")
			form.Set("refresh_token", "ghr_next")
			form.Set("refresh_token_expires_in", "15724800")
			form.Set("scope", "")
		}
		g.issued[tok] = !g.revoked
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(form.Encode()))
}

// api serves one API resource: answer returns the body and status.
func (g *githubFake) api(answer func() (any, int)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.allowed(w, r) {
			return
		}
		body, status := answer()
		writeTestJSON(w, status, body)
	}
}

// list serves a list two items a page, linking pages as GitHub does.
func (g *githubFake) list(items func() []any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.allowed(w, r) {
			return
		}
		all := items()
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		page = max(page, 1)
		last := max((len(all)+1)/2, 1)
		link := func(p int) string {
			return fmt.Sprintf("<%s%s?per_page=2&page=%d>", g.srv.URL, r.URL.Path, p)
		}
		switch {
		case page == 1 && r.URL.Path == "/api/v3/user/teams" && g.teamsNext != "":
			w.Header().Set("Link", "<"+g.teamsNext+`>; rel="next"`)
		case page < last:
			w.Header().Set("Link", link(page+1)+`; rel="next", `+link(last)+`; rel="last"`)
		case page > 1:
			w.Header().Set("Link", link(1)+`; rel="first", `+link(page-1)+`; rel="prev"`)
		}
		from, to := min((page-1)*2, len(all)), min(page*2, len(all))
		writeTestJSON(w, http.StatusOK, all[from:to])
	}
}

// allowed checks the token and the test's forced failures, answering when
// the request fails.
func (g *githubFake) allowed(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !g.issued[auth[7:]] || r.Header.Get("User-Agent") == "" {
		writeTestJSON(w, http.StatusUnauthorized, githubErrorBody("Bad credentials", 401))
		return false
	}
	if r.URL.Path == g.failPath {
		msg := http.StatusText(g.failStatus)
		if g.rateLimited {
			msg = "API rate limit exceeded for user ID 583231."
			w.Header().Set("X-RateLimit-Remaining", "0")
		}
		writeTestJSON(w, g.failStatus, githubErrorBody(msg, g.failStatus))
		return false
	}
	return true
}
