package providers

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestClaimsIdentity(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		claims                 string // JSON
		userClaim, groupsClaim string
		want                   Identity
	}{
		{"standard claims", `{"sub":"u1","email":"a@x.org","email_verified":true,"preferred_username":"ada","groups":["g1","g2"],"sid":"s1"}`,
			"sub", "groups", Identity{User: "u1", Subject: "u1", Email: "a@x.org", EmailVerified: true, PreferredUsername: "ada", Groups: []string{"g1", "g2"}, SID: "s1"}},
		{"nothing", `{}`, "sub", "groups", Identity{}},
		{"user from another claim", `{"sub":"u1","email":"a@x.org"}`, "email", "groups", Identity{User: "a@x.org", Subject: "u1", Email: "a@x.org"}},
		{"one group as a string", `{"groups":"admins"}`, "sub", "groups", Identity{Groups: []string{"admins"}}},
		{"empty group string", `{"groups":""}`, "sub", "groups", Identity{}},
		{"groups of mixed types", `{"groups":["a",null,{"x":1},"",true,"b"]}`, "sub", "groups", Identity{Groups: []string{"a", "b"}}},
		{"groups as an object", `{"groups":{"a":true}}`, "sub", "groups", Identity{}},
		{"email_verified as the string true", `{"email_verified":"true"}`, "sub", "groups", Identity{EmailVerified: true}},
		{"email_verified as the string false", `{"email_verified":"false"}`, "sub", "groups", Identity{}},
		{"email_verified as a number", `{"email_verified":1}`, "sub", "groups", Identity{}},
		{"email of the wrong type", `{"email":["a@x.org"]}`, "sub", "groups", Identity{}},
		{"nested groups", `{"realm_access":{"roles":["r1","r2"]}}`, "sub", "realm_access.roles", Identity{Groups: []string{"r1", "r2"}}},
		{"top-level dotted claim wins", `{"a.b":"top","a":{"b":"nested"}}`, "a.b", "groups", Identity{User: "top"}},
		{"namespaced claim (Auth0, Okta)", `{"https://example.com/groups":["g1"]}`, "sub", "https://example.com/groups", Identity{Groups: []string{"g1"}}},
		{"namespaced claim beside a lookalike path", `{"https://example.com/groups":["g1"],"https://example":{"com/groups":["evil"]}}`,
			"sub", "https://example.com/groups", Identity{Groups: []string{"g1"}}},
		{"namespaced claim absent: not a path", `{"https://example":{"com/groups":["evil"]}}`, "sub", "https://example.com/groups", Identity{}},
		{"path through a non-object", `{"a":"text"}`, "a.b", "groups", Identity{}},
		{"path to a missing member", `{"a":{"c":"x"}}`, "a.b", "groups", Identity{}},
		{"small integer user claim", `{"uid":42}`, "uid", "groups", Identity{User: "42"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var claims map[string]any
			if err := json.Unmarshal([]byte(tc.claims), &claims); err != nil {
				t.Fatal(err)
			}
			got := ClaimsIdentity(claims, tc.userClaim, tc.groupsClaim)
			if got.Groups != nil && len(got.Groups) == 0 {
				got.Groups = nil
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("ClaimsIdentity = %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestClaimsIdentityJSONNumber(t *testing.T) {
	got := ClaimsIdentity(map[string]any{"uid": json.Number("12345678901234567890")}, "uid", "groups")
	if got.User != "12345678901234567890" {
		t.Errorf("User = %q, want the number as written", got.User)
	}
}

func FuzzClaimsIdentity(f *testing.F) {
	f.Add(`{"sub":"u","email":"a@x.org","groups":["a","b"]}`, "sub", "groups")
	f.Add(`{"realm_access":{"roles":["r"]}}`, "sub", "realm_access.roles")
	f.Fuzz(func(t *testing.T, claimsJSON, userClaim, groupsClaim string) {
		var claims map[string]any
		if json.Unmarshal([]byte(claimsJSON), &claims) != nil {
			return
		}
		id := ClaimsIdentity(claims, userClaim, groupsClaim)
		for _, g := range id.Groups {
			if g == "" {
				t.Errorf("empty group from %s", claimsJSON)
			}
		}
		if s, ok := claims["sub"].(string); ok && id.Subject != s {
			t.Errorf("Subject %q, want the sub claim %q", id.Subject, s)
		}
		if v, ok := claims[userClaim].(string); ok && id.User != v {
			t.Errorf("User %q, want the top-level %q claim %q", id.User, userClaim, v)
		}
	})
}
