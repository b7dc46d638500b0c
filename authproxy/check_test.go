package authproxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckReportsEveryProblem(t *testing.T) {
	idp := newFakeIdP(t, "authproxy-test", "s3cret")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }))
	defer up.Close()
	randomKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdefghijklmnopqrstuv"))
	weakKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("ab"), 16))

	clientKey := writeClientKey(t)
	tests := []struct {
		name     string
		env      map[string]string
		wantFail []string // substrings of FAIL lines; none means the verdict is OK
	}{
		{"all good", nil, nil},
		{"https redirect, insecure cookies", map[string]string{
			"AUTHPROXY_REDIRECT_URL": "https://app.example.com/oauth2/callback", "AUTHPROXY_COOKIE_SECURE": "false"},
			[]string{"AUTHPROXY_COOKIE_SECURE=false with an https redirect URL"}},
		{"plain http redirect, secure cookies", map[string]string{
			"AUTHPROXY_REDIRECT_URL": "http://app.example.com/oauth2/callback", "AUTHPROXY_COOKIE_SECURE": "true"},
			[]string{"AUTHPROXY_COOKIE_SECURE=true with a plain http redirect URL"}},
		{"upstream down", map[string]string{"AUTHPROXY_UPSTREAM": "http://" + closedAddr(t)},
			[]string{"AUTHPROXY_UPSTREAM:", "does not answer"}},
		{"issuer unreachable", map[string]string{"AUTHPROXY_OIDC_ISSUER": "http://" + closedAddr(t) + "/dex"},
			[]string{"AUTHPROXY_OIDC_ISSUER:"}},
		{"a client key the IdP does not take", map[string]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": clientKey},
			[]string{"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE is set, but the IdP's token_endpoint_auth_methods_supported lists nothing, which means client_secret_basic only, not private_key_jwt"}},
		{"hand-made secret", map[string]string{"AUTHPROXY_COOKIE_SECRET": weakKey},
			[]string{"AUTHPROXY_COOKIE_SECRET: key 1 has few distinct bytes"}},
		{"redis down", map[string]string{"AUTHPROXY_SESSION_STORE": "redis", "AUTHPROXY_REDIS_URL": "redis://" + closedAddr(t) + "/0"},
			[]string{"AUTHPROXY_REDIS_URL: Redis does not answer"}},
		{"several problems at once", map[string]string{"AUTHPROXY_COOKIE_SECRET": weakKey, "AUTHPROXY_UPSTREAM": "http://" + closedAddr(t)},
			[]string{"AUTHPROXY_COOKIE_SECRET", "AUTHPROXY_UPSTREAM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{
				"AUTHPROXY_UPSTREAM": up.URL, "AUTHPROXY_OIDC_ISSUER": idp.URL(), "AUTHPROXY_CLIENT_ID": "authproxy-test",
				"AUTHPROXY_REDIRECT_URL": "http://127.0.0.1:4180/oauth2/callback", "AUTHPROXY_COOKIE_SECRET": randomKey,
				"AUTHPROXY_COOKIE_SECURE": "false",
			}
			for k, v := range tt.env {
				vars[k] = v
			}
			cfg, err := LoadConfig(mapLookup(vars))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err = Check(context.Background(), cfg, &out)
			if len(tt.wantFail) == 0 {
				if err != nil || strings.Contains(out.String(), "FAIL") {
					t.Fatalf("Check = %v, want OK; report:\n%s", err, out.String())
				}
				for _, want := range []string{"ok    identity provider: oidc provider, issuer " + idp.URL(), "ok    upstream:"} {
					if !strings.Contains(out.String(), want) {
						t.Errorf("report lacks %q:\n%s", want, out.String())
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want failure; report:\n%s", out.String())
			}
			for _, want := range tt.wantFail {
				if !strings.Contains(out.String(), "FAIL  ") || !strings.Contains(err.Error(), want) {
					t.Errorf("error %q / report lacks %q:\n%s", err, want, out.String())
				}
			}
		})
	}
}

// TestCheckClientKey: with a client key the IdP does not list, the check
// fails with one line that starts with the variable, and still prints the
// public JWKS to register (never the private key).
func TestCheckClientKey(t *testing.T) {
	idp := newFakeIdP(t, "authproxy-test", "")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	cfg, err := LoadConfig(mapLookup(map[string]string{
		"AUTHPROXY_UPSTREAM": up.URL, "AUTHPROXY_OIDC_ISSUER": idp.URL(), "AUTHPROXY_CLIENT_ID": "authproxy-test",
		"AUTHPROXY_REDIRECT_URL": "http://127.0.0.1:4180/oauth2/callback", "AUTHPROXY_COOKIE_SECURE": "false",
		"AUTHPROXY_COOKIE_SECRET":           base64.StdEncoding.EncodeToString([]byte("0123456789abcdefghijklmnopqrstuv")),
		"AUTHPROXY_CLIENT_PRIVATE_KEY_FILE": writeClientKey(t), "AUTHPROXY_CLIENT_PRIVATE_KEY_ID": "k-2026",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Check(t.Context(), cfg, &out); err == nil {
		t.Fatalf("Check passed with a key the IdP does not take:\n%s", out.String())
	}
	report := out.String()
	for _, want := range []string{
		"\nFAIL  AUTHPROXY_CLIENT_PRIVATE_KEY_FILE is set, but the IdP's token_endpoint_auth_methods_supported lists nothing",
		"\nok    client key: private_key_jwt, ES256, kid \"k-2026\"; the public JWKS to register at the IdP for client authproxy-test: {\"keys\":[{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":\"k-2026\",\"crv\":\"P-256\",\"alg\":\"ES256\",",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, `"d":`) {
		t.Errorf("report shows the private key:\n%s", report)
	}
}
