package authproxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestSafeRedirect(t *testing.T) {
	long := "/" + strings.Repeat("a", 2047)
	for _, tc := range []struct {
		name, rd string
		kept     bool // false: falls back to "/"
	}{
		{"root", "/", true},
		{"path", "/a/b", true},
		{"path and query", "/a/b?c=d&e=f", true},
		{"fragment", "/a#frag", true},
		{"URL in the query", "/a?next=https://evil.example//x", true},
		{"at sign in the path", "/@evil.example", true},
		{"encoded slashes after the first segment", "/a/%2F%2Fevil.example", true},
		{"double-encoded slashes", "/%252F%252Fevil.example", true},
		{"2048 bytes", long, true},

		{"empty", "", false},
		{"relative", "a/b", false},
		{"bare host", "evil.example", false},
		{"scheme-relative", "//evil.example", false},
		{"triple slash", "///evil.example", false},
		{"slash backslash", `/\evil.example`, false},
		{"double backslash", `\\evil.example`, false},
		{"slash backslash slash", `/\/evil.example`, false},
		{"absolute https", "https://evil.example", false},
		{"absolute http without slashes", "http:evil.example", false},
		{"absolute http with one slash", "http:/evil.example", false},
		{"javascript", "javascript:alert(1)", false},
		{"javascript, mixed case", "JaVaScRiPt:alert(1)", false},
		{"data", "data:text/html,<script>alert(1)</script>", false},
		{"encoded slashes", "/%2F%2Fevil.example", false},
		{"encoded slashes, lower case", "/%2f%2fevil.example", false},
		{"encoded backslash", "/%5Cevil.example", false},
		{"encoded backslash, lower case", "/%5cevil.example", false},
		{"encoded slash then backslash", "/%2F%5Cevil.example", false},
		{"tab", "\t", false},
		{"slash tab slash", "/\t/evil.example", false},
		{"slash newline slash", "/\n/evil.example", false},
		{"slash CR slash", "/\r/evil.example", false},
		{"leading space", " /evil.example", false},
		{"space inside", "/ /evil.example", false},
		{"NUL", "/\x00", false},
		{"DEL", "/\x7f", false},
		{"userinfo, scheme-relative", "//user@evil.example", false},
		{"userinfo, absolute", "https://app.example.com@evil.example/", false},
		{"userinfo after backslash", `/\user@evil.example`, false},
		{"over-long", long + "a", false},
		{"non-ASCII", "/é", false},
		{"non-ASCII fullwidth solidus", "/／evil.example", false},
		{"bad escape", "/%", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := "/"
			if tc.kept {
				want = tc.rd
			}
			if got := safeRedirect(tc.rd); got != want {
				t.Errorf("safeRedirect(%q) = %q, want %q", tc.rd, got, want)
			}
		})
	}
}

// browserHost returns the host a browser on https://app.example.com/x/
// ends up on when sent to location: tabs and newlines are dropped and "\"
// read as "/", as WHATWG URL parsing does for http(s).
func browserHost(location string) (string, bool) {
	loc := strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, strings.TrimSpace(location))
	ref, err := url.Parse(loc)
	if err != nil {
		return "", false
	}
	base, _ := url.Parse("https://app.example.com/x/")
	return base.ResolveReference(ref).Host, true
}

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{
		"/", "/a?b=c#d", "//evil.example", `/\evil.example`, "https://evil.example", "/%2F%2Fevil.example",
		"/%5Cevil.example", "\t", "/\t/evil.example", "javascript:alert(1)", "http:evil.example",
		"//user@evil.example", "/é", "/.//evil.example", "/%09/evil.example", "/..//evil.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rd string) {
		got := safeRedirect(rd)
		if got != "/" && got != rd {
			t.Fatalf("safeRedirect(%q) = %q: neither the input nor /", rd, got)
		}
		if strings.HasPrefix(got, "//") || strings.HasPrefix(got, `/\`) {
			t.Fatalf("safeRedirect(%q) = %q: scheme-relative", rd, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			t.Fatalf("safeRedirect(%q) = %q parses as scheme %q host %q (%v)", rd, got, u.Scheme, u.Host, err)
		}
		if host, ok := browserHost(got); !ok || host != "app.example.com" {
			t.Fatalf("safeRedirect(%q) = %q: a browser goes to host %q", rd, got, host)
		}
		// The Location header authproxy sends for it stays on this site too.
		rec := httptest.NewRecorder()
		http.Redirect(rec, httptest.NewRequest(http.MethodGet, "/oauth2/callback", nil), got, http.StatusFound)
		if host, ok := browserHost(rec.Header().Get("Location")); !ok || host != "app.example.com" {
			t.Fatalf("safeRedirect(%q) = %q: Location %q sends a browser to host %q", rd, got, rec.Header().Get("Location"), host)
		}
	})
}
