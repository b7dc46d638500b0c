package providers

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// maxTokenRequestBytes bounds the form of a token request read back to add
// the client assertion; x/oauth2's are a few hundred bytes.
const maxTokenRequestBytes = 64 << 10

// tokenContext returns ctx carrying the HTTP client for one call to the
// token endpoint: with private_key_jwt it adds a fresh client assertion to
// the request's form; otherwise it is the provider's client (which, with a
// TLS client certificate, presents it).
func (p *OIDC) tokenContext(ctx context.Context, d *discovered) context.Context {
	if d.auth.method != MethodPrivateKeyJWT {
		return oidc.ClientContext(ctx, p.client)
	}
	c := *p.client
	c.Transport = &assertionTransport{base: p.client.Transport, auth: p.auth.Load(), aud: d.auth.aud}
	return oidc.ClientContext(ctx, &c)
}

// assertionTransport adds client_assertion_type and a client_assertion made
// for this request to every form POST it carries: x/oauth2's code exchange
// and refresh. Each request, retried or not, gets its own jti.
type assertionTransport struct {
	base http.RoundTripper
	auth *ClientAuth
	aud  string
}

func (t *assertionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.Body == nil {
		return t.base.RoundTrip(req)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxTokenRequestBytes+1))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("providers: reading the token request: %w", err)
	}
	if len(body) > maxTokenRequestBytes {
		return nil, fmt.Errorf("providers: token request larger than %d bytes", maxTokenRequestBytes)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("providers: token request form: %w", err)
	}
	assertion, err := t.auth.assertion(t.aud)
	if err != nil {
		return nil, err
	}
	form.Del("client_secret")
	form.Set("client_assertion_type", clientAssertionType)
	form.Set("client_assertion", assertion)
	enc := form.Encode()
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(strings.NewReader(enc))
	out.ContentLength = int64(len(enc))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
	out.Header.Del("Authorization")
	return t.base.RoundTrip(out)
}

// withClientCertificate returns c presenting the TLS client certificate
// cert returns to every server that asks for one: c's *http.Transport (or,
// when nil, a clone of http.DefaultTransport) with GetClientCertificate set.
// A transport of another type is kept as it is: whoever built it must have
// put the certificate in (see OIDCConfig.ClientAuth).
func withClientCertificate(c *http.Client, cert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) *http.Client {
	var tr *http.Transport
	switch base := c.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = base.Clone()
	default:
		return c
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.GetClientCertificate = cert
	cp := *c
	cp.Transport = tr
	return &cp
}

// field is the ClientAuthConfig field, as a ConfigError names it, of the
// file that chose a's method.
func (a *ClientAuth) field() string {
	if a.method == MethodPrivateKeyJWT {
		return "ClientAuth.PrivateKeyFile"
	}
	return "ClientAuth.TLSCertFile"
}

// clientCertificate is the tls.Config.GetClientCertificate of the
// provider's client: the current ClientAuth's certificate.
func (p *OIDC) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if a := p.auth.Load(); a != nil && a.cert != nil {
		return a.cert, nil
	}
	return &tls.Certificate{}, nil // none
}

// SetClientAuth replaces the client authentication OIDCConfig.ClientAuth
// gave, for a key or certificate file that changed (build a with
// NewClientAuth): the next token request, and the next TLS connection,
// use it. It refuses, keeping the old one, a nil a, a provider built
// without ClientAuth, another method, and (once discovery has run) a key
// whose algorithm the IdP does not list. The error names the variable.
func (p *OIDC) SetClientAuth(a *ClientAuth) error {
	old := p.auth.Load()
	switch {
	case old == nil && a == nil:
		return nil
	case old == nil || a == nil:
		known := a
		if known == nil {
			known = old
		}
		return configError(known.field(), "switching between a client secret and a key or certificate needs a restart")
	case a.method != old.method:
		return configError(a.field(), "switching from %s to %s needs a restart", old.method, a.method)
	}
	if d := p.found.Load(); d != nil && a.method == MethodPrivateKeyJWT && len(d.auth.algs) > 0 && !slices.Contains(d.auth.algs, string(a.alg)) {
		return configError("ClientAuth.PrivateKeyFile", "the new key signs with %s, but the IdP's token_endpoint_auth_signing_alg_values_supported lists %s", a.alg, strings.Join(d.auth.algs, ", "))
	}
	p.auth.Store(a)
	return nil
}

// wrapTransport returns c with its transport wrapped by wrap (nil: c).
func wrapTransport(c *http.Client, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	if wrap == nil {
		return c
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp := *c
	cp.Transport = wrap(base)
	return &cp
}
