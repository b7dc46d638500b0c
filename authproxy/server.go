// Package authproxy is the HTTP side of authproxy: configuration, the route
// table, the sign-in flow, the authenticate middleware and the reverse proxy
// that forwards signed-in requests with identity headers to the upstream.
package authproxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// Fixed paths of authproxy's own endpoints (CONTRACT.md).
const (
	startPath             = "/oauth2/start"
	callbackPath          = "/oauth2/callback"
	signOutPath           = "/oauth2/sign_out"
	userinfoPath          = "/oauth2/userinfo"
	authPath              = "/oauth2/auth"
	backchannelLogoutPath = "/oauth2/backchannel_logout"
	healthPath            = "/healthz"
	metricsPath           = "/metrics"
	readyPath             = "/readyz"
)

// Options are the parts a Server is built from. Config, Provider and Store
// are required; nil Logger discards logs, nil Now means time.Now.
type Options struct {
	Config   *Config
	Provider providers.Provider
	Store    session.Store
	// StateCodec seals the short-lived sign-in state cookie.
	StateCodec *session.Codec
	Templates  *templates.Templates
	// Locker holds the locks and one-time marks shared by every replica
	// (refresh locks, used logout tokens); nil means this process only.
	Locker Locker
	Logger *slog.Logger
	Now    func() time.Time
	// Version is reported by the authproxy_build_info metric.
	Version string
	// TracerProvider, when not nil, traces every request (a server span)
	// and the upstream request, whose trace context goes to the upstream
	// through Propagator (W3C traceparent when nil). nil means tracing off:
	// no span, no header, no cost. The IdP's and the session store's
	// spans are configured in their own packages (NewFromConfig does).
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator

	closer io.Closer // closed by Server.Close; set by NewFromConfig
}

// Server serves authproxy's endpoints and proxies everything else.
// Build it with New; it is safe for concurrent use.
type Server struct {
	cfg      *Config
	provider providers.Provider
	store    session.Store
	state    *session.Codec
	pages    *templates.Templates
	log      *slog.Logger
	now      func() time.Time
	proxy    *httputil.ReverseProxy
	trusted  trustedProxies
	handler  http.Handler

	locker    Locker
	refresher *refresher
	streams   *streams
	metrics   *metrics
	cache     *sessionCache // nil unless every revocation reaches this process
	limits    rateLimits

	identity *identitySigner // nil unless AUTHPROXY_UPSTREAM_JWT
	// tracer is nil when tracing is off; propagator (with the headers it
	// writes, traceFields) and idpName serve it.
	tracer      trace.Tracer
	propagator  propagation.TextMapPropagator
	traceFields []string
	idpName     string
	bearers     bearerCache
	// claimHeaderNames are AUTHPROXY_CLAIM_HEADERS' names, normalized.
	claimHeaderNames map[string]bool
	closer           io.Closer

	storeFailures *logThrottle // "session store failed"
	idpNotReady   *logThrottle // /readyz's causes for the IdP
	idpFailures   *logThrottle // "identity provider unavailable" at sign-in
}

// New builds a Server from opts.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Provider == nil || opts.Store == nil || opts.StateCodec == nil || opts.Templates == nil {
		return nil, fmt.Errorf("authproxy: New needs Config, Provider, Store, StateCodec and Templates")
	}
	s := &Server{
		cfg:      opts.Config,
		provider: opts.Provider,
		store:    opts.Store,
		state:    opts.StateCodec,
		pages:    opts.Templates,
		log:      opts.Logger,
		now:      opts.Now,
		trusted:  trustedProxies(opts.Config.TrustedProxies),

		locker:    opts.Locker,
		closer:    opts.closer,
		refresher: newRefresher(),
		streams:   newStreams(),
		metrics:   newMetrics(opts.Version),
	}
	s.storeFailures = newLogThrottle(s.log, "session store failed", storeLogEvery)
	s.idpNotReady = newLogThrottle(s.log, "not ready: identity provider", storeLogEvery)
	s.idpFailures = newLogThrottle(s.log, "identity provider unavailable", storeLogEvery)
	if s.locker == nil {
		s.locker = session.NewMemoryBackend(nil)
	}
	if c := opts.Config; c.SessionStore == "cookie" && c.RedisURL == "" && len(c.RedisSentinelAddrs) == 0 && len(c.RedisClusterAddrs) == 0 {
		s.cache = newSessionCache(c.CookieName)
	}
	s.claimHeaderNames = map[string]bool{}
	for _, ch := range opts.Config.ClaimHeaders {
		s.claimHeaderNames[normalizeHeaderName(ch.Header)] = true
	}

	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.setTracing(opts.TracerProvider, opts.Propagator)
	if s.now == nil {
		s.now = time.Now
	}
	s.limits = newRateLimits(opts.Config, s.metrics, s.now())
	if opts.Config.UpstreamJWT {
		origin := *opts.Config.RedirectURL
		origin.Path, origin.RawPath = "", ""
		var err error
		if s.identity, err = newIdentitySigner(opts.Config.UpstreamJWTKeyFile, origin.String(), opts.Config.Upstream.String(), s.now); err != nil {
			return nil, err
		}
	}
	transport, target, err := upstreamTransport(opts.Config)
	if err != nil {
		return nil, err
	}
	s.proxy = s.newReverseProxy(transport, target)
	s.handler = s.routes()
	return s, nil
}

// Close releases what NewFromConfig opened (the Redis connections).
func (s *Server) Close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

// providerConfig is the OIDC provider's configuration drawn from cfg.
func providerConfig(cfg *Config, log *slog.Logger) providers.OIDCConfig {
	return providers.OIDCConfig{
		IssuerURL:      urlString(cfg.Issuer), // nil with github
		ClientID:       cfg.ClientID,
		ClientSecret:   cfg.ClientSecret.Reveal(),
		RedirectURL:    cfg.RedirectURL.String(),
		Scopes:         cfg.Scopes,
		UserClaim:      cfg.UserClaim,
		GroupsClaim:    cfg.GroupsClaim,
		ExtraClaims:    cfg.claimNames(),
		GroupsRequired: len(cfg.AllowedGroups) > 0,
		HTTPClient:     &http.Client{Timeout: cfg.IdPTimeout},
		Logger:         log,
	}
}

// newProvider builds the identity provider AUTHPROXY_PROVIDER names; an
// OpenID Connect kind has yet to run discovery (providers.Discoverer). Its
// calls to the IdP are traced when tp is not nil.
func newProvider(cfg *Config, log *slog.Logger, tp trace.TracerProvider) (providers.Provider, error) {
	oc := providerConfig(cfg, log)
	oc.HTTPClient.Transport = idpTransport(tp)
	return providers.New(cfg.Provider, providers.Config{
		OIDCConfig: oc,
		Keycloak:   providers.KeycloakOptions{Roles: cfg.KeycloakRoles},
		Entra:      providers.EntraOptions{Tenants: cfg.EntraTenants, GraphURL: urlString(cfg.EntraGraphURL), GroupNames: cfg.EntraGroupNames},
		Google:     providers.GoogleOptions{HostedDomains: cfg.GoogleHostedDomains},
		GitHub:     providers.GitHubOptions{URL: urlString(cfg.GitHubURL), Org: cfg.GitHubOrg, Teams: cfg.GitHubTeams},
	})
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// newBackend returns the Redis backend when Redis is configured, else an
// in-memory one that serves this process only. Redis commands are traced
// when tp is not nil.
func newBackend(cfg *Config, tp trace.TracerProvider) (interface {
	session.Backend
	io.Closer
}, error) {
	if cfg.RedisURL == "" && len(cfg.RedisSentinelAddrs) == 0 && len(cfg.RedisClusterAddrs) == 0 {
		return nopCloser{session.NewMemoryBackend(nil)}, nil
	}
	rb, err := session.NewRedisBackend(session.RedisOptions{
		URL:            cfg.RedisURL.Reveal(),
		SentinelMaster: cfg.RedisSentinelMaster,
		SentinelAddrs:  cfg.RedisSentinelAddrs,
		ClusterAddrs:   cfg.RedisClusterAddrs,
		TracerProvider: tp,
	})
	if err != nil {
		return nil, fmt.Errorf("authproxy: AUTHPROXY_REDIS_URL: %w", err)
	}
	return rb, nil
}

type nopCloser struct{ *session.MemoryBackend }

func (nopCloser) Close() error { return nil }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// NewFromConfig builds the provider, the session store and the pages that
// cfg describes, starts provider discovery in the background (retried until
// ctx ends), and returns the Server. tracing, when not nil, traces requests,
// the IdP's calls and Redis's commands; the caller shuts it down.
func NewFromConfig(ctx context.Context, cfg *Config, log *slog.Logger, version string, tracing *Tracing) (*Server, error) {
	var tp trace.TracerProvider
	var prop propagation.TextMapPropagator
	if tracing != nil {
		tp, prop = tracing.Provider, tracing.Propagator
	}
	pages, err := templates.New(cfg.TemplatesDir)
	if err != nil {
		return nil, fmt.Errorf("authproxy: AUTHPROXY_TEMPLATES_DIR: %w", err)
	}
	keys := make([][]byte, len(cfg.CookieSecrets))
	for i, k := range cfg.CookieSecrets {
		keys[i] = []byte(k.Reveal())
	}
	sessionCodec, err := session.NewCodec(keys, cfg.SessionTTL)
	if err != nil {
		return nil, fmt.Errorf("authproxy: %w", err)
	}
	stateCodec, err := session.NewCodec(keys, stateTTL)
	if err != nil {
		return nil, fmt.Errorf("authproxy: %w", err)
	}
	backend, err := newBackend(cfg, tp)
	if err != nil {
		return nil, err
	}
	cookieOpts := session.CookieOptions{
		Name:     cfg.CookieName,
		Domain:   cfg.CookieDomain,
		Path:     "/",
		Secure:   cfg.CookieSecure,
		SameSite: cfg.CookieSameSite,
	}
	var store session.Store
	if cfg.SessionStore == "redis" {
		store = session.NewTicketStore(backend, sessionCodec, cookieOpts, nil)
	} else {
		list := session.NewRevocationList(backend, cfg.SessionTTL, nil)
		store = session.WithRevocation(session.NewCookieStore(sessionCodec, cookieOpts, nil), list)
	}
	provider, err := newProvider(cfg, log, tp) // LoadConfig has already checked it
	if err != nil {
		backend.Close()
		return nil, fmt.Errorf("authproxy: %w", err)
	}
	if d, ok := provider.(providers.Discoverer); ok {
		go d.DiscoverWithRetry(ctx)
	}
	return New(Options{
		Config:     cfg,
		Provider:   provider,
		Store:      store,
		StateCodec: stateCodec,
		Templates:  pages,
		Locker:     backend,
		Logger:     log,
		Version:    version,
		closer:     backend,

		TracerProvider: tp,
		Propagator:     prop,
	})
}
