package authproxy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// LoadPolicy reads the allow-lists from their NAME_FILE as LoadConfig does,
// and reports a file it cannot read, naming the variable, instead of
// explaining with an empty allow-list.
func TestLoadPolicyProblems(t *testing.T) {
	dir := t.TempDir()
	missing, emails := filepath.Join(dir, "missing"), filepath.Join(dir, "emails")
	writeConfigFile(t, emails, "# staff\nada@example.com\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"an allow-list file that cannot be read", map[string]string{"AUTHPROXY_ALLOWED_EMAILS_FILE": missing},
			"AUTHPROXY_ALLOWED_EMAILS: reading AUTHPROXY_ALLOWED_EMAILS_FILE: open " + missing},
		{"an IdP's allow-list file that cannot be read", map[string]string{"AUTHPROXY_IDPS": "partners", "AUTHPROXY_IDP_PARTNERS_ALLOWED_GROUPS_FILE": missing},
			"AUTHPROXY_IDP_PARTNERS_ALLOWED_GROUPS: reading AUTHPROXY_IDP_PARTNERS_ALLOWED_GROUPS_FILE: open " + missing},
		{"an allow-list and its file", map[string]string{"AUTHPROXY_ALLOWED_EMAILS": "bob@example.com", "AUTHPROXY_ALLOWED_EMAILS_FILE": emails},
			"AUTHPROXY_ALLOWED_EMAILS: set either AUTHPROXY_ALLOWED_EMAILS or AUTHPROXY_ALLOWED_EMAILS_FILE, not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := LoadPolicy(mapLookup(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadPolicy: %v, policy %v; want an error saying %q", err, p, tc.want)
			}
		})
	}
	p, err := LoadPolicy(mapLookup(map[string]string{"AUTHPROXY_ALLOWED_EMAILS_FILE": emails}))
	if err != nil || !slices.Equal(p.Allow.Emails, []string{"ada@example.com"}) {
		t.Errorf("LoadPolicy with the allow-list in a file: %v, emails %v; want ada@example.com", err, p.Allow.Emails)
	}
}
