package providers

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The token endpoint authentication methods authproxy knows (RFC 8414's
// token_endpoint_auth_methods_supported values).
const (
	MethodNone              = "none"
	MethodClientSecretBasic = "client_secret_basic"
	MethodClientSecretPost  = "client_secret_post"
	MethodPrivateKeyJWT     = "private_key_jwt"
	MethodTLSClientAuth     = "tls_client_auth"
	// MethodSelfSignedTLSClientAuth is RFC 8705's other mutual TLS method;
	// on the wire it is the same as tls_client_auth (the IdP pins the
	// certificate instead of checking its chain), so a TLS client
	// certificate uses whichever of the two the IdP lists.
	MethodSelfSignedTLSClientAuth = "self_signed_tls_client_auth"
)

// clientAssertionType is RFC 7523 section 2.2's client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a private_key_jwt client assertion is valid.
// Each is made for one token request and used at once.
const AssertionLifetime = 60 * time.Second

// ClientAuthConfig says how authproxy proves itself to the token endpoint
// without a client secret. Set PrivateKeyFile (private_key_jwt) or the TLS
// pair (tls_client_auth), not both.
type ClientAuthConfig struct {
	// ClientID is the assertion's iss and sub. Required.
	ClientID string
	// PrivateKeyFile is a PEM RSA (2048 bits or more) or EC (P-256, P-384,
	// P-521) private key, unencrypted, or a private JWK of one. It signs
	// with RS256, ES256, ES384 or ES512 by the key's type.
	PrivateKeyFile string
	// KeyID is sent as the assertion's kid. Empty means the JWK file's kid,
	// or else the key's RFC 7638 thumbprint.
	KeyID string
	// TLSCertFile and TLSKeyFile are the PEM client certificate (chain) and
	// its key, presented to the IdP for tls_client_auth.
	TLSCertFile string
	TLSKeyFile  string
	// Now is the clock of the assertions' iat and exp; nil means time.Now.
	Now func() time.Time
}

// ClientAuth authenticates authproxy at the IdP's token endpoint with a
// private key (private_key_jwt, OpenID Connect Core 1.0 section 9 and
// RFC 7523) or a TLS client certificate (tls_client_auth, RFC 8705). Build
// it with NewClientAuth; it never changes afterwards and is safe for
// concurrent use. To pick up a changed key file, build a new one and hand
// it to OIDC.SetClientAuth.
type ClientAuth struct {
	method   string
	clientID string
	key      jose.JSONWebKey // private; private_key_jwt only
	alg      jose.SignatureAlgorithm
	signer   jose.Signer
	cert     *tls.Certificate // tls_client_auth only
	now      func() time.Time
}

// NewClientAuth reads the key or certificate files cfg names and returns
// the ClientAuth, or nil and no error when cfg names none. The error is a
// *ConfigError whose Field is "ClientAuth." and the field of cfg to fix.
func NewClientAuth(cfg ClientAuthConfig) (*ClientAuth, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	tlsSet := cfg.TLSCertFile != "" || cfg.TLSKeyFile != ""
	switch {
	case cfg.PrivateKeyFile == "" && !tlsSet:
		return nil, nil
	case cfg.PrivateKeyFile != "" && tlsSet:
		return nil, configError("ClientAuth.PrivateKeyFile", "set a private key or a TLS certificate, not both: one client authentication method at a time")
	case cfg.ClientID == "":
		return nil, configError("ClientAuth.ClientID", "required for client authentication")
	case tlsSet:
		if cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" {
			return nil, configError("ClientAuth.TLSKeyFile", "set both the TLS certificate and its key, or neither")
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, configError("ClientAuth.TLSCertFile", "want a PEM certificate whose key is in the TLS key file: %w", err)
		}
		return &ClientAuth{method: MethodTLSClientAuth, clientID: cfg.ClientID, cert: &cert, now: now}, nil
	}
	raw, err := os.ReadFile(cfg.PrivateKeyFile)
	if err != nil {
		return nil, configError("ClientAuth.PrivateKeyFile", "%w", err)
	}
	key, err := ParseClientKey(raw)
	if err != nil {
		return nil, configError("ClientAuth.PrivateKeyFile", "%w", err)
	}
	if cfg.KeyID != "" {
		key.KeyID = cfg.KeyID
	}
	if key.KeyID == "" {
		tp, err := key.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, configError("ClientAuth.PrivateKeyFile", "%w", err)
		}
		key.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	alg := jose.SignatureAlgorithm(key.Algorithm)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, configError("ClientAuth.PrivateKeyFile", "%w", err)
	}
	return &ClientAuth{method: MethodPrivateKeyJWT, clientID: cfg.ClientID, key: key, alg: alg, signer: signer, now: now}, nil
}

// ParseClientKey reads a private key for private_key_jwt: PEM (PKCS #8,
// PKCS #1 or SEC 1, unencrypted) or a private JWK. The result's Algorithm
// is the one the key signs with: RS256 for RSA, ES256/ES384/ES512 by curve.
func ParseClientKey(raw []byte) (jose.JSONWebKey, error) {
	var key jose.JSONWebKey
	if trimmed := strings.TrimSpace(string(raw)); strings.HasPrefix(trimmed, "{") {
		if err := json.Unmarshal([]byte(trimmed), &key); err != nil {
			return key, fmt.Errorf("want a PEM private key or a private JWK: %w", err)
		}
		if key.IsPublic() {
			return key, errors.New("the JWK is a public key; authproxy needs the private key (the IdP gets the public one)")
		}
	} else {
		block, _ := pem.Decode(raw)
		if block == nil {
			return key, errors.New("want a PEM private key (-----BEGIN PRIVATE KEY-----) or a private JWK, found neither")
		}
		if strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "" {
			return key, errors.New("the PEM key is encrypted; give authproxy an unencrypted key in a file only it can read")
		}
		var k any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			return key, fmt.Errorf("want a PEM private key, got a PEM %q block", block.Type)
		}
		if err != nil {
			return key, fmt.Errorf("reading the PEM %s: %w", block.Type, err)
		}
		key.Key = k
	}
	alg, err := signingAlg(key.Key)
	if err != nil {
		return key, err
	}
	if key.Algorithm != "" && key.Algorithm != string(alg) {
		return key, fmt.Errorf("the JWK says alg %s, but its key signs with %s", key.Algorithm, alg)
	}
	key.Algorithm = string(alg)
	key.Use = "sig"
	return key, nil
}

// signingAlg is the JWS algorithm a private key signs client assertions with.
func signingAlg(k any) (jose.SignatureAlgorithm, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("the RSA key has %d bits; want 2048 or more (RFC 7518 section 3.3)", k.N.BitLen())
		}
		return jose.RS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
		return "", fmt.Errorf("the EC key's curve %s is not P-256, P-384 or P-521", k.Curve.Params().Name)
	}
	return "", fmt.Errorf("want an RSA or EC private key, got %T", k)
}

// Method returns the token endpoint authentication method: private_key_jwt
// or tls_client_auth.
func (a *ClientAuth) Method() string { return a.method }

// Algorithm returns the client assertions' signing algorithm; "" for
// tls_client_auth.
func (a *ClientAuth) Algorithm() string { return string(a.alg) }

// KeyID returns the client assertions' kid; "" for tls_client_auth.
func (a *ClientAuth) KeyID() string { return a.key.KeyID }

// PublicJWKS returns the JSON Web Key Set to register at the IdP for
// private_key_jwt (the public key, its kid, alg and use), or nil for
// tls_client_auth.
func (a *ClientAuth) PublicJWKS() []byte {
	if a.method != MethodPrivateKeyJWT {
		return nil
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{a.key.Public()}})
	if err != nil {
		return nil // a key that signed cannot fail to marshal
	}
	return b
}

// Describe says, for `authproxy check` and logs, how the client
// authenticates.
func (a *ClientAuth) Describe() string {
	if a.method == MethodPrivateKeyJWT {
		return fmt.Sprintf("private_key_jwt, %s, kid %q", a.alg, a.key.KeyID)
	}
	leaf, err := x509.ParseCertificate(a.cert.Certificate[0])
	if err != nil {
		return "tls_client_auth"
	}
	return fmt.Sprintf("tls_client_auth, certificate %q issued by %q, valid until %s",
		leaf.Subject.String(), leaf.Issuer.String(), leaf.NotAfter.UTC().Format(time.RFC3339))
}

// assertion returns a fresh client assertion for audience aud: signed by
// the client's key, iss and sub the client id, a random jti, iat now and
// exp AssertionLifetime later.
func (a *ClientAuth) assertion(aud string) (string, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("providers: client assertion jti: %w", err)
	}
	now := a.now()
	claims := jwt.Claims{
		Issuer:   a.clientID,
		Subject:  a.clientID,
		Audience: jwt.Audience{aud},
		ID:       base64.RawURLEncoding.EncodeToString(id[:]),
		IssuedAt: jwt.NewNumericDate(now),
		// Some IdPs refuse an assertion without nbf; it costs nothing.
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(AssertionLifetime)),
	}
	s, err := jwt.Signed(a.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("providers: signing the client assertion: %w", err)
	}
	return s, nil
}

// clientAuthChoice is how Discover decided to authenticate at the token
// endpoint, from the configuration and the discovery document.
type clientAuthChoice struct {
	method string
	// aud is the client assertions' audience (private_key_jwt).
	aud string
	// tokenURL replaces the discovered token endpoint: RFC 8705 section 5's
	// mtls_endpoint_aliases.token_endpoint, with a client certificate.
	tokenURL string
	// algs is token_endpoint_auth_signing_alg_values_supported.
	algs []string
}

// discoveredAuth is the part of a discovery document that decides how
// authproxy authenticates at the token endpoint.
type discoveredAuth struct {
	Issuer      string   `json:"issuer"`
	TokenURL    string   `json:"token_endpoint"`
	AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	SigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	MTLSAliases struct {
		TokenURL string `json:"token_endpoint"`
	} `json:"mtls_endpoint_aliases"`
}

// chooseClientAuth checks that the IdP supports the configured client
// authentication and returns the choice; the error names the variable to
// fix. Without a ClientAuth it returns the zero choice: the secret's
// authStyle applies.
func chooseClientAuth(a *ClientAuth, d discoveredAuth, audIsIssuer bool) (clientAuthChoice, error) {
	if a == nil {
		return clientAuthChoice{}, nil
	}
	methods := d.AuthMethods
	listed := strings.Join(methods, ", ")
	if len(methods) == 0 {
		// RFC 8414 section 2: absent means client_secret_basic only.
		listed = "nothing, which means client_secret_basic only"
	}
	switch a.method {
	case MethodPrivateKeyJWT:
		if !slices.Contains(methods, MethodPrivateKeyJWT) {
			return clientAuthChoice{}, fmt.Errorf("AUTHPROXY_CLIENT_PRIVATE_KEY_FILE is set, but the IdP's token_endpoint_auth_methods_supported lists %s, not private_key_jwt: enable private_key_jwt for the IdP, or unset AUTHPROXY_CLIENT_PRIVATE_KEY_FILE and use a client secret", listed)
		}
		if len(d.SigningAlgs) > 0 && !slices.Contains(d.SigningAlgs, string(a.alg)) {
			return clientAuthChoice{}, fmt.Errorf("AUTHPROXY_CLIENT_PRIVATE_KEY_FILE: the key signs with %s, but the IdP's token_endpoint_auth_signing_alg_values_supported lists %s: use a key of a type the IdP accepts (RSA for RS256, EC P-256 for ES256)", a.alg, strings.Join(d.SigningAlgs, ", "))
		}
		// OpenID Connect Core 1.0 section 9: the audience SHOULD be the
		// token endpoint URL. Kinds whose IdP wants its issuer say so.
		aud := d.TokenURL
		if audIsIssuer {
			aud = d.Issuer
		}
		return clientAuthChoice{method: MethodPrivateKeyJWT, aud: aud, algs: d.SigningAlgs}, nil
	case MethodTLSClientAuth:
		method := MethodTLSClientAuth
		if !slices.Contains(methods, MethodTLSClientAuth) {
			if !slices.Contains(methods, MethodSelfSignedTLSClientAuth) {
				return clientAuthChoice{}, fmt.Errorf("AUTHPROXY_CLIENT_TLS_CERT_FILE is set, but the IdP's token_endpoint_auth_methods_supported lists %s, not tls_client_auth: enable mutual TLS client authentication for the IdP, or unset AUTHPROXY_CLIENT_TLS_CERT_FILE and AUTHPROXY_CLIENT_TLS_KEY_FILE", listed)
			}
			method = MethodSelfSignedTLSClientAuth
		}
		return clientAuthChoice{method: method, tokenURL: d.MTLSAliases.TokenURL}, nil
	}
	return clientAuthChoice{}, fmt.Errorf("providers: unknown client authentication %q", a.method)
}

// refusedHint names what to check when the IdP answers invalid_client.
func (c clientAuthChoice) refusedHint() string {
	switch c.method {
	case MethodPrivateKeyJWT:
		return "check AUTHPROXY_CLIENT_ID, and that the public key of AUTHPROXY_CLIENT_PRIVATE_KEY_FILE (`authproxy check` prints it) is registered at the IdP for this client with the same kid"
	case MethodTLSClientAuth, MethodSelfSignedTLSClientAuth:
		return "check AUTHPROXY_CLIENT_ID, and that the IdP accepts the certificate of AUTHPROXY_CLIENT_TLS_CERT_FILE for this client (its issuer and the registered subject)"
	}
	return "check AUTHPROXY_CLIENT_ID and AUTHPROXY_CLIENT_SECRET"
}
