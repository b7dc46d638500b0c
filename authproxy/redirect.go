package authproxy

import (
	"net/url"
	"strings"
)

// safeRedirect returns rd when it is a local path that every browser reads
// as one, and "/" otherwise. It refuses absolute URLs, scheme-relative
// "//host", "/\host" (browsers read "\" as "/"), encoded forms of those,
// and any whitespace or control character (browsers drop tabs and newlines
// inside URLs, which can turn "/\t/host" into "//host").
func safeRedirect(rd string) string {
	if !isLocalPath(rd) {
		return "/"
	}
	return rd
}

func isLocalPath(rd string) bool {
	if len(rd) == 0 || len(rd) > 2048 || rd[0] != '/' {
		return false
	}
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return false
		}
	}
	if strings.HasPrefix(rd, "//") {
		return false
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	// A path whose decoded form starts with "//" or "/\" is refused too:
	// some servers and frameworks decode before redirecting again.
	if dec, err := url.PathUnescape(u.EscapedPath()); err != nil || strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\") {
		return false
	}
	return true
}
