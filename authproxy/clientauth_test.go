package authproxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authproxy/authproxy/providers"
)

// writeTestPEM writes one PEM block to a new file and returns its path.
func writeTestPEM(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func testPKCS8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// writeClientKey writes a new P-256 private key, PEM PKCS #8.
func writeClientKey(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writeTestPEM(t, "client-key.pem", "PRIVATE KEY", testPKCS8(t, key))
}

// writeClientCert writes a new self-signed client certificate and its key.
func writeClientCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authproxy"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return writeTestPEM(t, "client.crt", "CERTIFICATE", der), writeTestPEM(t, "client.key", "PRIVATE KEY", testPKCS8(t, key))
}

// TestLoadConfigClientAuth covers the client credentials that cannot work
// together, and keys authproxy cannot sign with, all refused at start with
// one line naming the variable.
func TestLoadConfigClientAuth(t *testing.T) {
	key := writeClientKey(t)
	cert, certKey := writeClientCert(t)
	_, otherCertKey := writeClientCert(t)
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	shortKey := writeTestPEM(t, "short.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(short))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	publicJWK, _ := json.Marshal(jose.JSONWebKey{Key: &ec.PublicKey})
	publicJWKFile := filepath.Join(t.TempDir(), "public.jwk")
	if err := os.WriteFile(publicJWKFile, publicJWK, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // each problem's start, in order; nil: valid
	}{
		{"a key", map[string]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": key}, nil},
		{"a certificate", map[string]string{"AUTHPROXY_CLIENT_TLS_CERT_FILE": cert, "AUTHPROXY_CLIENT_TLS_KEY_FILE": certKey}, nil},
		{"a secret and a key", map[string]string{"AUTHPROXY_CLIENT_SECRET": "s3cret", "AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": key},
			[]string{"AUTHPROXY_CLIENT_SECRET: not used with AUTHPROXY_CLIENT_PRIVATE_KEY_FILE (private_key_jwt): unset one of them"}},
		{"a secret and a certificate", map[string]string{"AUTHPROXY_CLIENT_SECRET": "s3cret", "AUTHPROXY_CLIENT_TLS_CERT_FILE": cert, "AUTHPROXY_CLIENT_TLS_KEY_FILE": certKey},
			[]string{"AUTHPROXY_CLIENT_SECRET: not used with AUTHPROXY_CLIENT_TLS_CERT_FILE (tls_client_auth)"}},
		{"a key and a certificate", map[string]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": key, "AUTHPROXY_CLIENT_TLS_CERT_FILE": cert, "AUTHPROXY_CLIENT_TLS_KEY_FILE": certKey},
			[]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE: set it or AUTHPROXY_CLIENT_TLS_CERT_FILE/_KEY_FILE, not both"}},
		{"a certificate without its key", map[string]string{"AUTHPROXY_CLIENT_TLS_CERT_FILE": cert},
			[]string{"AUTHPROXY_CLIENT_TLS_KEY_FILE: set both AUTHPROXY_CLIENT_TLS_CERT_FILE and AUTHPROXY_CLIENT_TLS_KEY_FILE, or neither"}},
		{"a certificate with another key", map[string]string{"AUTHPROXY_CLIENT_TLS_CERT_FILE": cert, "AUTHPROXY_CLIENT_TLS_KEY_FILE": otherCertKey},
			[]string{"AUTHPROXY_CLIENT_TLS_CERT_FILE: want a PEM certificate whose key is in the TLS key file"}},
		{"a certificate as the key", map[string]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": cert},
			[]string{`AUTHPROXY_CLIENT_PRIVATE_KEY_FILE: want a PEM private key, got a PEM "CERTIFICATE" block`}},
		{"a short RSA key", map[string]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": shortKey},
			[]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE: the RSA key has 1024 bits; want 2048 or more"}},
		{"a public JWK", map[string]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": publicJWKFile},
			[]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE: the JWK is a public key"}},
		{"github with a key", map[string]string{"AUTHPROXY_PROVIDER": "github", "AUTHPROXY_OIDC_ISSUER": "\x00unset", "AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": key},
			[]string{"AUTHPROXY_PROVIDER: github authenticates clients only with AUTHPROXY_CLIENT_SECRET"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadWith(tc.env)
			lines := errorLines(err)
			if len(lines) != len(tc.want) {
				t.Fatalf("error %q: want %d problems: %q", err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d is %q, want %q…", i+1, lines[i], w)
				}
			}
			if tc.want == nil {
				auth, err := clientAuth(&c.IdPConfig)
				if err != nil || auth == nil {
					t.Fatalf("clientAuth: %v, %v", auth, err)
				}
			}
		})
	}
}

// TestSignInClientRefused: when the IdP answers the code exchange with
// invalid_client (it refuses authproxy's own credentials), the callback
// answers a clean 403 page, not 500 and not the "IdP unavailable" 503 with
// Retry-After (the IdP works; retrying cannot help), sets no session, and
// logs one error line that names the variables to check.
func TestSignInClientRefused(t *testing.T) {
	op := newHostileOP(t)
	e := newHostileEnv(t, op, withHostileVar("AUTHPROXY_CLIENT_SECRET", "not-the-registered-secret"))
	c := e.browser()
	r := e.signIn(t, c)
	e.refused(t, c, r, http.StatusForbidden)
	if r.Header.Get("Retry-After") != "" || strings.Contains(r.Body, "unavailable") {
		t.Errorf("the page says the IdP is unavailable (Retry-After %q): %.300s", r.Header.Get("Retry-After"), r.Body)
	}
	if !strings.Contains(r.Body, "misconfigured") || strings.Contains(r.Body, "invalid_client") {
		t.Errorf("page: %.400s", r.Body)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"result":"client_refused"`) || !strings.Contains(logs, `"level":"ERROR"`) ||
		!strings.Contains(logs, "the IdP refused this client (invalid_client): check AUTHPROXY_CLIENT_ID and AUTHPROXY_CLIENT_SECRET") {
		t.Errorf("log does not say what to fix:\n%s", logs)
	}
}

// A provider's ConfigError names the variable of the IdP it is about: the
// partner's own, never the default IdP's.
func TestFieldErrorNamesTheIdPsVariable(t *testing.T) {
	for _, tc := range []struct {
		idp  *IdPConfig
		err  error
		want string
	}{
		{&IdPConfig{vars: defaultVars}, &providers.ConfigError{Field: "ClientAuth.PrivateKeyFile", Err: errors.New("needs a restart")},
			"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE: needs a restart"},
		{&IdPConfig{vars: idpVars("partners")}, &providers.ConfigError{Field: "ClientAuth.TLSCertFile", Err: errors.New("needs a restart")},
			"AUTHPROXY_IDP_PARTNERS_CLIENT_TLS_CERT_FILE: needs a restart"},
		{&IdPConfig{vars: idpVars("partners")}, errors.New("no such file"), "AUTHPROXY_IDP_PARTNERS_CLIENT_PRIVATE_KEY_FILE: no such file"},
	} {
		if got := tc.idp.fieldError(tc.err, "CLIENT_PRIVATE_KEY_FILE").Error(); got != tc.want {
			t.Errorf("fieldError(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
