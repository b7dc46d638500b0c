package providers

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// writeTestFile writes data to a new file in a test directory and returns its path.
func writeTestFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func testRSAKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

// assertionIdP is a testIdP whose token endpoint authenticates the client
// by private_key_jwt, verifying each assertion with go-jose against pub,
// as OpenID Connect Core 1.0 section 9 and RFC 7523 section 3 ask. It
// records every assertion's claims and header.
type assertionIdP struct {
	*testIdP
	pub     crypto.PublicKey
	alg     jose.SignatureAlgorithm
	claims  []jwt.Claims
	headers []jose.Header
	errs    []string // why an assertion was refused
}

func newAssertionIdP(t *testing.T, pub crypto.PublicKey, alg jose.SignatureAlgorithm) *assertionIdP {
	t.Helper()
	a := &assertionIdP{testIdP: newTestIdP(t, ""), pub: pub, alg: alg}
	a.set(func(f *testIdP) {
		f.discovery = func(doc map[string]any) {
			doc["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "private_key_jwt"}
			doc["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS256", "ES256", "ES384"}
		}
		f.authClient = a.verify
	})
	return a
}

// verify runs with the testIdP locked.
func (a *assertionIdP) verify(r *http.Request) bool {
	refuse := func(why string) bool { a.errs = append(a.errs, why); return false }
	form := r.PostForm
	if _, _, basic := r.BasicAuth(); basic || form.Has("client_secret") {
		return refuse("a client secret was sent beside the assertion")
	}
	if got := form.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return refuse("client_assertion_type " + got)
	}
	if form.Get("client_id") != a.clientID {
		return refuse("client_id " + form.Get("client_id"))
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{a.alg})
	if err != nil {
		return refuse("parsing: " + err.Error())
	}
	var c jwt.Claims
	if err := tok.Claims(a.pub, &c); err != nil {
		return refuse("signature: " + err.Error())
	}
	a.claims = append(a.claims, c)
	a.headers = append(a.headers, tok.Headers[0])
	err = c.ValidateWithLeeway(jwt.Expected{
		Issuer: a.clientID, Subject: a.clientID, AnyAudience: jwt.Audience{a.srv.URL + "/token"}, Time: time.Now(),
	}, 0)
	if err != nil {
		return refuse("claims: " + err.Error())
	}
	if c.ID == "" || c.IssuedAt == nil || c.Expiry == nil {
		return refuse("no jti, iat or exp")
	}
	return true
}

// signInAndRefresh runs a code exchange, a refresh and another exchange.
func signInAndRefresh(t *testing.T, f *testIdP, p *OIDC) error {
	t.Helper()
	for _, step := range []string{"exchange", "refresh", "exchange"} {
		var err error
		if step == "refresh" {
			_, err = p.Refresh(t.Context(), "rt-good")
		} else {
			u, _ := p.AuthCodeURL("state-123456789", "nonce-1", "verifier-0123456789-0123456789-0123456789")
			_, err = p.Exchange(t.Context(), f.code(t, u), "verifier-0123456789-0123456789-0123456789", "nonce-1")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func TestPrivateKeyJWT(t *testing.T) {
	rsaKey, ecKey, ec384 := testRSAKey(t, 2048), testECKey(t), func() *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		return k
	}()
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: ecKey, KeyID: "from-jwk"})
	for _, tc := range []struct {
		name    string
		file    []byte
		keyID   string
		pub     crypto.PublicKey
		alg     jose.SignatureAlgorithm
		wantKID string // "" means the RFC 7638 thumbprint
	}{
		{"RSA PKCS #8", pkcs8(t, rsaKey), "", &rsaKey.PublicKey, jose.RS256, ""},
		{"RSA PKCS #1 with a kid", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "key-2026", &rsaKey.PublicKey, jose.RS256, "key-2026"},
		{"EC P-256 SEC 1", pemBlock("EC PRIVATE KEY", sec1), "", &ecKey.PublicKey, jose.ES256, ""},
		{"EC P-384 PKCS #8", pkcs8(t, ec384), "", &ec384.PublicKey, jose.ES384, ""},
		{"private JWK with its kid", jwk, "", &ecKey.PublicKey, jose.ES256, "from-jwk"},
		{"private JWK, kid from the variable", jwk, "override", &ecKey.PublicKey, jose.ES256, "override"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp := newAssertionIdP(t, tc.pub, tc.alg)
			auth, err := NewClientAuth(ClientAuthConfig{ClientID: idp.clientID, PrivateKeyFile: writeTestFile(t, "key", tc.file), KeyID: tc.keyID})
			if err != nil {
				t.Fatal(err)
			}
			p := idp.provider(t, func(c *OIDCConfig) { c.ClientAuth = auth })
			if err := signInAndRefresh(t, idp.testIdP, p); err != nil {
				t.Fatalf("sign-in and refresh: %v (IdP: %v)", err, idp.errs)
			}
			idp.set(func(*testIdP) {
				if len(idp.claims) != 3 {
					t.Fatalf("IdP saw %d assertions, want 3 (exchange, refresh, exchange)", len(idp.claims))
				}
				var jtis []string
				for i, c := range idp.claims {
					jtis = append(jtis, c.ID)
					if lifetime := c.Expiry.Time().Sub(c.IssuedAt.Time()); lifetime != AssertionLifetime {
						t.Errorf("assertion %d lives %v, want %v", i, lifetime, AssertionLifetime)
					}
					h := idp.headers[i]
					want := tc.wantKID
					if want == "" {
						pub := jose.JSONWebKey{Key: tc.pub}
						tp, err := pub.Thumbprint(crypto.SHA256)
						if err != nil {
							t.Fatal(err)
						}
						want = base64.RawURLEncoding.EncodeToString(tp)
					}
					if h.KeyID != want || h.Algorithm != string(tc.alg) {
						t.Errorf("assertion %d header kid %q alg %q, want %q %q", i, h.KeyID, h.Algorithm, want, tc.alg)
					}
				}
				slices.Sort(jtis)
				if len(slices.Compact(jtis)) != 3 {
					t.Errorf("jti values repeat across calls: %q", jtis)
				}
			})
			// The JWKS printed for registration verifies the assertions.
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(auth.PublicJWKS(), &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].KeyID != auth.KeyID() {
				t.Fatalf("PublicJWKS %s: %v", auth.PublicJWKS(), err)
			}
		})
	}
}

func TestPrivateKeyJWTAudienceIsIssuer(t *testing.T) {
	key := testECKey(t)
	idp := newAssertionIdP(t, &key.PublicKey, jose.ES256)
	auth, err := NewClientAuth(ClientAuthConfig{ClientID: idp.clientID, PrivateKeyFile: writeTestFile(t, "key.pem", pkcs8(t, key))})
	if err != nil {
		t.Fatal(err)
	}
	p := idp.provider(t, func(c *OIDCConfig) { c.ClientAuth = auth; c.Hooks.AssertionAudienceIsIssuer = true })
	u, _ := p.AuthCodeURL("state-123456789", "nonce-1", "verifier-0123456789-0123456789-0123456789")
	_, err = p.Exchange(t.Context(), idp.code(t, u), "verifier-0123456789-0123456789-0123456789", "nonce-1")
	if !errors.Is(err, ErrClientRefused) {
		t.Fatalf("the test IdP wants the token endpoint as aud; got %v", err)
	}
	idp.set(func(*testIdP) {
		if len(idp.claims) != 1 || !slices.Equal([]string(idp.claims[0].Audience), []string{idp.srv.URL}) {
			t.Errorf("audience %v, want exactly the issuer %s", idp.claims, idp.srv.URL)
		}
	})
}

func TestPrivateKeyJWTWrongKeyIsClientRefused(t *testing.T) {
	registered, used := testECKey(t), testECKey(t)
	idp := newAssertionIdP(t, &registered.PublicKey, jose.ES256)
	auth, err := NewClientAuth(ClientAuthConfig{ClientID: idp.clientID, PrivateKeyFile: writeTestFile(t, "key.pem", pkcs8(t, used))})
	if err != nil {
		t.Fatal(err)
	}
	p := idp.provider(t, func(c *OIDCConfig) { c.ClientAuth = auth })
	for _, step := range []string{"exchange", "refresh"} {
		var err error
		if step == "refresh" {
			_, err = p.Refresh(t.Context(), "rt-good")
		} else {
			u, _ := p.AuthCodeURL("state-123456789", "nonce-1", "verifier-0123456789-0123456789-0123456789")
			_, err = p.Exchange(t.Context(), idp.code(t, u), "verifier-0123456789-0123456789-0123456789", "nonce-1")
		}
		if !errors.Is(err, ErrClientRefused) || errors.Is(err, ErrRejected) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s with an unregistered key: %v; want ErrClientRefused alone", step, err)
		}
		if !strings.Contains(err.Error(), "AUTHPROXY_CLIENT_PRIVATE_KEY_FILE") {
			t.Errorf("%s: %q does not name the variable to fix", step, err)
		}
	}
}

func TestClientAuthDiscoveryMismatch(t *testing.T) {
	ecKey, rsaKey := testECKey(t), testRSAKey(t, 2048)
	ecAuth, err := NewClientAuth(ClientAuthConfig{ClientID: "client-1", PrivateKeyFile: writeTestFile(t, "ec.pem", pkcs8(t, ecKey))})
	if err != nil {
		t.Fatal(err)
	}
	rsaAuth, err := NewClientAuth(ClientAuthConfig{ClientID: "client-1", PrivateKeyFile: writeTestFile(t, "rsa.pem", pkcs8(t, rsaKey))})
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	certFile, keyFile := ca.clientCert(t, "authproxy")
	tlsAuth, err := NewClientAuth(ClientAuthConfig{ClientID: "client-1", TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		auth    *ClientAuth
		methods []string // nil: absent from discovery
		algs    []string
		want    string
	}{
		{"key, IdP lists secrets only", ecAuth, []string{"client_secret_basic", "client_secret_post"}, nil,
			"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE is set, but the IdP's token_endpoint_auth_methods_supported lists client_secret_basic, client_secret_post, not private_key_jwt"},
		{"key, IdP lists nothing", ecAuth, nil, nil, "lists nothing, which means client_secret_basic only, not private_key_jwt"},
		{"EC key, IdP signs RS256 only", ecAuth, []string{"private_key_jwt"}, []string{"RS256"},
			"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE: the key signs with ES256, but the IdP's token_endpoint_auth_signing_alg_values_supported lists RS256"},
		{"RSA key, IdP signs ES256 only", rsaAuth, []string{"private_key_jwt"}, []string{"ES256", "PS256"}, "the key signs with RS256"},
		{"certificate, IdP lists private_key_jwt only", tlsAuth, []string{"private_key_jwt"}, nil,
			"AUTHPROXY_CLIENT_TLS_CERT_FILE is set, but the IdP's token_endpoint_auth_methods_supported lists private_key_jwt, not tls_client_auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "")
			f.set(func(f *testIdP) {
				f.discovery = func(doc map[string]any) {
					if tc.methods != nil {
						doc["token_endpoint_auth_methods_supported"] = tc.methods
					}
					if tc.algs != nil {
						doc["token_endpoint_auth_signing_alg_values_supported"] = tc.algs
					}
				}
			})
			p := NewOIDC(OIDCConfig{IssuerURL: f.srv.URL, ClientID: "client-1", ClientAuth: tc.auth, Scopes: []string{"openid"}})
			err := p.Discover(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Discover: %v\nwant it to say %q", err, tc.want)
			}
			if ready := p.Ready(); !errors.Is(ready, ErrUnavailable) || ready.Error() != err.Error() {
				t.Errorf("Ready: %v; want the discovery error as the not-ready reason", ready)
			}
			if _, err := p.AuthCodeURL("state-123456789", "n", "v"); err == nil {
				t.Error("AuthCodeURL works with a client authentication the IdP does not support")
			}
		})
	}
}

// testCA is a certificate authority made in the test, for mutual TLS.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key := testECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authproxy test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// clientCert issues a client certificate for cn and writes it and its key
// to PEM files.
func (ca *testCA) clientCert(t *testing.T, cn string) (certFile, keyFile string) {
	t.Helper()
	key := testECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return writeTestFile(t, "client.crt", pemBlock("CERTIFICATE", der)), writeTestFile(t, "client.key", pkcs8(t, key))
}

func TestTLSClientAuth(t *testing.T) {
	ca := newTestCA(t)
	f := newTestIdPServer(t, "", func(s *httptest.Server) {
		// As a real IdP: the certificate is asked for, verified if given.
		s.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.pool}
		s.StartTLS()
	})
	var seen []string
	f.set(func(f *testIdP) {
		f.discovery = func(doc map[string]any) {
			doc["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt", "tls_client_auth"}
			doc["mtls_endpoint_aliases"] = map[string]string{"token_endpoint": f.srv.URL + "/mtls/token"}
		}
		f.authClient = func(r *http.Request) bool {
			subject := "none"
			if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
				subject = r.TLS.VerifiedChains[0][0].Subject.CommonName
			}
			seen = append(seen, r.URL.Path+" "+subject)
			_, _, basic := r.BasicAuth()
			return subject == "authproxy" && !basic && r.PostForm.Get("client_id") == f.clientID &&
				!r.PostForm.Has("client_secret") && !r.PostForm.Has("client_assertion")
		}
	})
	for _, tc := range []struct {
		name, cn string
		wrapped  bool // with a WrapTransport, as tracing adds
		wantErr  bool
	}{
		{"the registered certificate", "authproxy", false, false},
		{"the registered certificate, the transport wrapped", "authproxy", true, false},
		{"another certificate of the CA", "someone-else", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certFile, keyFile := ca.clientCert(t, tc.cn)
			auth, err := NewClientAuth(ClientAuthConfig{ClientID: f.clientID, TLSCertFile: certFile, TLSKeyFile: keyFile})
			if err != nil {
				t.Fatal(err)
			}
			f.set(func(*testIdP) { seen = nil })
			var wrapped atomic.Int32
			p := f.provider(t, func(c *OIDCConfig) {
				c.ClientAuth = auth
				c.HTTPClient = f.srv.Client()
				if tc.wrapped {
					c.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
						return roundTripFunc(func(r *http.Request) (*http.Response, error) {
							wrapped.Add(1)
							return next.RoundTrip(r)
						})
					}
				}
			})
			err = signInAndRefresh(t, f, p)
			if tc.wantErr {
				if !errors.Is(err, ErrClientRefused) || !strings.Contains(err.Error(), "AUTHPROXY_CLIENT_TLS_CERT_FILE") {
					t.Fatalf("got %v; want ErrClientRefused naming AUTHPROXY_CLIENT_TLS_CERT_FILE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wrapped && wrapped.Load() == 0 {
				t.Error("the wrapping transport saw no request")
			}
			f.set(func(*testIdP) {
				want := []string{"/mtls/token authproxy", "/mtls/token authproxy", "/mtls/token authproxy"}
				if !slices.Equal(seen, want) {
					t.Errorf("token requests %q, want %q: every one at the mtls_endpoint_aliases token endpoint with the certificate", seen, want)
				}
			})
		})
	}
}

func TestParseClientKeyRefuses(t *testing.T) {
	ecKey := testECKey(t)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224der, _ := x509.MarshalECPrivateKey(p224)
	public, _ := json.Marshal(jose.JSONWebKey{Key: &ecKey.PublicKey})
	wrongAlg, _ := json.Marshal(jose.JSONWebKey{Key: ecKey, Algorithm: "RS256"})
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"garbage", []byte("not a key"), "want a PEM private key"},
		{"certificate", pemBlock("CERTIFICATE", []byte{1}), `got a PEM "CERTIFICATE" block`},
		{"encrypted PKCS #8", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), "encrypted"},
		{"short RSA", pkcs8(t, testRSAKey(t, 1024)), "1024 bits; want 2048 or more"},
		{"P-224", pemBlock("EC PRIVATE KEY", p224der), "not P-256, P-384 or P-521"},
		{"public JWK", public, "public key"},
		{"JWK with another alg", wrongAlg, "the JWK says alg RS256, but its key signs with ES256"},
		{"broken PKCS #8", pemBlock("PRIVATE KEY", []byte{1, 2, 3}), "reading the PEM PRIVATE KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseClientKey(tc.raw); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseClientKey: %v; want %q", err, tc.want)
			}
		})
	}
}

func TestNewClientAuthRefuses(t *testing.T) {
	key := writeTestFile(t, "key.pem", pkcs8(t, testECKey(t)))
	for _, tc := range []struct {
		name string
		cfg  ClientAuthConfig
		want string
	}{
		{"key and certificate", ClientAuthConfig{ClientID: "c", PrivateKeyFile: key, TLSCertFile: key, TLSKeyFile: key}, "ClientAuth.PrivateKeyFile: set a private key or a TLS certificate, not both"},
		{"certificate without key", ClientAuthConfig{ClientID: "c", TLSCertFile: key}, "ClientAuth.TLSKeyFile: set both"},
		{"key is no certificate", ClientAuthConfig{ClientID: "c", TLSCertFile: key, TLSKeyFile: key}, "ClientAuth.TLSCertFile: want a PEM certificate"},
		{"missing key file", ClientAuthConfig{ClientID: "c", PrivateKeyFile: key + ".gone"}, "ClientAuth.PrivateKeyFile: open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewClientAuth(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewClientAuth: %v; want %q", err, tc.want)
			}
		})
	}
	if a, err := NewClientAuth(ClientAuthConfig{ClientID: "c"}); a != nil || err != nil {
		t.Errorf("no files: %v, %v; want nil, nil", a, err)
	}
}

// TestSetClientAuth: a provider given a new key (a rotated key file) signs
// the next token request with it; another method or an algorithm the IdP
// does not list is refused and the old key kept.
func TestSetClientAuth(t *testing.T) {
	oldKey, newKey := testECKey(t), testECKey(t)
	idp := newAssertionIdP(t, &newKey.PublicKey, jose.ES256) // the IdP has the new key only
	authFor := func(cfg ClientAuthConfig) *ClientAuth {
		t.Helper()
		cfg.ClientID = idp.clientID
		a, err := NewClientAuth(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	oldAuth := authFor(ClientAuthConfig{PrivateKeyFile: writeTestFile(t, "old.pem", pkcs8(t, oldKey))})
	p := idp.provider(t, func(c *OIDCConfig) { c.ClientAuth = oldAuth })
	exchange := func() error {
		u, _ := p.AuthCodeURL("state-123456789", "nonce-1", "verifier-0123456789-0123456789-0123456789")
		_, err := p.Exchange(t.Context(), idp.code(t, u), "verifier-0123456789-0123456789-0123456789", "nonce-1")
		return err
	}
	if err := exchange(); !errors.Is(err, ErrClientRefused) {
		t.Fatalf("with the old key: %v, want ErrClientRefused", err)
	}

	ca := newTestCA(t)
	certFile, keyFile := ca.clientCert(t, "authproxy")
	for _, tc := range []struct {
		name string
		auth *ClientAuth
		want string
	}{
		{"nil", nil, "needs a restart"},
		{"a certificate", authFor(ClientAuthConfig{TLSCertFile: certFile, TLSKeyFile: keyFile}), "switching from private_key_jwt to tls_client_auth needs a restart"},
	} {
		if err := p.SetClientAuth(tc.auth); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: SetClientAuth = %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := exchange(); !errors.Is(err, ErrClientRefused) {
		t.Fatalf("after refused replacements: %v, want the old key still in use", err)
	}
	if err := p.SetClientAuth(authFor(ClientAuthConfig{PrivateKeyFile: writeTestFile(t, "new.pem", pkcs8(t, newKey))})); err != nil {
		t.Fatal(err)
	}
	if err := exchange(); err != nil {
		t.Fatalf("with the new key: %v (IdP: %v)", err, idp.errs)
	}
}

func TestSetClientAuthRefusesUnlistedAlgorithm(t *testing.T) {
	ecKey := testECKey(t)
	f := newTestIdP(t, "")
	f.set(func(f *testIdP) {
		f.discovery = func(doc map[string]any) {
			doc["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"}
			doc["token_endpoint_auth_signing_alg_values_supported"] = []string{"ES256"}
		}
	})
	ecAuth, err := NewClientAuth(ClientAuthConfig{ClientID: f.clientID, PrivateKeyFile: writeTestFile(t, "ec.pem", pkcs8(t, ecKey))})
	if err != nil {
		t.Fatal(err)
	}
	rsaAuth, err := NewClientAuth(ClientAuthConfig{ClientID: f.clientID, PrivateKeyFile: writeTestFile(t, "rsa.pem", pkcs8(t, testRSAKey(t, 2048)))})
	if err != nil {
		t.Fatal(err)
	}
	p := f.provider(t, func(c *OIDCConfig) { c.ClientAuth = ecAuth })
	// A ConfigError naming the field: the caller names its own variable
	// (an IdP other than the default has its own).
	var ce *ConfigError
	err = p.SetClientAuth(rsaAuth)
	if !errors.As(err, &ce) || ce.Field != "ClientAuth.PrivateKeyFile" || !strings.Contains(ce.Err.Error(), "the new key signs with RS256, but the IdP's token_endpoint_auth_signing_alg_values_supported lists ES256") {
		t.Fatalf("SetClientAuth(RSA) = %v, want a ConfigError for ClientAuth.PrivateKeyFile", err)
	}
}

// roundTripFunc is an http.RoundTripper of one function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
