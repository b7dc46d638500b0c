package authproxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// fakeIdP is an OpenID Connect provider for tests: discovery, a JWKS of an
// ECDSA key made in the test, and a token endpoint that checks the client,
// the single-use code, the redirect URI and the PKCE S256 verifier before it
// returns an ID token signed with go-jose. Its /auth endpoint is never
// browsed: tests call authorize with the URL authproxy redirected to.
//
// Tests steer it with setClaims, setTweak (wrong nonce, audience, expiry …),
// signWithOtherKey, failTokenWith and set. Refresh tokens rotate. It is
// safe for concurrent use.
type fakeIdP struct {
	t            testing.TB
	srv          *httptest.Server
	clientID     string
	clientSecret string
	kid          string
	key          *ecdsa.PrivateKey // published at /keys

	mu           sync.Mutex
	signKey      *ecdsa.PrivateKey // signs ID tokens; nil means key
	claims       map[string]any    // identity claims of every ID token
	tweak        func(claims map[string]any)
	tokenStatus  int // when not 0, /token answers with this status
	refreshFail  int // when not 0, refresh grants are answered with this status
	expiresIn    int // the access tokens' lifetime in seconds
	noEndSession bool
	grants       map[string]*grant
	refresh      map[string]bool // refresh tokens issued: true while unused
	accessTokens []string        // every access token issued, in order
	idTokens     []string        // every ID token issued, in order
	tokenCalls   int
	refreshCalls int
}

// grant is one authorization request, keyed by the code minted for it.
type grant struct {
	redirectURI string
	challenge   string
	nonce       string
	used        bool
}

// defaultClaims are the identity claims the fake IdP puts in ID tokens
// unless a test sets others.
func defaultClaims() map[string]any {
	return map[string]any{
		"sub":                "user-123",
		"email":              "ada@example.com",
		"email_verified":     true,
		"preferred_username": "ada",
		"groups":             []any{"staff", "admins"},
	}
}

func newFakeIdP(t testing.TB, clientID, clientSecret string) *fakeIdP {
	t.Helper()
	f := &fakeIdP{
		t:            t,
		clientID:     clientID,
		clientSecret: clientSecret,
		kid:          "test-key-1",
		key:          newECKey(t),
		claims:       defaultClaims(),
		expiresIn:    3600,
		grants:       map[string]*grant{},
		refresh:      map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /keys", f.keys)
	mux.HandleFunc("GET /auth", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "fake IdP: /auth is not browsed; tests call authorize", http.StatusTeapot)
	})
	mux.HandleFunc("POST /token", f.token)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// URL is the issuer.
func (f *fakeIdP) URL() string { return f.srv.URL }

// setClaims replaces the identity claims of the ID tokens issued from now on.
func (f *fakeIdP) setClaims(c map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims = maps.Clone(c)
}

// setTweak installs a function that edits every ID token's claims last,
// after iss, aud, exp, iat and nonce are set.
func (f *fakeIdP) setTweak(fn func(claims map[string]any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tweak = fn
}

// signWithOtherKey makes the IdP sign ID tokens with a key that is not in
// its JWKS, under the published key's kid.
func (f *fakeIdP) signWithOtherKey() {
	k := newECKey(f.t)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signKey = k
}

// set runs fn with the IdP locked, to change how it answers.
func (f *fakeIdP) set(fn func(f *fakeIdP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// failTokenWith makes /token answer every request with status.
func (f *fakeIdP) failTokenWith(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenStatus = status
}

// lastAccessToken is the last access token the IdP issued, "" if none.
func (f *fakeIdP) lastAccessToken() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.accessTokens) == 0 {
		return ""
	}
	return f.accessTokens[len(f.accessTokens)-1]
}

// sign returns claims signed with the IdP's current signing key, for
// tokens a test builds itself (logout tokens).
func (f *fakeIdP) sign(claims map[string]any) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.signLocked(claims)
}

// tokenCallCount is how many token requests the IdP has had.
func (f *fakeIdP) tokenCallCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenCalls
}

// lastIDToken is the last ID token the IdP issued, "" if none.
func (f *fakeIdP) lastIDToken() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.idTokens) == 0 {
		return ""
	}
	return f.idTokens[len(f.idTokens)-1]
}

// authorize plays the user signing in at the IdP: it checks the
// authorization request authproxy sent the browser to, mints a single-use
// code for it and returns the callback URL the IdP would redirect to.
func (f *fakeIdP) authorize(t testing.TB, authURL string) *url.URL {
	t.Helper()
	q := f.checkAuthRequest(t, authURL)
	code := "code-" + rand.Text()
	f.mu.Lock()
	f.grants[code] = &grant{
		redirectURI: q.Get("redirect_uri"),
		challenge:   q.Get("code_challenge"),
		nonce:       q.Get("nonce"),
	}
	f.mu.Unlock()
	return callbackURL(t, q.Get("redirect_uri"), url.Values{"code": {code}, "state": {q.Get("state")}})
}

// refuse plays the IdP refusing the sign-in: the callback URL carries
// error and error_description instead of a code.
func (f *fakeIdP) refuse(t testing.TB, authURL, errCode, description string) *url.URL {
	t.Helper()
	q := f.checkAuthRequest(t, authURL)
	return callbackURL(t, q.Get("redirect_uri"), url.Values{
		"error": {errCode}, "error_description": {description}, "state": {q.Get("state")},
	})
}

func callbackURL(t testing.TB, redirectURI string, q url.Values) *url.URL {
	t.Helper()
	u, err := url.Parse(redirectURI)
	if err != nil {
		t.Fatalf("redirect_uri %q: %v", redirectURI, err)
	}
	u.RawQuery = q.Encode()
	return u
}

// checkAuthRequest fails the test unless authURL is a well-formed
// authorization-code request with PKCE S256 and a nonce, and returns its query.
func (f *fakeIdP) checkAuthRequest(t testing.TB, authURL string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatalf("authorization URL %q: %v", authURL, err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != f.URL()+"/auth" {
		t.Fatalf("authorization URL goes to %s, want %s/auth", got, f.URL())
	}
	q := u.Query()
	for name, want := range map[string]string{
		"response_type":         "code",
		"client_id":             f.clientID,
		"code_challenge_method": "S256",
	} {
		if got := q.Get(name); got != want {
			t.Errorf("authorization request %s = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"redirect_uri", "state", "nonce", "code_challenge"} {
		if q.Get(name) == "" {
			t.Errorf("authorization request has no %s", name)
		}
	}
	if !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		t.Errorf("authorization request scope %q lacks openid", q.Get("scope"))
	}
	return q
}

func (f *fakeIdP) discovery(w http.ResponseWriter, _ *http.Request) {
	base := f.URL()
	doc := map[string]any{
		"issuer":                                base,
		"authorization_endpoint":                base + "/auth",
		"token_endpoint":                        base + "/token",
		"jwks_uri":                              base + "/keys",
		"end_session_endpoint":                  base + "/logout",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
	}
	f.mu.Lock()
	if f.noEndSession {
		delete(doc, "end_session_endpoint")
	}
	f.mu.Unlock()
	writeTestJSON(w, http.StatusOK, doc)
}

func (f *fakeIdP) keys(w http.ResponseWriter, _ *http.Request) {
	writeTestJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &f.key.PublicKey, KeyID: f.kid, Algorithm: string(jose.ES256), Use: "sig",
	}}})
}

// token is the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6).
func (f *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != f.clientID || secret != f.clientSecret {
		f.t.Errorf("fake IdP: token request authenticated as %q with a wrong secret", id)
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
	case "refresh_token":
		f.refreshGrant(w, r)
		return
	default:
		f.t.Errorf("fake IdP: grant_type %q", gt)
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	f.tokenCalls++
	if f.tokenStatus != 0 {
		tokenError(w, f.tokenStatus, "server_error")
		return
	}
	g := f.grants[r.PostForm.Get("code")]
	if g == nil || g.used {
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	g.used = true // single use, even when a later check fails
	if r.PostForm.Get("redirect_uri") != g.redirectURI {
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if r.PostForm.Get("code_verifier") == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	}

	f.issueLocked(w, g.nonce)
}

// refreshGrant answers a refresh_token grant: refresh tokens rotate, each
// is good once. f.mu is held.
func (f *fakeIdP) refreshGrant(w http.ResponseWriter, r *http.Request) {
	f.refreshCalls++
	if f.refreshFail != 0 {
		code := "server_error"
		if f.refreshFail < 500 {
			code = "invalid_grant"
		}
		tokenError(w, f.refreshFail, code)
		return
	}
	rt := r.PostForm.Get("refresh_token")
	if !f.refresh[rt] {
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	f.refresh[rt] = false
	f.issueLocked(w, "")
}

// issueLocked answers with fresh tokens and an ID token of the current
// claims, carrying nonce when it is not empty. f.mu is held.
func (f *fakeIdP) issueLocked(w http.ResponseWriter, nonce string) {
	now := time.Now()
	claims := maps.Clone(f.claims)
	claims["iss"] = f.URL()
	claims["aud"] = f.clientID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(time.Hour).Unix()
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if f.tweak != nil {
		f.tweak(claims)
	}
	accessToken := "at-" + rand.Text()
	refreshToken := "rt-" + rand.Text()
	f.accessTokens = append(f.accessTokens, accessToken)
	f.refresh[refreshToken] = true
	idToken := f.signLocked(claims)
	f.idTokens = append(f.idTokens, idToken)
	writeTestJSON(w, http.StatusOK, map[string]any{
		"access_token":  accessToken,
		"token_type":    "Bearer",
		"expires_in":    f.expiresIn,
		"refresh_token": refreshToken,
		"id_token":      idToken,
	})
}

// signLocked returns claims as a compact JWS signed with ES256. f.mu is held.
func (f *fakeIdP) signLocked(claims map[string]any) string {
	key := f.key
	if f.signKey != nil {
		key = f.signKey
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: f.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		f.t.Errorf("fake IdP: %v", err)
		return ""
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		f.t.Errorf("fake IdP: %v", err)
		return ""
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		f.t.Errorf("fake IdP: %v", err)
		return ""
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		f.t.Errorf("fake IdP: %v", err)
	}
	return s
}

func tokenError(w http.ResponseWriter, status int, code string) {
	writeTestJSON(w, status, map[string]string{"error": code})
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
