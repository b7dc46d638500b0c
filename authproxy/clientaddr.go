package authproxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trustedProxies are the networks (AUTHPROXY_TRUSTED_PROXIES) whose
// X-Forwarded-* headers are believed.
type trustedProxies []netip.Prefix

// contains reports whether the peer address (host:port, as in
// http.Request.RemoteAddr) is a trusted proxy.
func (t trustedProxies) contains(remoteAddr string) bool {
	if len(t) == 0 {
		return false
	}
	addr, ok := parseHop(remoteAddr)
	return ok && t.has(addr)
}

// has reports whether addr is in one of the trusted networks.
func (t trustedProxies) has(addr netip.Addr) bool {
	for _, p := range t {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr is the one definition of the client's address that authproxy
// acts on: the proxy's X-Real-IP and the rate limiter both use it. It is
// the TCP peer, unless the peer is a trusted proxy; then X-Forwarded-For is
// walked from the right (each hop appends the address it saw), past every
// address that is itself a trusted proxy, and the first one that is not is
// the client. The left-most entries are never believed as such: the
// client writes them. An entry that is not an address ends the walk at the
// trusted hop before it, as does the end of the list. The zero Addr means
// the peer's address could not be read (no real listener gives one).
func (t trustedProxies) clientAddr(r *http.Request) netip.Addr {
	addr, ok := parseHop(r.RemoteAddr)
	if !ok || len(t) == 0 || !t.has(addr) {
		return addr
	}
	lines := r.Header["X-Forwarded-For"]
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for rest != "" {
			item := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				item, rest = rest[j+1:], rest[:j]
			} else {
				rest = ""
			}
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			hop, ok := parseHop(item)
			if !ok {
				return addr
			}
			if addr = hop; !t.has(addr) {
				return addr
			}
		}
	}
	return addr
}

// parseHop reads one address as peers and proxies write it: an IP, or
// host:port with an IP host ("[::1]:80"). IPv4-mapped IPv6 addresses are
// read as IPv4, and zones are dropped.
func parseHop(s string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		host, _, serr := net.SplitHostPort(s)
		if serr != nil {
			return netip.Addr{}, false
		}
		if addr, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}, false
		}
	}
	return addr.Unmap().WithZone(""), true
}
