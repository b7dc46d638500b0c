package authproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// sessionKey is the context key under which protect stores the signed-in
// session for the reverse proxy's Rewrite hook.
type sessionKey struct{}

// withSession returns ctx carrying sess.
func withSession(ctx context.Context, sess *session.Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, sess)
}

// sessionFrom returns the session protect stored in ctx, or nil on a
// skip-auth route.
func sessionFrom(ctx context.Context) *session.Session {
	sess, _ := ctx.Value(sessionKey{}).(*session.Session)
	return sess
}

// newReverseProxy builds the proxy to the upstream. It uses Rewrite, which
// runs after hop-by-hop headers are removed, so a client's
// "Connection: X-Forwarded-Email" cannot delete a header set here.
func (s *Server) newReverseProxy(transport http.RoundTripper, target *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { s.rewrite(pr, target) },
		Transport: timedTransport{next: s.tracedUpstream(transport), m: s.metrics},
		// Zero: event streams and bodies of unknown length are still
		// flushed at once (ReverseProxy recognizes them); others need no
		// flush timer per response.
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		ErrorHandler:  s.upstreamError,
	}
}

// upstreamTransport returns the transport to the configured upstream and the
// URL to address it by (unix sockets are dialled whatever the URL's host).
// It keeps a large pool of idle connections: nearly every request goes to
// this one upstream, and a new connection per request costs more than all
// of authproxy's own work.
func upstreamTransport(cfg *Config) (*http.Transport, *url.URL, error) {
	target := cfg.Upstream
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = cfg.UpstreamTimeout
	transport.MaxIdleConns = 1024
	transport.MaxIdleConnsPerHost = 1024
	transport.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if target.Scheme == "https" && (cfg.UpstreamCAFile != "" || cfg.InsecureSkipUpstreamTLSVerify) {
		tc := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipUpstreamTLSVerify}
		if f := cfg.UpstreamCAFile; f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, nil, fmt.Errorf("authproxy: AUTHPROXY_UPSTREAM_CA_FILE: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("authproxy: AUTHPROXY_UPSTREAM_CA_FILE: no PEM certificates in %s", f)
			}
		}
		transport.TLSClientConfig = tc
	}
	if target.Scheme == "unix" {
		sock := target.Path
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		target = &url.URL{Scheme: "http", Host: "upstream"}
	}
	return transport, target, nil
}

// rewrite prepares the outgoing request: target URL, X-Forwarded-*,
// X-Real-IP, identity headers and the Cookie header without authproxy's own
// cookies.
func (s *Server) rewrite(pr *httputil.ProxyRequest, target *url.URL) {
	pr.SetURL(target)
	pr.Out.Host = pr.In.Host // legacy apps build their links from Host
	// Request.Clone sized the outgoing header map for the client's headers;
	// make room for the ones added below at once rather than grow it.
	if h := pr.Out.Header; len(h) > 0 {
		grown := make(http.Header, len(h)+addedHeaders)
		maps.Copy(grown, h)
		pr.Out.Header = grown
	}

	trusted := s.trusted.contains(pr.In.RemoteAddr)
	if trusted {
		pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
	}
	pr.SetXForwarded()
	if trusted {
		if v := pr.In.Header.Get("X-Forwarded-Proto"); v != "" {
			pr.Out.Header.Set("X-Forwarded-Proto", v)
		}
		if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" {
			pr.Out.Header.Set("X-Forwarded-Host", v)
		}
	} else {
		for _, h := range urlHeaders {
			delete(pr.Out.Header, h) // canonical names: no need to canonicalize
		}
	}
	// The headers authproxy sets take their values from one backing array
	// (headerValues), not a slice each: the request's requestInfo's.
	vals := headerValues{buf: infoFrom(pr.In.Context()).headerBuf[:0]}
	// The client's own X-Real-IP was deleted with the identity headers.
	if addr := s.trusted.clientAddr(pr.In); addr.IsValid() {
		vals.set(pr.Out.Header, "X-Real-Ip", addr.String()) // canonical form of X-Real-IP
	}

	s.removeOwnCookies(pr.In, pr.Out.Header)
	if sess := sessionFrom(pr.In.Context()); sess != nil {
		h := pr.Out.Header
		vals.setEncoded(h, headerUser, sess.User)
		vals.setEncoded(h, headerEmail, sess.Email)
		vals.setEncoded(h, headerPreferredUsername, sess.PreferredUsername)
		vals.setEncoded(h, headerGroups, joinGroups(sess.Groups))
		if p := s.idps.get(sess.IdP); p != nil {
			h[headerIdP] = p.header // never changed; a later Add copies it
		}
		if s.cfg.PassAccessToken {
			setHeader(h, headerAccessToken, sess.AccessToken)
		}
		for _, ch := range s.current(pr.In.Context()).claimHeaders {
			setHeader(h, ch.Header, sess.Extra[ch.Claim])
		}
		if s.identity != nil {
			var idp string
			if s.idps.several() {
				idp = s.idps.nameOf(sess)
			}
			tok, err := s.identity.token(sess, idp)
			if err != nil {
				s.log.Error("upstream JWT not sent", "err", err)
			}
			setHeader(h, headerUpstreamJWT, tok)
		}
	}
	pr.Out = s.traceUpstream(pr.Out)
}

// addedHeaders is about how many headers rewrite adds: X-Forwarded-For,
// -Host, -Proto, X-Real-Ip, the identity headers and traceparent.
const addedHeaders = 10

// bufferPool reuses ReverseProxy's 32 KiB copy buffers across requests.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

// removeOwnCookies drops authproxy's cookies (see ownsCookie) from the
// Cookie header of out, the upstream request of in, keeping the app's
// cookies byte for byte. It builds the header from the cookies as the
// request split them once (requestCookies), which the session was loaded
// from too.
func (s *Server) removeOwnCookies(in *http.Request, out http.Header) {
	if len(out["Cookie"]) == 0 {
		return
	}
	cookies := requestCookies(in)
	size, own := 0, false
	for _, c := range cookies {
		if s.ownsCookie(c.Name) {
			own = true
		} else {
			size += len(c.Part) + 2
		}
	}
	if !own {
		if len(out["Cookie"]) > 1 { // HTTP/2 may send several lines: one for HTTP/1.1
			out["Cookie"] = []string{strings.Join(out["Cookie"], "; ")}
		}
		return
	}
	if size == 0 {
		delete(out, "Cookie")
		return
	}
	var b strings.Builder
	b.Grow(size)
	for _, c := range cookies {
		if !s.ownsCookie(c.Name) {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(c.Part)
		}
	}
	out["Cookie"] = []string{b.String()}
}

// requestCookies returns r's cookies, split once per request: the session
// is loaded from them and the forwarded Cookie header is built from them.
// They are kept in the request's requestInfo (without one, as in a probe
// or a test, they are split again at each call).
func requestCookies(r *http.Request) []session.Cookie {
	ri, ok := r.Context().Value(requestInfoKey{}).(*requestInfo)
	if !ok {
		return session.AppendCookies(nil, r.Header)
	}
	if !ri.parsed {
		ri.cookies, ri.parsed = session.AppendCookies(ri.cookieBuf[:0], r.Header), true
	}
	return ri.cookies
}

// ownsCookie reports whether a cookie is authproxy's own: one of the session
// store's (the store says which: the session cookie and its chunks) or a
// sign-in state cookie (name_csrf_…).
func (s *Server) ownsCookie(cookie string) bool {
	if s.owner != nil && s.owner.Owns(cookie) {
		return true
	}
	rest, ok := strings.CutPrefix(cookie, s.cfg.CookieName)
	return ok && strings.HasPrefix(rest, "_csrf_")
}

// upstreamError answers when the upstream cannot be reached or fails
// mid-response: a 502 page (504 on a timeout), never a hang.
func (s *Server) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away; nobody to answer
	}
	status := http.StatusBadGateway
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		status = http.StatusGatewayTimeout
	}
	s.answer(w, r, pageAnswer(templates.Page{
		Status:  status,
		Title:   "The application is not answering",
		Message: "The application behind this sign-in did not answer.",
		Hint:    "Try again in a moment. If it keeps happening, tell the people who run this site.",
	}).logged(slog.LevelError, "upstream unavailable", err, "method", r.Method, "path", r.URL.Path))
}
