package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestBearerTokenFromDex is an API client: it gets an access token from
// real Dex with the password grant and calls the app through authproxy with
// it, no cookie; a tampered token is refused with 401, never a redirect.
func TestBearerTokenFromDex(t *testing.T) {
	requireStack(t)
	form := url.Values{
		"grant_type": {"password"},
		"username":   {alice.email},
		"password":   {alice.password},
		"scope":      {"openid email profile groups"},
	}
	req, err := http.NewRequest(http.MethodPost, stack.issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("authproxy-demo", "demo-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatalf("password grant at Dex: %d, %v, token %q", resp.StatusCode, err, tok.AccessToken)
	}

	bearer := func(token string) (*http.Response, []byte) {
		return do(t, http.MethodGet, "/api/whoami", nil, http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}})
	}
	r, body := bearer(tok.AccessToken)
	var w whoami
	if r.StatusCode != http.StatusOK || json.Unmarshal(body, &w) != nil {
		t.Fatalf("with Dex's access token: %d %s", r.StatusCode, body)
	}
	if w.Email != alice.email || w.Groups != strings.Join(alice.groups, ",") || w.User == "" {
		t.Errorf("app saw user %q email %q groups %q, want alice's", w.User, w.Email, w.Groups)
	}
	parts := strings.Split(tok.AccessToken, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	r, body = bearer(tampered)
	if r.StatusCode != http.StatusUnauthorized || r.Header.Get("Location") != "" || !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("tampered token: %d %q %s, want 401 invalid_token", r.StatusCode, r.Header.Get("WWW-Authenticate"), body)
	}
}
