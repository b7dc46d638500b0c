package providers

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	c.Transport = &assertionTransport{base: p.client.Transport, auth: p.cfg.ClientAuth, aud: d.auth.aud}
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

// withClientCertificate returns c presenting auth's TLS client certificate
// to every server that asks for one: c's *http.Transport (or, when nil, a
// clone of http.DefaultTransport) with GetClientCertificate set. A
// transport of another type is kept as it is: whoever built it must have
// put the certificate in (see OIDCConfig.ClientAuth).
func withClientCertificate(c *http.Client, auth *ClientAuth) *http.Client {
	if auth == nil || auth.cert == nil {
		return c
	}
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
	tr.TLSClientConfig.GetClientCertificate = auth.clientCertificate
	cp := *c
	cp.Transport = tr
	return &cp
}
