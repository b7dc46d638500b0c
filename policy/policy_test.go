package policy

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// testPolicy is the policy most tests decide against.
func testPolicy() *Policy {
	return &Policy{Rules: []Rule{
		{Path: "/healthz", Methods: []string{"GET"}, Access: Public, Source: "AUTHPROXY_SKIP_AUTH_ROUTES"},
		{Path: "/public/", Access: Public, Source: "policy file rule 1"},
		{Path: "/admin/", Access: Restricted, Groups: []string{"admins"}, Source: "policy file rule 2"},
		{Path: "/reports/", Access: Restricted, Emails: []string{"Ada@Example.com"}, Domains: []string{"corp.example"}, Groups: []string{"finance"}, Source: "policy file rule 3"},
		{Path: "/api/", Methods: []string{"POST", "PUT"}, Access: Restricted, Groups: []string{"writers"}, Source: "policy file rule 4"},
		{Path: "/api/", Access: Authenticated, Source: "policy file rule 5"},
		{Path: "/broken/", Source: "policy file rule 6"},
		{Path: "/app", Access: Authenticated, Source: "policy file rule 7"},
	}}
}

func TestDecide(t *testing.T) {
	var (
		anon    *Identity
		bob     = &Identity{Email: "bob@example.com"}
		admin   = &Identity{Email: "root@example.com", Groups: []string{"staff", "admins"}}
		ada     = &Identity{Email: "ADA@example.COM"}
		corp    = &Identity{Email: "eve@Corp.Example"}
		subCorp = &Identity{Email: "eve@sub.corp.example"}
		atAt    = &Identity{Email: "mallory@corp.example@evil.example"}
		writer  = &Identity{Email: "w@example.com", Groups: []string{"writers"}}
		noMail  = &Identity{Groups: []string{"finance"}}
		caseGrp = &Identity{Email: "x@example.com", Groups: []string{"Admins", ""}}
	)
	p := testPolicy()
	for _, tc := range []struct {
		name, method, path string
		p                  *Policy
		id                 *Identity
		rule               int // index into p.Rules; -1 for none
		allow, session     bool
	}{
		{"public exact, anonymous", "GET", "/healthz", p, anon, 0, true, false},
		{"public exact, HEAD via GET", "HEAD", "/healthz", p, anon, 0, true, false},
		{"public exact, other method", "POST", "/healthz", p, anon, -1, false, true},
		{"public exact, signed in, other method", "POST", "/healthz", p, bob, -1, false, true},
		{"public exact plus slash", "GET", "/healthz/", p, anon, -1, false, true},
		{"public prefix root", "DELETE", "/public/", p, anon, 1, true, false},
		{"public prefix deep", "GET", "/public/a/b", p, bob, 1, true, false},
		{"prefix without slash", "GET", "/public", p, anon, -1, false, true},
		{"other case", "GET", "/PUBLIC/x", p, anon, -1, false, true},
		{"restricted, anonymous", "GET", "/admin/", p, anon, 2, false, true},
		{"restricted, not in group", "GET", "/admin/x", p, bob, 2, false, true},
		{"restricted, in group", "GET", "/admin/x", p, admin, 2, true, true},
		{"restricted, group case differs", "GET", "/admin/x", p, caseGrp, 2, false, true},
		{"restricted email, case-insensitive", "GET", "/reports/q1", p, ada, 3, true, true},
		{"restricted domain, case-insensitive", "GET", "/reports/q1", p, corp, 3, true, true},
		{"restricted domain, subdomain", "GET", "/reports/q1", p, subCorp, 3, false, true},
		{"restricted domain, last @ counts", "GET", "/reports/q1", p, atAt, 3, false, true},
		{"restricted group without email", "GET", "/reports/q1", p, noMail, 3, true, true},
		{"restricted, other user", "GET", "/reports/q1", p, bob, 3, false, true},
		{"method rule first, writer", "POST", "/api/x", p, writer, 4, true, true},
		{"method rule first, reader", "PUT", "/api/x", p, bob, 4, false, true},
		{"method rule skipped for GET", "GET", "/api/x", p, bob, 5, true, true},
		{"authenticated, anonymous", "GET", "/api/x", p, anon, 5, false, true},
		{"zero access denies signed in", "GET", "/broken/x", p, admin, 6, false, true},
		{"zero access, anonymous", "GET", "/broken/x", p, anon, 6, false, true},
		{"exact authenticated", "GET", "/app", p, bob, 7, true, true},
		{"exact does not cover below", "GET", "/app/x", p, bob, -1, false, true},
		{"no match, signed in", "GET", "/other", p, admin, -1, false, true},
		{"no match, anonymous", "GET", "/other", p, anon, -1, false, true},
		{"empty policy, anonymous", "GET", "/x", &Policy{}, anon, -1, false, true},
		{"empty policy, signed in", "POST", "/x", &Policy{}, bob, -1, true, true},
		{"nil policy, signed in", "GET", "/x", nil, bob, -1, true, true},
		{"nil policy, anonymous", "GET", "/x", nil, anon, -1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.p.Decide(tc.method, tc.path, tc.id)
			var want *Rule
			if tc.rule >= 0 {
				want = &tc.p.Rules[tc.rule]
			}
			if d.Rule != want {
				t.Errorf("rule = %v, want %v", d.Rule, want)
			}
			if d.Allow != tc.allow || d.NeedsSession != tc.session {
				t.Errorf("Allow, NeedsSession = %t, %t; want %t, %t (%s)", d.Allow, d.NeedsSession, tc.allow, tc.session, d.Reason)
			}
			if d.Reason == "" || strings.Contains(d.Reason, tc.path) && tc.path != "/" {
				t.Errorf("Reason = %q: want a sentence without request data", d.Reason)
			}
		})
	}
}

func TestNew(t *testing.T) {
	skip, err := ParseSkipRoutes("GET /healthz, /public/")
	if err != nil {
		t.Fatal(err)
	}
	file := &Policy{Rules: []Rule{{Path: "/public/secret/", Access: Restricted, Groups: []string{"a"}}}}
	bob := &Identity{Email: "bob@example.com"}

	envOnly := New(skip, nil, AllowList{})
	if d := envOnly.Decide("GET", "/elsewhere", bob); !d.Allow || d.Rule == nil || d.Rule.Source == "" {
		t.Errorf("without a file, a signed-in user elsewhere: %+v; want allowed by the default rule", d)
	}
	if d := envOnly.Decide("GET", "/elsewhere", nil); d.Allow || !d.NeedsSession {
		t.Errorf("without a file, anonymous elsewhere: %+v; want sent to sign in", d)
	}
	both := New(skip, file, AllowList{})
	if d := both.Decide("GET", "/public/secret/x", nil); !d.Allow || d.Rule.Source != "AUTHPROXY_SKIP_AUTH_ROUTES" {
		t.Errorf("skip routes come first: %+v", d)
	}
	if d := both.Decide("GET", "/elsewhere", bob); d.Allow {
		t.Errorf("with a file, no match must deny: %+v", d)
	}
	if len(skip) != 2 || len(file.Rules) != 1 {
		t.Errorf("New modified its arguments")
	}
	if d := New(nil, nil, AllowList{}).Decide("POST", "/x", bob); !d.Allow {
		t.Errorf("New(nil, nil) must let a signed-in user through: %+v", d)
	}
}

// attackPolicy guards /admin/ and lets only /public/ and GET /healthz
// through without a session.
func attackPolicy() *Policy {
	return &Policy{Rules: []Rule{
		{Path: "/healthz", Methods: []string{"GET"}, Access: Public},
		{Path: "/public/", Access: Public},
		{Path: "/admin/", Access: Restricted, Groups: []string{"admins"}},
		{Path: "/", Access: Authenticated},
	}}
}

// TestAttackMatrix sends request-targets, as they arrive on the wire, through
// what a server does with them (parse the request-target, check the method,
// clean the escaped path) and fails on the first that reaches a rule other
// than the one it must.
func TestAttackMatrix(t *testing.T) {
	const refused = "refused"
	ran := 0
	p := attackPolicy()
	for _, tc := range []struct {
		method, target, want string // want: refused, or the path of the deciding rule
	}{
		{"GET", "/public/../admin/", refused},
		{"GET", "/public/%2e%2e/admin/", refused},
		{"GET", "/public/%2E%2E/admin/", refused},
		{"GET", "/public/.%2e/admin/", refused},
		{"GET", "/public/%2e./admin/", refused},
		{"GET", "/public%2F..%2Fadmin/", refused},
		{"GET", "/public%2f..%2fadmin/", refused},
		{"GET", "//public/../admin/", refused},
		{"GET", "/public/..;/admin/", refused},
		{"GET", "/public/..;x=1/admin/", refused},
		{"GET", "/public/.;/../admin/", refused},
		{"GET", "/public/./../admin/", refused},
		{"GET", "/public/x/../../admin/", refused},
		{"GET", `/public/..\admin/`, refused},
		{"GET", "/public/..%5cadmin/", refused},
		{"GET", "/public/..%5Cadmin/", refused},
		{"GET", "/public/%00/../admin/", refused},
		{"GET", "/public/x%00", refused},
		{"GET", "/public/%0a", refused},
		{"GET", "/public/%0d%0aX-Injected:%201", refused},
		{"GET", "/public/%c0%ae%c0%ae/admin/", refused},
		{"GET", "/public/%c0%afadmin/", refused},
		{"GET", "/public/%e0%80%ae%e0%80%ae/admin/", refused},
		{"GET", "/public/%EF%BC%8E%EF%BC%8E/admin/", refused},
		{"GET", "/public/%EF%BC%8F..%EF%BC%8Fadmin/", refused},
		{"GET", "/public/.../admin/", refused},
		{"GET", "/public/..%20/admin/", refused},
		{"GET", "/public/%252e%252e/admin/", refused},
		{"GET", "/%252e%252e/admin/", refused},
		{"GET", "/%2561dmin/x", refused},
		{"GET", "/public/x#/../admin/", refused},
		{"GET", "/admin;x/users", refused},
		{"GET", "/admin./users", refused},
		{"GET", "/admin%20/users", refused},
		{"GET", "/%20/admin/users", refused},
		{"get", "/admin/", refused},
		{"Get", "/public/x", refused},
		{"GET ", "/public/x", refused},
		{"GET", "public/x", refused},
		{"GET", "*", refused},
		{"GET", "/PUBLIC/x", "/"},
		{"GET", "/Public/x", "/"},
		{"GET", "/public", "/"},
		{"GET", "/publicity", "/"},
		{"GET", "/public/x?y", "/public/"},
		{"GET", "/public/x?/../../admin/", "/public/"},
		{"GET", "/p%75blic/x", "/public/"},
		{"GET", "//public/x", "/public/"},
		{"GET", "/public//x", "/public/"},
		{"GET", "/admin/x?/public/", "/admin/"},
		{"GET", "//admin/x", "/admin/"},
		{"GET", "/admin//x", "/admin/"},
		{"GET", "/%61dmin/x", "/admin/"},
		{"GET", "/admin", "/"},
		{"HEAD", "/healthz", "/healthz"},
		{"POST", "/healthz", "/"},
		{"GET", "/healthz/", "/"},
		{"GET", "/healthz;x", "/"},
	} {
		ran++
		got, anonAllowed := refused, false
		if u, err := url.ParseRequestURI(tc.target); err == nil && ValidMethod(tc.method) {
			if clean, err := CleanPath(u.EscapedPath()); err == nil {
				got = "no rule"
				if r := p.Match(tc.method, clean); r != nil {
					got = r.Path
				}
				anonAllowed = p.Decide(tc.method, clean, nil).Allow
			}
		}
		if got != tc.want {
			t.Fatalf("attack %d: %s %s reached %q, want %q", ran, tc.method, tc.target, got, tc.want)
		}
		if anonAllowed != (tc.want == "/public/" || tc.want == "/healthz") {
			t.Fatalf("attack %d: %s %s: anonymous allowed = %t", ran, tc.method, tc.target, anonAllowed)
		}
	}
	t.Logf("%d attack request-targets ran; none reached a rule it should not", ran)
}

// FuzzDecide checks Decide against a fixed policy with any method, path and
// identity: it never panics, never lets a request through without a
// session unless a public rule decided it, and never lets a user of an IdP
// through a rule that does not accept that IdP or past that IdP's
// allow-list.
func FuzzDecide(f *testing.F) {
	f.Add("GET", "/admin/x", false, "", "", "")
	f.Add("GET", "/public/x", false, "", "", "")
	f.Add("POST", "/api/x", true, "w@example.com", "writers", "")
	f.Add("GET", "/reports/q", true, "ada@example.com", "", "")
	f.Add("HEAD", "/healthz", false, "", "", "")
	f.Add("get", "/public/../admin/", true, "@", ",admins", "")
	f.Add("GET", "/admin/x", true, "ada@example.com", "admins,contractors", "partners")
	f.Add("GET", "/partners/x", true, "", "contractors", "partners")
	f.Add("GET", "/ops/x", true, "", "ops", "staff")
	p := testPolicy()
	p.DefaultIdP = "staff"
	p.IdPAllow = map[string]AllowList{"partners": {Groups: []string{"contractors"}}}
	p.Rules = append([]Rule{
		{Path: "/partners/", Access: Authenticated, IdPs: []string{"partners"}},
		{Path: "/ops/", Access: Restricted, IdPs: []string{"staff", "partners"}, Groups: []string{"ops"}},
	}, p.Rules...)
	f.Fuzz(func(t *testing.T, method, path string, signedIn bool, email, groups, idp string) {
		var id *Identity
		if signedIn {
			id = &Identity{Email: email, Groups: strings.Split(groups, ","), IdP: idp}
		}
		d := p.Decide(method, path, id) // raw input must not panic either
		if !ValidMethod(method) {
			return
		}
		clean, err := CleanPath(path)
		if err != nil {
			return
		}
		d = p.Decide(method, clean, id)
		public := d.Rule != nil && d.Rule.Access == Public
		name := idp
		if name == "" {
			name = p.DefaultIdP
		}
		inGroup := func(g string) bool { return strings.Contains(","+groups+",", ","+g+",") }
		switch {
		case d.Allow && id == nil && !public:
			t.Fatalf("%s %q: anonymous allowed by %v", method, clean, d.Rule)
		case public != !d.NeedsSession:
			t.Fatalf("%s %q: NeedsSession %t with rule %v", method, clean, d.NeedsSession, d.Rule)
		case public && !strings.HasPrefix(clean, "/public/") && clean != "/healthz":
			t.Fatalf("%s %q: public rule %v reached outside /public/ and /healthz", method, clean, d.Rule)
		case d.Allow && strings.HasPrefix(clean, "/admin/") && (id == nil || !inGroup("admins") || name != "staff"):
			t.Fatalf("%s %q: %+v let a non-admin, or another IdP's admin, into /admin/", method, clean, id)
		case d.Allow && !public && len(d.Rule.IdPs) > 0 && !slices.Contains(d.Rule.IdPs, name):
			t.Fatalf("%s %q: %+v let IdP %q through %v", method, clean, id, name, d.Rule)
		case d.Allow && !public && d.Rule.Access == Restricted && len(d.Rule.IdPs) == 0 && name != "staff":
			t.Fatalf("%s %q: %+v let IdP %q through the default IdP's rule %v", method, clean, id, name, d.Rule)
		case d.Allow && !public && name == "partners" && !inGroup("contractors"):
			t.Fatalf("%s %q: %+v let a partner off its allow-list through", method, clean, id)
		case d.Allow && !public && !p.Accepts(d.Rule, idp):
			t.Fatalf("%s %q: %+v allowed by %v, which Accepts says IdP %q cannot pass", method, clean, id, d.Rule, idp)
		case d.Reason == "":
			t.Fatalf("%s %q: no reason", method, clean)
		}
	})
}

// BenchmarkDecide decides against a ten-rule policy, the request matching
// the last rule but one.
func BenchmarkDecide(b *testing.B) {
	p := &Policy{}
	for _, prefix := range []string{"/a/", "/b/", "/c/", "/d/", "/e/", "/f/", "/g/", "/reports/"} {
		p.Rules = append(p.Rules, Rule{Path: prefix, Methods: []string{"GET", "POST"}, Access: Restricted, Groups: []string{"g1", "g2", "g3"}})
	}
	p.Rules = append(p.Rules,
		Rule{Path: "/admin/", Access: Restricted, Groups: []string{"ops", "admins"}, Emails: []string{"ada@example.com"}, Domains: []string{"example.com"}},
		Rule{Path: "/", Access: Authenticated},
	)
	id := &Identity{Email: "bob@Example.com", Groups: []string{"staff", "dev", "oncall"}}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Decide("HEAD", "/admin/users/42/edit", id); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}

// TestAllowList: the global allow-list judges every signed-in user on every
// rule that is not public, before the rule, and alone at sign-in (Admit);
// each refusal has its own Cause.
func TestAllowList(t *testing.T) {
	rules := []Rule{
		{Path: "/public/", Access: Public},
		{Path: "/admin/", Access: Restricted, Groups: []string{"admins"}},
		{Path: "/", Access: Authenticated},
	}
	ada := &Identity{Email: "Ada@Example.com", Groups: []string{"admins", "staff"}}
	bob := &Identity{Email: "bob@other.example", Groups: []string{"staff"}}
	noEmail := &Identity{Groups: []string{"staff"}}
	for _, tc := range []struct {
		name  string
		allow AllowList
		path  string
		id    *Identity
		want  Cause
	}{
		{"zero allow-list restricts nobody", AllowList{}, "/x", noEmail, CauseSignedIn},
		{"any domain", AllowList{Domains: []string{"*"}}, "/x", noEmail, CauseSignedIn},
		{"domain matches, any case", AllowList{Domains: []string{"example.com"}}, "/x", ada, CauseSignedIn},
		{"domain refused", AllowList{Domains: []string{"example.com"}}, "/x", bob, CauseEmailNotAllowed},
		{"email listed adds to the domains", AllowList{Domains: []string{"example.com"}, Emails: []string{"BOB@other.example"}}, "/x", bob, CauseSignedIn},
		{"emails alone with any domain still need an email", AllowList{Domains: []string{"*"}, Emails: []string{"x@y.z"}}, "/x", noEmail, CauseNoEmail},
		{"no email where domains restrict", AllowList{Domains: []string{"example.com"}}, "/x", noEmail, CauseNoEmail},
		{"group required", AllowList{Groups: []string{"admins"}}, "/x", bob, CauseGroupNotAllowed},
		{"group present", AllowList{Groups: []string{"admins"}}, "/x", ada, CauseSignedIn},
		{"allow-list before the rule", AllowList{Groups: []string{"ops"}}, "/admin/x", bob, CauseGroupNotAllowed},
		{"rule after the allow-list", AllowList{Groups: []string{"staff"}}, "/admin/x", bob, CauseNotListed},
		{"rule admits", AllowList{Groups: []string{"staff"}}, "/admin/x", ada, CauseGroup},
		{"public rules ignore the allow-list", AllowList{Groups: []string{"ops"}}, "/public/x", bob, CausePublic},
		{"anonymous is anonymous", AllowList{Groups: []string{"ops"}}, "/x", nil, CauseAnonymous},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Policy{Rules: rules, Allow: tc.allow}
			d := p.Decide("GET", tc.path, tc.id)
			if d.Cause != tc.want || d.Reason != tc.want.String() {
				t.Fatalf("Decide: cause %v (%q), want %v", d.Cause, d.Reason, tc.want)
			}
			allowed := tc.want == CausePublic || tc.want == CauseSignedIn || tc.want == CauseGroup
			if d.Allow != allowed {
				t.Errorf("Allow = %t, want %t", d.Allow, allowed)
			}
			if tc.id == nil || tc.want == CausePublic {
				return // Admit judges the identity alone: see the other cases
			}
			admit := p.Admit(tc.id)
			if tc.want.ByAllowList() {
				if admit.Allow || admit.Cause != tc.want {
					t.Errorf("Admit = %+v, want refused with %v", admit, tc.want)
				}
			} else if !admit.Allow || admit.Cause != CauseAllowListed {
				t.Errorf("Admit = %+v, want allowed", admit)
			}
		})
	}
}

// TestJudgeMatchesOnce: a caller that matched the rule once gets from
// Judge what Decide gives, and Public says when no identity is needed.
func TestJudgeMatchesOnce(t *testing.T) {
	p := testPolicy()
	for _, path := range []string{"/", "/public/x", "/admin/", "/nothing"} {
		r := p.Match("GET", path)
		for _, id := range []*Identity{nil, {Email: "a@example.com", Groups: []string{"admins"}}} {
			if got, want := p.Judge(r, id), p.Decide("GET", path, id); got != want {
				t.Errorf("%s: Judge = %+v, Decide = %+v", path, got, want)
			}
		}
		if r.Public() != !p.Decide("GET", path, nil).NeedsSession {
			t.Errorf("%s: Public() = %t disagrees with NeedsSession", path, r.Public())
		}
	}
}
