package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

func TestBadConfigurationListsEveryProblemBeforeListening(t *testing.T) {
	for _, k := range []string{"AUTHPROXY_UPSTREAM", "AUTHPROXY_OIDC_ISSUER", "AUTHPROXY_CLIENT_ID", "AUTHPROXY_REDIRECT_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("AUTHPROXY_COOKIE_SECRET", base64.StdEncoding.EncodeToString([]byte("twelve bytes")))
	t.Setenv("AUTHPROXY_COOKIE_SAMESITE", "sometimes")
	t.Setenv("AUTHPROXY_LISTEN", "127.0.0.1:1") // must never be reached

	var stdout, stderr bytes.Buffer
	if code := run(nil, &stdout, &stderr); code != 1 {
		t.Fatalf("exit code = %d, want 1", code)
	}
	out := stderr.String()
	for _, want := range []string{
		"AUTHPROXY_UPSTREAM: required",
		"AUTHPROXY_OIDC_ISSUER: required",
		"AUTHPROXY_CLIENT_ID: required",
		"AUTHPROXY_REDIRECT_URL: required",
		"AUTHPROXY_COOKIE_SECRET: want 32 bytes base64-encoded, got 12 bytes",
		`AUTHPROXY_COOKIE_SAMESITE: want lax, strict or none, got "sometimes"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "twelve") || strings.Contains(out, "dHdlbHZl") {
		t.Errorf("stderr shows the secret:\n%s", out)
	}
}

func TestSecretVersionAndUnknownCommand(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		validate func(out string) bool
	}{
		{[]string{"secret"}, 0, func(out string) bool {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
			return err == nil && len(b) == 32
		}},
		{[]string{"version"}, 0, func(out string) bool { return strings.HasPrefix(out, "authproxy ") }},
		{[]string{"frobnicate"}, 2, func(out string) bool { return out == "" }},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if !tt.validate(stdout.String()) {
				t.Errorf("stdout = %q", stdout.String())
			}
		})
	}
	var a, b bytes.Buffer
	run([]string{"secret"}, &a, &bytes.Buffer{})
	run([]string{"secret"}, &b, &bytes.Buffer{})
	if a.String() == b.String() {
		t.Error("two secrets are equal")
	}
}

func TestPolicyExplain(t *testing.T) {
	file := t.TempDir() + "/policy.yaml"
	if err := os.WriteFile(file, []byte("rules:\n  - path: /admin/\n    allow: {groups: [admins]}\n  - path: /partners/\n    allow: {idps: [partners]}\n  - path: /\n    allow: authenticated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUTHPROXY_POLICY_FILE", file)
	t.Setenv("AUTHPROXY_SKIP_AUTH_ROUTES", "GET /health")
	t.Setenv("AUTHPROXY_IDPS", "partners")
	tests := []struct {
		args []string
		code int
		want []string
		// wantErr are said on stderr.
		wantErr []string
	}{
		{[]string{"policy", "explain", "GET", "/admin/x", "--groups", "staff"}, 0, []string{"policy file rule 1", "denied (403)"}, nil},
		{[]string{"policy", "explain", "GET", "/admin/x", "--email", "ada@example.com", "--groups", "staff,admins"}, 0, []string{"allowed"}, nil},
		{[]string{"policy", "explain", "GET", "/health"}, 0, []string{"AUTHPROXY_SKIP_AUTH_ROUTES", "public"}, nil},
		{[]string{"policy", "explain", "GET", "/public/%2e%2e/admin/"}, 0, []string{"refused (400)"}, nil},
		{[]string{"policy", "explain", "GET", "/admin/x", "--groups", "admins", "--idp", "partners"}, 0, []string{"IdP partners", "denied (403)", "identity provider the rule does not accept"}, nil},
		{[]string{"policy", "explain", "GET", "/partners/x", "--idp", "partners"}, 0, []string{"policy file rule 2", "(IdP partners; no groups): allowed"}, nil},
		{[]string{"policy", "explain", "GET", "/partners/x", "--email", "ada@example.com"}, 0, []string{"denied (403)"}, nil},
		{[]string{"policy", "explain", "GET", "/admin/x", "--groups", "admins", "--idp", "default"}, 0, []string{"allowed"}, nil},
		{[]string{"policy", "explain", "GET", "/x", "--idp", "Partners"}, 2, nil, nil},
		{[]string{"policy", "explain", "GET", "/x", "--idp", "robots"}, 2, nil, []string{`--idp "robots": no such IdP; the configured IdPs are default, partners`}},
		{[]string{"policy", "explain", "GET"}, 2, nil, nil},
		{[]string{"policy", "list"}, 2, nil, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
	// A rule naming an IdP that is not configured fails as at start.
	t.Setenv("AUTHPROXY_IDPS", "")
	var stderr bytes.Buffer
	if code := run([]string{"policy", "explain", "GET", "/"}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), `AUTHPROXY_POLICY_FILE: policy file rule 2 names IdP "partners", which is not configured`) {
		t.Errorf("a rule naming an IdP not configured: exit %d, stderr %q", code, stderr.String())
	}
	t.Setenv("AUTHPROXY_ALLOWED_EMAILS_FILE", t.TempDir()+"/missing-emails")
	stderr.Reset()
	if code := run([]string{"policy", "explain", "GET", "/"}, &bytes.Buffer{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "AUTHPROXY_ALLOWED_EMAILS: reading AUTHPROXY_ALLOWED_EMAILS_FILE:") {
		t.Errorf("missing allow-list file: exit %d, stderr %q", code, stderr.String())
	}
	t.Setenv("AUTHPROXY_POLICY_FILE", t.TempDir()+"/missing.yaml")
	stderr.Reset()
	if code := run([]string{"policy", "explain", "GET", "/"}, &bytes.Buffer{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "AUTHPROXY_POLICY_FILE:") {
		t.Errorf("missing policy file: exit %d, stderr %q", code, stderr.String())
	}
}
