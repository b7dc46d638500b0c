package providers

import (
	"errors"
	"reflect"
	"testing"
)

// TestGitLab runs the gitlab kind against the test IdP standing in for a
// GitLab instance (none runs here): its ID token carries groups_direct, its
// userinfo endpoint groups, as GitLab's do.
func TestGitLab(t *testing.T) {
	for _, tc := range []struct {
		name       string
		userinfo   map[string]any // nil: no userinfo endpoint
		wantGroups []string
		wantErr    bool
		rejected   bool
	}{
		{"ID token and userinfo", map[string]any{"sub": "user-1", "groups": []any{"acme", "acme/platform", "acme/web"}},
			[]string{"acme/platform", "acme", "acme/web"}, false, false},
		{"no userinfo endpoint", nil, []string{"acme/platform"}, false, false},
		{"userinfo about another user", map[string]any{"sub": "user-2", "groups": []any{"admins"}}, nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestIdP(t, "secret")
			f.set(func(f *testIdP) {
				f.userinfo = tc.userinfo
				f.tweak = func(c map[string]any) { delete(c, "groups"); c["groups_direct"] = []any{"acme/platform"} }
			})
			p := f.kindProvider(t, "gitlab", nil)
			id, err := exchange(t, f, p)
			if tc.wantErr {
				if err == nil || errors.Is(err, ErrRejected) != tc.rejected {
					t.Errorf("Exchange: %v; want an error, ErrRejected %t", err, tc.rejected)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(id.Groups, tc.wantGroups) {
				t.Errorf("Groups = %q, want %q", id.Groups, tc.wantGroups)
			}
		})
	}
}
