package authproxy

import (
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"
)

// identityHeaderNames are the headers the upstream trusts, and look-alikes a
// client must never be able to send through authproxy.
var identityHeaderNames = []string{
	"X-Forwarded-User",
	"X-Forwarded-Email",
	"X-Forwarded-Preferred-Username",
	"X-Forwarded-Groups",
	"X-Forwarded-Access-Token",
	"X-Forwarded-Idp",
	"X-Auth-Request-User",
	"X-Auth-Request-Email",
	"X-Auth-Request-Groups",
	"X-Auth-Request-Preferred-Username",
	"X-Auth-Request-Access-Token",
	"X-Auth-Request-Idp",
	"X-Auth-Request-Redirect",
	"X-Auth-Request-Anything",
}

// clientAddrHeaderNames are headers that tell an app the client's address
// in some proxy's or CDN's dialect, and the X-Forwarded-* headers: a client
// must never be able to send one through authproxy. X-Forwarded-For is set
// by authproxy itself (and X-Real-IP, checked apart).
var clientAddrHeaderNames = []string{
	"X-Real-IP",
	"True-Client-IP",
	"CF-Connecting-IP",
	"Fastly-Client-IP",
	"X-Client-IP",
	"X-Cluster-Client-IP",
	"X-Original-Forwarded-For",
	"X-Envoy-External-Address",
	"Forwarded",
	"X-Forwarded-For",
	"X-Forwarded-Host",
	"X-Forwarded-Proto",
}

// spoofedHeaderNames are every header name the spoofing matrix tries.
var spoofedHeaderNames = append(append([]string(nil), identityHeaderNames...), clientAddrHeaderNames...)

// looksLikeClientAddr is the test's own reading of which names carry a
// client's address, independent of isClientAddrHeader.
func looksLikeClientAddr(name string) bool {
	switch foldHeaderName(name) {
	case "x-real-ip", "true-client-ip", "cf-connecting-ip", "fastly-client-ip", "x-client-ip",
		"x-cluster-client-ip", "x-original-forwarded-for", "x-envoy-external-address", "forwarded":
		return true
	}
	return false
}

// oddSpelling reports whether a header name is not spelled the way HTTP
// spells it: other case, or "_" for "-".
func oddSpelling(name string) bool {
	return strings.Contains(name, "_") || name != http.CanonicalHeaderKey(name)
}

// foldHeaderName is how servers that fold case and read "_" as "-"
// (nginx with underscores_in_headers, CGI, many frameworks) see a name.
func foldHeaderName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '_':
			b[i] = '-'
		}
	}
	return string(b)
}

// looksLikeIdentity is the test's own reading of which names are identity
// headers, independent of isIdentityHeader.
func looksLikeIdentity(name string) bool {
	n := foldHeaderName(name)
	switch n {
	case "x-forwarded-user", "x-forwarded-email", "x-forwarded-preferred-username",
		"x-forwarded-groups", "x-forwarded-access-token", "x-forwarded-idp":
		return true
	}
	return strings.HasPrefix(n, "x-auth-request-")
}

// spellings returns name as a client could spell it.
func spellings(name string) []struct{ kind, name string } {
	mixed := []byte(strings.ToLower(name))
	for i := 0; i < len(mixed); i += 2 {
		if mixed[i] >= 'a' && mixed[i] <= 'z' {
			mixed[i] -= 'a' - 'A'
		}
	}
	under := strings.ReplaceAll(name, "-", "_")
	return []struct{ kind, name string }{
		{"canonical", name},
		{"upper", strings.ToUpper(name)},
		{"lower", strings.ToLower(name)},
		{"mixed", string(mixed)},
		{"underscores", under},
		{"underscores lower", strings.ToLower(under)},
		{"underscores upper", strings.ToUpper(under)},
		{"one underscore", strings.Replace(name, "-", "_", 1)},
	}
}

func TestClientIdentityHeadersNeverReachUpstream(t *testing.T) {
	e := newTestEnv(t,
		withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"),
		withVar("AUTHPROXY_PASS_ACCESS_TOKEN", "true"))
	sess := testSession()
	cookie := e.mintSession(t, sess)
	wantSignedIn := map[string]string{
		"X-Forwarded-User":               sess.User,
		"X-Forwarded-Email":              sess.Email,
		"X-Forwarded-Preferred-Username": sess.PreferredUsername,
		"X-Forwarded-Groups":             "staff,admins",
		"X-Forwarded-Access-Token":       sess.AccessToken,
		"X-Forwarded-Idp":                "default",
	}
	c := noFollow(e.browser())
	var cases atomic.Int64

	for _, route := range []struct {
		name, path, cookie string
		want               map[string]string
	}{
		{"signed in", "/app", cookie, wantSignedIn},
		{"skip-auth route without session", "/public/x", "", nil},
	} {
		for _, hop := range []bool{false, true} {
			for _, base := range spoofedHeaderNames {
				for _, sp := range spellings(base) {
					name := fmt.Sprintf("%s/connection=%t/%s/%s", route.name, hop, base, sp.kind)
					t.Run(name, func(t *testing.T) {
						cases.Add(1)
						marker := fmt.Sprintf("spoofed-%d", cases.Load())
						req, err := http.NewRequest(http.MethodGet, e.url(route.path), nil)
						if err != nil {
							t.Fatal(err)
						}
						req.Header["Accept"] = []string{"application/json"}
						req.Header[sp.name] = []string{marker} // not canonicalized: sent as spelled
						if hop {
							req.Header["Connection"] = []string{sp.name}
						}
						if route.cookie != "" {
							req.Header["Cookie"] = []string{route.cookie}
						}
						got := fromUpstream(t, doRequest(t, c, req))
						checkIdentityHeaders(t, got.Header, route.want, "spoofed-")
						checkClientAddr(t, got.Header, "127.0.0.1")
					})
				}
			}
		}
	}
	t.Logf("%d header-spoofing cases run", cases.Load())
	if want := int64(2 * 2 * len(spoofedHeaderNames) * 8); cases.Load() != want {
		t.Errorf("ran %d cases, want %d", cases.Load(), want)
	}
}

// checkClientAddr fails the test unless the upstream was told exactly addr
// as the client's address: X-Real-IP set to it, no other client address
// header, and X-Forwarded-For ending in the peer's address.
func checkClientAddr(t *testing.T, h http.Header, addr string) {
	t.Helper()
	if got := h["X-Real-Ip"]; len(got) != 1 || got[0] != addr {
		t.Errorf("upstream X-Real-IP = %q, want [%q]", got, addr)
	}
	for name, vs := range h {
		if looksLikeClientAddr(name) && name != "X-Real-Ip" {
			t.Errorf("upstream got %s: %q", name, vs)
		}
		if strings.HasPrefix(foldHeaderName(name), "x-forwarded-") && oddSpelling(name) {
			t.Errorf("upstream got %s in a spelling of the client's: %q", name, vs)
		}
	}
	if xff := h["X-Forwarded-For"]; len(xff) != 1 || !strings.HasSuffix(xff[0], "127.0.0.1") {
		t.Errorf("upstream X-Forwarded-For = %q, want one line ending in the peer's address", xff)
	}
}

// checkIdentityHeaders fails the test if any header value in h contains
// marker, or if the identity headers in h are not exactly want.
func checkIdentityHeaders(t *testing.T, h http.Header, want map[string]string, marker string) {
	t.Helper()
	for name, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, marker) {
				t.Errorf("upstream got the client's value in %s: %q", name, v)
			}
		}
		if looksLikeIdentity(name) {
			if w, ok := want[name]; !ok || len(vs) != 1 || vs[0] != w {
				t.Errorf("upstream %s = %q, want %q (set: %t)", name, vs, w, ok)
			}
		}
	}
	for name, w := range want {
		if got := h[name]; len(got) != 1 || got[0] != w {
			t.Errorf("upstream %s = %q, want [%q]", name, got, w)
		}
	}
}

func TestIdentityHeadersRawRequest(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	sess := testSession()
	cookie := e.mintSession(t, sess)
	var spoof, names []string
	for _, base := range spoofedHeaderNames {
		for _, sp := range spellings(base) {
			spoof = append(spoof, sp.name+": spoofed-"+sp.kind+"\r\n")
			names = append(names, sp.name)
		}
	}
	for _, tc := range []struct {
		name, path, cookie string
		want               map[string]string
	}{
		{"signed in", "/app", cookie, map[string]string{
			"X-Forwarded-User": "user-123", "X-Forwarded-Email": "ada@example.com",
			"X-Forwarded-Preferred-Username": "ada", "X-Forwarded-Groups": "staff,admins", "X-Forwarded-Idp": "default",
		}},
		{"skip-auth route", "/public/x", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := "GET " + tc.path + " HTTP/1.1\r\nHost: " + e.addr() + "\r\nAccept: application/json\r\n" +
				strings.Join(spoof, "") + "Connection: close, " + strings.Join(names, ", ") + "\r\n"
			if tc.cookie != "" {
				req += "Cookie: " + tc.cookie + "\r\n"
			}
			got := fromUpstream(t, rawHTTP(t, e.addr(), req+"\r\n"))
			checkIdentityHeaders(t, got.Header, tc.want, "spoofed-")
			checkClientAddr(t, got.Header, "127.0.0.1")
		})
	}
}

func TestIdentityHeadersInTrailers(t *testing.T) {
	e := newTestEnv(t, withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	cookie := e.mintSession(t, testSession())
	for _, tc := range []struct{ name, path, cookie string }{
		{"signed in", "/app", cookie},
		{"skip-auth route", "/public/x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := "POST " + tc.path + " HTTP/1.1\r\nHost: " + e.addr() + "\r\nAccept: application/json\r\n" +
				"Transfer-Encoding: chunked\r\nTrailer: X-Forwarded-User, X-Auth-Request-Email, X-Real-IP\r\nConnection: close\r\n"
			if tc.cookie != "" {
				req += "Cookie: " + tc.cookie + "\r\n"
			}
			req += "\r\n5\r\nhello\r\n0\r\nX-Forwarded-User: spoofed-trailer\r\nX-Auth-Request-Email: spoofed-trailer\r\nX-Real-IP: spoofed-trailer\r\n\r\n"
			got := fromUpstream(t, rawHTTP(t, e.addr(), req))
			for _, h := range []http.Header{got.Header, got.Trailer} {
				for name, vs := range h {
					if strings.Contains(strings.Join(vs, ","), "spoofed-") {
						t.Errorf("upstream got the client's trailer value in %s: %q", name, vs)
					}
				}
			}
		})
	}
}

func TestForwardedHeadersTrust(t *testing.T) {
	spoof := []string{
		"X-Forwarded-For", "6.6.6.6",
		"X-Forwarded-Host", "evil.example",
		"X-Forwarded-Proto", "https",
		"Forwarded", "for=6.6.6.6;host=evil.example;proto=https",
		"X-Real-IP", "7.7.7.7",
		"True-Client-IP", "7.7.7.7",
	}
	for _, tc := range []struct {
		name, trusted         string
		wantFor, wantHost     string
		wantProto, wantHostIs string
		wantRealIP            string
	}{
		{"untrusted client", "", "127.0.0.1", "", "http", "proxy", "127.0.0.1"},
		{"trusted proxy", "127.0.0.1/32", "6.6.6.6, 127.0.0.1", "evil.example", "https", "", "6.6.6.6"},
		{"trusted network elsewhere", "10.0.0.0/8", "127.0.0.1", "", "http", "proxy", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []envOption
			if tc.trusted != "" {
				opts = append(opts, withVar("AUTHPROXY_TRUSTED_PROXIES", tc.trusted))
			}
			e := newTestEnv(t, opts...)
			headers := append([]string{"Accept", "application/json", "Cookie", e.mintSession(t, testSession())}, spoof...)
			got := fromUpstream(t, e.request(t, noFollow(e.browser()), http.MethodGet, "/app", headers...))
			wantHost := tc.wantHost
			if tc.wantHostIs == "proxy" {
				wantHost = e.addr()
			}
			for name, want := range map[string]string{
				"X-Forwarded-For": tc.wantFor, "X-Forwarded-Host": wantHost, "X-Forwarded-Proto": tc.wantProto,
				"X-Real-Ip": tc.wantRealIP,
			} {
				if v := got.Header[name]; len(v) != 1 || v[0] != want {
					t.Errorf("upstream %s = %q, want [%q]", name, v, want)
				}
			}
			for _, name := range []string{"Forwarded", "True-Client-Ip"} {
				if v, ok := got.Header[name]; ok {
					t.Errorf("upstream got the client's %s %q", name, v)
				}
			}
		})
	}
}

// claimValues are claim values that must not be able to add, end or forge
// a header when they are forwarded, nor reach the upstream as another value.
var claimValues = []struct{ name, value string }{
	{"plain ASCII", "ada@example.com"},
	{"non-ASCII", "ünïcødé@exämple.com"},
	{"CJK", "山田太郎"},
	{"emoji", "ada 🚀"},
	{"CRLF header injection", "ada\r\nX-Injected: 1"},
	{"LF header injection", "ada\nX-Injected: 1"},
	{"CR header injection", "ada\rX-Injected: 1"},
	{"CRLF CRLF body injection", "ada\r\n\r\nGET /admin HTTP/1.1"},
	{"NUL", "ada\x00admin"},
	{"DEL", "ada\x7f"},
	{"line separator", "ada\u2028X-Injected: 1"},
	{"long non-ASCII", strings.Repeat("é", 300)},
	// Printable ASCII that an upstream would still read differently: by
	// decoding it as an encoded-word, or by trimming blanks.
	{"encoded-word look-alike", "=?utf-8?q?admin?="},
	{"base64 encoded-word look-alike", "=?utf-8?b?YWRtaW4=?="},
	{"leading space", " admin"},
	{"trailing space", "admin "},
	{"leading tab", "\tadmin"},
	{"tab inside", "ad\tmin"},
}

// checkForwardedValue fails unless got, as an HTTP server read it (blanks
// trimmed), is a valid header value that is v itself or its RFC 2047
// encoding.
func checkForwardedValue(t *testing.T, header string, got []string, v string) {
	t.Helper()
	if len(got) != 1 {
		t.Errorf("%s = %q, want one value", header, got)
		return
	}
	for i := 0; i < len(got[0]); i++ {
		if c := got[0][i]; (c < 0x20 && c != '\t') || c > 0x7e {
			t.Errorf("%s = %q: byte %#x is not printable ASCII", header, got[0], c)
			return
		}
	}
	dec, err := new(mime.WordDecoder).DecodeHeader(got[0])
	if err != nil || dec != v {
		t.Errorf("%s = %q decodes to %q (%v), want %q", header, got[0], dec, err, v)
	}
}

func TestClaimValuesEncoded(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range claimValues {
		t.Run(tc.name, func(t *testing.T) {
			sess := testSession()
			sess.User, sess.Email, sess.PreferredUsername = tc.value, tc.value, tc.value
			sess.Groups = []string{tc.value}
			cookie := e.mintSession(t, sess)

			got := fromUpstream(t, e.request(t, noFollow(e.browser()), http.MethodGet, "/app", "Accept", "application/json", "Cookie", cookie))
			for _, name := range []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups"} {
				checkForwardedValue(t, "upstream "+name, got.Header[name], tc.value)
			}
			if _, ok := got.Header["X-Injected"]; ok {
				t.Errorf("upstream got an injected header")
			}

			fa := e.request(t, noFollow(e.browser()), http.MethodGet, authPath, "Cookie", cookie)
			if fa.Status != http.StatusAccepted {
				t.Fatalf("%s: got %d, want 202", authPath, fa.Status)
			}
			for _, name := range []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Preferred-Username", "X-Auth-Request-Groups"} {
				checkForwardedValue(t, authPath+" "+name, fa.Header.Values(name), tc.value)
			}
			if _, ok := fa.Header["X-Injected"]; ok {
				t.Errorf("%s answer carries an injected header", authPath)
			}
		})
	}
}

func TestIsIdentityHeader(t *testing.T) {
	for _, base := range identityHeaderNames {
		for _, sp := range spellings(base) {
			if !isIdentityHeader(sp.name) {
				t.Errorf("isIdentityHeader(%q) = false, want true", sp.name)
			}
		}
	}
	for _, name := range []string{
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Users",
		"X-Forwarded-User-Agent", "X-Auth-Request", "Authorization", "Cookie", "X-Request-Id",
	} {
		if isIdentityHeader(name) {
			t.Errorf("isIdentityHeader(%q) = true, want false", name)
		}
	}
}

func TestStripIdentityHeadersBeforeEveryHandler(t *testing.T) {
	var seen http.Header
	h := (&Server{}).stripIdentityHeaders(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	req := httptest.NewRequest(http.MethodGet, "/oauth2/userinfo", nil)
	for _, base := range spoofedHeaderNames {
		for _, sp := range spellings(base) {
			req.Header[sp.name] = []string{"spoofed"}
		}
	}
	req.Header.Set("X-Request-Id", "kept")
	h.ServeHTTP(httptest.NewRecorder(), req)
	for name := range seen {
		if looksLikeIdentity(name) || looksLikeClientAddr(name) {
			t.Errorf("handler saw %s", name)
		}
	}
	// The canonical X-Forwarded-* stay for the handlers, which believe
	// them from trusted proxies only; every other spelling goes.
	var forwarded []string
	for name := range seen {
		if strings.HasPrefix(foldHeaderName(name), "x-forwarded-") {
			forwarded = append(forwarded, name)
		}
	}
	slices.Sort(forwarded)
	if want := []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}; !slices.Equal(forwarded, want) {
		t.Errorf("handler saw X-Forwarded-* %q, want %q", forwarded, want)
	}
	if seen.Get("X-Request-Id") != "kept" {
		t.Errorf("X-Request-Id was removed")
	}
}

func FuzzIdentityHeaderStrip(f *testing.F) {
	for _, base := range identityHeaderNames {
		for _, sp := range spellings(base) {
			f.Add(sp.name+"\nX-Request-Id", "v")
		}
	}
	f.Add("x_auth_request_\nX-Forwarded-For\nx-forwarded-user ", "a\r\nb")
	f.Add("X-Authproxy-Secret\nX-FORWARDED-user\n", "")
	f.Add("x_real_ip\nTRUE-CLIENT-IP\nX-Forwarded-For\nx_forwarded_for\nforwarded", "6.6.6.6")
	f.Fuzz(func(t *testing.T, names, value string) {
		h := http.Header{}
		for n := range strings.SplitSeq(names, "\n") {
			h[n] = append(h[n], value)
			h[http.CanonicalHeaderKey(n)] = append(h[http.CanonicalHeaderKey(n)], value)
		}
		before := h.Clone()
		deleteIdentityHeaders(h)
		for n := range h {
			if looksLikeIdentity(n) || looksLikeClientAddr(n) {
				t.Errorf("identity or client address header %q left in place", n)
			}
		}
		for n, vs := range before {
			// Names the test does not read as identity or client address
			// headers stay, unless they are ASCII names authproxy claims for
			// itself or X-Forwarded-* in a spelling of the client's.
			f := foldHeaderName(n)
			if looksLikeIdentity(n) || looksLikeClientAddr(n) || !utf8.ValidString(n) || strings.HasPrefix(f, "x-authproxy-") ||
				strings.HasPrefix(f, "x-forwarded-") && oddSpelling(n) {
				continue
			}
			if isASCII(n) && len(h[n]) != len(vs) {
				t.Errorf("header %q removed", n)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestURLHeadersOnlyFromTrustedProxies: the headers frameworks build links
// and redirects from (X-Forwarded-Port, -Prefix, -Ssl, X-Original-Host, …)
// reach the upstream only from a trusted proxy, and only in their canonical
// spelling; a client's copies, in any spelling, never do.
func TestURLHeadersOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name, trusted string
		wantCanonical bool
	}{
		{"untrusted client", "", false},
		{"trusted proxy", "127.0.0.1/32", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []envOption
			if tc.trusted != "" {
				opts = append(opts, withVar("AUTHPROXY_TRUSTED_PROXIES", tc.trusted))
			}
			e := newTestEnv(t, opts...)
			for _, name := range urlHeaders {
				underscored := strings.ReplaceAll(strings.ToLower(name), "-", "_")
				got := fromUpstream(t, e.request(t, noFollow(e.browser()), http.MethodGet, "/app",
					"Accept", "application/json", "Cookie", e.mintSession(t, testSession()),
					name, "spoofed", underscored, "spoofed-too"))
				if v, ok := got.Header[name]; ok != tc.wantCanonical || ok && (len(v) != 1 || v[0] != "spoofed") {
					t.Errorf("upstream %s = %q, want it passed: %v", name, v, tc.wantCanonical)
				}
				for h, v := range got.Header {
					if strings.Contains(h, "_") {
						t.Errorf("upstream got %s: %q", h, v)
					}
				}
			}
		})
	}
}

// TestSetHeaderNamesAreCanonical: setHeader uses its name as the map key
// as it is, so every name it is given must already be canonical.
func TestSetHeaderNamesAreCanonical(t *testing.T) {
	names := []string{headerUser, headerEmail, headerPreferredUsername, headerGroups, headerAccessToken, headerUpstreamJWT,
		"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Preferred-Username", "X-Auth-Request-Groups",
		"X-Auth-Request-Access-Token", "X-Real-Ip"}
	names = append(names, urlHeaders...)
	cfg, err := LoadConfig(mapLookup(map[string]string{
		"AUTHPROXY_UPSTREAM": "http://127.0.0.1:8080", "AUTHPROXY_OIDC_ISSUER": "http://127.0.0.1:1", "AUTHPROXY_CLIENT_ID": "c",
		"AUTHPROXY_REDIRECT_URL": "http://app/oauth2/callback", "AUTHPROXY_COOKIE_SECRET": testCookieSecret,
		"AUTHPROXY_CLAIM_HEADERS": "x-tenant=tenant, X-DEPT-NAME=dept",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range cfg.ClaimHeaders {
		names = append(names, ch.Header)
	}
	for _, n := range names {
		if c := http.CanonicalHeaderKey(n); c != n {
			t.Errorf("%q is not canonical (%q)", n, c)
		}
	}
}
