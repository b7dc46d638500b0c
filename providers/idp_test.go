package providers

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
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testIdP is a small OpenID Connect provider for the provider's tests:
// discovery, a JWKS of an ECDSA key made in the test, a token endpoint for
// the authorization-code and refresh grants that checks the PKCE verifier,
// and an optional userinfo endpoint. It is safe for concurrent use.
type testIdP struct {
	t            testing.TB
	srv          *httptest.Server
	clientID     string
	clientSecret string
	key          *ecdsa.PrivateKey

	mu          sync.Mutex
	signKey     *ecdsa.PrivateKey // nil means key
	claims      map[string]any    // identity claims of every ID token
	tweak       func(claims map[string]any)
	response    func(body map[string]any) // edits the token response last
	tokenStatus int                       // when not 0, /token answers with it
	tokenError  string                    // and this error code; "" means server_error
	userinfo    map[string]any            // nil: no userinfo endpoint
	discovery   func(doc map[string]any)  // edits the discovery document
	codes       map[string]testGrant
	lastForm    url.Values
	lastBasic   bool
	// authClient, when not nil, replaces the client secret check of the
	// token endpoint: it returns false for a client to refuse.
	authClient func(r *http.Request) bool
}

type testGrant struct{ challenge, nonce string }

func newTestIdP(t testing.TB, clientSecret string) *testIdP {
	t.Helper()
	return newTestIdPServer(t, clientSecret, (*httptest.Server).Start)
}

// newTestIdPServer is newTestIdP started by start (StartTLS, or Start
// after setting the server's TLS configuration).
func newTestIdPServer(t testing.TB, clientSecret string, start func(*httptest.Server)) *testIdP {
	t.Helper()
	f := &testIdP{
		t: t, clientID: "client-1", clientSecret: clientSecret, key: testECKey(t),
		claims: map[string]any{
			"sub": "user-1", "email": "ada@example.com", "email_verified": true,
			"preferred_username": "ada", "groups": []any{"staff", "admins"}, "sid": "idp-session-1",
		},
		codes: map[string]testGrant{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.serveDiscovery)
	// Entra's layout: https://login.microsoftonline.com/<tenant>/v2.0 is the issuer.
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", f.serveDiscovery)
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		writeTestJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
			Key: &f.key.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig",
		}}})
	})
	mux.HandleFunc("POST /token", f.serveToken)
	mux.HandleFunc("POST /mtls/token", f.serveToken) // an RFC 8705 mtls_endpoint_aliases target
	mux.HandleFunc("GET /userinfo", f.serveUserinfo)
	f.srv = httptest.NewUnstartedServer(mux)
	start(f.srv)
	t.Cleanup(f.srv.Close)
	return f
}

func testECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// set runs fn with the IdP locked, to change how it answers.
func (f *testIdP) set(fn func(f *testIdP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// provider returns a discovered provider for this IdP; edit changes its
// configuration first.
func (f *testIdP) provider(t testing.TB, edit func(c *OIDCConfig)) *OIDC {
	t.Helper()
	cfg := OIDCConfig{
		IssuerURL: f.srv.URL, ClientID: f.clientID, ClientSecret: f.clientSecret,
		RedirectURL: "https://app.example.com/oauth2/callback", Scopes: []string{"openid", "email"},
	}
	if edit != nil {
		edit(&cfg)
	}
	p := NewOIDC(cfg)
	if err := p.Discover(t.Context()); err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return p
}

// code plays the user signing in: it reads the PKCE challenge and nonce
// from the authorization URL and mints a single-use code for them.
func (f *testIdP) code(t testing.TB, authURL string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		t.Fatalf("authorization URL %s has no S256 challenge", authURL)
	}
	code := rand.Text()
	f.set(func(f *testIdP) { f.codes[code] = testGrant{q.Get("code_challenge"), q.Get("nonce")} })
	return code
}

func (f *testIdP) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	base := f.srv.URL
	doc := map[string]any{
		"issuer":                                base,
		"authorization_endpoint":                base + "/auth",
		"token_endpoint":                        base + "/token",
		"jwks_uri":                              base + "/keys",
		"end_session_endpoint":                  base + "/logout?tenant=t1",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
	}
	if f.userinfo != nil {
		doc["userinfo_endpoint"] = base + "/userinfo"
	}
	if f.discovery != nil {
		f.discovery(doc)
	}
	writeTestJSON(w, http.StatusOK, doc)
}

func (f *testIdP) serveUserinfo(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeTestJSON(w, http.StatusOK, f.userinfo)
}

func (f *testIdP) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeTestJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastForm = r.PostForm
	id, secret, basic := r.BasicAuth()
	f.lastBasic = basic
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if f.authClient != nil && !f.authClient(r) || f.authClient == nil && (id != f.clientID || secret != f.clientSecret) {
		writeTestJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if f.tokenStatus != 0 {
		code := f.tokenError
		if code == "" {
			code = "server_error"
		}
		writeTestJSON(w, f.tokenStatus, map[string]string{"error": code})
		return
	}
	var nonce string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, ok := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			writeTestJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
		nonce = g.nonce
	case "refresh_token":
		if r.PostForm.Get("refresh_token") != "rt-good" {
			writeTestJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
	default:
		writeTestJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	now := time.Now()
	claims := maps.Clone(f.claims)
	claims["iss"], claims["aud"] = f.srv.URL, f.clientID
	claims["iat"], claims["exp"] = now.Unix(), now.Add(time.Hour).Unix()
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if f.tweak != nil {
		f.tweak(claims)
	}
	body := map[string]any{
		"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
		"refresh_token": "rt-next", "id_token": f.signLocked(claims),
	}
	if f.response != nil {
		f.response(body)
	}
	writeTestJSON(w, http.StatusOK, body)
}

// sign returns claims as a compact JWS, ES256, kid k1.
func (f *testIdP) sign(claims map[string]any) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.signLocked(claims)
}

func (f *testIdP) signLocked(claims map[string]any) string {
	key := f.key
	if f.signKey != nil {
		key = f.signKey
	}
	return signTestJWT(f.t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, claims)
}

func signTestJWT(t testing.TB, key jose.SigningKey, claims map[string]any) string {
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Errorf("signing: %v", err)
		return ""
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Errorf("signing: %v", err)
		return ""
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Errorf("signing: %v", err)
		return ""
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Errorf("signing: %v", err)
	}
	return s
}

// testAtHash is the at_hash of an access token for ES256 (OpenID Connect Core 3.1.3.6).
func testAtHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
