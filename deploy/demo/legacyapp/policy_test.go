package main

import (
	"testing"

	"github.com/authproxy/authproxy/policy"
)

// TestDemoPolicy checks that deploy/demo/policy.yaml, which deploy/demo/run.sh gives authproxy,
// does what the demo promises for its users: /admin/ for admins only, /public/ open, the rest for
// anyone signed in.
func TestDemoPolicy(t *testing.T) {
	file, err := policy.Load("../policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := policy.New(nil, file, policy.AllowList{})
	alice := &policy.Identity{Email: "alice@example.com", Groups: []string{"admins", "staff"}}
	bob := &policy.Identity{Email: "bob@example.com", Groups: []string{"staff"}}
	carol := &policy.Identity{Email: "carol@example.com"}
	for _, tc := range []struct {
		name         string
		path         string
		id           *policy.Identity
		allow        bool
		needsSession bool
	}{
		{"alice at /admin/", "/admin/", alice, true, true},
		{"alice deeper in /admin/", "/admin/users", alice, true, true},
		{"bob at /admin/", "/admin/", bob, false, true},
		{"carol at /admin/", "/admin/", carol, false, true},
		{"anonymous at /admin/", "/admin/", nil, false, true},
		{"anonymous at /public/", "/public/", nil, true, false},
		{"carol at /public/page", "/public/page", carol, true, false},
		{"carol at /", "/", carol, true, true},
		{"anonymous at /", "/", nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide("GET", tc.path, tc.id)
			if d.Allow != tc.allow || d.NeedsSession != tc.needsSession {
				t.Errorf("GET %s: allow %t, needs a session %t (%s); want %t, %t", tc.path, d.Allow, d.NeedsSession, d.Reason, tc.allow, tc.needsSession)
			}
		})
	}
}
