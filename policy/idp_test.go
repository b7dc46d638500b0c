package policy

import (
	"reflect"
	"slices"
	"testing"
)

// idpPolicy has rules for the default IdP, for named IdPs, and for any IdP;
// defaultIdP names the default IdP.
func idpPolicy(defaultIdP string) *Policy {
	return &Policy{DefaultIdP: defaultIdP, Rules: []Rule{
		{Path: "/public/", Access: Public},
		{Path: "/admin/", Access: Restricted, Groups: []string{"admins"}},
		{Path: "/mail/", Access: Restricted, Emails: []string{"ada@staff.example"}, Domains: []string{"corp.example"}},
		{Path: "/partners/", Access: Authenticated, IdPs: []string{"partners"}},
		{Path: "/staff/", Access: Authenticated, IdPs: []string{"staff"}},
		{Path: "/ops/", Access: Restricted, IdPs: []string{"staff", "partners"}, Groups: []string{"ops"}},
		{Path: "/partner-admin/", Access: Restricted, IdPs: []string{"partners"}, Groups: []string{"admins"}},
		{Path: "/nobody/", Access: Restricted, IdPs: []string{"partners"}},
		{Path: "/broken/", IdPs: []string{"partners"}},
		{Path: "/", Access: Authenticated},
	}}
}

// allows lists the causes for which Judge lets a request through.
var allows = []Cause{CausePublic, CauseSignedIn, CauseNoPolicy, CauseGroup, CauseEmail, CauseDomain, CauseIdP}

// TestIdPs: a rule's IdPs, or the default IdP when it lists none, decide
// whose claims count; each case names the semantics it pins.
func TestIdPs(t *testing.T) {
	var (
		staffAdmin   = &Identity{Email: "ada@staff.example", Groups: []string{"admins"}}
		namedAdmin   = &Identity{Email: "ada@staff.example", Groups: []string{"admins"}, IdP: "staff"}
		partnerAdmin = &Identity{Email: "ada@staff.example", Groups: []string{"admins", "ops"}, IdP: "partners"}
		partnerCorp  = &Identity{Email: "eve@corp.example", IdP: "partners"}
		partner      = &Identity{Email: "pat@partner.example", IdP: "partners"}
		staffOps     = &Identity{Email: "sam@staff.example", Groups: []string{"ops"}, IdP: "staff"}
		github       = &Identity{Email: "gh@example.com", Groups: []string{"ops", "admins"}, IdP: "github"}
		defaultNamed = &Identity{Email: "ada@staff.example", Groups: []string{"admins"}, IdP: "default"}
	)
	for _, tc := range []struct {
		name       string
		defaultIdP string
		path       string
		id         *Identity
		want       Cause
	}{
		{"default IdP's admins pass a groups rule", "staff", "/admin/x", staffAdmin, CauseGroup},
		{"the default IdP by name is the default", "staff", "/admin/x", namedAdmin, CauseGroup},
		{"partner admins refused on a default-IdP groups rule", "staff", "/admin/x", partnerAdmin, CauseWrongIdP},
		{"other IdP's admins refused on a default-IdP groups rule", "staff", "/admin/x", github, CauseWrongIdP},
		{"partner asserting a staff email gets nothing", "staff", "/mail/x", partnerAdmin, CauseWrongIdP},
		{"partner asserting a listed domain gets nothing", "staff", "/mail/x", partnerCorp, CauseWrongIdP},
		{"default IdP's email passes", "staff", "/mail/x", staffAdmin, CauseEmail},
		{"partner admitted by idps alone", "staff", "/partners/x", partner, CauseIdP},
		{"default IdP refused by another IdP's rule", "staff", "/partners/x", staffAdmin, CauseWrongIdP},
		{"idps [staff] admits IdP \"\" when staff is the default", "staff", "/staff/x", staffAdmin, CauseIdP},
		{"idps [staff] refuses IdP \"\" when default is the default", "default", "/staff/x", staffAdmin, CauseWrongIdP},
		{"idps [staff] admits staff by name when it is not the default", "default", "/staff/x", namedAdmin, CauseIdP},
		{"a named IdP is not the default when the default is another", "default", "/admin/x", namedAdmin, CauseWrongIdP},
		{"idps and groups: listed IdP in the group", "staff", "/ops/x", partnerAdmin, CauseGroup},
		{"idps and groups: default IdP by name in the group", "staff", "/ops/x", staffOps, CauseGroup},
		{"idps and groups: listed IdP, not in the group", "staff", "/ops/x", partner, CauseNotListed},
		{"idps and groups: unlisted IdP in the group", "staff", "/ops/x", github, CauseWrongIdP},
		{"idps and groups: the default IdP is not listed implicitly", "default", "/ops/x", &Identity{Groups: []string{"ops"}}, CauseWrongIdP},
		{"partner admins pass a partner admins rule", "staff", "/partner-admin/", partnerAdmin, CauseGroup},
		{"staff admins refused on a partner admins rule", "staff", "/partner-admin/", staffAdmin, CauseWrongIdP},
		{"restricted with idps but no claims lets nobody in", "staff", "/nobody/", partner, CauseNotListed},
		{"invalid access with idps still denies", "staff", "/broken/", partner, CauseInvalidRule},
		{"authenticated admits any IdP", "staff", "/x", github, CauseSignedIn},
		{"authenticated admits a partner", "staff", "/x", partner, CauseSignedIn},
		{"anonymous on an idps rule is sent to sign in", "staff", "/partners/", nil, CauseAnonymous},
		{"public ignores the IdP", "staff", "/public/x", github, CausePublic},
		{"unnamed default: IdP \"\" is the default", "", "/admin/x", staffAdmin, CauseGroup},
		{"unnamed default: \"default\" is just another IdP", "", "/admin/x", defaultNamed, CauseWrongIdP},
		{"unnamed default is never among a rule's idps", "", "/staff/x", staffAdmin, CauseWrongIdP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := idpPolicy(tc.defaultIdP)
			d := p.Decide("GET", tc.path, tc.id)
			if d.Cause != tc.want || d.Reason != tc.want.String() {
				t.Fatalf("cause %v (%q), want %v (%q)", d.Cause, d.Reason, tc.want, tc.want.String())
			}
			if want := slices.Contains(allows, tc.want); d.Allow != want {
				t.Errorf("Allow = %t, want %t", d.Allow, want)
			}
			if d.Cause.ByAllowList() {
				t.Errorf("%v counts as an allow-list refusal", d.Cause)
			}
		})
	}
	for _, tc := range []struct {
		name string
		p    *Policy
	}{{"no rules", &Policy{DefaultIdP: "staff"}}, {"nil policy", nil}} {
		if d := tc.p.Decide("GET", "/x", partner); !d.Allow || d.Cause != CauseNoPolicy {
			t.Errorf("%s: a partner gets %+v; want any signed-in user of any IdP through", tc.name, d)
		}
	}
	if d := idpPolicy("staff").Decide("GET", "/x/", &Identity{IdP: "partners"}); d.Rule == nil || d.Rule.Path != "/" {
		t.Fatalf("no catch-all: %+v", d)
	}
	p := &Policy{DefaultIdP: "staff", Rules: []Rule{{Path: "/a", Access: Authenticated}}}
	if d := p.Decide("GET", "/b", partner); d.Allow || d.Cause != CauseNoRule {
		t.Errorf("no rule matches: %+v; want denied", d)
	}
}

// TestIdPAllowLists: each IdP has its own allow-list, applied at sign-in
// (Admit) and before every rule that is not public (Judge).
func TestIdPAllowLists(t *testing.T) {
	file := &Policy{Rules: []Rule{
		{Path: "/public/", Access: Public},
		{Path: "/admin/", Access: Restricted, Groups: []string{"admins"}},
		{Path: "/", Access: Authenticated},
	}}
	p := New(nil, file, AllowList{Domains: []string{"staff.example"}},
		WithDefaultIdP("staff"),
		WithIdPAllowList("partners", AllowList{Groups: []string{"contractors"}}),
		WithIdPAllowList("staff", AllowList{Groups: []string{"nobody-has-this"}}), // the default's is allow
	)
	if p.DefaultIdP != "staff" || len(p.IdPAllow) != 2 {
		t.Fatalf("New with options: DefaultIdP %q, IdPAllow %v", p.DefaultIdP, p.IdPAllow)
	}
	for _, tc := range []struct {
		name string
		path string
		id   *Identity
		want Cause // of Decide; Admit follows the allow-list alone
	}{
		{"default IdP, on its allow-list", "/x", &Identity{Email: "ada@staff.example"}, CauseSignedIn},
		{"default IdP by name, on its allow-list", "/x", &Identity{Email: "ada@staff.example", IdP: "staff"}, CauseSignedIn},
		{"default IdP, off its allow-list", "/x", &Identity{Email: "bob@other.example", Groups: []string{"contractors"}}, CauseEmailNotAllowed},
		{"default IdP without email", "/x", &Identity{IdP: "staff"}, CauseNoEmail},
		{"partner, on its allow-list, whatever the default's domains", "/x", &Identity{Email: "pat@other.example", Groups: []string{"contractors"}, IdP: "partners"}, CauseSignedIn},
		{"partner, off its allow-list", "/x", &Identity{Email: "pat@staff.example", IdP: "partners"}, CauseGroupNotAllowed},
		{"partner allow-list comes before the wrong IdP", "/admin/", &Identity{Email: "pat@staff.example", Groups: []string{"admins"}, IdP: "partners"}, CauseGroupNotAllowed},
		{"partner on its allow-list, then the wrong IdP", "/admin/", &Identity{Groups: []string{"admins", "contractors"}, IdP: "partners"}, CauseWrongIdP},
		{"IdP without an allow-list is restricted by none", "/x", &Identity{IdP: "github"}, CauseSignedIn},
		{"public ignores every allow-list", "/public/", &Identity{IdP: "partners"}, CausePublic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide("GET", tc.path, tc.id)
			if d.Cause != tc.want {
				t.Fatalf("Decide: cause %v (%q), want %v", d.Cause, d.Reason, tc.want)
			}
			if want := slices.Contains(allows, tc.want); d.Allow != want {
				t.Errorf("Decide: Allow = %t, want %t", d.Allow, want)
			}
			if tc.want == CausePublic {
				return // Admit judges the identity alone: see the other cases
			}
			admit := p.Admit(tc.id)
			switch {
			case tc.want.ByAllowList() && (admit.Allow || admit.Cause != tc.want):
				t.Errorf("Admit = %+v, want refused with %v", admit, tc.want)
			case !tc.want.ByAllowList() && (!admit.Allow || admit.Cause != CauseAllowListed):
				t.Errorf("Admit = %+v, want allowed", admit)
			}
		})
	}
	if len(file.Rules) != 3 || file.DefaultIdP != "" || file.IdPAllow != nil {
		t.Errorf("New modified the file's policy: %+v", file)
	}
}

// TestAccepts: which IdPs could pass a rule, whatever their claims; and it
// agrees with Judge for a user who has every claim the rules name.
func TestAccepts(t *testing.T) {
	staff, dflt := idpPolicy("staff"), idpPolicy("default")
	unnamed := &Policy{Rules: []Rule{{Path: "/", Access: Authenticated, IdPs: []string{""}}}}
	rule := func(p *Policy, path string) *Rule {
		r := p.Match("GET", path)
		if r == nil || r.Path != path {
			t.Fatalf("no rule %s", path)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		p    *Policy
		r    *Rule
		idp  string
		want bool
	}{
		{"no rule matches in a policy with rules", staff, nil, "", false},
		{"no rule matches in a policy without rules", &Policy{}, nil, "partners", true},
		{"nil policy", nil, nil, "partners", true},
		{"public, any IdP", staff, rule(staff, "/public/"), "github", true},
		{"authenticated, another IdP", staff, rule(staff, "/"), "github", true},
		{"authenticated, the default IdP", staff, rule(staff, "/"), "", true},
		{"groups without idps, IdP \"\"", staff, rule(staff, "/admin/"), "", true},
		{"groups without idps, the default by name", staff, rule(staff, "/admin/"), "staff", true},
		{"groups without idps, another IdP", staff, rule(staff, "/admin/"), "partners", false},
		{"groups without idps, staff not the default", dflt, rule(dflt, "/admin/"), "staff", false},
		{"emails without idps, another IdP", staff, rule(staff, "/mail/"), "partners", false},
		{"idps alone, listed", staff, rule(staff, "/partners/"), "partners", true},
		{"idps alone, IdP \"\"", staff, rule(staff, "/partners/"), "", false},
		{"idps alone, the default by name", staff, rule(staff, "/partners/"), "staff", false},
		{"idps [staff], IdP \"\" when staff is the default", staff, rule(staff, "/staff/"), "", true},
		{"idps [staff], IdP \"\" when default is the default", dflt, rule(dflt, "/staff/"), "", false},
		{"idps and groups, listed", staff, rule(staff, "/ops/"), "partners", true},
		{"idps and groups, not listed", staff, rule(staff, "/ops/"), "github", false},
		{"idps without claims lets nobody in", staff, rule(staff, "/nobody/"), "partners", false},
		{"invalid access", staff, rule(staff, "/broken/"), "partners", false},
		{"an unnamed default IdP is never among a rule's idps", unnamed, &unnamed.Rules[0], "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Accepts(tc.r, tc.idp); got != tc.want {
				t.Errorf("Accepts(%v, %q) = %t, want %t", tc.r, tc.idp, got, tc.want)
			}
		})
	}
	for _, p := range []*Policy{staff, dflt, idpPolicy(""), unnamed, {}} {
		rules := []*Rule{nil}
		for i := range p.Rules {
			rules = append(rules, &p.Rules[i])
		}
		for _, r := range rules {
			for _, idp := range []string{"", "staff", "default", "partners", "github"} {
				super := &Identity{Email: "ada@staff.example", Groups: []string{"admins", "ops"}, IdP: idp}
				if got, judged := p.Accepts(r, idp), p.Judge(r, super); got != judged.Allow {
					t.Errorf("default %q, rule %v, IdP %q: Accepts %t, but Judge with every claim: %+v", p.DefaultIdP, r, idp, got, judged)
				}
			}
		}
	}
}

func TestIdPNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *Policy
		want []string
	}{
		{"nil policy", nil, nil},
		{"no idps", testPolicy(), nil},
		{"sorted, each once", idpPolicy("staff"), []string{"partners", "staff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.IdPNames(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("IdPNames() = %q, want %q", got, tc.want)
			}
		})
	}
	p := idpPolicy("staff")
	p.IdPNames()[0] = "changed"
	if p.Rules[3].IdPs[0] != "partners" {
		t.Error("IdPNames returned a rule's own slice")
	}
}

func TestValidIdPName(t *testing.T) {
	for name, want := range map[string]bool{
		"default": true, "staff": true, "partner-2": true, "-": true, "0": true,
		"": false, "Staff": false, "staff ": false, "st_aff": false, "staff.example": false,
		"stäff": false, "a/b": false, "a\n": false,
	} {
		if got := ValidIdPName(name); got != want {
			t.Errorf("ValidIdPName(%q) = %t, want %t", name, got, want)
		}
	}
}

// TestJudgeDoesNotAllocate: per-IdP rules and allow-lists keep Judge free of
// allocations, as it runs on every request.
func TestJudgeDoesNotAllocate(t *testing.T) {
	p := idpPolicy("staff")
	p.Allow = AllowList{Domains: []string{"staff.example"}}
	p.IdPAllow = map[string]AllowList{"partners": {Groups: []string{"ops"}}}
	ids := []*Identity{
		{Email: "ada@staff.example", Groups: []string{"admins"}},
		{Email: "pat@partner.example", Groups: []string{"ops"}, IdP: "partners"},
		{Email: "gh@example.com", IdP: "github"},
	}
	paths := []string{"/admin/x", "/ops/x", "/partners/", "/mail/", "/x"}
	allocs := testing.AllocsPerRun(100, func() {
		for _, id := range ids {
			for _, path := range paths {
				p.Decide("GET", path, id)
			}
			p.Admit(id)
		}
	})
	if allocs != 0 {
		t.Errorf("Decide and Admit allocate %v times a run; want none", allocs)
	}
}
