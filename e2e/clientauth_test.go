package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	jose "github.com/go-jose/go-jose/v4"
)

// This file signs in through authproxy at the real oidc-provider with client authentication that
// needs no shared secret: private_key_jwt (a client registered with its public JWKS) and RFC 8705
// tls_client_auth (a client registered by its certificate's subject, the token endpoint an https
// mtls_endpoint_aliases listener of oidc-provider that asks for client certificates, with a test
// CA made here). Browsers use the plain http issuer, as RFC 8705 section 5's aliases intend.

// writeE2EPEM writes one PEM block to dir/name and returns the path.
func writeE2EPEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newE2EKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeE2EKey writes key as PEM PKCS #8 and returns the path.
func writeE2EKey(t *testing.T, dir, name string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writeE2EPEM(t, dir, name, "PRIVATE KEY", der)
}

// e2eCA is a certificate authority made in the test.
type e2eCA struct {
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pemCA  string // path of its certificate
	serial int64
}

func newE2ECA(t *testing.T, name string) *e2eCA {
	t.Helper()
	ca := &e2eCA{dir: t.TempDir(), key: newE2EKey(t), serial: 1}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	ca.cert, _ = x509.ParseCertificate(der)
	ca.pemCA = writeE2EPEM(t, ca.dir, "ca.crt", "CERTIFICATE", der)
	return ca
}

// issue makes a certificate for cn: a server certificate for 127.0.0.1, or a client certificate.
func (ca *e2eCA) issue(t *testing.T, cn string, server bool) (certFile, keyFile string) {
	t.Helper()
	ca.serial++
	key := newE2EKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ReplaceAll(cn, " ", "-")
	return writeE2EPEM(t, ca.dir, name+".crt", "CERTIFICATE", der), writeE2EKey(t, ca.dir, name+".key", key)
}

// publicJWKS is the JWKS of key's public half, as an operator registers it at the IdP.
func publicJWKS(t *testing.T, key *ecdsa.PrivateKey, kid string) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// signInRefreshAndCheck signs in as ada through s, checks the app's view, and waits for one
// refresh at oidc-provider (62-second tokens are within the one-minute margin after 2 s).
func signInRefreshAndCheck(t *testing.T, s *opStack) {
	t.Helper()
	tab := newBrowser(t)
	run(t, tab, "open a protected page", chromedp.Navigate(s.proxyURL+"/reports"))
	s.op.signIn(t, tab, opAda)
	run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
	var w whoami
	opBrowseJSON(t, tab, s.proxyURL+"/api/whoami", &w)
	if w.User != opAda.login || w.Email != opAda.email {
		t.Fatalf("after signing in: user %q email %q, want %q %q", w.User, w.Email, opAda.login, opAda.email)
	}
	before := proxyMetric(t, s.proxyURL, "authproxy_refreshes_total", "result", "ok")
	time.Sleep(3 * time.Second)
	opBrowseJSON(t, tab, s.proxyURL+"/api/whoami", &w)
	if w.User != opAda.login {
		t.Errorf("after the refresh: user %q", w.User)
	}
	if after := proxyMetric(t, s.proxyURL, "authproxy_refreshes_total", "result", "ok"); after != before+1 {
		t.Errorf("refreshes ok: %v before, %v after; want one refresh accepted by oidc-provider\noidc-provider log:\n%s", before, after, s.op.log(t))
	}
}

// signInRefused signs in as ada through s, whose client authentication oidc-provider refuses,
// and checks the page, the metric and authproxy's log line naming variable.
func signInRefused(t *testing.T, s *opStack, variable string) {
	t.Helper()
	tab := newBrowser(t)
	run(t, tab, "open a protected page", chromedp.Navigate(s.proxyURL+"/reports"))
	s.op.signIn(t, tab, opAda)
	var title, text string
	run(t, tab, "read the callback's page",
		chromedp.WaitVisible("body", chromedp.ByQuery),
		chromedp.Title(&title),
		chromedp.Evaluate(`document.body.innerText`, &text),
	)
	if title == "" || !strings.Contains(title+text, "Sign-in is misconfigured") || strings.Contains(text, "invalid_client") {
		t.Errorf("callback page %q: %.400s\nwant the clean \"Sign-in is misconfigured\" page", title, text)
	}
	if n := proxyMetric(t, s.proxyURL, "authproxy_sign_ins_total", "result", "client_refused"); n != 1 {
		t.Errorf("authproxy_sign_ins_total{result=client_refused} = %v, want 1", n)
	}
	log, err := os.ReadFile(s.proxyLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "path=/oauth2/callback status=403 ") || strings.Contains(string(log), "status=500") {
		t.Errorf("authproxy's log does not show the callback's 403 (or shows a 500):\n%s", log)
	}
	if !strings.Contains(string(log), "result=client_refused") || !strings.Contains(string(log), "the IdP refused this client (invalid_client): check AUTHPROXY_CLIENT_ID, and") ||
		!strings.Contains(string(log), variable) {
		t.Errorf("authproxy's log does not say what to fix (%s):\n%s", variable, log)
	}
	if !strings.Contains(s.op.log(t), "invalid_client") {
		t.Errorf("oidc-provider did not refuse the client:\n%s", s.op.log(t))
	}
}

// runCheck runs `authproxy check` for the proxy of s with env added, and returns its output and
// whether it passed.
func runCheck(t *testing.T, s *opStack, env ...string) (string, bool) {
	t.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	cmd := exec.Command(filepath.Join(stack.dir, "authproxy"), "check")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHPROXY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"AUTHPROXY_UPSTREAM="+stack.appURL, "AUTHPROXY_OIDC_ISSUER="+s.op.issuer, "AUTHPROXY_CLIENT_ID="+s.op.opts.ClientID,
		"AUTHPROXY_REDIRECT_URL="+s.callbackURL(), "AUTHPROXY_COOKIE_SECURE=false",
		"AUTHPROXY_COOKIE_SECRET="+base64.StdEncoding.EncodeToString(secret))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func TestOIDCProviderPrivateKeyJWT(t *testing.T) {
	dir := t.TempDir()
	registered := newE2EKey(t)
	keyFile := writeE2EKey(t, dir, "client.pem", registered)
	const kid = "authproxy-e2e-1"
	opts := func() opOptions {
		return opOptions{Public: true, SkipConsent: true, AccessTokenTTL: 62 * time.Second, IDTokenTTL: 62 * time.Second,
			ExtraEnv: []string{"OP_CLIENT_AUTH=private_key_jwt", "OP_CLIENT_JWKS=" + publicJWKS(t, registered, kid)}}
	}

	t.Run("sign-in-and-refresh", func(t *testing.T) {
		s := startOPStack(t, opts(), "AUTHPROXY_CLIENT_PRIVATE_KEY_FILE="+keyFile, "AUTHPROXY_CLIENT_PRIVATE_KEY_ID="+kid)
		signInRefreshAndCheck(t, s)

		out, ok := runCheck(t, s, "AUTHPROXY_CLIENT_PRIVATE_KEY_FILE="+keyFile, "AUTHPROXY_CLIENT_PRIVATE_KEY_ID="+kid)
		if !ok || !strings.Contains(out, `token endpoint authentication private_key_jwt, ES256, kid "`+kid+`"`) ||
			!strings.Contains(out, `the public JWKS to register at the IdP for client authproxy-op: {"keys":[{"use":"sig","kty":"EC","kid":"`+kid+`"`) {
			t.Errorf("authproxy check:\n%s", out)
		}
		// A TLS client certificate, which this oidc-provider (no mutual TLS) does not list: the
		// check fails with one line naming the variable.
		certFile, certKey := newE2ECA(t, "other CA").issue(t, "authproxy-op", false)
		out, ok = runCheck(t, s, "AUTHPROXY_CLIENT_TLS_CERT_FILE="+certFile, "AUTHPROXY_CLIENT_TLS_KEY_FILE="+certKey)
		if ok || !strings.Contains(out, "\nFAIL  AUTHPROXY_CLIENT_TLS_CERT_FILE is set, but the IdP's token_endpoint_auth_methods_supported lists ") {
			t.Errorf("authproxy check with a certificate the IdP does not take (passed %t):\n%s", ok, out)
		}
	})

	t.Run("wrong-key", func(t *testing.T) {
		wrongFile := writeE2EKey(t, t.TempDir(), "wrong.pem", newE2EKey(t))
		s := startOPStack(t, opts(), "AUTHPROXY_CLIENT_PRIVATE_KEY_FILE="+wrongFile, "AUTHPROXY_CLIENT_PRIVATE_KEY_ID="+kid)
		signInRefused(t, s, "AUTHPROXY_CLIENT_PRIVATE_KEY_FILE")
	})
}

func TestOIDCProviderTLSClientAuth(t *testing.T) {
	ca := newE2ECA(t, "authproxy e2e CA")
	serverCert, serverKey := ca.issue(t, "oidc-provider", true)
	clientCert, clientKey := ca.issue(t, "authproxy-op", false)
	opts := func() opOptions {
		ports, err := freePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := strings.Cut(ports[0], ":")
		return opOptions{Public: true, SkipConsent: true, AccessTokenTTL: 62 * time.Second, IDTokenTTL: 62 * time.Second,
			ExtraEnv: []string{"OP_CLIENT_AUTH=tls_client_auth", "OP_CLIENT_TLS_SUBJECT_DN=CN=authproxy-op",
				"OP_MTLS_PORT=" + port, "OP_MTLS_CERT=" + serverCert, "OP_MTLS_KEY=" + serverKey, "OP_MTLS_CA=" + ca.pemCA}}
	}

	t.Run("sign-in-and-refresh", func(t *testing.T) {
		o := opts()
		env := []string{"AUTHPROXY_CLIENT_TLS_CERT_FILE=" + clientCert, "AUTHPROXY_CLIENT_TLS_KEY_FILE=" + clientKey, "SSL_CERT_FILE=" + ca.pemCA}
		s := startOPStack(t, o, env...)
		signInRefreshAndCheck(t, s)

		// Both token requests (code, refresh) went to the alias, with the certificate, and only they.
		var tokenLines []string
		for line := range strings.Lines(s.op.log(t)) {
			if strings.Contains(line, " mtls ") || strings.Contains(line, "POST /token") {
				tokenLines = append(tokenLines, line)
			}
		}
		good := len(tokenLines) == 2
		for _, line := range tokenLines {
			good = good && strings.Contains(line, " POST /token 200 ") && strings.HasSuffix(line, "ms mtls authproxy-op\n")
		}
		if !good {
			t.Errorf("oidc-provider's token requests: %q; want two, both on the mutual TLS listener with the client certificate", tokenLines)
		}

		out, ok := runCheck(t, s, env...)
		alias := "https://127.0.0.1:" + strings.TrimPrefix(o.ExtraEnv[2], "OP_MTLS_PORT=") + "/token"
		if !ok || !strings.Contains(out, `token endpoint authentication tls_client_auth, certificate "CN=authproxy-op" issued by "CN=authproxy e2e CA"`) ||
			!strings.Contains(out, "at the mutual TLS alias "+alias) {
			t.Errorf("authproxy check:\n%s", out)
		}
	})

	t.Run("certificate-of-another-CA", func(t *testing.T) {
		// Same subject, but the CA is not the one oidc-provider trusts.
		otherCert, otherKey := newE2ECA(t, "another CA").issue(t, "authproxy-op", false)
		s := startOPStack(t, opts(), "AUTHPROXY_CLIENT_TLS_CERT_FILE="+otherCert, "AUTHPROXY_CLIENT_TLS_KEY_FILE="+otherKey, "SSL_CERT_FILE="+ca.pemCA)
		signInRefused(t, s, "AUTHPROXY_CLIENT_TLS_CERT_FILE")
	})
}

// TestOIDCProviderClientAuthNotListed: a TLS client certificate configured for an oidc-provider
// that does not offer mutual TLS. authproxy starts (the configuration is valid), but stays not
// ready: /readyz answers 503 and the log says which variable does not fit the IdP.
func TestOIDCProviderClientAuthNotListed(t *testing.T) {
	procs := opProcs(t)
	op := startOIDCProviderIn(t, procs, opOptions{ClientID: "authproxy-op", ClientSecret: "op-secret", RedirectURIs: []string{"http://127.0.0.1:1/oauth2/callback"}})
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := newE2ECA(t, "a CA").issue(t, "authproxy-op", false)
	secret := make([]byte, 32)
	rand.Read(secret)
	proxy, err := procs.start("authproxy-not-listed", []string{
		"AUTHPROXY_LISTEN=" + ports[0], "AUTHPROXY_UPSTREAM=" + stack.appURL, "AUTHPROXY_OIDC_ISSUER=" + op.issuer,
		"AUTHPROXY_CLIENT_ID=authproxy-op", "AUTHPROXY_REDIRECT_URL=http://" + ports[0] + "/oauth2/callback",
		"AUTHPROXY_COOKIE_SECRET=" + base64.StdEncoding.EncodeToString(secret), "AUTHPROXY_COOKIE_SECURE=false",
		"AUTHPROXY_LOG_FORMAT=text", "AUTHPROXY_CLIENT_TLS_CERT_FILE=" + certFile, "AUTHPROXY_CLIENT_TLS_KEY_FILE=" + keyFile,
	}, filepath.Join(stack.dir, "authproxy"))
	if err != nil {
		t.Fatal(err)
	}
	const why = "AUTHPROXY_CLIENT_TLS_CERT_FILE is set, but the IdP's token_endpoint_auth_methods_supported lists client_secret_basic, client_secret_jwt, client_secret_post, private_key_jwt, none, not tls_client_auth"
	deadline := time.Now().Add(15 * time.Second)
	for {
		status := 0
		if resp, err := http.Get("http://" + ports[0] + "/readyz"); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		log, _ := os.ReadFile(proxy.logPath)
		if status == http.StatusServiceUnavailable && strings.Contains(string(log), `msg="not ready: identity provider"`) && strings.Contains(string(log), why) {
			break
		}
		if status == http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("/readyz %d; want 503 and the log to say %q:\n%s", status, why, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
