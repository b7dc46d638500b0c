package authproxy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// LoadPolicy reads the allow-lists from their NAME_FILE as LoadConfig does,
// and reports a file it cannot read, naming the variable, instead of
// explaining with an empty allow-list; it refuses, as LoadConfig does, a
// rule naming an IdP that is not configured; and it returns the IdPs'
// names, the default first.
func TestLoadPolicyProblems(t *testing.T) {
	dir := t.TempDir()
	missing, emails := filepath.Join(dir, "missing"), filepath.Join(dir, "emails")
	writeConfigFile(t, emails, "# staff\nada@example.com\n")
	robotsPolicy := filepath.Join(dir, "policy.yaml")
	writeConfigFile(t, robotsPolicy, "rules:\n  - path: /api/\n    allow: {idps: [robots]}\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"an allow-list file that cannot be read", map[string]string{"AUTHPROXY_ALLOWED_EMAILS_FILE": missing},
			"AUTHPROXY_ALLOWED_EMAILS: reading AUTHPROXY_ALLOWED_EMAILS_FILE: open " + missing},
		{"an IdP's allow-list file that cannot be read", map[string]string{"AUTHPROXY_IDPS": "partners", "AUTHPROXY_IDP_PARTNERS_ALLOWED_GROUPS_FILE": missing},
			"AUTHPROXY_IDP_PARTNERS_ALLOWED_GROUPS: reading AUTHPROXY_IDP_PARTNERS_ALLOWED_GROUPS_FILE: open " + missing},
		{"a rule naming an IdP that is not configured", map[string]string{"AUTHPROXY_IDPS": "partners", "AUTHPROXY_POLICY_FILE": robotsPolicy},
			`AUTHPROXY_POLICY_FILE: policy file rule 1 names IdP "robots", which is not configured`},
		{"an allow-list and its file", map[string]string{"AUTHPROXY_ALLOWED_EMAILS": "bob@example.com", "AUTHPROXY_ALLOWED_EMAILS_FILE": emails},
			"AUTHPROXY_ALLOWED_EMAILS: set either AUTHPROXY_ALLOWED_EMAILS or AUTHPROXY_ALLOWED_EMAILS_FILE, not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := LoadPolicy(mapLookup(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadPolicy: %v, policy %v; want an error saying %q", err, p, tc.want)
			}
		})
	}
	p, idps, err := LoadPolicy(mapLookup(map[string]string{"AUTHPROXY_ALLOWED_EMAILS_FILE": emails,
		"AUTHPROXY_DEFAULT_IDP_NAME": "staff", "AUTHPROXY_IDPS": "partners,robots", "AUTHPROXY_POLICY_FILE": robotsPolicy}))
	if err != nil {
		t.Fatalf("LoadPolicy: %v", err)
	}
	if !slices.Equal(p.Allow.Emails, []string{"ada@example.com"}) {
		t.Errorf("the allow-list from its file: %v, want ada@example.com", p.Allow.Emails)
	}
	if want := []string{"staff", "partners", "robots"}; !slices.Equal(idps, want) {
		t.Errorf("LoadPolicy's IdPs %q, want %q", idps, want)
	}
}
