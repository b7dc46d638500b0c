package authproxy

import (
	"net/http"
	"testing"
	"time"
)

// TestClockSkewOfAMinute signs in while the IdP's clock is a minute ahead
// of or behind authproxy's: tokens it issues (iat, exp) are read with
// authproxy's clock, and a minute's difference must not break sign-in.
func TestClockSkewOfAMinute(t *testing.T) {
	for _, skew := range []time.Duration{time.Minute, -time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			e := newTestEnv(t)
			e.idp.setTweak(func(c map[string]any) {
				idpNow := time.Now().Add(skew)
				c["iat"] = idpNow.Unix()
				c["exp"] = idpNow.Add(10 * time.Minute).Unix()
			})
			c := e.browser()
			if r := e.signIn(t, c, "/after"); r.Status != http.StatusOK {
				t.Fatalf("sign-in with the IdP's clock %s off: %d %.200s", skew, r.Status, r.Body)
			}
			if got := fromUpstream(t, e.api(t, c, "/after")); got.Header.Get(headerEmail) == "" {
				t.Error("no identity reached the upstream")
			}
		})
	}
}
