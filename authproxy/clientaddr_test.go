package authproxy

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	trusted := trustedProxies{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("fd00::/8"),
	}
	for _, tc := range []struct {
		name    string
		trusted trustedProxies
		peer    string
		xff     []string // X-Forwarded-For lines, as received
		want    string   // "" for the zero Addr
	}{
		{"no trusted proxies: the peer", nil, "203.0.113.9:5000", []string{"6.6.6.6"}, "203.0.113.9"},
		{"untrusted peer's XFF ignored", trusted, "203.0.113.9:5000", []string{"6.6.6.6"}, "203.0.113.9"},
		{"untrusted peer, IPv6", trusted, "[2001:db8::1]:443", []string{"6.6.6.6"}, "2001:db8::1"},
		{"trusted peer without XFF: the peer", trusted, "10.0.0.2:80", nil, "10.0.0.2"},
		{"trusted peer: right-most entry", trusted, "10.0.0.2:80", []string{"198.51.100.4"}, "198.51.100.4"},
		{"client's left-most entries not believed", trusted, "10.0.0.2:80", []string{"1.1.1.1, 2.2.2.2, 198.51.100.4"}, "198.51.100.4"},
		{"trusted hops skipped from the right", trusted, "10.0.0.2:80", []string{"1.1.1.1, 198.51.100.4, 10.9.9.9, 192.168.1.7"}, "198.51.100.4"},
		{"several header lines: the last is right-most", trusted, "10.0.0.2:80", []string{"1.1.1.1, 198.51.100.4", "10.1.1.1"}, "198.51.100.4"},
		{"every entry trusted: the left-most", trusted, "10.0.0.2:80", []string{"10.3.3.3, 10.4.4.4"}, "10.3.3.3"},
		{"garbage ends the walk at the trusted hop", trusted, "10.0.0.2:80", []string{"1.1.1.1, not-an-ip, 10.4.4.4"}, "10.4.4.4"},
		{"garbage right-most: the peer", trusted, "10.0.0.2:80", []string{"1.1.1.1, unknown"}, "10.0.0.2"},
		{"empty items skipped", trusted, "10.0.0.2:80", []string{"198.51.100.4, , ,"}, "198.51.100.4"},
		{"blanks trimmed", trusted, "10.0.0.2:80", []string{"  198.51.100.4  "}, "198.51.100.4"},
		{"entry with a port", trusted, "10.0.0.2:80", []string{"198.51.100.4:61000"}, "198.51.100.4"},
		{"IPv6 entry with a port", trusted, "10.0.0.2:80", []string{"[2001:db8::7]:61000"}, "2001:db8::7"},
		{"IPv6 entry", trusted, "[fd00::1]:80", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv4-mapped peer read as IPv4", trusted, "[::ffff:10.0.0.2]:80", []string{"::ffff:198.51.100.4"}, "198.51.100.4"},
		{"zone dropped", nil, "[fe80::1%eth0]:80", nil, "fe80::1"},
		{"unreadable peer", trusted, "@", []string{"198.51.100.4"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			if tc.xff != nil {
				r.Header["X-Forwarded-For"] = tc.xff
			}
			got := tc.trusted.clientAddr(r)
			if tc.want == "" {
				if got.IsValid() {
					t.Errorf("clientAddr = %s, want the zero Addr", got)
				}
				return
			}
			if got != netip.MustParseAddr(tc.want) {
				t.Errorf("clientAddr = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIsClientAddrHeader(t *testing.T) {
	for _, base := range clientAddrHeaderNames {
		for _, sp := range spellings(base) {
			// X-Forwarded-* is kept in its canonical spelling only.
			want := !strings.HasPrefix(foldHeaderName(sp.name), "x-forwarded-") || oddSpelling(sp.name)
			if got := isClientAddrHeader(sp.name); got != want {
				t.Errorf("isClientAddrHeader(%q) = %t, want %t", sp.name, got, want)
			}
		}
	}
	for _, name := range []string{
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IPs", "Forwarded-For", "Cookie",
		"Content-Type", "Cache-Control", "Connection", "Client-IP-Hint", "X-Request-Id", "Traceparent",
	} {
		if isClientAddrHeader(name) {
			t.Errorf("isClientAddrHeader(%q) = true, want false", name)
		}
	}
}
