package authproxy

import (
	"net/url"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string // want "" means refused
	}{
		{"empty", "", "/"},
		{"root", "/", "/"},
		{"one segment", "/a", "/a"},
		{"trailing slash kept", "/a/", "/a/"},
		{"doubled slash", "/a//b", "/a/b"},
		{"doubled leading slash", "//a", "/a"},
		{"only slashes", "///", "/"},
		{"doubled trailing slash", "/a/b//", "/a/b/"},
		{"escaped letter", "/%61", "/a"},
		{"escaped UTF-8", "/caf%C3%A9", "/café"},
		{"escaped space", "/a%20b", "/a b"},
		{"semicolon kept", "/a;b", "/a;b"},
		{"dots inside a segment", "/a/..b", "/a/..b"},
		{"dots ending a segment", "/a/b..", "/a/b.."},
		{"three dots", "/a/...", "/a/..."},
		{"dot-file", "/.well-known/x", "/.well-known/x"},
		{"double-escaped dots stay data", "/%252e%252e/", "/%2e%2e/"},

		{"relative", "a", ""},
		{"asterisk", "*", ""},
		{"absolute URL", "http://x/a", ""},
		{"backslash", `/a\b`, ""},
		{"encoded slash", "/a%2fb", ""},
		{"encoded slash, upper case", "/a%2Fb", ""},
		{"encoded backslash", "/a%5cb", ""},
		{"encoded backslash, upper case", "/a%5Cb", ""},
		{"dot", "/.", ""},
		{"leading dot segment", "/./a", ""},
		{"trailing dot segment", "/a/.", ""},
		{"trailing dot-dot", "/a/..", ""},
		{"root dot-dot", "/..", ""},
		{"inner dot-dot", "/a/../b", ""},
		{"encoded dot", "/%2e/a", ""},
		{"encoded dot-dot", "/%2e%2e/a", ""},
		{"half-encoded dot-dot", "/.%2E/a", ""},
		{"dot-dot-semicolon", "/..;/a", ""},
		{"dot-semicolon", "/.;/a", ""},
		{"dot-dot with path parameter", "/..;jsessionid=x/a", ""},
		{"encoded dot-dot-semicolon", "/a/%2e%2e;/b", ""},
		{"encoded NUL", "/a%00b", ""},
		{"encoded CRLF", "/a%0d%0ab", ""},
		{"encoded tab", "/a%09b", ""},
		{"encoded DEL", "/a%7fb", ""},
		{"raw control", "/a\x01", ""},
		{"bad escape", "/a%zz", ""},
		{"truncated escape", "/a%", ""},
		{"half escape", "/a%2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cleanPath(tc.in)
			switch {
			case tc.want == "" && err == nil:
				t.Errorf("cleanPath(%q) = %q, want it refused", tc.in, got)
			case tc.want != "" && (err != nil || got != tc.want):
				t.Errorf("cleanPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestRouteMatch(t *testing.T) {
	routes := []Route{{"GET", "/healthz"}, {"", "/public/"}}
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/healthz", true},
		{"HEAD", "/healthz", false},
		{"GET", "/healthz/", false},
		{"GET", "/healthzz", false},
		{"POST", "/public/", true},
		{"GET", "/public/a/b", true},
		{"GET", "/public", false},
		{"GET", "/publicity", false},
		{"GET", "/Public/a", false},
	} {
		got := false
		for _, rt := range routes {
			got = got || rt.Match(tc.method, tc.path)
		}
		if got != tc.want {
			t.Errorf("%s %s: matched %t, want %t", tc.method, tc.path, got, tc.want)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"", "/", "/a//b/", "/public/../secret", "/public/%2e%2e/secret", "/public/..;/secret",
		"/public%2fsecret", "//public/x", `/public\secret`, "/%252e%252e/", "/a;b/.;/c", "/caf%C3%A9/",
		"/%", "/a/%2E./", "/public/./x", "/..%00/",
	} {
		f.Add(s)
	}
	routes := []Route{{"", "/public/"}, {"GET", "/healthz2"}, {"", "/a;b/"}}
	f.Fuzz(func(t *testing.T, escaped string) {
		clean, err := cleanPath(escaped)
		if err != nil {
			return
		}
		if !strings.HasPrefix(clean, "/") || strings.Contains(clean, "//") || strings.ContainsAny(clean, "\\") {
			t.Fatalf("cleanPath(%q) = %q: not clean", escaped, clean)
		}
		for seg := range strings.SplitSeq(clean, "/") {
			bare, _, _ := strings.Cut(seg, ";")
			if bare == "." || bare == ".." {
				t.Fatalf("cleanPath(%q) = %q: has a dot segment", escaped, clean)
			}
		}
		for _, r := range clean {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("cleanPath(%q) = %q: has a control character", escaped, clean)
			}
		}

		// An upstream that decodes the path once and normalizes it reads
		// the same path that routes were matched on.
		dec, derr := url.PathUnescape(escaped)
		if derr != nil {
			t.Fatalf("cleanPath(%q) accepted a path that does not decode: %v", escaped, derr)
		}
		if up := cleanKeepSlash(dec); escaped != "" && up != clean {
			t.Fatalf("cleanPath(%q) = %q, but an upstream reads %q", escaped, clean, up)
		}

		// The clean form is stable: escaping and cleaning it again gives it
		// back, so every route matches both alike.
		again, err := cleanPath((&url.URL{Path: clean}).EscapedPath())
		if err != nil || again != clean {
			t.Fatalf("cleanPath(%q) = %q, but cleaning its escaped form gives %q, %v", escaped, clean, again, err)
		}
		for _, rt := range routes {
			for _, m := range []string{"GET", "POST"} {
				if rt.Match(m, clean) != rt.Match(m, again) {
					t.Fatalf("route %v matches %q and %q differently", rt, clean, again)
				}
			}
		}
	})
}
