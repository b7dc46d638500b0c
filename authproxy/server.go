// Package authproxy is the HTTP side of authproxy: configuration, the route
// table, the sign-in flow, the authenticate middleware and the reverse proxy
// that forwards signed-in requests with identity headers to the upstream.
//
// A request travels one way (routes), and each decision is made once, by
// the package that owns it:
//
//   - accessLog gives it an id and, when it ends, one log line and its
//     metrics; limitHeaderBlock refuses a header block over 64 KiB (431);
//     stripIdentityHeaders deletes every client copy of the headers the
//     upstream trusts (identity, client address, URL) before anything else
//     reads the request.
//   - authproxy's own endpoints (/oauth2/*, /healthz, /readyz, /metrics)
//     are routed by chi; sign-in starts, callbacks and back-channel logouts
//     pass the per-address rate limits first (ratelimit.go).
//   - Every other request goes to protect: the path is cleaned and the
//     policy's rule matched once (package policy: path cleaning, rules and
//     the global allow-lists). A public rule goes straight to the upstream.
//     Otherwise the request is identified once (identify: a bearer token,
//     verified by package providers, or the session, loaded by package
//     session and refreshed here when due), and the matched rule judges the
//     identity; its typed cause picks the 403 page and the audit line.
//   - The reverse proxy (rewrite) sets X-Forwarded-*, X-Real-IP and the
//     identity headers, and strips authproxy's own cookies, from the
//     cookies as the request split them once (requestCookies), which the
//     session was loaded from.
//   - Every answer that is not a handler's own success (an error page, a
//     401, 403, 429 or 503) is returned by the handler as an *answer and
//     logged and written in one place, Server.answer (answer.go).
//   - With several IdPs (idps.go, idpset.go) the sign-in's state, the
//     session and a token's issuer say which IdP a request is about; the
//     policy judges the IdP with the rest of the identity.
//
// NewFromConfig is the one way a Server is built, for production and for
// tests, which inject only the edges (Runtime: a fake IdP, a backend, a
// clock).
package authproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/policy"
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
	signedOutPath         = "/oauth2/signed_out"
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
	Config *Config
	// Provider is the default IdP's provider; Providers holds the other
	// IdPs' of Config, by name (an entry under the default's name is
	// Provider's place, and Provider wins).
	Provider  providers.Provider
	Providers map[string]providers.Provider
	Store     session.Store
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
	// AccessLog, when not nil, receives the access log's lines as JSON
	// directly; nil sends them through Logger.
	AccessLog io.Writer
	// TracerProvider, when not nil, traces every request (a server span)
	// and the upstream request, whose trace context goes to the upstream
	// through Propagator (W3C traceparent when nil). nil means tracing off:
	// no span, no header, no cost. The IdP's and the session store's
	// spans are configured in their own packages (NewFromConfig does).
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator

	closer io.Closer // closed by Server.Close; set by NewFromConfig
	// rebuild makes the session store and state codec of a reloaded
	// configuration; set by NewFromConfig. Nil: a changed cookie secret
	// needs a restart.
	rebuild func(cfg *Config) (session.Store, *session.Codec, error)
}

// live is the part of a Server that a configuration reload replaces, all
// of it at once. A request reads it once, as it starts (accessLog), and
// uses that one throughout, so that no request sees half of an old and
// half of a new configuration. It never changes once stored.
type live struct {
	policy *policy.Policy
	store  session.Store
	state  *session.Codec
	// claimHeaders are AUTHPROXY_CLAIM_HEADERS, and claimHeaderNames their
	// names, normalized.
	claimHeaders     []ClaimHeader
	claimHeaderNames map[string]bool
}

func newLive(cfg *Config, store session.Store, state *session.Codec) *live {
	l := &live{policy: cfg.Policy, store: store, state: state, claimHeaders: cfg.ClaimHeaders, claimHeaderNames: map[string]bool{}}
	for _, ch := range cfg.ClaimHeaders {
		l.claimHeaderNames[normalizeHeaderName(ch.Header)] = true
	}
	return l
}

// current returns the live configuration of the request whose context ctx
// is (or derives from), read when the request started; for work outside a
// request, the one in effect now.
func (s *Server) current(ctx context.Context) *live {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok && ri.live != nil {
		return ri.live
	}
	if l := s.live.Load(); l != nil {
		return l
	}
	return &live{} // a Server not made by New
}

// Server serves authproxy's endpoints and proxies everything else.
// Build it with New; it is safe for concurrent use.
type Server struct {
	cfg     *Config // as at start; what a reload changes is in live
	idps    idpSet
	pages   *templates.Templates
	log     *slog.Logger
	now     func() time.Time
	proxy   *httputil.ReverseProxy
	trusted trustedProxies
	handler http.Handler

	locker    Locker
	refresher *refresher
	streams   *streams
	metrics   *metrics
	// store is the session store requests use: the opened-session cache
	// (cache, when there is one) over the live configuration's store
	// (currentStore).
	store session.Store
	// cache is store's opened-session cache (store itself), nil when
	// nothing is cached (see cacheSessions).
	cache  *session.CachedStore
	owner  session.CookieOwner // the store's cookies, nil when it sets none
	limits rateLimits

	identity *identitySigner // nil unless AUTHPROXY_UPSTREAM_JWT
	// tracer is nil when tracing is off; propagator (with the headers it
	// writes, traceFields) and idpName serve it.
	tracer      trace.Tracer
	propagator  propagation.TextMapPropagator
	traceFields []string
	idpName     string
	bearers     bearerCache
	closer      io.Closer
	// accessOut receives access-log lines as JSON (nil: through log), and
	// lineBuffers are the buffers they are formatted in.
	accessOut   io.Writer
	lineBuffers sync.Pool

	// live is what a configuration reload replaces, in one step; a request
	// reads it once (current).
	live atomic.Pointer[live]
	// reload serializes reloads and holds what they compare against.
	reload reloadState

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
		cfg:     opts.Config,
		pages:   opts.Templates,
		log:     opts.Logger,
		now:     opts.Now,
		trusted: trustedProxies(opts.Config.TrustedProxies),

		locker:    opts.Locker,
		closer:    opts.closer,
		accessOut: opts.AccessLog,
		refresher: newRefresher(),
		streams:   newStreams(),
		metrics:   newMetrics(opts.Version),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	provs := maps.Clone(opts.Providers)
	if provs == nil {
		provs = map[string]providers.Provider{}
	}
	provs[opts.Config.Name] = opts.Provider
	var err error
	if s.idps, err = newIdPSet(opts.Config, provs); err != nil {
		return nil, err
	}
	s.storeFailures = newLogThrottle(s.log, "session store failed", storeLogEvery)
	s.idpNotReady = newLogThrottle(s.log, "not ready: identity provider", storeLogEvery)
	s.idpFailures = newLogThrottle(s.log, "identity provider unavailable", storeLogEvery)
	if s.locker == nil {
		s.locker = session.NewMemoryBackend(nil)
	}
	s.live.Store(newLive(opts.Config, opts.Store, opts.StateCodec))
	s.reload.applied, s.reload.rebuild = opts.Config, opts.rebuild

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
		if s.identity, err = newIdentitySigner(opts.Config.UpstreamJWTKeyFile, origin.String(), opts.Config.Upstream.String(), s.now); err != nil {
			return nil, err
		}
	}
	transport, target, err := upstreamTransport(opts.Config)
	if err != nil {
		return nil, err
	}
	s.cacheSessions(opts) // last: with Redis it subscribes
	s.owner, _ = s.store.(session.CookieOwner)
	s.proxy = s.newReverseProxy(transport, target)
	s.handler = s.routes()
	return s, nil
}

// Close releases what NewFromConfig opened (the Redis connections) and ends
// the session cache's subscription.
func (s *Server) Close() error {
	if s.cache != nil {
		_ = s.cache.Close()
	}
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

// usesRedis reports whether Redis is configured (a URL, Sentinels or a
// Cluster): then sessions, revocations, locks and used logout tokens are
// shared by every replica, and changes made by one reach the others only
// through Redis. It is the one place that says so.
func (c *Config) usesRedis() bool {
	return c.RedisURL != "" || len(c.RedisSentinelAddrs) > 0 || len(c.RedisClusterAddrs) > 0
}

// cacheSessions puts the opened-session cache (session.Cached) in front of
// the store in effect (currentStore: the live configuration's, which a
// reload of the cookie secrets replaces; Reload resets the cache then),
// unless opts.Store already is one. Without Redis every change
// to a session goes through this process, so the cache needs no messages.
// With Redis the replicas tell each other what they change through its
// pub/sub: the backend (opts.Locker, as NewFromConfig passes it) must be a
// session.Broadcaster, or nothing is cached.
func (s *Server) cacheSessions(opts Options) {
	s.store = currentStore{s}
	if c, ok := opts.Store.(*session.CachedStore); ok {
		s.cache = c
	} else {
		co := session.CacheOptions{Logger: s.log, Now: s.now}
		if opts.Config.usesRedis() {
			bc, ok := opts.Locker.(session.Broadcaster)
			if !ok {
				return
			}
			co.Broadcaster = bc
		}
		s.cache = session.Cached(s.store, co)
	}
	s.store = s.cache
	s.metrics.reg.MustRegister(newCacheCollector(s.cache.Stats))
}

// providerConfig is the OIDC provider's configuration of IdP idp of cfg.
func providerConfig(cfg *Config, idp *IdPConfig, log *slog.Logger) providers.OIDCConfig {
	if log != nil && idp.vars != defaultVars && idp.vars != "" {
		log = log.With("idp", idp.Name)
	}
	return providers.OIDCConfig{
		IssuerURL:      urlString(idp.Issuer), // nil with github
		ClientID:       idp.ClientID,
		ClientSecret:   idp.ClientSecret.Reveal(),
		RedirectURL:    cfg.RedirectURL.String(),
		Scopes:         idp.Scopes,
		UserClaim:      idp.UserClaim,
		GroupsClaim:    idp.GroupsClaim,
		ExtraClaims:    cfg.claimNames(),
		GroupsRequired: len(idp.AllowedGroups) > 0,
		HTTPClient:     &http.Client{Timeout: cfg.IdPTimeout},
		Logger:         log,
		SharedRedirect: !idp.BearerOnly && cfg.browserIdPs() > 1,
	}
}

// browserIdPs counts the IdPs a browser can sign in at; they share the
// redirect URL.
func (c *Config) browserIdPs() int {
	n := 0
	for _, idp := range c.allIdPs() {
		if !idp.BearerOnly {
			n++
		}
	}
	return n
}

// newProvider builds the identity provider that IdP idp's
// AUTHPROXY_PROVIDER names; an OpenID Connect kind has yet to run
// discovery (providers.Discoverer). Its calls to the IdP are traced when
// tp is not nil.
func newProvider(cfg *Config, idp *IdPConfig, log *slog.Logger, tp trace.TracerProvider) (providers.Provider, error) {
	auth, err := clientAuth(idp)
	if err != nil {
		return nil, err
	}
	oc := providerConfig(cfg, idp, log)
	oc.ClientAuth = auth
	oc.WrapTransport = idpTransport(tp)
	return providers.New(idp.Provider, providers.Config{
		OIDCConfig: oc,
		Keycloak:   providers.KeycloakOptions{Roles: idp.KeycloakRoles},
		Entra:      providers.EntraOptions{Tenants: idp.EntraTenants, GraphURL: urlString(idp.EntraGraphURL), GroupNames: idp.EntraGroupNames},
		Google:     providers.GoogleOptions{HostedDomains: idp.GoogleHostedDomains},
		GitHub:     providers.GitHubOptions{URL: urlString(idp.GitHubURL), Org: idp.GitHubOrg, Teams: idp.GitHubTeams},
	})
}

// newProviders builds every IdP's provider but those given (a test's
// fake), and starts their discovery, retried until ctx ends.
func newProviders(ctx context.Context, cfg *Config, given map[string]providers.Provider, log *slog.Logger, tp trace.TracerProvider) (map[string]providers.Provider, error) {
	provs := map[string]providers.Provider{}
	for _, idp := range cfg.allIdPs() {
		if p := given[idp.Name]; p != nil {
			provs[idp.Name] = p
			continue
		}
		p, err := newProvider(cfg, idp, log, tp) // LoadConfig has already checked it
		if err != nil {
			return nil, fmt.Errorf("authproxy: %w", err)
		}
		provs[idp.Name] = p
	}
	for name, p := range provs {
		if d, ok := p.(providers.Discoverer); ok && given[name] == nil {
			go d.DiscoverWithRetry(ctx)
		}
	}
	return provs, nil
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
	if !cfg.usesRedis() {
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

// Runtime is what the process gives a Server beside its configuration.
type Runtime struct {
	// Logger receives every log line; nil discards them.
	Logger *slog.Logger
	// AccessLog, when not nil, receives the access log's lines as JSON
	// directly (LogWriter.Buffered), instead of through Logger.
	AccessLog io.Writer
	// Version is reported by the authproxy_build_info metric.
	Version string

	// The edges a test may replace, nil meaning what cfg describes: the
	// default identity provider (a fake IdP; it must be ready, or discover
	// by itself: NewFromConfig starts no discovery for it), the backend that
	// holds tickets, revocations and locks (a failing Redis), and the
	// clock. Production leaves them nil.
	Provider providers.Provider
	Backend  session.Backend
	Now      func() time.Time

	// Tracing, when not nil (NewTracing), traces requests, the IdP's calls
	// and Redis's commands; the caller shuts it down.
	Tracing *Tracing
}

// NewFromConfig builds the provider, the session store and the pages that
// cfg describes, starts provider discovery in the background (retried until
// ctx ends), and returns the Server. It is the one way a Server is put
// together, for production and for the tests (through Runtime's edges).
func NewFromConfig(ctx context.Context, cfg *Config, rt Runtime) (*Server, error) {
	log := rt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tp trace.TracerProvider
	var prop propagation.TextMapPropagator
	if rt.Tracing != nil {
		tp, prop = rt.Tracing.Provider, rt.Tracing.Propagator
	}
	pages, err := templates.New(cfg.TemplatesDir)
	if err != nil {
		return nil, fmt.Errorf("authproxy: AUTHPROXY_TEMPLATES_DIR: %w", err)
	}
	var backend session.Backend
	var closer io.Closer
	if rt.Backend != nil {
		backend = rt.Backend
	} else {
		b, err := newBackend(cfg, tp)
		if err != nil {
			return nil, err
		}
		backend, closer = b, b
	}
	closeBackend := func() {
		if closer != nil {
			closer.Close()
		}
	}
	// The store's codec is made again from a reloaded configuration's
	// cookie secrets; everything else about it is fixed at start.
	rebuild := func(c *Config) (session.Store, *session.Codec, error) {
		return newStore(cfg.withSecrets(c), backend, rt.Now)
	}
	store, stateCodec, err := rebuild(cfg)
	if err != nil {
		closeBackend()
		return nil, err
	}
	given := map[string]providers.Provider{}
	if rt.Provider != nil {
		given[cfg.Name] = rt.Provider
	}
	provs, err := newProviders(ctx, cfg, given, log, tp)
	if err != nil {
		closeBackend()
		return nil, err
	}
	s, err := New(Options{
		Config:     cfg,
		Provider:   provs[cfg.Name],
		Providers:  provs,
		Store:      store,
		StateCodec: stateCodec,
		Templates:  pages,
		Locker:     backend,
		Logger:     log,
		AccessLog:  rt.AccessLog,
		Version:    rt.Version,
		Now:        rt.Now,
		closer:     closer,
		rebuild:    rebuild,

		TracerProvider: tp,
		Propagator:     prop,
	})
	if err != nil {
		return nil, err
	}
	if rb, ok := backend.(*session.RedisBackend); ok {
		go s.watchRevocations(ctx, rb)
	}
	if s.idps.several() {
		go s.watchIdPs(ctx)
	}
	return s, nil
}

// cookieKeys returns the cookie secrets, the first sealing.
func cookieKeys(cfg *Config) [][]byte {
	keys := make([][]byte, len(cfg.CookieSecrets))
	for i, k := range cfg.CookieSecrets {
		keys[i] = []byte(k.Reveal())
	}
	return keys
}

// newStore returns the session store and the sign-in state codec that cfg
// describes, over backend: the store the server serves with and `authproxy
// sessions` revokes in. now is the stores' clock; nil means time.Now.
func newStore(cfg *Config, backend session.Backend, now func() time.Time) (session.Store, *session.Codec, error) {
	keys := cookieKeys(cfg)
	sessionCodec, err := session.NewCodec(keys, cfg.SessionTTL)
	if err != nil {
		return nil, nil, fmt.Errorf("authproxy: %w", err)
	}
	stateCodec, err := session.NewCodec(keys, stateTTL)
	if err != nil {
		return nil, nil, fmt.Errorf("authproxy: %w", err)
	}
	cookieOpts := session.CookieOptions{
		Name:     cfg.CookieName,
		Domain:   cfg.CookieDomain,
		Path:     "/",
		Secure:   cfg.CookieSecure,
		SameSite: cfg.CookieSameSite,
	}
	if cfg.SessionStore == "redis" {
		return session.NewTicketStore(backend, sessionCodec, cookieOpts, now), stateCodec, nil
	}
	list := session.NewRevocationList(backend, cfg.SessionTTL, now)
	return session.WithRevocation(session.NewCookieStore(sessionCodec, cookieOpts, now), list), stateCodec, nil
}

// currentStore is the session store of the configuration in effect (the
// live one), which a reload of the cookie secrets replaces: the one store
// the Server's cache sits on. It passes on what the store can do.
type currentStore struct{ s *Server }

func (c currentStore) store() session.Store { return c.s.live.Load().store }

func (c currentStore) Load(r *http.Request) (*session.Session, error) { return c.store().Load(r) }

// LoadCookies implements session.CookieLoader.
func (c currentStore) LoadCookies(r *http.Request, cookies []session.Cookie) (*session.Session, error) {
	return session.LoadWith(c.store(), r, cookies)
}

func (c currentStore) Save(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	return c.store().Save(w, r, sess)
}

func (c currentStore) Clear(w http.ResponseWriter, r *http.Request) error {
	return c.store().Clear(w, r)
}

// Owns implements session.CookieOwner.
func (c currentStore) Owns(name string) bool {
	o, ok := c.store().(session.CookieOwner)
	return ok && o.Owns(name)
}

// Ping implements session.Pinger; a store without a server always answers.
func (c currentStore) Ping(ctx context.Context) error {
	if p, ok := c.store().(session.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// RevokeSID implements session.Revoker.
func (c currentStore) RevokeSID(ctx context.Context, sid string) (int, error) {
	rv, ok := c.store().(session.Revoker)
	if !ok {
		return 0, errors.New("authproxy: session store cannot revoke sessions")
	}
	return rv.RevokeSID(ctx, sid)
}

// RevokeSubject implements session.Revoker.
func (c currentStore) RevokeSubject(ctx context.Context, sub string) (int, error) {
	rv, ok := c.store().(session.Revoker)
	if !ok {
		return 0, errors.New("authproxy: session store cannot revoke sessions")
	}
	return rv.RevokeSubject(ctx, sub)
}
