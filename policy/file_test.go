package policy

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	p, err := Load(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Path: "/health", Methods: []string{"GET", "HEAD"}, Access: Public, Source: "policy file rule 1"},
		{Path: "/assets/", Access: Public, Source: "policy file rule 2"},
		{Path: "/admin/", Access: Restricted, Groups: []string{"admins"}, Source: "policy file rule 3"},
		{Path: "/reports/", Access: Restricted, Groups: []string{"finance"}, Emails: []string{"ada@example.com"}, Domains: []string{"example.com"}, Source: "policy file rule 4"},
		{Path: "/api/", Methods: []string{"POST", "PUT", "DELETE"}, Access: Restricted, Groups: []string{"writers"}, Source: "policy file rule 5"},
		{Path: "/", Access: Authenticated, Source: "policy file rule 6"},
	}
	if !reflect.DeepEqual(p.Rules, want) {
		t.Errorf("Load gave\n%#v\nwant\n%#v", p.Rules, want)
	}
	if _, err := Load(filepath.Join("testdata", "missing.yaml")); err == nil || !strings.HasPrefix(err.Error(), "policy: ") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"flow style", `{rules: [{path: /, allow: authenticated}]}`},
		{"quoted path with space", "rules:\n  - path: \"/a b\"\n    allow: public\n"},
		{"last-segment parameter", "rules:\n  - path: /x;y\n    allow: public\n"},
		{"anchors and aliases", "rules:\n  - path: /a/\n    allow: &ops {groups: [ops]}\n  - path: /b/\n    allow: *ops\n"},
		{"exact before prefix of itself", "rules:\n  - path: /a\n    allow: public\n  - path: /a/\n    allow: authenticated\n"},
		{"methods split across rules", "rules:\n  - path: /a/\n    methods: [GET]\n    allow: public\n  - path: /a/\n    methods: [POST]\n    allow: authenticated\n"},
		{"narrow method rule after broad", "rules:\n  - path: /a/\n    methods: [GET]\n    allow: public\n  - path: /a/x\n    allow: authenticated\n"},
		{"WebDAV method", "rules:\n  - path: /dav/\n    methods: [PROPFIND]\n    allow: authenticated\n"},
		{"idps alone", "rules:\n  - path: /p/\n    allow: {idps: [partners]}\n"},
		{"idps and groups", "rules:\n  - path: /p/\n    allow: {idps: [staff, partner-2], groups: [admins]}\n"},
		{"idps in block style", "rules:\n  - path: /p/\n    allow:\n      idps:\n        - partners\n      emails: [a@b.example]\n"},
		{"idps through an alias", "rules:\n  - path: /a/\n    allow: {idps: &p [partners]}\n  - path: /b/\n    allow: {idps: *p, groups: [x]}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.in)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const ok = "  - path: /ok\n    allow: public\n"
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "policy: the file is empty"},
		{"only a comment", "# nothing\n", "policy: the file is empty"},
		{"bad YAML", "rules: [", "policy: yaml: "},
		{"two documents", "rules: []\n---\nrules: []\n", "policy: want one YAML document"},
		{"not a mapping", "- path: /\n", "policy: want a mapping of rules, got a list"},
		{"unknown top-level field", "rules:\n" + ok + "default: deny\n", `policy: unknown field "default"; want rules`},
		{"no rules field", "{}", "policy: rules: missing"},
		{"rules not a list", "rules: {path: /}", "policy: rules: want a list of rules, got a mapping"},
		{"rules empty", "rules: []", "policy: rules: want at least one rule"},
		{"rules null", "rules:", "policy: rules: want a list of rules, got nothing"},
		{"rule not a mapping", "rules:\n  - /admin/\n", `policy: rule 1: want a mapping of path, methods, allow, got the string "/admin/"`},
		{"unknown rule field", "rules:\n  - path: /\n    allow: public\n    meth: [GET]\n", `policy: rule 1: unknown field "meth"; want path, methods, allow`},
		{"repeated field", "rules:\n  - path: /\n    path: /x\n    allow: public\n", "policy: rule 1: path is given twice"},
		{"non-string key", "rules:\n  - 1: x\n    path: /\n    allow: public\n", "policy: rule 1: want field names such as path, got the number 1"},
		{"path missing", "rules:\n  - allow: public\n", "policy: rule 1: path: missing"},
		{"path a number", "rules:\n  - path: 7\n    allow: public\n", "policy: rule 1: path: want a path such as /admin/, got the number 7"},
		{"path relative", "rules:\n  - path: admin/\n    allow: public\n", `policy: rule 1: path "admin/": want a path starting with /`},
		{"path dot-dot", "rules:\n" + ok + "  - path: /admin/../x\n    allow: public\n", `policy: rule 2: path "/admin/../x": want a clean path without //, . or .. segments`},
		{"path dot", "rules:\n  - path: /a/./b\n    allow: public\n", `path "/a/./b": want a clean path without //, . or .. segments`},
		{"path doubled slash", "rules:\n  - path: /a//b\n    allow: public\n", `path "/a//b": want a clean path without //, . or .. segments`},
		{"path backslash", "rules:\n  - path: '/a\\b'\n    allow: public\n", `want a clean path, but it contains a backslash`},
		{"path control", "rules:\n  - path: \"/a\\tb\"\n    allow: public\n", `want a clean path, but it contains a control character`},
		{"path parameter before the end", "rules:\n  - path: /a;x/\n    allow: public\n", `want a clean path, but a segment before the last`},
		{"path escaped", "rules:\n  - path: /a%20b\n    allow: public\n", `path "/a%20b": want the path unescaped`},
		{"path wildcard", "rules:\n  - path: /api/*\n    allow: public\n", `path "/api/*": want a path without wildcards`},
		{"path query", "rules:\n  - path: /a?b=c\n    allow: public\n", `path "/a?b=c": want a path without a query`},
		{"methods not a list", "rules:\n  - path: /\n    methods: GET\n    allow: public\n", `policy: rule 1: methods: want a list such as [GET, HEAD], got the string "GET"`},
		{"methods empty", "rules:\n  - path: /\n    methods: []\n    allow: public\n", "policy: rule 1: methods: want at least one method"},
		{"methods null", "rules:\n  - path: /\n    methods:\n    allow: public\n", "policy: rule 1: methods: want a list such as [GET, HEAD], got nothing"},
		{"methods not strings", "rules:\n  - path: /\n    methods: [[GET]]\n    allow: public\n", "methods: want a list of strings such as [GET, HEAD], got a list in it"},
		{"method lower case", "rules:\n  - path: /\n    methods: [post]\n    allow: public\n", `policy: rule 1: methods: "post": want an upper-case HTTP method such as GET`},
		{"method not a token", "rules:\n  - path: /\n    methods: [\"GET /\"]\n    allow: public\n", `methods: "GET /": want an upper-case HTTP method`},
		{"method twice", "rules:\n  - path: /\n    methods: [GET, GET]\n    allow: public\n", "policy: rule 1: methods: GET is listed twice"},
		{"allow missing", "rules:\n  - path: /\n", "policy: rule 1: allow: missing; want public, authenticated or a mapping"},
		{"allow unknown word", "rules:\n  - path: /\n    allow: everyone\n", `policy: rule 1: allow: want public, authenticated or a mapping of groups, emails and domains, got "everyone"`},
		{"allow capitalised", "rules:\n  - path: /\n    allow: Public\n", `got "Public"`},
		{"allow a list", "rules:\n  - path: /\n    allow: [admins]\n", "allow: want public, authenticated or a mapping of groups, emails and domains, got a list"},
		{"allow a boolean", "rules:\n  - path: /\n    allow: true\n", "got the boolean true"},
		{"allow empty mapping", "rules:\n  - path: /\n    allow: {}\n", "policy: rule 1: allow: want at least one of groups, emails or domains"},
		{"allow empty lists", "rules:\n  - path: /\n    allow: {groups: [], emails: []}\n", "allow: want at least one of groups, emails or domains"},
		{"allow unknown field", "rules:\n  - path: /\n    allow: {users: [ada]}\n", `policy: rule 1: allow: unknown field "users"; want groups, emails, domains`},
		{"allow group not a list", "rules:\n  - path: /\n    allow: {groups: admins}\n", `policy: rule 1: allow: groups: want a list such as [admins], got the string "admins"`},
		{"allow empty group", "rules:\n  - path: /\n    allow: {groups: [\"\"]}\n", `policy: rule 1: allow: groups: "": want a non-empty entry`},
		{"allow spaced group", "rules:\n  - path: /\n    allow: {groups: [\" admins\"]}\n", `allow: groups: " admins": want no spaces around it`},
		{"allow bad email", "rules:\n  - path: /\n    allow: {emails: [ada]}\n", `policy: rule 1: allow: emails: "ada": want an email address such as ada@example.com`},
		{"allow email without domain", "rules:\n  - path: /\n    allow: {emails: [ada@]}\n", `allow: emails: "ada@": want an email address`},
		{"allow domain with @", "rules:\n  - path: /\n    allow: {domains: [\"@example.com\"]}\n", `policy: rule 1: allow: domains: "@example.com": want a bare domain`},
		{"allow domain wildcard", "rules:\n  - path: /\n    allow: {domains: [\"*\"]}\n", `allow: domains: "*": want a bare domain`},
		{"idps not a list", "rules:\n  - path: /\n    allow: {idps: partners}\n", `policy: rule 1: allow: idps: want a list such as [staff, partners], got the string "partners"`},
		{"idps null", "rules:\n  - path: /\n    allow: {idps: }\n", `policy: rule 1: allow: idps: want a list such as [staff, partners], got nothing`},
		{"idps not strings", "rules:\n  - path: /\n    allow: {idps: [7]}\n", `policy: rule 1: allow: idps: want a list of strings such as [staff, partners], got the number 7 in it`},
		{"idps empty", "rules:\n  - path: /\n    allow: {idps: []}\n", "policy: rule 1: allow: idps: want at least one IdP name, or leave idps out for the default IdP"},
		{"idps empty with groups", "rules:\n  - path: /\n    allow: {idps: [], groups: [admins]}\n", "policy: rule 1: allow: idps: want at least one IdP name"},
		{"idp upper case", "rules:\n  - path: /\n    allow: {idps: [Staff]}\n", `policy: rule 1: allow: idps: "Staff": want an IdP name of lower-case letters, digits and -`},
		{"idp underscore", "rules:\n" + ok + "  - path: /p/\n    allow: {idps: [st_aff], groups: [a]}\n", `policy: rule 2: allow: idps: "st_aff": want an IdP name`},
		{"idp empty name", "rules:\n  - path: /\n    allow: {idps: [\"\"]}\n", `policy: rule 1: allow: idps: "": want an IdP name`},
		{"idp spaced", "rules:\n  - path: /\n    allow: {idps: [\" staff\"]}\n", `allow: idps: " staff": want an IdP name`},
		{"idp dotted", "rules:\n  - path: /\n    allow: {idps: [idp.example]}\n", `allow: idps: "idp.example": want an IdP name`},
		{"idp twice", "rules:\n  - path: /\n    allow: {idps: [staff, partners, staff]}\n", "policy: rule 1: allow: idps: staff is listed twice"},
		{"idps given twice", "rules:\n  - path: /\n    allow: {idps: [a], idps: [b]}\n", "policy: rule 1: allow: idps is given twice"},
		{"idp field misspelt", "rules:\n  - path: /\n    allow: {idp: [staff]}\n", `policy: rule 1: allow: unknown field "idp"; want groups, emails, domains, idps`},
		{"same rule twice", "rules:\n" + ok + ok, "policy: rule 2: never decides: rule 1 (/ok allow public) comes first"},
		{"catch-all first", "rules:\n  - path: /\n    allow: authenticated\n" + ok, "policy: rule 2: never decides: rule 1 (/ allow authenticated)"},
		{"prefix covers later prefix", "rules:\n  - path: /a/\n    allow: public\n  - path: /a/b/\n    allow: {groups: [x]}\n", "policy: rule 2: never decides: rule 1"},
		{"all methods cover some", "rules:\n  - path: /a/\n    allow: public\n  - path: /a/\n    methods: [GET]\n    allow: authenticated\n", "policy: rule 2: never decides"},
		{"GET covers HEAD", "rules:\n  - path: /a\n    methods: [GET]\n    allow: public\n  - path: /a\n    methods: [HEAD]\n    allow: authenticated\n", "policy: rule 2: never decides"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse succeeded with %d rules; want an error containing %q", len(p.Rules), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error:\n%v\nwant it to contain %q", err, tc.want)
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, "policy: ") {
					t.Errorf("error line %q is not prefixed policy:", line)
				}
			}
		})
	}
}

// TestParseIdPs: a rule's idps become Rule.IdPs; with groups, emails or
// domains the rule is Restricted, alone Authenticated; IdPNames lists them.
func TestParseIdPs(t *testing.T) {
	p, err := Parse([]byte(`rules:
  - path: /partners/
    allow: {idps: [partners]}
  - path: /ops/
    allow: {idps: [staff, partners], groups: [ops], emails: [ada@example.com]}
  - path: /admin/
    allow: {groups: [admins]}
  - path: /
    allow: authenticated
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Path: "/partners/", Access: Authenticated, IdPs: []string{"partners"}, Source: "policy file rule 1"},
		{Path: "/ops/", Access: Restricted, IdPs: []string{"staff", "partners"}, Groups: []string{"ops"}, Emails: []string{"ada@example.com"}, Source: "policy file rule 2"},
		{Path: "/admin/", Access: Restricted, Groups: []string{"admins"}, Source: "policy file rule 3"},
		{Path: "/", Access: Authenticated, Source: "policy file rule 4"},
	}
	if !reflect.DeepEqual(p.Rules, want) {
		t.Errorf("Parse gave\n%#v\nwant\n%#v", p.Rules, want)
	}
	for i, s := range []string{
		"/partners/ allow idps [partners]",
		"/ops/ allow idps [staff partners] groups [ops] emails [ada@example.com]",
		"/admin/ allow groups [admins]",
		"/ allow authenticated",
	} {
		if got := p.Rules[i].String(); got != s {
			t.Errorf("rule %d: String() = %q, want %q", i+1, got, s)
		}
	}
	if got := p.IdPNames(); !reflect.DeepEqual(got, []string{"partners", "staff"}) {
		t.Errorf("IdPNames() = %q", got)
	}
	partner := &Identity{Groups: []string{"admins", "ops"}, IdP: "partners"}
	for path, want := range map[string]Cause{"/partners/x": CauseIdP, "/ops/x": CauseGroup, "/admin/x": CauseWrongIdP, "/x": CauseSignedIn} {
		if d := New(nil, p, AllowList{}, WithDefaultIdP("staff")).Decide("GET", path, partner); d.Cause != want {
			t.Errorf("a partner on %s: %v, want %v", path, d.Cause, want)
		}
	}
}

// FuzzParse checks that Parse never panics on any file, and that what it
// accepts is a policy whose every rule is well-formed: a clean path, valid
// methods and access, IdP names valid and each once.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"rules:\n  - path: /health\n    methods: [GET, HEAD]\n    allow: public\n  - path: /\n    allow: authenticated\n",
		"rules:\n  - path: /admin/\n    allow: {groups: [admins]}\n",
		"rules:\n  - path: /reports/\n    allow: {emails: [ada@example.com], domains: [example.com], groups: [finance]}\n",
		"rules:\n  - path: /p/\n    allow: {idps: [partners]}\n",
		"rules:\n  - path: /ops/\n    allow: {idps: [staff, partner-2], groups: [ops]}\n",
		"rules:\n  - path: /a/\n    allow: {idps: &p [partners]}\n  - path: /b/\n    allow: {idps: *p, groups: [x]}\n",
		"rules:\n  - path: /\n    allow: {idps: [Staff, staff, staff]}\n",
		"rules:\n  - path: /\n    allow: {idps: []}\n",
		"{rules: [{path: /, allow: {idps: [\"\"]}}]}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) || len(perr.Problems) == 0 {
				t.Fatalf("error %v is not a *policy.Error with problems", err)
			}
			return
		}
		if len(p.Rules) == 0 {
			t.Fatal("Parse accepted a policy without rules")
		}
		for i := range p.Rules {
			r := &p.Rules[i]
			switch {
			case pathProblem(r.Path) != "":
				t.Fatalf("rule %d: path %q: %s", i+1, r.Path, pathProblem(r.Path))
			case r.Access != Public && r.Access != Authenticated && r.Access != Restricted:
				t.Fatalf("rule %d: access %v", i+1, r.Access)
			case r.Access == Restricted && len(r.Groups)+len(r.Emails)+len(r.Domains) == 0:
				t.Fatalf("rule %d: restricted without groups, emails or domains", i+1)
			case r.IdPs != nil && len(r.IdPs) == 0:
				t.Fatalf("rule %d: empty idps", i+1)
			case r.String() == "":
				t.Fatalf("rule %d: empty String()", i+1)
			}
			for _, m := range r.Methods {
				if !ValidMethod(m) {
					t.Fatalf("rule %d: method %q", i+1, m)
				}
			}
			for j, name := range r.IdPs {
				if !ValidIdPName(name) || slices.Contains(r.IdPs[:j], name) {
					t.Fatalf("rule %d: idps %q", i+1, r.IdPs)
				}
			}
		}
		names := p.IdPNames()
		if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("IdPNames() = %q: want sorted, each once", names)
		}
	})
}

// TestParseReportsEveryProblem checks that one Parse reports every problem
// in the file, each with its rule number, rather than the first.
func TestParseReportsEveryProblem(t *testing.T) {
	in := `rules:
  - path: /a/../b
    methods: [get]
    allow: {groups: [], emails: [x]}
  - path: /ok/
    allow: public
  - allow: anyone
    extra: 1
`
	_, err := Parse([]byte(in))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v is not a *policy.Error", err)
	}
	want := []string{
		`rule 1: path "/a/../b": want a clean path`,
		`rule 1: methods: "get"`,
		`rule 1: allow: emails: "x"`,
		`rule 3: unknown field "extra"`,
		`rule 3: path: missing`,
		`rule 3: allow: want public, authenticated`,
	}
	got := perr.Problems
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want it to start %q", i+1, got[i], want[i])
		}
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) || !strings.HasPrefix(lines[0], "policy: rule 1: ") {
		t.Errorf("Error() = %q, want one line a problem, each prefixed policy:", err)
	}
}

func TestParseSkipRoutes(t *testing.T) {
	src := "AUTHPROXY_SKIP_AUTH_ROUTES"
	for _, tc := range []struct {
		name, in string
		want     []Rule
		err      string
	}{
		{"empty", "", nil, ""},
		{"only commas and spaces", " , ,", nil, ""},
		{"contract example", "GET /healthz, /public/", []Rule{
			{Path: "/healthz", Methods: []string{"GET"}, Access: Public, Source: src},
			{Path: "/public/", Access: Public, Source: src},
		}, ""},
		{"lower-case method upper-cased", "post /hook", []Rule{{Path: "/hook", Methods: []string{"POST"}, Access: Public, Source: src}}, ""},
		{"extension method", "PROPFIND /dav/", []Rule{{Path: "/dav/", Methods: []string{"PROPFIND"}, Access: Public, Source: src}}, ""},
		{"tabs between", "GET\t/x", []Rule{{Path: "/x", Methods: []string{"GET"}, Access: Public, Source: src}}, ""},
		{"no slash", "healthz", nil, `policy: want [METHOD] /path, got "healthz": want a path starting with /`},
		{"method only", "GET", nil, `got "GET": want a path starting with /`},
		{"bad method", "GE@T /x", nil, `policy: want [METHOD] /path, got "GE@T /x": "GE@T" is not an HTTP method`},
		{"too many fields", "GET /a /b", nil, `policy: want [METHOD] /path, got "GET /a /b": too many fields`},
		{"dot-dot", "/public/../admin", nil, `got "/public/../admin": want a clean path without //, . or .. segments`},
		{"doubled slash", "/a//b", nil, "want a clean path without //"},
		{"escaped slash", "/a%2fb", nil, "want the path unescaped"},
		{"backslash", `/a\b`, nil, "want a clean path, but it contains a backslash"},
		{"dot", "/a/.", nil, "want a clean path without"},
		{"wildcard", "/api/*", nil, "want a path without wildcards"},
		{"every problem at once", "healthz, /ok, GET /a /b", nil, "got \"healthz\": want a path starting with /\npolicy: want [METHOD] /path, got \"GET /a /b\": too many fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSkipRoutes(tc.in)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("ParseSkipRoutes(%q) error %v, want one containing %q", tc.in, err, tc.err)
			case tc.err == "" && err != nil:
				t.Errorf("ParseSkipRoutes(%q): %v", tc.in, err)
			case !reflect.DeepEqual(got, tc.want):
				t.Errorf("ParseSkipRoutes(%q) =\n%#v\nwant\n%#v", tc.in, got, tc.want)
			}
		})
	}
}
