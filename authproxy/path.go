package authproxy

import (
	"errors"
	"net/url"
	"path"
	"strings"
)

// errAmbiguousPath is returned for request paths that servers behind
// authproxy could read differently than authproxy does.
var errAmbiguousPath = errors.New("authproxy: ambiguous request path")

// cleanPath returns the form of an escaped request path that routes are
// matched on: percent-decoded, with repeated slashes collapsed and a
// trailing slash kept. It refuses, rather than guesses at, every path that an
// upstream might resolve to somewhere else: encoded slashes or backslashes,
// backslashes, control characters, and dot segments (including "..;" and
// ".;", which some Java servers treat as "..").
func cleanPath(escaped string) (string, error) {
	if escaped == "" {
		return "/", nil
	}
	if escaped[0] != '/' || strings.ContainsRune(escaped, '\\') {
		return "", errAmbiguousPath
	}
	lower := strings.ToLower(escaped)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return "", errAmbiguousPath
	}
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return "", errAmbiguousPath
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", errAmbiguousPath
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		if semi := strings.IndexByte(seg, ';'); semi >= 0 {
			seg = seg[:semi]
		}
		if seg == "." || seg == ".." {
			return "", errAmbiguousPath
		}
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean, nil
}
