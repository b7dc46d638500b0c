package providers

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// ErrRejected wraps every failure for which the browser's sign-in attempt
// itself is at fault or is not trustworthy: the IdP refused the code (used,
// expired, wrong verifier), or the ID token failed verification. Other
// errors from Exchange and Refresh mean the IdP could not be reached or
// answered badly.
var ErrRejected = errors.New("providers: sign-in rejected")

// OIDCConfig configures an OpenID Connect provider found by discovery.
type OIDCConfig struct {
	// IssuerURL is the issuer; discovery reads
	// IssuerURL + "/.well-known/openid-configuration". Required.
	IssuerURL string
	// ClientID and ClientSecret identify authproxy to the IdP. An empty
	// ClientSecret makes a public client that relies on PKCE alone.
	ClientID     string
	ClientSecret string
	// ClientAuth, when not nil, authenticates at the token endpoint instead
	// of ClientSecret, which must then be empty: with a private key
	// (private_key_jwt) or a TLS client certificate (tls_client_auth).
	// Discover refuses an IdP whose discovery document does not list its
	// method. With a certificate, HTTPClient.Transport must be nil or an
	// *http.Transport (NewOIDC adds the certificate to a clone of it), or
	// one that already presents the certificate.
	ClientAuth *ClientAuth
	// WrapTransport, when not nil, wraps the transport of every call to the
	// IdP, last: after the TLS client certificate is added to it, so a
	// wrapper (tracing) never hides the certificate. Nil adds nothing.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// RedirectURL is the absolute callback URL registered at the IdP.
	RedirectURL string
	// Scopes are requested at sign-in; they must include "openid".
	Scopes []string
	// UserClaim names the claim that becomes Identity.User; default "sub".
	UserClaim string
	// GroupsClaim names the claim that holds groups; default "groups".
	GroupsClaim string
	// ExtraClaims are claims copied into Identity.Extra (as strings; lists
	// comma-joined), for AUTHPROXY_CLAIM_HEADERS.
	ExtraClaims []string
	// GroupsRequired, set when AUTHPROXY_ALLOWED_GROUPS is, makes a sign-in
	// whose token has no groups log a warning that says what to fix.
	GroupsRequired bool
	// Hooks adapt the provider to one IdP's quirks; the zero value is plain
	// OpenID Connect. New sets them by kind.
	Hooks Hooks
	// HTTPClient is used for every call to the IdP; nil means a client with
	// a 10 s timeout. Its timeout bounds each call; NewOIDC wraps its
	// transport so that no answer past MaxResponseBytes is read. Its
	// transport can tell the calls apart with Operation.
	HTTPClient *http.Client
	// Logger receives discovery progress; nil discards it.
	Logger *slog.Logger
	// SharedRedirect says that other IdPs a browser signs in at return to
	// the same RedirectURL. An authorization response then cannot show by
	// its address which IdP sent it; only the iss parameter (RFC 9207) can,
	// so discovery warns when this IdP does not advertise it (RFC 9700
	// section 4.4: a mix-up by another configured IdP goes unseen).
	SharedRedirect bool
	// Now is the clock used to check token lifetimes; nil means time.Now.
	Now func() time.Time
}

// OIDC is a Provider for any OpenID Connect identity provider. It is safe for
// concurrent use. Until discovery has succeeded, every call returns an error
// wrapping ErrUnavailable.
type OIDC struct {
	cfg    OIDCConfig
	client *http.Client
	log    *slog.Logger

	found   atomic.Pointer[discovered]
	auth    atomic.Pointer[ClientAuth] // nil: the secret, or a public client
	live    atomic.Pointer[live]       // what Reconfigure replaces
	mu      sync.Mutex                 // guards lastErr
	lastErr error
}

// discovered is what discovery yields; it never changes once stored.
type discovered struct {
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	provider   *oidc.Provider
	endSession string
	// issuer, when not nil, replaces go-oidc's issuer comparison (Hooks.Issuer).
	issuer IssuerCheck
	// issuerID is the discovery document's issuer, and issParameter whether
	// it advertises authorization_response_iss_parameter_supported (RFC 9207).
	issuerID     string
	issParameter bool
	// auth is how the token endpoint is authenticated at with ClientAuth.
	auth clientAuthChoice
	// authMethods is token_endpoint_auth_methods_supported, from which the
	// auth style of each token request with a secret follows (authStyle).
	authMethods []string
}

// NewOIDC returns a provider that has not yet run discovery: call Discover,
// or DiscoverWithRetry in a goroutine, before it can serve sign-ins.
func NewOIDC(cfg OIDCConfig) *OIDC {
	if cfg.UserClaim == "" {
		cfg.UserClaim = "sub"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &OIDC{cfg: cfg, log: log}
	p.auth.Store(cfg.ClientAuth)
	p.live.Store(newLive(cfg))
	if cfg.ClientAuth != nil && cfg.ClientAuth.cert != nil {
		client = withClientCertificate(client, p.clientCertificate)
	}
	client = wrapTransport(client, cfg.WrapTransport)
	p.client = limitedClient(client, MaxResponseBytes)
	p.lastErr = fmt.Errorf("%w: discovery has not run yet", ErrUnavailable)
	return p
}

// Discover fetches the discovery document once. It returns nil at once if
// an earlier call succeeded.
func (p *OIDC) Discover(ctx context.Context) error {
	if p.found.Load() != nil {
		return nil
	}
	ctx = withOperation(oidc.ClientContext(ctx, p.client), OpDiscovery)
	if p.cfg.Hooks.Issuer != nil {
		// Not skipped but replaced: Hooks.Issuer checks the document's
		// issuer below and returns the check every token must pass.
		ctx = oidc.InsecureIssuerURLContext(ctx, p.cfg.IssuerURL)
	}
	op, err := oidc.NewProvider(ctx, p.cfg.IssuerURL)
	if err != nil {
		return p.failDiscovery(discoveryError(p.cfg.IssuerURL, err))
	}
	var extra struct {
		Issuer       string   `json:"issuer"`
		EndSession   string   `json:"end_session_endpoint"`
		AuthMethods  []string `json:"token_endpoint_auth_methods_supported"`
		IssParameter bool     `json:"authorization_response_iss_parameter_supported"`
	}
	var authMeta discoveredAuth
	if err := op.Claims(&extra); err != nil {
		return p.failDiscovery(fmt.Errorf("%w: reading discovery document: %w", ErrUnavailable, err))
	}
	if err := op.Claims(&authMeta); err != nil {
		return p.failDiscovery(fmt.Errorf("%w: reading discovery document: %w", ErrUnavailable, err))
	}
	auth, err := chooseClientAuth(p.auth.Load(), authMeta, p.cfg.Hooks.AssertionAudienceIsIssuer)
	if err != nil {
		return p.failDiscovery(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
	var issuer IssuerCheck
	if p.cfg.Hooks.Issuer != nil {
		if issuer, err = p.cfg.Hooks.Issuer(p.cfg.IssuerURL, extra.Issuer); err != nil {
			return p.failDiscovery(fmt.Errorf("%w: AUTHPROXY_OIDC_ISSUER: %w", ErrUnavailable, err))
		}
	}
	d := &discovered{
		issuer:       issuer,
		issuerID:     extra.Issuer,
		issParameter: extra.IssParameter,
		auth:         auth,
		authMethods:  extra.AuthMethods,
		provider:     op,
		oauth: oauth2.Config{
			ClientID:     p.cfg.ClientID,
			ClientSecret: p.cfg.ClientSecret,
			Endpoint:     op.Endpoint(),
			RedirectURL:  p.cfg.RedirectURL,
			Scopes:       p.cfg.Scopes,
		},
		verifier:   op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: p.cfg.Now, SkipIssuerCheck: issuer != nil}),
		endSession: extra.EndSession,
	}
	if auth.tokenURL != "" {
		d.oauth.Endpoint.TokenURL = auth.tokenURL
	}
	d.oauth.Endpoint.AuthStyle = d.authStyle(p.cfg.ClientSecret) // oauthFor sets it per call
	p.found.Store(d)
	if p.cfg.SharedRedirect && !d.issParameter && p.cfg.Logger != nil {
		p.cfg.Logger.Warn("identity provider does not send the iss parameter (RFC 9207), and other IdPs share its redirect URL: a mix-up by another configured IdP cannot be detected for sign-ins at it; prefer IdPs that advertise authorization_response_iss_parameter_supported",
			"event", "mixup_undetectable", "issuer", p.cfg.IssuerURL)
	}
	return nil
}

// authStyle says how to authenticate at the token endpoint, from what
// discovery's token_endpoint_auth_methods_supported allows (absent means
// client_secret_basic, RFC 8414 section 2): HTTP Basic where allowed, else the
// client_secret_post form parameters, and only client_id for a public client.
// It is never left to x/oauth2 to guess: guessing retries a failed token
// request the other way, sending a refused code to the IdP a second time.
func authStyle(clientSecret string, methods []string) oauth2.AuthStyle {
	switch {
	case clientSecret == "":
		return oauth2.AuthStyleInParams
	case len(methods) == 0 || slices.Contains(methods, "client_secret_basic"):
		return oauth2.AuthStyleInHeader
	case slices.Contains(methods, "client_secret_post"):
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// failDiscovery keeps err for Ready and returns it.
func (p *OIDC) failDiscovery(err error) error {
	p.mu.Lock()
	p.lastErr = err
	p.mu.Unlock()
	return err
}

// discoveryError explains a failed discovery; an issuer mismatch names the
// variable to fix and what it should say.
func discoveryError(issuer string, err error) error {
	var mm *oidc.IssuerMismatchError
	if !errors.As(err, &mm) {
		return fmt.Errorf("%w: discovery at %s: %w", ErrUnavailable, issuer, err)
	}
	hint := "set AUTHPROXY_OIDC_ISSUER to exactly the document's issuer"
	switch {
	case strings.TrimSuffix(mm.Provided, "/") == strings.TrimSuffix(mm.Discovered, "/"):
		hint = "they differ only by the trailing slash; set AUTHPROXY_OIDC_ISSUER to exactly the document's issuer"
	case strings.Contains(mm.Discovered, "{tenantid}"):
		hint = "this is a multi-tenant Microsoft Entra endpoint: set AUTHPROXY_PROVIDER=entra"
	}
	return fmt.Errorf("%w: AUTHPROXY_OIDC_ISSUER is %q but the discovery document's issuer is %q: %s", ErrUnavailable, mm.Provided, mm.Discovered, hint)
}

// verify checks raw with v and, when Hooks.Issuer took issuer validation
// over, its iss; it returns the token and its claims.
func (d *discovered) verify(ctx context.Context, v *oidc.IDTokenVerifier, raw string) (*oidc.IDToken, map[string]any, error) {
	t, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, nil, err
	}
	claims, err := decodeClaims(t.Claims)
	if err != nil {
		return nil, nil, fmt.Errorf("decoding claims: %w", err)
	}
	if d.issuer != nil {
		if err := d.issuer(t.Issuer, claims); err != nil {
			return nil, nil, err
		}
	}
	return t, claims, nil
}

// DiscoverWithRetry calls Discover until it succeeds or ctx ends, waiting
// from 1 s up to 30 s between attempts. Run it in its own goroutine.
func (p *OIDC) DiscoverWithRetry(ctx context.Context) {
	wait := time.Second
	for {
		err := p.Discover(ctx)
		if err == nil {
			p.log.Info("identity provider discovered", "issuer", p.cfg.IssuerURL)
			return
		}
		p.log.Warn("identity provider discovery failed; retrying", "issuer", p.cfg.IssuerURL, "retry_in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// Ready returns nil once discovery has succeeded, else the reason it has not.
func (p *OIDC) Ready() error {
	if p.found.Load() != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

func (p *OIDC) loaded() (*discovered, error) {
	if d := p.found.Load(); d != nil {
		return d, nil
	}
	return nil, p.Ready()
}

// EndSessionEndpoint returns the IdP's RP-initiated logout endpoint from
// discovery, or "" when it has none or discovery has not succeeded.
func (p *OIDC) EndSessionEndpoint() string {
	if d := p.found.Load(); d != nil {
		return d.endSession
	}
	return ""
}

// AuthCodeURL implements Provider.
func (p *OIDC) AuthCodeURL(state, nonce, verifier string) (string, error) {
	d, err := p.loaded()
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	for k, vs := range p.cfg.Hooks.AuthParams {
		for _, v := range vs {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	return d.oauth.AuthCodeURL(state, opts...), nil
}

// Exchange implements Provider.
func (p *OIDC) Exchange(ctx context.Context, code, verifier, nonce string) (*Identity, error) {
	d, err := p.loaded()
	if err != nil {
		return nil, err
	}
	tok, err := d.oauthFor(p.live.Load()).Exchange(withOperation(p.tokenContext(ctx, d), OpToken), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, tokenError("exchanging code", err, d.auth)
	}
	ctx = oidc.ClientContext(ctx, p.client)
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, fmt.Errorf("%w: token response has no id_token", ErrRejected)
	}
	idt, claims, err := d.verify(ctx, d.verifier, rawID)
	if err != nil {
		return nil, fmt.Errorf("%w: verifying ID token: %w", ErrRejected, err)
	}
	if err := checkIDToken(idt, claims, p.cfg.ClientID); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 || nonce == "" {
		return nil, fmt.Errorf("%w: ID token nonce does not match this sign-in", ErrRejected)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("%w: at_hash: %w", ErrRejected, err)
		}
	}
	return p.identity(ctx, d, idt, claims, rawID, tok)
}

// Refresh implements Provider. When the IdP returns no new ID token, the
// returned Identity carries only the new tokens; its claims are empty.
func (p *OIDC) Refresh(ctx context.Context, refreshToken string) (*Identity, error) {
	d, err := p.loaded()
	if err != nil {
		return nil, err
	}
	tok, err := d.oauthFor(p.live.Load()).TokenSource(withOperation(p.tokenContext(ctx, d), OpRefresh), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, tokenError("refreshing", err, d.auth)
	}
	ctx = oidc.ClientContext(ctx, p.client)
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return &Identity{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}, nil
	}
	idt, claims, err := d.verify(ctx, d.verifier, rawID)
	if err != nil {
		return nil, fmt.Errorf("%w: verifying refreshed ID token: %w", ErrRejected, err)
	}
	if err := checkIDToken(idt, claims, p.cfg.ClientID); err != nil {
		return nil, err
	}
	return p.identity(ctx, d, idt, claims, rawID, tok)
}

// tokenError classifies a token endpoint failure: a 4xx answer is the
// client's fault (ErrRejected), anything else is the IdP's own failure
// (ErrUnavailable, ErrTimeout or ErrBadResponse). The IdP refusing
// authproxy's own client authentication is ErrClientRefused.
func tokenError(op string, err error, auth clientAuthChoice) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && (re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client") {
		// authproxy's own credentials were refused: an operator's
		// configuration problem, not the user's.
		return fmt.Errorf("%w: %s: the IdP refused this client (%s): %s", ErrClientRefused, op, re.ErrorCode, auth.refusedHint())
	}
	if errors.As(err, &re) && re.ErrorCode == "invalid_scope" {
		return fmt.Errorf("providers: %s: the IdP refused the requested scopes (invalid_scope): check AUTHPROXY_SCOPES", op)
	}
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
		return fmt.Errorf("%w: %s: %s", ErrRejected, op, re.ErrorCode)
	}
	if errors.As(err, &re) {
		// A server error (or an error code with 2xx): the IdP is down.
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Errorf("%w: %s: status %d, error %q", ErrUnavailable, op, status, truncateValue(re.ErrorCode))
	}
	return idpFailure(op, err)
}

// identity reads the claims authproxy uses from a verified ID token, asking
// the userinfo endpoint for the email when the ID token lacks it, and runs
// the hooks.
func (p *OIDC) identity(ctx context.Context, d *discovered, idt *oidc.IDToken, claims map[string]any, rawID string, tok *oauth2.Token) (*Identity, error) {
	if _, ok := claims["email"]; !ok {
		if userinfo := p.userInfoFunc(d, tok.AccessToken, idt.Subject); userinfo != nil {
			if extra, err := userinfo(ctx); err == nil {
				for k, v := range extra {
					if _, ok := claims[k]; !ok {
						claims[k] = v
					}
				}
			}
		}
	}
	id := ClaimsIdentity(claims, p.cfg.UserClaim, p.cfg.GroupsClaim)
	if id.User == "" {
		return nil, fmt.Errorf("%w: ID token has no %q claim to identify the user", ErrRejected, p.cfg.UserClaim)
	}
	id.Subject = idt.Subject
	id.Extra = extraClaims(claims, p.live.Load().extraClaims)
	id.IDToken = rawID
	id.AccessToken = tok.AccessToken
	id.RefreshToken = tok.RefreshToken
	id.Expiry = tok.Expiry
	if err := p.applyHooks(ctx, d, &Token{Claims: claims, AccessToken: tok.AccessToken}, id); err != nil {
		return nil, err
	}
	return id, nil
}
