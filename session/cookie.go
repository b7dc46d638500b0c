package session

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxCookieBytes caps each cookie the store sets, as serialized in its
// Set-Cookie header: name, value and every attribute. Browsers keep cookies of
// at least 4096 bytes; the margin covers differences in how they count.
const maxCookieBytes = 4000

// Defaults for CookieOptions.
const (
	DefaultCookieName = "_authproxy"
	DefaultCookiePath = "/"
	DefaultMaxChunks  = 5
)

// maxMaxChunks bounds CookieOptions.MaxChunks: 16 cookies of some 3.9 KB
// hold nearly the longest value a Codec seals (64 KiB).
const maxMaxChunks = 16

// CookieOptions configure a CookieStore. The zero value is usable: a
// host-only, not Secure cookie called _authproxy on path "/", without a
// SameSite attribute, split over at most five cookies.
type CookieOptions struct {
	// Name is the session cookie's name; default "_authproxy". A session too
	// large for one cookie is split into Name_0, Name_1, … instead. No other
	// cookie the application uses may be called Name or Name_<digits>.
	Name string
	// Domain is the cookie's Domain attribute; empty (the default) means a
	// host-only cookie.
	Domain string
	// Path is the cookie's Path attribute; default "/".
	Path string
	// Secure sets the Secure attribute. It defaults to false only because the
	// zero value must; anything served over https must set it.
	Secure bool
	// SameSite is the cookie's SameSite attribute; zero omits it. It must
	// not be http.SameSiteNoneMode without Secure: browsers drop such cookies.
	SameSite http.SameSite
	// MaxChunks is how many cookies one session may span; default 5, at
	// most 16 (a larger value counts as 16). A session that needs more is
	// not saved (ErrTooLarge). Browsers keep a limited number of cookies per
	// domain (often 50 or more), shared with the application's own.
	MaxChunks int
}

// CookieStore is a Store that seals the whole session into the browser's
// cookies with a Codec; nothing is kept on the server. A session is sealed
// under the cookie name, so it cannot be replayed under another cookie.
//
// A sealed session can be revoked only by waiting for it to expire: Clear
// asks the browser to drop it, but a copy taken before stays valid until
// Session.ExpiresAt or the Codec's max age, whichever comes first.
//
// A CookieStore is safe for concurrent use.
type CookieStore struct {
	codec *Codec
	opts  CookieOptions
	now   func() time.Time
}

var _ Store = (*CookieStore)(nil)

// NewCookieStore returns a CookieStore sealing sessions with codec, which
// must not be nil. Zero fields of opts take their defaults; opts is copied.
// now is the clock used to check Session.ExpiresAt; nil means time.Now.
func NewCookieStore(codec *Codec, opts CookieOptions, now func() time.Time) *CookieStore {
	if codec == nil {
		panic("session: NewCookieStore: nil codec")
	}
	if opts.Name == "" {
		opts.Name = DefaultCookieName
	}
	if opts.Path == "" {
		opts.Path = DefaultCookiePath
	}
	if opts.MaxChunks <= 0 {
		opts.MaxChunks = DefaultMaxChunks
	}
	opts.MaxChunks = min(opts.MaxChunks, maxMaxChunks)
	if now == nil {
		now = time.Now
	}
	return &CookieStore{codec: codec, opts: opts, now: now}
}

// Owns reports whether cookieName is one of the store's cookies: the session
// cookie's name, or that name followed by "_" and digits. The proxy uses it
// to keep these cookies from the upstream.
func (s *CookieStore) Owns(cookieName string) bool {
	rest, ok := strings.CutPrefix(cookieName, s.opts.Name)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	digits, ok := strings.CutPrefix(rest, "_")
	return ok && isDigits(digits)
}

// Load returns the session sealed in the request's cookies. Any problem with
// them (none, forged, truncated, sealed with an unknown key or for another
// cookie, too old for the Codec, or a session past its ExpiresAt) gives an
// error wrapping ErrNotFound and a nil session.
func (s *CookieStore) Load(r *http.Request) (*Session, error) {
	return s.LoadCookies(r, AppendCookies(nil, r.Header))
}

// LoadCookies implements CookieLoader: Load from the request's cookies,
// already split.
func (s *CookieStore) LoadCookies(_ *http.Request, cookies []Cookie) (*Session, error) {
	value, err := s.sealedValue(cookies)
	if err != nil {
		return nil, err
	}
	var sess Session
	if err := s.codec.Open(s.opts.Name, value, &sess); err != nil {
		return nil, notFound(err)
	}
	if sess.Expired(s.now()) {
		return nil, notFound(errors.New("session expired"))
	}
	return &sess, nil
}

// sealedValue returns the sealed session the request carries: the bare
// cookie's value, or else the chunks Name_0, Name_1, … joined.
func (s *CookieStore) sealedValue(cookies []Cookie) (string, error) {
	chunks := make([]string, s.opts.MaxChunks+1)
	var bare string
	hasBare := false
	for _, c := range cookies {
		if c.Name == s.opts.Name {
			// An empty value is what Clear leaves behind in a browser
			// that has not dropped the cookie yet: not a session.
			if !hasBare && c.Value != "" {
				bare, hasBare = c.Value, true
			}
			continue
		}
		i, ok := s.chunkIndex(c.Name)
		// Of duplicates (cookies for several paths), the first is the most
		// specific; keep it.
		if ok && i < len(chunks) && chunks[i] == "" {
			chunks[i] = c.Value
		}
	}
	if hasBare {
		return bare, nil
	}
	n := 0
	size := 0
	for n < len(chunks) && chunks[n] != "" {
		size += len(chunks[n])
		n++
	}
	switch {
	case n == 0:
		return "", notFound(errors.New("no session cookie"))
	case n > s.opts.MaxChunks:
		return "", notFound(fmt.Errorf("more than %d session cookies", s.opts.MaxChunks))
	case size > maxSealedLength:
		return "", notFound(fmt.Errorf("session cookies hold %d bytes, limit %d", size, maxSealedLength))
	}
	return strings.Join(chunks[:n], ""), nil
}

// chunkIndex returns i for a cookie named Name_i, with i written without
// leading zeros.
func (s *CookieStore) chunkIndex(cookieName string) (int, bool) {
	rest, ok := strings.CutPrefix(cookieName, s.opts.Name+"_")
	if !ok || !isDigits(rest) || len(rest) > 6 || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil
}

// Save seals sess into one cookie, or into chunks Name_0, Name_1, … when one
// is not enough, and expires whichever of the store's cookies the request
// carried that the new session does not use (and, when chunking, the bare
// cookie in any case). The cookies last until sess.ExpiresAt; a session
// already expired is an error. A session needing more than MaxChunks cookies
// gives an error wrapping ErrTooLarge. On any error nothing is written.
//
// Save sets headers only, so it must be called before the response's header
// is written.
func (s *CookieStore) Save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	if sess == nil {
		return errors.New("session: save: nil session")
	}
	left := sess.ExpiresAt.Sub(s.now())
	if left <= 0 {
		return errors.New("session: save: session already expired")
	}
	maxAge := max(int(left/time.Second), 1)

	// Measure the attributes on the longest name a chunk can have.
	probe := s.cookie(s.opts.Name+"_"+strconv.Itoa(s.opts.MaxChunks-1), "", maxAge, sess.ExpiresAt)
	if err := probe.Valid(); err != nil {
		return fmt.Errorf("session: save: invalid cookie options: %w", err)
	}
	budget := maxCookieBytes - len(probe.String())
	if budget < 1 {
		return errors.New("session: save: cookie attributes leave no room for a value")
	}

	sealed, err := s.codec.Seal(s.opts.Name, sess)
	if err != nil {
		return fmt.Errorf("session: save: %w", err)
	}

	var set []*http.Cookie
	if len(sealed) <= budget {
		set = []*http.Cookie{s.cookie(s.opts.Name, sealed, maxAge, sess.ExpiresAt)}
	} else {
		n := (len(sealed) + budget - 1) / budget
		if n > s.opts.MaxChunks {
			return fmt.Errorf("session: save: %d bytes sealed need %d cookies, limit %d: %w",
				len(sealed), n, s.opts.MaxChunks, ErrTooLarge)
		}
		set = make([]*http.Cookie, 0, n)
		for i := range n {
			chunk := sealed[i*budget : min((i+1)*budget, len(sealed))]
			set = append(set, s.cookie(s.opts.Name+"_"+strconv.Itoa(i), chunk, maxAge, sess.ExpiresAt))
		}
	}

	for _, c := range set {
		http.SetCookie(w, c)
	}
	if len(set) > 1 {
		// Load prefers the bare cookie, so one left behind would hide the
		// new session; expire it even if this request did not carry it.
		http.SetCookie(w, s.expired(s.opts.Name))
	}
	s.expireCarried(w, r, func(name string) bool {
		return name == s.opts.Name || slices.ContainsFunc(set, func(c *http.Cookie) bool { return c.Name == name })
	})
	return nil
}

// Clear expires every one of the store's cookies the request carried, and
// the session cookie in any case. It never fails.
func (s *CookieStore) Clear(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, s.expired(s.opts.Name))
	s.expireCarried(w, r, func(name string) bool { return name == s.opts.Name })
	return nil
}

// expireCarried expires each of the store's cookies in r, once per name,
// except those for which keep reports true.
func (s *CookieStore) expireCarried(w http.ResponseWriter, r *http.Request, keep func(name string) bool) {
	var done []string
	for _, c := range r.Cookies() {
		if !s.Owns(c.Name) || keep(c.Name) || slices.Contains(done, c.Name) {
			continue
		}
		done = append(done, c.Name)
		http.SetCookie(w, s.expired(c.Name))
	}
}

// cookie returns a cookie with the store's attributes.
func (s *CookieStore) cookie(name, value string, maxAge int, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     s.opts.Path,
		Domain:   s.opts.Domain,
		Expires:  expires.UTC(),
		MaxAge:   maxAge,
		Secure:   s.opts.Secure,
		HttpOnly: true,
		SameSite: s.opts.SameSite,
	}
}

// expired returns a cookie that makes the browser drop the one called name.
func (s *CookieStore) expired(name string) *http.Cookie {
	return s.cookie(name, "", -1, time.Unix(0, 0))
}

// notFound wraps why a request has no valid session in ErrNotFound.
func notFound(why error) error {
	return fmt.Errorf("%w: %w", ErrNotFound, why)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
