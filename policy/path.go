package policy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// ErrAmbiguousPath is the error CleanPath returns, wrapped with the reason,
// for a request path that a server behind authproxy could read as a
// different path than the one the rules were matched on. Callers branch on
// it with errors.Is and answer 400; they must not retry with a "fixed" path.
var ErrAmbiguousPath = errors.New("policy: ambiguous request path")

// The reasons CleanPath gives. They are fixed values so that refusing a
// path costs no allocation; nothing ever assigns to them.
var (
	errRelative      = fmt.Errorf("%w: it does not start with /", ErrAmbiguousPath)
	errBackslash     = fmt.Errorf("%w: it contains a backslash", ErrAmbiguousPath)
	errEncodedSlash  = fmt.Errorf("%w: it contains an encoded slash or backslash (%%2F, %%5C)", ErrAmbiguousPath)
	errBadEscape     = fmt.Errorf("%w: it contains a malformed %%-escape", ErrAmbiguousPath)
	errInvalidUTF8   = fmt.Errorf("%w: it decodes to invalid UTF-8 (overlong or not UTF-8 at all)", ErrAmbiguousPath)
	errControl       = fmt.Errorf("%w: it contains a control character", ErrAmbiguousPath)
	errSlashLike     = fmt.Errorf("%w: it contains a full-width or small slash or backslash", ErrAmbiguousPath)
	errDotSegment    = fmt.Errorf("%w: it contains a dot segment (., .., ..; or the like)", ErrAmbiguousPath)
	errPathParameter = fmt.Errorf("%w: it contains a dot segment hidden by a path parameter (..;)", ErrAmbiguousPath)
	errStrippable    = fmt.Errorf("%w: a segment before the last ends in a dot or space or holds a ;parameter, which some servers strip", ErrAmbiguousPath)
	errDoubleEscape  = fmt.Errorf("%w: it contains an escaped %%-escape (%%25 and two hex digits), which an upstream that decodes twice reads differently", ErrAmbiguousPath)
)

// CleanPath returns the form of an escaped request path (what
// url.URL.EscapedPath returns, never a whole request-target with its query)
// that rules are matched on: percent-decoded once, with repeated slashes
// collapsed and a trailing slash kept. "" cleans to "/".
//
// It refuses, with an error wrapping ErrAmbiguousPath, every path that a
// server behind authproxy might resolve to somewhere else, rather than
// guessing how that server reads it:
//   - backslashes, and %2F or %5C in any case (encoded slash, backslash);
//   - control characters (C0, DEL, C1), raw or encoded, NUL included;
//   - malformed %-escapes, and escapes that decode to invalid UTF-8: an
//     overlong "%c0%ae" is "." to a lax decoder and garbage to a strict one;
//   - dot segments "." and "..", encoded ("%2e%2e", ".%2E") or hidden by a
//     path parameter ("..;", ".;x", "..%3b"), which Java servers strip;
//   - segments made only of dots and spaces ("...", ".. ", ". "), and of
//     dot-like characters such as U+FF0E FULLWIDTH FULL STOP, and the
//     full-width and small slashes and backslashes (U+FF0F, U+FF3C,
//     U+FE68): Windows servers drop trailing dots and spaces from a
//     segment, some old servers read "..." as "../..", and servers that
//     apply Unicode NFKC normalisation read "．．" as "..". No application
//     needs such a segment, so refusing them costs nothing;
//   - in every segment but the last, a ";parameter" or a trailing dot or
//     space ("/admin;x/users", "/admin./users"): Java servers strip the
//     first and Windows servers the others, which would move the request
//     under a prefix rule ("/admin/") that did not match it here;
//   - an escaped %-escape ("%252e", "%2561"): decoded once it is the
//     literal "%2e", which matches no rule for "..", but a legacy upstream
//     that decodes twice would read ".." or "a". A literal "%" not followed
//     by two hex digits ("/100%25") is fine.
//
// What CleanPath keeps, on purpose: case ("/ADMIN" stays "/ADMIN"), and
// trailing dots, spaces and ";parameters" in the last segment ("/admin.",
// "/admin ", "/page.jsp;jsessionid=x"), which cannot move a path across a
// prefix rule. Rules match the cleaned path exactly and case-sensitively, so
// on an upstream that folds case, trims dots or strips parameters, these
// reach a page that an exact rule like "/admin" was meant to cover, and
// case variants reach pages a prefix rule was meant to cover. Protect pages
// with prefix rules, and in front of a case-insensitive upstream (IIS)
// deny by default; see Rule.
func CleanPath(escapedPath string) (string, error) {
	if escapedPath == "" {
		return "/", nil
	}
	if escapedPath[0] != '/' {
		return "", errRelative
	}
	if strings.IndexByte(escapedPath, '\\') >= 0 {
		return "", errBackslash
	}
	if hasEncodedSlash(escapedPath) {
		return "", errEncodedSlash
	}
	p, err := url.PathUnescape(escapedPath)
	if err != nil {
		return "", errBadEscape
	}
	if !utf8.ValidString(p) {
		return "", errInvalidUTF8
	}
	for _, r := range p {
		switch {
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
			return "", errControl
		case r == '\uff0f' || r == '\uff3c' || r == '\ufe68':
			return "", errSlashLike
		}
	}
	for rest := p[1:]; ; {
		seg, after, more := strings.Cut(rest, "/")
		bare, _, param := strings.Cut(seg, ";")
		switch {
		case dotLike(bare) && param:
			return "", errPathParameter
		case dotLike(bare):
			return "", errDotSegment
		case more && (param || strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " ")):
			return "", errStrippable
		}
		if !more {
			break
		}
		rest = after
	}
	if strings.IndexByte(p, '%') >= 0 && hasEscape(p) {
		return "", errDoubleEscape
	}
	if !strings.Contains(p, "//") {
		return p, nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String(), nil
}

// hasEncodedSlash reports whether s contains %2F or %5C in any case.
func hasEncodedSlash(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		hi, lo := s[i+1], s[i+2]|0x20 // lower-case the letter
		if hi == '2' && lo == 'f' || hi == '5' && lo == 'c' {
			return true
		}
	}
	return false
}

// hasEscape reports whether s contains a %-escape: "%" and two hex digits.
func hasEscape(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

// dotLike reports whether a decoded segment (without its ";" parameters) is
// made only of dots, dot-like characters and spaces, with at least one dot.
func dotLike(seg string) bool {
	dots := false
	for _, r := range seg {
		switch r {
		case '.', '\uff0e', '\u2024', '\u2025', '\u2026', '\ufe52':
			dots = true
		case ' ':
		default:
			return false
		}
	}
	return dots
}

// ValidMethod reports whether m is an HTTP method authproxy matches rules
// against: an RFC 9110 token (so "M-SEARCH" and "PROPFIND" qualify) with no
// lower-case letter. Methods are case-sensitive, and an upstream may treat
// "post" like "POST", so a request whose method is not valid must be
// refused (400) before Decide, never matched: a "POST" rule would not
// match "post" and a more lenient rule could.
func ValidMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
