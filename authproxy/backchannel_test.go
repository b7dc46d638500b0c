package authproxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// logoutToken returns the claims of a valid back-channel logout token for
// the fake IdP's default user.
func logoutToken(e *testEnv) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": e.idp.URL(), "aud": testClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": "jti-" + randomString(8), "sub": "user-123",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
}

func TestBackchannelLogoutRefusesBadRequests(t *testing.T) {
	e := newTestEnv(t)
	c := e.browser()
	fromUpstream(t, e.signIn(t, c, "/"))
	withClaims := func(edit func(map[string]any)) string {
		cl := logoutToken(e)
		edit(cl)
		return "logout_token=" + url.QueryEscape(e.idp.sign(cl))
	}
	for _, tc := range []struct{ name, contentType, body string }{
		{"empty body", "application/x-www-form-urlencoded", ""},
		{"no logout_token", "application/x-www-form-urlencoded", "token=x"},
		{"garbage token", "application/x-www-form-urlencoded", "logout_token=not.a.jwt"},
		{"JSON body", "application/json", `{"logout_token":"x"}`},
		{"an ID token", "application/x-www-form-urlencoded", withClaims(func(c map[string]any) {
			delete(c, "events")
			c["nonce"] = "n"
		})},
		{"with a nonce", "application/x-www-form-urlencoded", withClaims(func(c map[string]any) { c["nonce"] = "n" })},
		{"for another client", "application/x-www-form-urlencoded", withClaims(func(c map[string]any) { c["aud"] = "other" })},
		{"naming no one", "application/x-www-form-urlencoded", withClaims(func(c map[string]any) { delete(c, "sub") })},
		{"too old", "application/x-www-form-urlencoded", withClaims(func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() })},
		{"body over 64 KiB", "application/x-www-form-urlencoded", "logout_token=" + strings.Repeat("a", 70<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, e.url(backchannelLogoutPath), strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.contentType)
			r := doRequest(t, noFollow(e.browser()), req)
			var body map[string]string
			if r.Status != http.StatusBadRequest || json.Unmarshal([]byte(r.Body), &body) != nil || body["error"] == "" {
				t.Errorf("got %d %q, want 400 with a JSON error", r.Status, r.Body)
			}
			if r := e.api(t, c, userinfoPath); r.Status != http.StatusOK {
				t.Errorf("the session ended after a refused logout: %s got %d", userinfoPath, r.Status)
			}
		})
	}
}

func TestBackchannelLogoutOnlyPOST(t *testing.T) {
	e := newTestEnv(t)
	r := e.api(t, noFollow(e.browser()), backchannelLogoutPath)
	if r.Status != http.StatusMethodNotAllowed && r.Status != http.StatusBadRequest {
		t.Errorf("GET %s: got %d, want 405 or 400", backchannelLogoutPath, r.Status)
	}
}
