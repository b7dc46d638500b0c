// Package hostileop is a deliberately hostile OpenID provider for tests: an
// httptest server that speaks the real wire formats (OpenID Connect
// Discovery, a JWKS, authorization redirects, the OAuth 2.0 token endpoint,
// userinfo, end-session) and whose every answer a test can bend: wrong
// issuers and audiences, unsigned or mis-signed ID tokens, rotated keys,
// refused client authentication, huge or never-coming answers. It records
// every call, so a test can also assert what was NOT asked of it (no token
// request after a bad authorization response, no userinfo call after a bad
// ID token).
//
// It stands in for the OpenID Foundation's certification OP, which cannot
// run here; the real providers (Dex, oidc-provider) are in e2e. It is for
// tests only.
package hostileop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Subject is the sub of the OP's one user.
const Subject = "user-1"

// Key is a signing key of the OP.
type Key struct {
	// ID is the kid, in the JWKS and in tokens; "" publishes and signs
	// without one.
	ID      string
	Alg     jose.SignatureAlgorithm
	Private crypto.Signer
}

// NewRSAKey returns a fresh RS256 key with kid id.
func NewRSAKey(t testing.TB, id string) *Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{ID: id, Alg: jose.RS256, Private: k}
}

// NewECKey returns a fresh ES256 key with kid id.
func NewECKey(t testing.TB, id string) *Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{ID: id, Alg: jose.ES256, Private: k}
}

// JWK is the key's public half as published.
func (k *Key) JWK() map[string]any {
	raw, err := json.Marshal(jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"})
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(err)
	}
	return m
}

// Sign returns claims as a JWT signed with k, with its kid when it has one.
// Unlike SignWith it may be called from a Behaviour hook.
func (k *Key) Sign(claims map[string]any) (string, error) {
	return sign(jose.SigningKey{Algorithm: k.Alg, Key: jose.JSONWebKey{Key: k.Private, KeyID: k.ID}}, claims)
}

// Behaviour is how the OP answers; the zero value is a correct OP. Change it
// with OP.Set. Hooks run with the OP locked: they must not call its methods.
type Behaviour struct {
	// Discovery edits the discovery document last.
	Discovery func(doc map[string]any)
	// JWKSPath is where the keys are served; "" means /jwks.
	JWKSPath string
	// Published are the keys in the JWKS; nil means the OP's RSA and EC keys.
	Published []*Key
	// ExtraJWKs are added to the JWKS as they are (keys of unknown types).
	ExtraJWKs []map[string]any
	// Signer signs ID tokens; nil means the RSA key.
	Signer *Key
	// Sign, when not nil, replaces signing: it gets the claims and returns
	// the token (alg none, HS256, corrupted signatures).
	Sign func(claims map[string]any) string
	// AuthResponse edits the authorization response's query (code, state,
	// iss) before the browser is redirected back.
	AuthResponse func(q url.Values)
	// TokenAuth lists the client authentication methods the token endpoint
	// accepts (client_secret_basic, client_secret_post); nil means both.
	TokenAuth []string
	// Token, when not nil, answers token requests that authenticated the
	// client, instead of the OP (it may block until its request ends).
	Token http.HandlerFunc
	// Claims edits every ID token's claims last (after iss, aud, sub, iat,
	// exp and nonce are set).
	Claims func(claims map[string]any)
	// RefreshClaims, when not nil, edits the claims of ID tokens issued for
	// refresh grants instead of Claims.
	RefreshClaims func(claims map[string]any)
	// TokenResponse edits the token endpoint's JSON answer last.
	TokenResponse func(body map[string]any)
	// Userinfo edits the userinfo endpoint's claims last.
	Userinfo func(claims map[string]any)
}

// Call is one request the OP received.
type Call struct {
	Method string
	Path   string
	Query  url.Values
	Form   url.Values // the POST form (token requests)
	// Basic is true when the client authenticated with HTTP Basic.
	Basic bool
	// Authorization is the request's Authorization header.
	Authorization string
}

// OP is the hostile provider. It is safe for concurrent use.
type OP struct {
	ClientID, ClientSecret string
	// RSA and EC are the OP's keys, made by New.
	RSA, EC *Key

	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	b        Behaviour
	calls    []Call
	grants   map[string]grant
	refresh  map[string]bool
	access   map[string]bool
	idTokens []string
}

type grant struct {
	redirectURI, challenge, method, nonce string
	used                                  bool
}

// New starts an OP for one client; it stops when the test ends.
func New(t testing.TB, clientID, clientSecret string) *OP {
	t.Helper()
	op := &OP{
		ClientID: clientID, ClientSecret: clientSecret,
		RSA: NewRSAKey(t, "rsa-1"), EC: NewECKey(t, "ec-1"),
		t: t, grants: map[string]grant{}, refresh: map[string]bool{}, access: map[string]bool{},
	}
	op.srv = httptest.NewServer(http.HandlerFunc(op.serve))
	t.Cleanup(op.srv.Close)
	return op
}

// URL is the issuer.
func (op *OP) URL() string { return op.srv.URL }

// Close stops the server now (a test of an OP that went away).
func (op *OP) Close() { op.srv.Close() }

// Set changes how the OP answers from now on.
func (op *OP) Set(fn func(b *Behaviour)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	fn(&op.b)
}

// Calls returns the requests received at path ("" for all), in order.
func (op *OP) Calls(path string) []Call {
	op.mu.Lock()
	defer op.mu.Unlock()
	var out []Call
	for _, c := range op.calls {
		if path == "" || c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// IDTokens returns every ID token the OP issued, in order.
func (op *OP) IDTokens() []string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return slices.Clone(op.idTokens)
}

// SignJWT signs claims with the current signer (or Behaviour.Sign), for
// tokens a test builds itself: logout tokens.
func (op *OP) SignJWT(claims map[string]any) string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.signLocked(claims)
}

func sign(key jose.SigningKey, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// Unsigned returns claims as a JWT with alg none and no signature.
func Unsigned(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(payload) + "."
}

func (op *OP) signLocked(claims map[string]any) string {
	if op.b.Sign != nil {
		return op.b.Sign(claims)
	}
	k := op.b.Signer
	if k == nil {
		k = op.RSA
	}
	s, err := k.Sign(claims)
	if err != nil {
		op.t.Errorf("hostile OP: signing: %v", err)
	}
	return s
}

func (op *OP) serve(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	c := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Form: r.PostForm, Authorization: r.Header.Get("Authorization")}
	_, _, c.Basic = r.BasicAuth()
	op.mu.Lock()
	op.calls = append(op.calls, c)
	jwksPath := op.b.JWKSPath
	op.mu.Unlock()
	if jwksPath == "" {
		jwksPath = "/jwks"
	}
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		op.discovery(w)
	case jwksPath:
		op.jwks(w)
	case "/authorize":
		op.authorize(w, r)
	case "/token":
		op.token(w, r)
	case "/userinfo":
		op.userinfo(w, r)
	case "/logout":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("signed out at the OP\n"))
	default:
		http.NotFound(w, r)
	}
}

func (op *OP) discovery(w http.ResponseWriter) {
	op.mu.Lock()
	defer op.mu.Unlock()
	base := op.URL()
	jwksPath := op.b.JWKSPath
	if jwksPath == "" {
		jwksPath = "/jwks"
	}
	doc := map[string]any{
		"issuer":                                         base,
		"authorization_endpoint":                         base + "/authorize",
		"token_endpoint":                                 base + "/token",
		"userinfo_endpoint":                              base + "/userinfo",
		"jwks_uri":                                       base + jwksPath,
		"end_session_endpoint":                           base + "/logout",
		"response_types_supported":                       []string{"code"},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"RS256", "ES256"},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post"},
		"authorization_response_iss_parameter_supported": true,
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
	}
	if op.b.Discovery != nil {
		op.b.Discovery(doc)
	}
	writeJSON(w, http.StatusOK, doc)
}

func (op *OP) jwks(w http.ResponseWriter) {
	op.mu.Lock()
	defer op.mu.Unlock()
	published := op.b.Published
	if published == nil {
		published = []*Key{op.RSA, op.EC}
	}
	keys := []map[string]any{}
	for _, k := range published {
		keys = append(keys, k.JWK())
	}
	keys = append(keys, op.b.ExtraJWKs...)
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// authorize plays the user signing in at once: it mints a single-use code
// for the request and redirects the browser back with code, state and iss.
func (op *OP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirectURI, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("response_type") != "code" || q.Get("client_id") != op.ClientID || err != nil || !redirectURI.IsAbs() {
		http.Error(w, "hostile OP: bad authorization request", http.StatusBadRequest)
		return
	}
	code := "code-" + rand.Text()
	op.mu.Lock()
	op.grants[code] = grant{redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), nonce: q.Get("nonce")}
	resp := url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {op.URL()}}
	if op.b.AuthResponse != nil {
		op.b.AuthResponse(resp)
	}
	op.mu.Unlock()
	redirectURI.RawQuery = resp.Encode()
	http.Redirect(w, r, redirectURI.String(), http.StatusFound)
}

func (op *OP) token(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	allowed := op.b.TokenAuth
	answer := op.b.Token
	op.mu.Unlock()
	if allowed == nil {
		allowed = []string{"client_secret_basic", "client_secret_post"}
	}
	id, secret, basic := r.BasicAuth()
	method := "client_secret_basic"
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		method = "client_secret_post"
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if !slices.Contains(allowed, method) || id != op.ClientID || secret != op.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if answer != nil {
		answer(w, r)
		return
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	var nonce string
	refreshed := false
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, ok := op.grants[r.PostForm.Get("code")]
		if !ok || g.used || g.redirectURI != r.PostForm.Get("redirect_uri") || !pkceMatches(g, r.PostForm.Get("code_verifier")) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
		g.used = true
		op.grants[r.PostForm.Get("code")] = g
		nonce = g.nonce
	case "refresh_token":
		if !op.refresh[r.PostForm.Get("refresh_token")] {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
		delete(op.refresh, r.PostForm.Get("refresh_token"))
		refreshed = true
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss": op.URL(), "aud": op.ClientID, "sub": Subject,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": "ada@example.com", "email_verified": true, "preferred_username": "ada", "sid": "op-session-1",
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	edit := op.b.Claims
	if refreshed && op.b.RefreshClaims != nil {
		edit = op.b.RefreshClaims
	}
	if edit != nil {
		edit(claims)
	}
	idToken := op.signLocked(claims)
	op.idTokens = append(op.idTokens, idToken)
	accessToken, refreshToken := "at-"+rand.Text(), "rt-"+rand.Text()
	op.access[accessToken] = true
	op.refresh[refreshToken] = true
	body := map[string]any{
		"access_token": accessToken, "token_type": "Bearer", "expires_in": 3600,
		"refresh_token": refreshToken, "id_token": idToken,
	}
	if op.b.TokenResponse != nil {
		op.b.TokenResponse(body)
	}
	writeJSON(w, http.StatusOK, body)
}

// pkceMatches checks the verifier against the grant's challenge (RFC 7636
// 4.6); the OP refuses anything but S256.
func pkceMatches(g grant, verifier string) bool {
	sum := sha256.Sum256([]byte(verifier))
	return g.method == "S256" && verifier != "" && base64.RawURLEncoding.EncodeToString(sum[:]) == g.challenge
}

func (op *OP) userinfo(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	const prefix = "Bearer "
	auth := r.Header.Get("Authorization")
	if len(auth) <= len(prefix) || !op.access[auth[len(prefix):]] {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	claims := map[string]any{"sub": Subject, "email": "ada@example.com", "email_verified": true, "name": "Ada"}
	if op.b.Userinfo != nil {
		op.b.Userinfo(claims)
	}
	writeJSON(w, http.StatusOK, claims)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
