package authproxy

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// Identity headers authproxy sends upstream. The upstream trusts them, so
// every client-sent look-alike is deleted before they are set.
const (
	headerUser              = "X-Forwarded-User"
	headerEmail             = "X-Forwarded-Email"
	headerPreferredUsername = "X-Forwarded-Preferred-Username"
	headerGroups            = "X-Forwarded-Groups"
	headerAccessToken       = "X-Forwarded-Access-Token"
	headerIdP               = "X-Forwarded-Idp" // canonical form
)

// identityHeaders are the normalized names (lower case, "_" read as "-") of
// the headers a client may never send. The X-Auth-Request- family is matched
// by prefix in isIdentityHeader.
var identityHeaders = map[string]bool{
	"x-forwarded-user":               true,
	"x-forwarded-email":              true,
	"x-forwarded-preferred-username": true,
	"x-forwarded-groups":             true,
	"x-forwarded-access-token":       true,
	"x-forwarded-idp":                true,
}

// overrideHeaders are client headers some frameworks route or dispatch by
// instead of the request line (IIS and Symfony's X-Original-URL, Rails' and
// Laravel's method overrides): the policy judges the request line, so they
// never reach the upstream.
var overrideHeaders = map[string]bool{
	"x-original-url":         true,
	"x-rewrite-url":          true,
	"x-http-method-override": true,
	"x-http-method":          true,
	"x-method-override":      true,
}

// clientAddrHeaders are the normalized names of headers in which one proxy
// or CDN or another tells an app the client's address. Apps believe them
// (logs, allow-lists, rate limits), so a client's never pass: authproxy
// sets X-Real-IP itself, to the address it trusts (clientAddr).
var clientAddrHeaders = map[string]bool{
	"x-real-ip":                true,
	"true-client-ip":           true,
	"cf-connecting-ip":         true,
	"fastly-client-ip":         true,
	"x-client-ip":              true,
	"x-cluster-client-ip":      true,
	"x-original-forwarded-for": true,
	"x-envoy-external-address": true,
	"forwarded":                true, // RFC 7239
}

// forwardedHeaders are the headers in which a proxy tells an app the
// client's address (X-Forwarded-For) or the URL the client used (its host,
// scheme, port and path prefix, which frameworks build links and redirects
// from), by normalized name. They are believed from trusted proxies in
// their canonical spelling only (rewrite, clientAddr); another spelling
// (X_Forwarded_For) is a way past that check into apps that read "_" as
// "-", and is deleted.
var forwardedHeaders = map[string]string{
	"x-forwarded-for":      "X-Forwarded-For",
	"x-forwarded-host":     "X-Forwarded-Host",
	"x-forwarded-proto":    "X-Forwarded-Proto",
	"x-forwarded-port":     "X-Forwarded-Port",
	"x-forwarded-prefix":   "X-Forwarded-Prefix",
	"x-forwarded-server":   "X-Forwarded-Server",
	"x-forwarded-ssl":      "X-Forwarded-Ssl",
	"x-forwarded-scheme":   "X-Forwarded-Scheme",
	"x-forwarded-protocol": "X-Forwarded-Protocol",
	"x-url-scheme":         "X-Url-Scheme",
	"front-end-https":      "Front-End-Https",
	"x-original-host":      "X-Original-Host",
	"x-host":               "X-Host",
}

// urlHeaders are the canonical forwardedHeaders that rewrite does not set
// itself: they reach the upstream only from a trusted proxy.
var urlHeaders = []string{
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
	"X-Forwarded-Protocol", "X-Url-Scheme", "Front-End-Https", "X-Original-Host", "X-Host",
}

// isClientAddrHeader reports whether a header name, in any case and with
// "_" standing for "-", is one of clientAddrHeaders, or X-Forwarded-For,
// -Host or -Proto in a spelling other than the canonical one.
func isClientAddrHeader(name string) bool {
	const longest = len("x-original-forwarded-for")
	if len(name) < len("x-host") || len(name) > longest {
		return false
	}
	switch name[0] | 0x20 {
	case 'x', 't', 'c', 'f':
	default:
		return false
	}
	var buf [longest]byte
	b := appendFolded(buf[:0], name)
	if clientAddrHeaders[string(b)] {
		return true
	}
	canonical, ok := forwardedHeaders[string(b)]
	return ok && name != canonical
}

// isIdentityHeader reports whether a header name, in any case and with "_"
// standing for "-", could be mistaken for one authproxy vouches for.
func isIdentityHeader(name string) bool {
	// Every such name starts with "x-" or "x_": most headers are ruled out
	// by their first byte, without allocating.
	if len(name) < 2 || name[0]|0x20 != 'x' || name[1] != '-' && name[1] != '_' {
		return false
	}
	var buf [64]byte
	if len(name) > len(buf) {
		n := normalizeHeaderName(name)
		return strings.HasPrefix(n, "x-auth-request-") || strings.HasPrefix(n, "x-authproxy-")
	}
	b := appendFolded(buf[:0], name)
	// string(b) in a map index or comparison does not allocate.
	return identityHeaders[string(b)] || overrideHeaders[string(b)] ||
		len(b) >= 15 && string(b[:15]) == "x-auth-request-" || len(b) >= 12 && string(b[:12]) == "x-authproxy-"
}

// appendFolded appends name to dst in the form normalizeHeaderName
// gives, without allocating when dst has room.
func appendFolded(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		dst = append(dst, c)
	}
	return dst
}

// normalizeHeaderName is the form header names are compared in: lower
// case, with "_" read as "-" (some servers and frameworks do).
func normalizeHeaderName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// deleteIdentityHeaders removes every identity look-alike from h: the
// built-in identity headers, the extra names (normalized) in claims, and
// the client address headers.
func deleteIdentityHeaders(h http.Header, claims ...map[string]bool) {
	for name := range h {
		if isIdentityHeader(name) || isClientAddrHeader(name) || len(claims) > 0 && len(claims[0]) > 0 && claims[0][normalizeHeaderName(name)] {
			delete(h, name)
		}
	}
}

// stripIdentityHeaders is middleware that removes client-sent identity
// headers, AUTHPROXY_CLAIM_HEADERS included, and client address headers
// from every request before any handler sees it.
func (s *Server) stripIdentityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deleteIdentityHeaders(r.Header, s.current(r.Context()).claimHeaderNames)
		next.ServeHTTP(w, r)
	})
}

// setHeader sets a header to v, or deletes it when v is empty. Values that
// are not plain printable ASCII (control or non-ASCII bytes, leading or
// trailing blanks, or "=?") are sent as one RFC 2047 encoded-word
// (=?utf-8?b?…?=), so that no byte of a claim can end or forge a header.
// name must be in canonical form (http.CanonicalHeaderKey): it is used as
// the map key as it is, which saves canonicalizing it on every request.
func setHeader(h http.Header, name, v string) {
	if v == "" {
		delete(h, name)
		return
	}
	h[name] = []string{encodeHeaderValue(v)}
}

// headerValues hands out one-value header slices from one backing array
// (a request's requestInfo.headerBuf), so that the few headers set on
// every proxied request cost no allocation of their own. Each slice it gives has len == cap: an Add to
// it copies rather than writing into the next header's value.
type headerValues struct{ buf []string }

// set sets h[name] to the single value v (name canonical), as is.
func (hv *headerValues) set(h http.Header, name, v string) {
	hv.buf = append(hv.buf, v)
	n := len(hv.buf)
	h[name] = hv.buf[n-1 : n : n]
}

// setEncoded is setHeader from hv's array: v encoded, or h[name] deleted
// when v is empty.
func (hv *headerValues) setEncoded(h http.Header, name, v string) {
	if v == "" {
		delete(h, name)
		return
	}
	hv.set(h, name, encodeHeaderValue(v))
}

func encodeHeaderValue(v string) string {
	plain := v[0] != ' ' && v[len(v)-1] != ' ' && !strings.Contains(v, "=?")
	for i := 0; plain && i < len(v); i++ {
		plain = v[i] >= 0x21 && v[i] <= 0x7e || v[i] == ' '
	}
	if plain {
		return v
	}
	// Encoded even when mime's encoders would leave it alone (ASCII that
	// looks like an encoded-word, or has surrounding blanks), so that an
	// upstream that decodes or trims reads exactly the claim's value.
	return "=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
}

// joinGroups joins groups with commas, the form X-Forwarded-Groups takes.
func joinGroups(groups []string) string { return strings.Join(groups, ",") }
