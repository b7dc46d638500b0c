package authproxy

// Benchmarks of authproxy's per-request hot path, in process (no sockets), so that what they
// measure is authproxy's own work: a signed-in request through the whole handler chain
// against the same chain on a skip-auth route and a bare httputil.ReverseProxy, session
// decoding, header stripping and injection, and policy matching.
//
//	go test ./authproxy -run '^$' -bench . -benchmem
//	go test ./authproxy -run '^$' -bench 'HotPath/cookie' -benchmem -cpuprofile cpu.out && go tool pprof -top authproxy.test cpu.out
//
// The upstream is an in-process RoundTripper that answers a small fixed body, the response
// writer discards the body, and the logger formats JSON into io.Discard (as production
// formats it, without the write). bench/ measures the same over real sockets.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/policy"
	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// benchBody is what the in-process upstream answers: small, as in bench/.
var benchBody = []byte("Hello from the benchmark's upstream. This body is small and the same for every request.\n")

// benchUpstream is an in-process upstream: a RoundTripper that answers benchBody and counts
// the requests that arrived with an X-Forwarded-User.
type benchUpstream struct {
	identified atomic.Int64
	length     string
}

func newBenchUpstream() *benchUpstream {
	return &benchUpstream{length: strconv.Itoa(len(benchBody))}
}

func (u *benchUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get(headerUser) != "" {
		u.identified.Add(1)
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":   {"text/plain; charset=utf-8"},
			"Content-Length": {u.length},
			"Date":           {"Mon, 02 Jan 2006 15:04:05 GMT"},
		},
		Body:          io.NopCloser(bytes.NewReader(benchBody)),
		ContentLength: int64(len(benchBody)),
		Request:       r,
	}, nil
}

// discardResponse is a ResponseWriter that keeps the status and header and drops the body;
// clear its header between requests.
type discardResponse struct {
	h      http.Header
	status int
	n      int
}

func (w *discardResponse) Header() http.Header { return w.h }
func (w *discardResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}
func (w *discardResponse) Flush() {}

func (w *discardResponse) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// benchSession is a session the size of a real Dex one (bench/: a 4.5 KB cookie, two
// chunks): an ID token and an access token of about 1 KB each, a refresh token, groups.
func benchSession() *session.Session {
	now := time.Now()
	return &session.Session{
		ID: "5f0c2a3e9d7b4c1a8e6f0b2d4c6a8e0f", User: "CiQwZTRiMmY2Yy01YTFkLTRjOGUtOWI3YS1hMTFjZTAwMDAwMDESBWxvY2Fs",
		Subject: "CiQwZTRiMmY2Yy01YTFkLTRjOGUtOWI3YS1hMTFjZTAwMDAwMDESBWxvY2Fs", Email: "alice@example.com",
		PreferredUsername: "alice", Groups: []string{"admins", "staff"}, SID: "sid-7d2c9f",
		IDToken:      "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("x", 1000) + ".sig",
		AccessToken:  "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("y", 1000) + ".sig",
		RefreshToken: "ChlwYmZ2Z3R1eWZ6aHR5Zm5yZmRqZ2R5cHV4EhlyaGZ6b2R6b2V4b2V4",
		TokenExpiry:  now.Add(24 * time.Hour), CreatedAt: now, ExpiresAt: now.Add(168 * time.Hour),
	}
}

// benchStore names the session store a benchmark server uses: "cookie" (the sealed-cookie
// store with a revocation list on a memory backend, as NewFromConfig builds it without
// Redis) or "ticket" (the ticket store on a memory backend, Redis's stand-in, with the
// configuration saying Redis).
type benchStore string

// benchServer is a Server built as NewFromConfig builds it, but with the in-process
// upstream, a provider that is never reached, and JSON logs into io.Discard.
type benchServer struct {
	srv   *Server
	up    *benchUpstream
	store session.Store
}

func newBenchServer(b testing.TB, kind benchStore, extra map[string]string) *benchServer {
	b.Helper()
	vars := map[string]string{
		"AUTHPROXY_UPSTREAM":         "http://127.0.0.1:8080",
		"AUTHPROXY_OIDC_ISSUER":      "http://127.0.0.1:1/unused",
		"AUTHPROXY_CLIENT_ID":        "c",
		"AUTHPROXY_REDIRECT_URL":     "http://app.example.com/oauth2/callback",
		"AUTHPROXY_COOKIE_SECRET":    testCookieSecret,
		"AUTHPROXY_SKIP_AUTH_ROUTES": "/public/",
	}
	if kind == "ticket" {
		// Configured as with Redis, which the memory backend stands in for
		// (New is given it; nothing dials this URL).
		vars["AUTHPROXY_SESSION_STORE"] = "redis"
		vars["AUTHPROXY_REDIS_URL"] = "redis://127.0.0.1:1/0"
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := LoadConfig(mapLookup(vars))
	if err != nil {
		b.Fatal(err)
	}
	keys := [][]byte{[]byte(cfg.CookieSecrets[0].Reveal())}
	sessionCodec, err := session.NewCodec(keys, cfg.SessionTTL)
	if err != nil {
		b.Fatal(err)
	}
	stateCodec, err := session.NewCodec(keys, stateTTL)
	if err != nil {
		b.Fatal(err)
	}
	cookieOpts := session.CookieOptions{Name: cfg.CookieName, Path: "/", Secure: cfg.CookieSecure, SameSite: cfg.CookieSameSite}
	backend := session.NewMemoryBackend(nil)
	var store session.Store
	switch kind {
	case "cookie":
		store = session.WithRevocation(session.NewCookieStore(sessionCodec, cookieOpts, nil),
			session.NewRevocationList(backend, cfg.SessionTTL, nil))
	case "ticket":
		store = session.NewTicketStore(backend, sessionCodec, cookieOpts, nil)
	default:
		b.Fatalf("unknown store %q", kind)
	}
	pages, err := templates.New("")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{
		Config:     cfg,
		Provider:   providers.NewOIDC(providers.OIDCConfig{IssuerURL: cfg.Issuer.String()}),
		Store:      store,
		StateCodec: stateCodec,
		Templates:  pages,
		Locker:     backend,
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		AccessLog:  io.Discard, // as main wires it with the JSON log format
	})
	if err != nil {
		b.Fatal(err)
	}
	up := newBenchUpstream()
	srv.proxy = srv.newReverseProxy(up, cfg.Upstream)
	return &benchServer{srv: srv, up: up, store: store}
}

// mint saves sess in the server's store and returns the Cookie header value of a browser
// holding it.
func (e *benchServer) mint(b testing.TB, sess *session.Session) string {
	b.Helper()
	rec := httptest.NewRecorder()
	if err := e.store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
		b.Fatalf("minting session: %v", err)
	}
	var parts []string
	for _, c := range rec.Result().Cookies() {
		if c.Value != "" && c.MaxAge >= 0 {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	return strings.Join(parts, "; ")
}

// benchRequest is a browser's GET of path with typical headers, cookie (the session's, and
// one of the app's own) included.
func benchRequest(path, cookie string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://app.example.com"+path, nil)
	r.RemoteAddr = "192.0.2.10:51234"
	h := r.Header
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36")
	h.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	h.Set("Accept-Language", "en-GB,en;q=0.9")
	h.Set("Accept-Encoding", "gzip, deflate, br")
	h.Set("Sec-Fetch-Mode", "navigate")
	h.Set("Sec-Fetch-Site", "same-origin")
	h.Set("Referer", "http://app.example.com/")
	cookies := "app_pref=dark; app_lang=en"
	if cookie != "" {
		cookies = cookie + "; " + cookies
	}
	h.Set("Cookie", cookies)
	return r
}

// serveLoop sends r through h b.N times and checks every answer is the upstream's 200.
func serveLoop(b *testing.B, h http.Handler, r *http.Request) {
	w := &discardResponse{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.status != http.StatusOK || w.n != len(benchBody) {
		b.Fatalf("got %d with %d bytes, want the upstream's 200 with %d bytes; header %v", w.status, w.n, len(benchBody), w.h)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("got %d, want 200", w.status)
		}
	}
}

// BenchmarkHotPath sends one GET through:
//   - bare: an httputil.ReverseProxy with the same Rewrite basics (SetURL, Host,
//     SetXForwarded) and nothing else;
//   - skip_auth: authproxy's whole chain on a skip-auth route (no session work);
//   - cookie: authproxy's whole chain, signed in with the cookie store (+ revocation list);
//   - ticket: authproxy's whole chain, signed in with the ticket store on a memory backend.
func BenchmarkHotPath(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		up := newBenchUpstream()
		target, _ := url.Parse("http://127.0.0.1:8080")
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
				pr.SetXForwarded()
			},
			Transport:     up,
			FlushInterval: -1,
		}
		serveLoop(b, rp, benchRequest("/app/page", ""))
	})
	b.Run("skip_auth", func(b *testing.B) {
		e := newBenchServer(b, "cookie", nil)
		serveLoop(b, e.srv, benchRequest("/public/page", ""))
		if e.up.identified.Load() != 0 {
			b.Fatal("a skip-auth request reached the upstream with an identity")
		}
	})
	for _, kind := range []benchStore{"cookie", "ticket"} {
		b.Run(string(kind), func(b *testing.B) {
			e := newBenchServer(b, kind, nil)
			cookie := e.mint(b, benchSession())
			b.ReportMetric(float64(len(cookie)), "cookie-bytes")
			serveLoop(b, e.srv, benchRequest("/app/page", cookie))
			if e.up.identified.Load() == 0 {
				b.Fatal("signed-in requests reached the upstream without X-Forwarded-User")
			}
		})
	}
}

// BenchmarkAccessLog is the signed-in cookie-store request with the access
// log as production writes it (JSON formatted directly), through slog (the
// text format's path, and the JSON one's before), and off, for its share.
func BenchmarkAccessLog(b *testing.B) {
	for _, tc := range []struct {
		name string
		set  func(s *Server)
	}{
		{"direct", func(s *Server) {}},
		{"slog", func(s *Server) { s.accessOut = nil }},
		{"off", func(s *Server) { s.accessOut, s.log = nil, slog.New(slog.DiscardHandler) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newBenchServer(b, "cookie", nil)
			tc.set(e.srv)
			serveLoop(b, e.srv, benchRequest("/app/page", e.mint(b, benchSession())))
		})
	}
}

// BenchmarkHotPathParallel is BenchmarkHotPath's signed-in and bare cases from every P at
// once: contention (metrics, the memory backend's lock) shows here.
func BenchmarkHotPathParallel(b *testing.B) {
	// Each goroutine sends its own request: the chain edits the inbound request's header.
	run := func(b *testing.B, h http.Handler, newRequest func() *http.Request) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := newRequest()
			w := &discardResponse{h: http.Header{}}
			for pb.Next() {
				w.reset()
				h.ServeHTTP(w, r)
				if w.status != http.StatusOK {
					b.Errorf("got %d, want 200", w.status)
					return
				}
			}
		})
	}
	b.Run("bare", func(b *testing.B) {
		target, _ := url.Parse("http://127.0.0.1:8080")
		rp := &httputil.ReverseProxy{
			Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host; pr.SetXForwarded() },
			Transport: newBenchUpstream(), FlushInterval: -1,
		}
		run(b, rp, func() *http.Request { return benchRequest("/app/page", "") })
	})
	for _, kind := range []benchStore{"cookie", "ticket"} {
		b.Run(string(kind), func(b *testing.B) {
			e := newBenchServer(b, kind, nil)
			cookie := e.mint(b, benchSession())
			run(b, e.srv, func() *http.Request { return benchRequest("/app/page", cookie) })
		})
	}
}

// BenchmarkSessionDecode loads a typical session from a request: the sealed-cookie store
// alone, with the revocation list authproxy wraps it in, and the ticket store on a memory
// backend.
func BenchmarkSessionDecode(b *testing.B) {
	keys := [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	codec, err := session.NewCodec(keys, 168*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	opts := session.CookieOptions{Path: "/", SameSite: http.SameSiteLaxMode}
	backend := session.NewMemoryBackend(nil)
	stores := []struct {
		name  string
		store session.Store
	}{
		{"cookie", session.NewCookieStore(codec, opts, nil)},
		{"cookie_revocable", session.WithRevocation(session.NewCookieStore(codec, opts, nil), session.NewRevocationList(backend, 168*time.Hour, nil))},
		{"ticket_memory", session.NewTicketStore(backend, codec, opts, nil)},
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			e := &benchServer{store: s.store}
			cookie := e.mint(b, benchSession())
			b.ReportMetric(float64(len(cookie)), "cookie-bytes")
			r := benchRequest("/", cookie)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.store.Load(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeaders measures the identity-header work on a browser's typical request:
// stripping (nothing to remove; and three spoofed headers, the clone they need included),
// removing authproxy's cookies from the forwarded Cookie header, and the whole Rewrite hook
// (X-Forwarded-*, stripping, cookie removal, four identity headers).
func BenchmarkHeaders(b *testing.B) {
	e := newBenchServer(b, "cookie", nil)
	cookie := e.mint(b, benchSession())
	in := benchRequest("/app/page", cookie)
	b.Run("strip_clean", func(b *testing.B) {
		h := in.Header.Clone()
		b.ReportAllocs()
		for b.Loop() {
			deleteIdentityHeaders(h, e.srv.live.Load().claimHeaderNames)
		}
	})
	b.Run("strip_spoofed", func(b *testing.B) {
		spoofed := in.Header.Clone()
		spoofed["X-Forwarded-User"] = []string{"admin"}
		spoofed["x_forwarded_email"] = []string{"admin@example.com"}
		spoofed["X-Auth-Request-Groups"] = []string{"admins"}
		b.ReportAllocs()
		for b.Loop() {
			h := spoofed.Clone()
			deleteIdentityHeaders(h, e.srv.live.Load().claimHeaderNames)
			if len(h) != len(in.Header) {
				b.Fatalf("%d headers left, want %d", len(h), len(in.Header))
			}
		}
	})
	b.Run("remove_own_cookies", func(b *testing.B) {
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			h["Cookie"] = in.Header["Cookie"]
			e.srv.removeOwnCookies(in, h)
		}
		if got := h.Get("Cookie"); got != "app_pref=dark; app_lang=en" {
			b.Fatalf("Cookie %q after removal", got)
		}
	})
	b.Run("rewrite", func(b *testing.B) {
		sess := benchSession()
		ctx := withSession(context.Background(), sess)
		pin := in.WithContext(ctx)
		out := pin.Clone(ctx)
		base, baseURL := out.Header.Clone(), *out.URL
		pr := &httputil.ProxyRequest{In: pin, Out: out}
		target := e.srv.cfg.Upstream
		b.ReportAllocs()
		for b.Loop() {
			clear(out.Header)
			for k, v := range base {
				out.Header[k] = v
			}
			*out.URL = baseURL
			e.srv.rewrite(pr, target)
		}
		if out.Header.Get(headerUser) != sess.User || out.Header.Get(headerGroups) != "admins,staff" {
			b.Fatalf("rewrite did not inject the identity: %v", out.Header)
		}
	})
}

// benchPolicyFile is a policy of ten rules; the benchmark's request matches the last but one.
const benchPolicyFile = `rules:
  - path: /healthz
    methods: [GET]
    allow: public
  - path: /static/
    allow: public
  - path: /admin/
    allow: {groups: [admins]}
  - path: /reports/
    allow: {emails: [ada@example.com], domains: [example.org], groups: [finance]}
  - path: /billing/
    allow: {groups: [finance, billing]}
  - path: /api/internal/
    allow: {groups: [platform]}
  - path: /api/v1/
    methods: [GET, POST]
    allow: authenticated
  - path: /hr/
    allow: {domains: [example.com]}
  - path: /app/
    allow: {groups: [staff]}
  - path: /
    allow: authenticated
`

// BenchmarkPolicy measures the policy decisions a signed-in request costs (protect decides
// twice: without the identity, then with it): the default policy (skip-auth routes and
// "any signed-in user"), and a ten-rule policy file where a group rule near the end decides.
func BenchmarkPolicy(b *testing.B) {
	skip, err := policy.ParseSkipRoutes("GET /healthz, /public/, /static/")
	if err != nil {
		b.Fatal(err)
	}
	file, err := policy.Parse([]byte(benchPolicyFile))
	if err != nil {
		b.Fatal(err)
	}
	id := &policy.Identity{Email: "alice@example.com", Groups: []string{"admins", "staff"}}
	for _, c := range []struct {
		name string
		p    *policy.Policy
	}{
		{"default", policy.New(skip, nil, policy.AllowList{})},
		{"file_10_rules", policy.New(skip, file, policy.AllowList{})},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := c.p.Decide(http.MethodGet, "/app/page", nil); !d.NeedsSession {
					b.Fatal("the request needs no session")
				}
				if d := c.p.Decide(http.MethodGet, "/app/page", id); !d.Allow {
					b.Fatalf("denied: %s", d.Reason)
				}
			}
		})
	}
	b.Run("clean_path", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := policy.CleanPath("/app/reports/2024/summary.html"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
