package policy

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/explain/*.golden from the current output")

func TestExplain(t *testing.T) {
	file, err := Load(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	skip, err := ParseSkipRoutes("GET /healthz, /public/")
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := Parse([]byte("rules:\n  - path: /admin/\n    allow: {groups: [admins]}\n  - path: /app/\n    allow: authenticated\n"))
	if err != nil {
		t.Fatal(err)
	}
	idps, err := Parse([]byte("rules:\n  - path: /admin/\n    allow: {groups: [admins]}\n  - path: /partners/\n    allow: {idps: [partners]}\n  - path: /ops/\n    allow: {idps: [staff, partners], groups: [ops]}\n  - path: /\n    allow: authenticated\n"))
	if err != nil {
		t.Fatal(err)
	}
	policies := map[string]*Policy{
		"file":   file,
		"narrow": New(skip, narrow, AllowList{}),
		"env":    New(skip, nil, AllowList{}),
		"empty":  {},
		"allow":  New(skip, narrow, AllowList{Domains: []string{"example.com"}, Groups: []string{"staff"}}),
		"idps": New(skip, idps, AllowList{Domains: []string{"example.com"}},
			WithDefaultIdP("staff"), WithIdPAllowList("partners", AllowList{Groups: []string{"contractors"}})),
	}
	ada := &Identity{Email: "ada@example.com", Groups: []string{"admins", "staff"}}
	bob := &Identity{Email: "bob@other.example", Groups: []string{"staff"}}
	eve := &Identity{Email: "Eve@Example.com"}
	for _, tc := range []struct {
		name, policy, method, path string
		id                         *Identity
	}{
		{"public-head-via-get", "file", "HEAD", "/health", nil},
		{"public-prefix-query", "file", "GET", "/assets/app.js?v=3", nil},
		{"restricted-allowed", "file", "GET", "/admin/users?tab=2", ada},
		{"restricted-denied", "file", "GET", "/admin/users", bob},
		{"restricted-anonymous", "file", "GET", "/admin/", nil},
		{"restricted-domain", "file", "GET", "/reports/q1", eve},
		{"method-rule", "file", "DELETE", "/api/items/7", bob},
		{"catch-all", "file", "GET", "/anything", bob},
		{"refused-dot-dot", "file", "GET", "/assets/../admin/", ada},
		{"refused-encoded-slash", "file", "GET", "/assets%2f..%2fadmin/", nil},
		{"refused-double-escape", "file", "GET", "/assets/%252e%252e/admin/", nil},
		{"refused-lower-case-method", "file", "post", "/admin/", ada},
		{"skip-route", "narrow", "GET", "/healthz", ada},
		{"skip-route-other-method", "narrow", "POST", "/healthz", ada},
		{"no-rule-matches", "narrow", "GET", "/other", ada},
		{"env-only-default", "env", "POST", "/form", bob},
		{"empty-policy", "empty", "GET", "/x", nil},
		{"no-email", "file", "GET", "/reports/", &Identity{Groups: []string{"finance"}}},
		{"control-characters-quoted", "file", "GET\n", "/a\x1b[31m", nil},
		{"refused-raw-newline", "file", "GET", "/a\nb", nil},
		{"allow-list-passes", "allow", "GET", "/admin/", ada},
		{"allow-list-refuses-domain", "allow", "GET", "/app/x", bob},
		{"allow-list-refuses-group", "allow", "GET", "/app/x", eve},
		{"allow-list-not-on-public", "allow", "GET", "/public/x", bob},
		{"idp-partner-admins-refused", "idps", "GET", "/admin/", &Identity{Email: "ada@example.com", Groups: []string{"admins", "contractors"}, IdP: "partners"}},
		{"idp-partner-admitted", "idps", "GET", "/partners/x", &Identity{Email: "pat@partner.example", Groups: []string{"contractors"}, IdP: "partners"}},
		{"idp-partner-off-allow-list", "idps", "GET", "/partners/x", &Identity{Email: "pat@partner.example", IdP: "partners"}},
		{"idp-default-by-empty-name", "idps", "GET", "/admin/", ada},
		{"idp-default-refused-on-partner-rule", "idps", "GET", "/partners/", &Identity{Email: "ada@example.com", IdP: "staff"}},
		{"idp-without-allow-list", "idps", "GET", "/x", &Identity{IdP: "github"}},
		{"idp-ops-partner", "idps", "GET", "/ops/", &Identity{Groups: []string{"ops", "contractors"}, IdP: "partners"}},
		{"idp-anonymous", "idps", "GET", "/ops/", nil},
		{"idp-unknown-to-policy", "narrow", "GET", "/admin/", &Identity{Email: "ada@example.com", Groups: []string{"admins"}, IdP: "partners"}},
		{"idp-name-quoted", "narrow", "GET", "/app/", &Identity{IdP: "x\x1b[31m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := policies[tc.policy].Explain(tc.method, tc.path, tc.id)
			golden := filepath.Join("testdata", "explain", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestExplain -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("Explain(%s %s) =\n%s\nwant (%s)\n%s", tc.method, tc.path, got, golden, want)
			}
			if again := policies[tc.policy].Explain(tc.method, tc.path, tc.id); again != got {
				t.Errorf("Explain is not deterministic:\n%s\nthen\n%s", got, again)
			}
		})
	}
}
