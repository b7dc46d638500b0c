package session

import (
	"net/http"
	"strings"
)

// Cookie is one name=value pair of a request's Cookie header.
type Cookie struct {
	// Name is trimmed and Value unquoted, as net/http reads them.
	Name, Value string
	// Part is the pair byte for byte as the client sent it, trimmed: what
	// a proxy forwards of the cookies it does not keep for itself.
	Part string
}

// AppendCookies splits the Cookie header lines of h, once, appending each
// pair to dst in the order sent, and returns the extended slice. A caller
// that serves a request from one split passes the result to the stores'
// LoadCookies (CachedStore.LookupCookies) and builds the forwarded Cookie
// header from the same pairs; with a dst on the caller's own storage it
// allocates nothing for the common few cookies.
func AppendCookies(dst []Cookie, h http.Header) []Cookie {
	for _, line := range h["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			name, value, _ := strings.Cut(part, "=")
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			dst = append(dst, Cookie{Name: name, Value: value, Part: part})
		}
	}
	return dst
}

// CookieLoader is implemented by stores that load a session from a
// request's cookies already split (AppendCookies), so that the Cookie
// header is read once per request; r gives the context, and the request
// for a store that must look at more of it.
type CookieLoader interface {
	LoadCookies(r *http.Request, cookies []Cookie) (*Session, error)
}

// LoadWith loads the session of r, whose cookies are cookies, from store:
// with its LoadCookies when it has one, else its Load.
func LoadWith(store Store, r *http.Request, cookies []Cookie) (*Session, error) {
	if cl, ok := store.(CookieLoader); ok {
		return cl.LoadCookies(r, cookies)
	}
	return store.Load(r)
}
