package authproxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authproxy/authproxy/session"
)

const (
	// headerUpstreamJWT carries the signed identity to the upstream.
	headerUpstreamJWT = "X-Authproxy-Jwt"
	// jwksPath publishes the public key the upstream verifies it with.
	jwksPath = "/.well-known/jwks.json"
	// upstreamJWTLifetime is how long one signed identity is valid.
	upstreamJWTLifetime = 2 * time.Minute
	// upstreamJWTCacheSize bounds the cache of signed tokens.
	upstreamJWTCacheSize = 10000
)

// identitySigner signs short-lived ES256 JWTs that tell the upstream who
// the user is, and publishes its public key as a JWKS. A token is reused
// for the same identity until it is close to expiry, so most requests cost
// a map lookup, not a signature.
type identitySigner struct {
	signer   jose.Signer
	jwks     []byte
	issuer   string
	audience string
	now      func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]signedIdentity
}

type signedIdentity struct {
	token  string
	expiry time.Time
}

// identityClaims are the claims of the upstream JWT.
type identityClaims struct {
	jwt.Claims
	Email             string   `json:"email,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups"`
	// IdP names the user's IdP when there are several: the same sub from
	// two IdPs is two users.
	IdP string `json:"idp,omitempty"`
}

// newIdentitySigner loads the P-256 key in keyFile (PEM, PKCS#8 or SEC 1),
// or makes a fresh one when keyFile is empty.
func newIdentitySigner(keyFile, issuer, audience string, now func() time.Time) (*identitySigner, error) {
	key, err := loadOrMakeKey(keyFile)
	if err != nil {
		return nil, err
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("authproxy: upstream JWT key: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("authproxy: upstream JWT signer: %w", err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("authproxy: upstream JWKS: %w", err)
	}
	return &identitySigner{signer: signer, jwks: jwks, issuer: issuer, audience: audience, now: now, cache: map[[32]byte]signedIdentity{}}, nil
}

func loadOrMakeKey(keyFile string) (*ecdsa.PrivateKey, error) {
	if keyFile == "" {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("authproxy: AUTHPROXY_UPSTREAM_JWT_KEY_FILE: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("authproxy: AUTHPROXY_UPSTREAM_JWT_KEY_FILE: no PEM block in %s", keyFile)
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		key, err = x509.ParseECPrivateKey(block.Bytes)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if err != nil || !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("authproxy: AUTHPROXY_UPSTREAM_JWT_KEY_FILE: want a P-256 (ES256) private key in PEM")
	}
	return ec, nil
}

// token returns a signed identity for sess, of IdP idp ("" with one IdP),
// valid for at least a minute.
func (is *identitySigner) token(sess *session.Session, idp string) (string, error) {
	now := is.now()
	key := identityKey(sess, idp)
	is.mu.Lock()
	cached, ok := is.cache[key]
	is.mu.Unlock()
	if ok && now.Before(cached.expiry.Add(-time.Minute)) {
		return cached.token, nil
	}
	exp := now.Add(upstreamJWTLifetime)
	if sess.ExpiresAt.Before(exp) {
		exp = sess.ExpiresAt
	}
	claims := identityClaims{
		Claims: jwt.Claims{
			Issuer:   is.issuer,
			Subject:  sess.User,
			Audience: jwt.Audience{is.audience},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(exp),
		},
		Email:             sess.Email,
		PreferredUsername: sess.PreferredUsername,
		Groups:            nonNil(sess.Groups),
		IdP:               idp,
	}
	tok, err := jwt.Signed(is.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("authproxy: signing upstream JWT: %w", err)
	}
	is.mu.Lock()
	if len(is.cache) >= upstreamJWTCacheSize {
		clear(is.cache)
	}
	is.cache[key] = signedIdentity{token: tok, expiry: exp}
	is.mu.Unlock()
	return tok, nil
}

// identityKey names the signed identity sess would get: a SHA-256 over
// every claim the token carries and the session's end, which caps its
// expiry. Two sessions share a key only if their tokens would say the same,
// so one client can never be handed another's identity (bearer-token
// "sessions" all have the same ID, and tokens can expire in the same second).
func identityKey(sess *session.Session, idp string) [32]byte {
	h := sha256.New()
	field := func(v string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		h.Write(n[:])
		h.Write([]byte(v))
	}
	field(idp)
	field(sess.User)
	field(sess.Email)
	field(sess.PreferredUsername)
	field(strconv.Itoa(len(sess.Groups)))
	for _, g := range sess.Groups {
		field(g)
	}
	field(strconv.FormatInt(sess.ExpiresAt.UnixNano(), 10))
	var key [32]byte
	h.Sum(key[:0])
	return key
}

// serveJWKS publishes the public key.
func (is *identitySigner) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(is.jwks)
}
