package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a bad policy, as Load, Parse and ParseSkipRoutes report it:
// every problem found, each in one line that names the rule and field
// ("rule 3: path: …"). Error() prefixes each line with "policy: "; callers
// that say where the policy came from themselves (authproxy names the
// variable) print Problems instead.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("policy: ")
		b.WriteString(p)
	}
	return b.String()
}

// newError gathers problems into an Error.
func newError(errs []error) *Error {
	e := &Error{}
	for _, err := range errs {
		e.Problems = append(e.Problems, err.Error())
	}
	return e
}

// Load reads and parses the policy file at path; see Parse. Call it once at
// start and refuse to serve on error: a policy that failed to load must not
// fall back to no policy, which would let any signed-in user in everywhere.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Problems: []string{err.Error()}}
	}
	return Parse(data)
}

// Parse parses a YAML policy file:
//
//	# first matching rule decides; no match = deny
//	rules:
//	  - path: /health
//	    methods: [GET, HEAD]
//	    allow: public
//	  - path: /admin/
//	    allow: {groups: [admins]}
//	  - path: /reports/
//	    allow: {emails: [ada@example.com], domains: [example.com], groups: [finance]}
//	  - path: /partners/
//	    allow: {idps: [partners]}
//	  - path: /ops/
//	    allow: {idps: [staff, partners], groups: [ops]}
//	  - path: /
//	    allow: authenticated
//
// Each rule has a path (clean, unescaped, starting with "/", a prefix when
// it ends in "/"; no wildcards, query or %-escapes), optional methods
// (upper-case; none means every method) and allow: public, authenticated,
// or a mapping of groups, emails, domains and idps with at least one entry.
//
// Without idps, groups, emails and domains are the default IdP's: a user of
// another IdP never satisfies them. With idps (names of IdPs, see
// ValidIdPName, each once), only users of those IdPs pass, and, when the
// rule also lists groups, emails or domains, only those it names (a
// Restricted rule); idps alone lets any signed-in user of those IdPs
// through (an Authenticated rule with IdPs). allow: authenticated lets any
// signed-in user of any IdP through. Parse does not know which IdPs exist:
// the caller checks IdPNames.
//
// Parsing is strict: unknown or repeated fields, wrong types, an empty rule
// list and a rule that can never decide because an earlier rule matches
// every request it would are errors. Every problem is reported at once
// (errors.Join), each naming the rule number and field. The returned rules
// carry Source "policy file rule N".
func Parse(data []byte) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, &Error{Problems: []string{"the file is empty; want a rules: list"}}
	} else if err != nil {
		return nil, &Error{Problems: []string{err.Error()}}
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, &Error{Problems: []string{"want one YAML document, got more (or a broken second one after ---)"}}
	}
	var errs []error
	top := fields(resolve(doc.Content[0]), []string{"rules"}, "", &errs)
	rules := resolve(top["rules"])
	switch {
	case top == nil:
		return nil, newError(errs)
	case rules == nil:
		errs = append(errs, errors.New("rules: missing; want a list of rules"))
	case rules.Kind != yaml.SequenceNode:
		errs = append(errs, fmt.Errorf("rules: want a list of rules, got %s", kind(rules)))
	case len(rules.Content) == 0:
		errs = append(errs, errors.New("rules: want at least one rule; without a policy file any signed-in user may pass"))
	}
	if rules == nil || rules.Kind != yaml.SequenceNode {
		return nil, newError(errs)
	}
	p := &Policy{}
	var numbers []int // each good rule's number in the file
	for i, n := range rules.Content {
		r, ok := parseRule(i+1, resolve(n), &errs)
		if !ok {
			continue
		}
		for j := range p.Rules {
			if covers(&p.Rules[j], &r) {
				errs = append(errs, fmt.Errorf("rule %d: never decides: rule %d (%s) comes first and matches every request it would", i+1, numbers[j], &p.Rules[j]))
				break
			}
		}
		p.Rules = append(p.Rules, r)
		numbers = append(numbers, i+1)
	}
	if len(errs) > 0 {
		return nil, newError(errs)
	}
	return p, nil
}

// parseRule parses rule number n, appending its problems to errs.
func parseRule(n int, node *yaml.Node, errs *[]error) (Rule, bool) {
	at := fmt.Sprintf("rule %d: ", n)
	before := len(*errs)
	f := fields(node, []string{"path", "methods", "allow"}, at, errs)
	if f == nil {
		return Rule{}, false
	}
	r := Rule{Source: fmt.Sprintf("policy file rule %d", n)}
	switch v := resolve(f["path"]); {
	case v == nil:
		*errs = append(*errs, errors.New(at+"path: missing; want a path such as /admin/"))
	case !isString(v):
		*errs = append(*errs, fmt.Errorf("%spath: want a path such as /admin/, got %s", at, kind(v)))
	default:
		r.Path = v.Value
		if problem := pathProblem(r.Path); problem != "" {
			*errs = append(*errs, fmt.Errorf("%spath %q: %s", at, r.Path, problem))
		}
	}
	if v := f["methods"]; v != nil {
		r.Methods = stringList(v, at+"methods: ", "[GET, HEAD]", errs)
		if r.Methods != nil && len(r.Methods) == 0 {
			*errs = append(*errs, errors.New(at+"methods: want at least one method, or leave methods out for every method"))
		}
		for i, m := range r.Methods {
			switch {
			case !ValidMethod(m):
				*errs = append(*errs, fmt.Errorf("%smethods: %q: want an upper-case HTTP method such as GET", at, m))
			case slices.Contains(r.Methods[:i], m):
				*errs = append(*errs, fmt.Errorf("%smethods: %s is listed twice", at, m))
			}
		}
	}
	parseAllow(&r, resolve(f["allow"]), at+"allow: ", errs)
	return r, len(*errs) == before
}

// parseAllow parses a rule's allow field into r.
func parseAllow(r *Rule, v *yaml.Node, at string, errs *[]error) {
	const want = "want public, authenticated or a mapping of groups, emails and domains"
	switch {
	case v == nil:
		*errs = append(*errs, errors.New(at+"missing; "+want))
		return
	case isString(v) && v.Value == "public":
		r.Access = Public
		return
	case isString(v) && v.Value == "authenticated":
		r.Access = Authenticated
		return
	case isString(v):
		*errs = append(*errs, fmt.Errorf("%s%s, got %q", at, want, v.Value))
		return
	case v.Kind != yaml.MappingNode:
		*errs = append(*errs, fmt.Errorf("%s%s, got %s", at, want, kind(v)))
		return
	}
	r.Access = Restricted
	f := fields(v, []string{"groups", "emails", "domains", "idps"}, at, errs)
	if n := f["idps"]; n != nil {
		r.IdPs = stringList(n, at+"idps: ", "[staff, partners]", errs)
		if r.IdPs != nil && len(r.IdPs) == 0 {
			*errs = append(*errs, errors.New(at+"idps: want at least one IdP name, or leave idps out for the default IdP"))
		}
		for i, name := range r.IdPs {
			switch {
			case !ValidIdPName(name):
				*errs = append(*errs, fmt.Errorf("%sidps: %q: want an IdP name of lower-case letters, digits and -", at, name))
			case slices.Contains(r.IdPs[:i], name):
				*errs = append(*errs, fmt.Errorf("%sidps: %s is listed twice", at, name))
			}
		}
	}
	for _, name := range []string{"groups", "emails", "domains"} {
		if f[name] == nil {
			continue
		}
		list := stringList(f[name], at+name+": ", "[admins]", errs)
		for _, s := range list {
			if problem := entryProblem(name, s); problem != "" {
				*errs = append(*errs, fmt.Errorf("%s%s: %q: %s", at, name, s, problem))
			}
		}
		switch name {
		case "groups":
			r.Groups = list
		case "emails":
			r.Emails = list
		case "domains":
			r.Domains = list
		}
	}
	switch {
	case f == nil || len(r.Groups)+len(r.Emails)+len(r.Domains) > 0:
	case len(r.IdPs) > 0:
		r.Access = Authenticated // idps alone: any signed-in user of those IdPs
	case f["idps"] == nil:
		*errs = append(*errs, errors.New(at+"want at least one of groups, emails or domains, or idps; to let any signed-in user through, write allow: authenticated"))
	}
}

// entryProblem returns what is wrong with one group, email or domain, or "".
func entryProblem(list, s string) string {
	switch {
	case s == "":
		return "want a non-empty entry"
	case strings.TrimSpace(s) != s:
		return "want no spaces around it"
	case list == "emails" && (strings.LastIndexByte(s, '@') <= 0 || strings.HasSuffix(s, "@")):
		return "want an email address such as ada@example.com"
	case list == "domains" && strings.ContainsAny(s, "@*/ "):
		return "want a bare domain such as example.com (no @, wildcard or path); to let any signed-in user through, write allow: authenticated"
	}
	return ""
}

// pathProblem returns what is wrong with p as a rule's path, or "".
func pathProblem(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "want a path starting with /"
	case strings.ContainsAny(p, "?#"):
		return "want a path without a query or fragment, which are not matched"
	case strings.Contains(p, "*"):
		return "want a path without wildcards; end it with / to cover everything under it"
	case strings.Contains(p, "%"):
		return "want the path unescaped, without %-escapes"
	}
	clean, err := CleanPath(p)
	switch {
	case err == errDotSegment || err == errPathParameter || err == nil && clean != p:
		return "want a clean path without //, . or .. segments"
	case err != nil:
		return "want a clean path, but" + strings.TrimPrefix(err.Error(), ErrAmbiguousPath.Error()+":")
	}
	return ""
}

// ParseSkipRoutes parses AUTHPROXY_SKIP_AUTH_ROUTES, a comma-separated list
// of "[METHOD] /path" such as "GET /healthz, /public/", into Public rules
// with Source "AUTHPROXY_SKIP_AUTH_ROUTES". Paths follow the policy file's
// rules; methods are upper-cased, as this variable always accepted "get".
// Empty items are skipped. Every problem is reported at once.
func ParseSkipRoutes(list string) ([]Rule, error) {
	var rules []Rule
	var errs []error
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		r := Rule{Access: Public, Source: "AUTHPROXY_SKIP_AUTH_ROUTES"}
		var problem string
		switch f := strings.Fields(item); len(f) {
		case 1:
			r.Path = f[0]
		case 2:
			r.Methods, r.Path = []string{strings.ToUpper(f[0])}, f[1]
			if !ValidMethod(r.Methods[0]) {
				problem = fmt.Sprintf("%q is not an HTTP method", f[0])
			}
		default:
			problem = "too many fields"
		}
		if problem == "" {
			problem = pathProblem(r.Path)
		}
		if problem != "" {
			errs = append(errs, fmt.Errorf("want [METHOD] /path, got %q: %s", item, problem))
			continue
		}
		rules = append(rules, r)
	}
	if len(errs) > 0 {
		return nil, newError(errs)
	}
	return rules, nil
}

// covers reports whether rule a matches every request rule b does, so that
// b, after a, never decides.
func covers(a, b *Rule) bool {
	if a.Path != b.Path && !(strings.HasSuffix(a.Path, "/") && strings.HasPrefix(b.Path, a.Path)) {
		return false
	}
	if len(a.Methods) == 0 {
		return true
	}
	if len(b.Methods) == 0 {
		return false
	}
	for _, m := range b.Methods {
		if !a.methodMatches(m) {
			return false
		}
	}
	return true
}
