package authproxy

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"time"
)

// stateTTL is how long a started sign-in may take before its state cookie
// is refused.
const stateTTL = 10 * time.Minute

// signInState is what a started sign-in keeps in its sealed state cookie,
// to be checked by the callback in the same browser.
type signInState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Redirect string `json:"r"`
	// IdP is the IdP the sign-in started at (its session name, "" for the
	// default): the callback completes it with that IdP alone (RFC 9700
	// 4.4, mix-up).
	IdP string `json:"i,omitempty"`
}

// stateCookieName names the state cookie of one sign-in after its state, so
// that sign-ins started in two tabs each keep their own cookie.
func (s *Server) stateCookieName(state string) string {
	return s.cfg.CookieName + "_csrf_" + state[:12]
}

// stateCookie returns a state cookie with the given value and lifetime,
// scoped to the callback path. Its SameSite is Lax (None when so configured)
// even under AUTHPROXY_COOKIE_SAMESITE=strict, because the browser arrives
// at the callback from the IdP's site.
func (s *Server) stateCookie(name, value string, maxAge int) *http.Cookie {
	sameSite := http.SameSiteLaxMode
	if s.cfg.CookieSameSite == http.SameSiteNoneMode {
		sameSite = http.SameSiteNoneMode
	}
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     callbackPath,
		MaxAge:   maxAge,
		Secure:   s.cfg.CookieSecure,
		HttpOnly: true,
		SameSite: sameSite,
	}
}

// randomString returns n random bytes, base64url-encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
