package policy

import (
	"errors"
	"net/url"
	"path"
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
		{"raw UTF-8", "/café", "/café"},
		{"escaped space", "/a%20b", "/a b"},
		{"plus stays plus", "/a+b", "/a+b"},
		{"escaped question mark is data", "/a%3Fb", "/a?b"},
		{"semicolon kept", "/a;b", "/a;b"},
		{"dots starting a segment", "/a/..b/c", "/a/..b/c"},
		{"dots ending the last name", "/a/b..", "/a/b.."},
		{"trailing dot kept", "/admin.", "/admin."},
		{"trailing space kept", "/admin%20", "/admin "},
		{"last segment of spaces", "/a/%20", "/a/ "},
		{"dot-file", "/.well-known/x", "/.well-known/x"},
		{"escaped percent", "/100%25", "/100%"},
		{"escaped percent before non-hex", "/50%25off/x", "/50%off/x"},
		{"parameter in the last segment", "/app/page.jsp;jsessionid=x", "/app/page.jsp;jsessionid=x"},
		{"trailing dot in the last segment", "/a/b.", "/a/b."},
		{"case kept", "/PUBLIC/x", "/PUBLIC/x"},
		{"full-width letter kept", "/ａdmin", "/ａdmin"},

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
		{"three dots", "/a/...", ""},
		{"double-escaped dots", "/%252e%252e/", ""},
		{"double-escaped slash", "/a%252fb", ""},
		{"double-escaped letter", "/%2561dmin/", ""},
		{"parameter before the last segment", "/admin;x/users", ""},
		{"encoded parameter before the last segment", "/admin%3bx/users", ""},
		{"trailing dot before the last segment", "/admin./users", ""},
		{"trailing dots before the last segment", "/a/b../c", ""},
		{"trailing space before the last segment", "/admin%20/users", ""},
		{"segment of spaces before the last", "/%20/admin/x", ""},
		{"trailing dot before a trailing slash", "/admin./", ""},
		{"dot-dot space", "/a/..%20/b", ""},
		{"space dot", "/a/%20./b", ""},
		{"encoded dot", "/%2e/a", ""},
		{"encoded dot-dot", "/%2e%2e/a", ""},
		{"encoded dot-dot, upper case", "/%2E%2E/a", ""},
		{"half-encoded dot-dot", "/.%2E/a", ""},
		{"dot-dot-semicolon", "/..;/a", ""},
		{"dot-semicolon", "/.;/a", ""},
		{"dot-semicolon with parameter", "/.;x/a", ""},
		{"dot-dot with path parameter", "/..;jsessionid=x/a", ""},
		{"encoded dot-dot-semicolon", "/a/%2e%2e;/b", ""},
		{"dot-dot and encoded semicolon", "/a/..%3b/b", ""},
		{"full-width dots", "/a/%EF%BC%8E%EF%BC%8E/b", ""},
		{"two dot leader", "/a/\u2025/b", ""},
		{"full-width slash", "/a%EF%BC%8Fb", ""},
		{"full-width backslash", "/a\uff3cb", ""},
		{"small backslash", "/a\ufe68b", ""},
		{"overlong dot", "/%c0%ae%c0%ae/a", ""},
		{"overlong slash", "/a%c0%afb", ""},
		{"three-byte overlong dot", "/%e0%80%ae%e0%80%ae/a", ""},
		{"Latin-1 byte", "/caf%E9", ""},
		{"encoded NUL", "/a%00b", ""},
		{"encoded CRLF", "/a%0d%0ab", ""},
		{"encoded newline", "/a%0a", ""},
		{"encoded tab", "/a%09b", ""},
		{"encoded DEL", "/a%7fb", ""},
		{"encoded C1 control", "/a%C2%85b", ""},
		{"raw control", "/a\x01", ""},
		{"raw NUL", "/a\x00", ""},
		{"bad escape", "/a%zz", ""},
		{"truncated escape", "/a%", ""},
		{"half escape", "/a%2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CleanPath(tc.in)
			switch {
			case tc.want == "" && err == nil:
				t.Errorf("CleanPath(%q) = %q, want it refused", tc.in, got)
			case tc.want == "" && !errors.Is(err, ErrAmbiguousPath):
				t.Errorf("CleanPath(%q) error %v does not wrap ErrAmbiguousPath", tc.in, err)
			case tc.want != "" && (err != nil || got != tc.want):
				t.Errorf("CleanPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestValidMethod(t *testing.T) {
	for _, tc := range []struct {
		m    string
		want bool
	}{
		{"GET", true}, {"HEAD", true}, {"POST", true}, {"PROPFIND", true}, {"M-SEARCH", true},
		{"BREW2", true}, {"X_Y.Z~", true},
		{"", false}, {"get", false}, {"Get", false}, {"POST ", false}, {" GET", false},
		{"GE T", false}, {"GET\x00", false}, {"GET/1", false}, {"G(ET)", false}, {"GÉT", false},
	} {
		if got := ValidMethod(tc.m); got != tc.want {
			t.Errorf("ValidMethod(%q) = %t, want %t", tc.m, got, tc.want)
		}
	}
}

// FuzzCleanPath checks that whatever CleanPath accepts is clean, stable,
// and read the same by an upstream that decodes once and normalises.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"", "/", "/a//b/", "/public/../secret", "/public/%2e%2e/secret", "/public/..;/secret",
		"/public%2fsecret", "//public/x", `/public\secret`, "/%252e%252e/", "/a;b/.;/c", "/caf%C3%A9/",
		"/%", "/a/%2E./", "/public/./x", "/..%00/", "/%c0%ae/", "/a/.../b", "/%EF%BC%8E/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		clean, err := CleanPath(escaped)
		if err != nil {
			if !errors.Is(err, ErrAmbiguousPath) {
				t.Fatalf("CleanPath(%q): error %v does not wrap ErrAmbiguousPath", escaped, err)
			}
			return
		}
		if !strings.HasPrefix(clean, "/") || strings.Contains(clean, "//") || strings.ContainsRune(clean, '\\') {
			t.Fatalf("CleanPath(%q) = %q: not clean", escaped, clean)
		}
		for seg := range strings.SplitSeq(clean, "/") {
			bare, _, _ := strings.Cut(seg, ";")
			if bare == "." || bare == ".." || strings.Trim(bare, ". ") == "" && strings.Contains(bare, ".") {
				t.Fatalf("CleanPath(%q) = %q: has a dot segment", escaped, clean)
			}
		}
		for _, r := range clean {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("CleanPath(%q) = %q: has a control character", escaped, clean)
			}
		}
		// An upstream that decodes the path once and normalises it reads
		// the path the rules were matched on.
		if escaped != "" {
			dec, derr := url.PathUnescape(escaped)
			if derr != nil {
				t.Fatalf("CleanPath(%q) accepted a path that does not decode: %v", escaped, derr)
			}
			up := path.Clean(dec)
			if strings.HasSuffix(dec, "/") && up != "/" {
				up += "/"
			}
			if up != clean {
				t.Fatalf("CleanPath(%q) = %q, but an upstream reads %q", escaped, clean, up)
			}
		}
		// Cleaning is idempotent: on the result itself (when decoding it
		// again changes nothing) and on its escaped form.
		if !strings.Contains(clean, "%") {
			if again, err := CleanPath(clean); err != nil || again != clean {
				t.Fatalf("CleanPath(%q) = %q, but CleanPath(%q) = %q, %v", escaped, clean, clean, again, err)
			}
		}
		if again, err := CleanPath((&url.URL{Path: clean}).EscapedPath()); err != nil || again != clean {
			t.Fatalf("CleanPath(%q) = %q, but cleaning its escaped form gives %q, %v", escaped, clean, again, err)
		}
	})
}
