package authproxy

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The open-redirect corpus: every payload in it is replayed through the
// real handler chain for every parameter that redirects (?rd= of
// /oauth2/start and /oauth2/sign_out, and the original URL of a browser
// navigation), and every Location authproxy answers must stay on its
// origin. See the file's header for its format.

var updateAttacks = flag.Bool("update-attacks", false, "rewrite the generated part of testdata/attacks/open_redirects.txt")

const (
	redirectCorpusFile = "testdata/attacks/open_redirects.txt"
	generatedMarker    = "# ---- generated: everything below is written by `go test ./authproxy -run TestOpenRedirectCorpusFile -update-attacks` ----"
)

// encodeCorpusLine is how a payload is written in the corpus: as is when it
// is plain printable text, else Go-quoted.
func encodeCorpusLine(p string) string {
	plain := p != "" && utf8.ValidString(p) && !strings.HasPrefix(p, "#") && !strings.HasPrefix(p, `"`)
	for _, r := range p {
		if !plain {
			break
		}
		plain = unicode.IsPrint(r) && !unicode.IsSpace(r)
	}
	if plain {
		return p
	}
	return strconv.Quote(p)
}

// decodeCorpusLine reads one line of the corpus. ok is false for comments
// and blank lines.
func decodeCorpusLine(line string) (payload string, ok bool, err error) {
	line = strings.TrimSuffix(line, "\r")
	switch {
	case line == "", strings.HasPrefix(line, "#"):
		return "", false, nil
	case strings.HasPrefix(line, `"`):
		p, err := strconv.Unquote(line)
		if err != nil {
			return "", false, fmt.Errorf("quoted line %s: %w", line, err)
		}
		return p, true, nil
	}
	return line, true, nil
}

// readRedirectCorpus returns the corpus's hand-written payloads, its
// generated payloads, and the file's text above the generated marker.
func readRedirectCorpus(t testing.TB) (hand, generated []string, head string) {
	t.Helper()
	f, err := os.Open(redirectCorpusFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	inGenerated := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == generatedMarker {
			inGenerated = true
			continue
		}
		if !inGenerated {
			b.WriteString(line + "\n")
		}
		p, ok, err := decodeCorpusLine(line)
		if err != nil {
			t.Fatalf("%s:%d: %v", redirectCorpusFile, n, err)
		}
		if !ok {
			continue
		}
		if inGenerated {
			generated = append(generated, p)
		} else {
			hand = append(hand, p)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !inGenerated {
		t.Fatalf("%s: no generated marker line", redirectCorpusFile)
	}
	return hand, generated, b.String()
}

// redirectCorpus is every payload of the corpus, hand-written first.
func redirectCorpus(t testing.TB) []string {
	hand, generated, _ := readRedirectCorpus(t)
	return append(hand, generated...)
}

// generateRedirectPayloads is the generated part of the corpus: every way
// of spelling "go to another host" crossed with hosts and tails, scheme
// payloads under transformations, and local paths that must keep working.
func generateRedirectPayloads() []string {
	// Written before a host, each tries to make the browser (or a server
	// that decodes once more) read what follows as an authority.
	prefixes := []string{
		// schemes
		"https://", "http://", "HTTP://", "HtTpS://", "https:/", "https:", "http:", "https:///", `https:\\`, `https:/\`,
		`https:\/`, "https%3A//", "https%3A%2F%2F", "https%253A%252F%252F", "https:%2F%2F", "ftp://", "ws://", "wss://",
		"https\t://", "ht\ttps://", "h\nttps://", " https://", "\thttps://", "\x00https://", "\x01https://",
		// scheme-relative and backslashes
		"//", "///", "////", `\\`, `/\`, `\/`, `/\/`, `\/\`, `\\\`, `/\\`, `//\`, `\\/`,
		// encoded and double-encoded slashes and backslashes
		"%2F%2F", "%2f%2f", "/%2F", "/%2f", "%2F/", "/%2F/", "%252F%252F", "/%252F", "/%252f%252f", "%5C%5C", "/%5C", "/%5c",
		"%5C/", "/%255C", "%2F%5C", "/%5C/", "%252F%5C",
		// whitespace and control characters browsers drop or trim
		"/\t/", "/\n/", "/\r/", "/\r\n/", "/\x00/", "/ /", "/\x0b/", "/\x0c/", "/%09/", "/%0a/", "/%0d/", "/%00/", "/%20/",
		" //", "  //", "\t//", "\n//", "\r\n//", "\x00//", "\x0b//", "\x0c//", "\x1f//", "\x7f//",
		"//\t", "/\t\\", "\t/\\", "\u00a0//", "\u3000//", "\ufeff//", "\u200b//", "/\u2028/", "/\u2029/", "\u2028//",
		// look-alike slashes (full-width, fraction, division, big solidus, small reverse solidus)
		"／／", "/／", "／/", "＼＼", "/＼", "⁄⁄", "/⁄", "∕∕", "/∕", "⧸⧸", "﹨﹨", "/﹨", "%EF%BC%8F%EF%BC%8F", "/%EF%BC%8F",
		"%E2%81%84%E2%81%84",
		// dot segments that http.Redirect or a browser may collapse
		"/./", "/../", "/.//", "/..//", "/./\\", `/.\`, "/%2e/", "/%2e%2e/", "/;/", "/.;/",
		// userinfo
		"/@", "@", "//trusted.example@", "https://trusted.example@", "//app.example@", "/\\app.example@", "https://app.example%40",
		"//app.example%2540", "https://app.example:443@", "//%40",
	}
	// Each prefix is tried with every host, and with one host followed by
	// a path, query and fragment.
	hosts := []string{"evil.example", "ｅｖｉｌ.com", "[::1]"}
	const tail = "/x?y=1#z"

	var out []string
	for _, p := range prefixes {
		for _, h := range hosts {
			out = append(out, p+h)
		}
		out = append(out, p+hosts[0]+tail)
	}

	schemes := []string{
		"javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "file:///etc/passwd",
		"blob:https://evil.example/0", "mailto:x@evil.example",
	}
	transforms := []func(string) string{
		func(s string) string { return s },
		strings.ToUpper,
		func(s string) string { return " " + s },
		func(s string) string { return "\t" + s },
		func(s string) string { return "\x00" + s },
		func(s string) string { return s[:4] + "\t" + s[4:] },
		func(s string) string { return s[:4] + "\n" + s[4:] },
		func(s string) string { return strings.Replace(s, ":", "%3A", 1) },
		func(s string) string { return strings.Replace(s, ":", "%253A", 1) },
		func(s string) string { return strings.Replace(s, ":", "&colon;", 1) },
		func(s string) string { return "/" + s },
		func(s string) string { return "//" + s },
		func(s string) string { return `/\` + s },
	}
	for _, s := range schemes {
		for _, tf := range transforms {
			out = append(out, tf(s))
		}
	}

	// Local paths, some of them mentioning other hosts: these must keep
	// working, and whatever authproxy makes of them must stay local.
	for _, tail := range []string{"", "?next=//evil.example", "?next=https://evil.example/", "#//evil.example", "#@evil.example", "?a=b&c=%2F%2Fevil.example"} {
		for _, p := range []string{"/", "/app", "/app/", "/app/page.html", "/@evil.example", "/evil.example", "/a/%2F%2Fevil.example", "/a//evil.example"} {
			out = append(out, p+tail)
		}
	}

	// Dedup, keeping the order.
	seen := map[string]bool{}
	uniq := out[:0]
	for _, p := range out {
		if !seen[p] {
			seen[p] = true
			uniq = append(uniq, p)
		}
	}
	return uniq
}

// TestOpenRedirectCorpusFile keeps the corpus file well-formed and its
// generated part in step with generateRedirectPayloads (-update-attacks
// rewrites it).
func TestOpenRedirectCorpusFile(t *testing.T) {
	hand, generated, head := readRedirectCorpus(t)
	handSet := map[string]bool{}
	for _, p := range hand {
		if handSet[p] {
			t.Errorf("hand-written payload %q appears twice", p)
		}
		handSet[p] = true
	}
	var want []string
	for _, p := range generateRedirectPayloads() {
		if !handSet[p] {
			want = append(want, p)
		}
	}
	if *updateAttacks {
		var b strings.Builder
		b.WriteString(head)
		b.WriteString(generatedMarker + "\n")
		for _, p := range want {
			b.WriteString(encodeCorpusLine(p) + "\n")
		}
		if err := os.WriteFile(redirectCorpusFile, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		generated = want
	}
	if !slices.Equal(generated, want) {
		t.Errorf("the generated part of %s is out of date (%d payloads, want %d): run go test ./authproxy -run TestOpenRedirectCorpusFile -update-attacks", redirectCorpusFile, len(generated), len(want))
	}
	for _, p := range append(hand, generated...) {
		back, ok, err := decodeCorpusLine(encodeCorpusLine(p))
		if !ok || err != nil || back != p {
			t.Errorf("payload %q does not survive the file format: read back %q (%v)", p, back, err)
		}
	}
	if n := len(hand) + len(generated); n < 500 {
		t.Errorf("corpus holds %d payloads, want at least 500", n)
	}
	t.Logf("open-redirect corpus: %d hand-written + %d generated payloads", len(hand), len(generated))
}

// appOrigin is the origin Locations are resolved against.
var appOrigin = &url.URL{Scheme: "https", Host: "app.example", Path: "/x/"}

// checkLocalLocation returns an error unless a browser on appOrigin that
// follows a redirect to loc stays on appOrigin, both as Go's URL parser
// resolves it and as WHATWG URL parsing does (tabs and newlines dropped,
// leading C0 and spaces trimmed, "\" read as "/"), and unless a server that
// decodes the path once more still reads a local path.
func checkLocalLocation(loc string) error {
	if loc == "" {
		return errors.New("empty Location")
	}
	for _, r := range loc {
		if r <= ' ' || r == 0x7f || r >= 0x80 {
			return fmt.Errorf("control, whitespace or non-ASCII character %q", r)
		}
	}
	for _, bad := range []string{"//", `/\`, `\\`, `\/`} {
		if strings.HasPrefix(loc, bad) {
			return fmt.Errorf("starts with %q", bad)
		}
	}
	if loc[0] != '/' {
		return errors.New("not a path starting with /")
	}
	ref, err := url.Parse(loc)
	if err != nil {
		return fmt.Errorf("url.Parse: %v", err)
	}
	if got := appOrigin.ResolveReference(ref); got.Scheme != appOrigin.Scheme || got.Host != appOrigin.Host || got.User != nil {
		return fmt.Errorf("resolves to %s", got.Redacted())
	}
	whatwg := strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' }))
	if strings.HasPrefix(whatwg, "//") {
		return fmt.Errorf("a browser reads it as %q: scheme-relative", whatwg)
	}
	ref, err = url.Parse(whatwg)
	if err != nil {
		return fmt.Errorf("url.Parse(%q): %v", whatwg, err)
	}
	if got := appOrigin.ResolveReference(ref); got.Host != appOrigin.Host || got.User != nil {
		return fmt.Errorf("a browser resolves it to %s", got.Redacted())
	}
	dec, err := url.PathUnescape(ref.EscapedPath())
	if err == nil && (strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, `/\`)) {
		return fmt.Errorf("decoded once more it is %q", dec)
	}
	return nil
}

func TestCheckLocalLocation(t *testing.T) {
	for _, loc := range []string{"/", "/a?b=//evil#c", "/@evil.example", "/a//b", "/a/%2F%2Fevil", "/?next=https://evil.example"} {
		if err := checkLocalLocation(loc); err != nil {
			t.Errorf("checkLocalLocation(%q) = %v, want nil", loc, err)
		}
	}
	for _, loc := range []string{
		"", "https://evil.example", "//evil.example", "///evil.example", `/\evil.example`, `\\evil.example`, `\/evil.example`,
		"/\t/evil.example", " //evil.example", "javascript:alert(1)", "evil.example", "/%2F%2Fevil.example", "/%5Cevil.example",
		"http:evil.example", "/\u2028/evil",
	} {
		if checkLocalLocation(loc) == nil {
			t.Errorf("checkLocalLocation(%q) = nil, want an error", loc)
		}
	}
}

// redirectProbe replays payloads through one test environment.
type redirectProbe struct {
	e      *testEnv
	client *http.Client // no jar, no redirects: every cookie is explicit
}

func newRedirectProbe(e *testEnv) *redirectProbe {
	return &redirectProbe{e: e, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// get sends a browser navigation to target (a path on the proxy) with the
// given Cookie header.
func (p *redirectProbe) get(t testing.TB, method, target, cookie string) reply {
	t.Helper()
	req, err := http.NewRequest(method, p.e.url(target), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", acceptHTML)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	return doRequest(t, p.client, req)
}

// checkIdPAuthURL returns an error unless loc is the fake IdP's
// authorization endpoint with authproxy's own redirect_uri.
func (p *redirectProbe) checkIdPAuthURL(loc string) error {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != p.e.idp.URL()+"/auth" {
		return fmt.Errorf("not the IdP's authorization endpoint")
	}
	if got := u.Query().Get("redirect_uri"); got != p.e.cfg.RedirectURL.String() {
		return fmt.Errorf("redirect_uri %q, want %q", got, p.e.cfg.RedirectURL)
	}
	return nil
}

// stateCookie returns the name=value of the sign-in state cookie r set.
func (p *redirectProbe) stateCookie(r reply) string {
	for _, c := range r.Cookies {
		if strings.HasPrefix(c.Name, p.e.cfg.CookieName+"_csrf_") && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

// finishSignIn takes a 302 to the IdP with its state cookie, signs in at
// the fake IdP and returns the callback's answer.
func (p *redirectProbe) finishSignIn(t testing.TB, toIdP reply) reply {
	t.Helper()
	loc := toIdP.Header.Get("Location")
	if err := p.checkIdPAuthURL(loc); err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	state := p.stateCookie(toIdP)
	if state == "" {
		t.Fatalf("redirect to the IdP set no state cookie")
	}
	cb := p.e.idp.authorize(t, loc)
	return p.get(t, http.MethodGet, cb.RequestURI(), state)
}

// TestOpenRedirectCorpusSignIn replays every payload as /oauth2/start?rd=,
// signs in at the fake IdP, and checks the callback's redirect; under
// SameSite=Strict it checks the continue page's links instead.
func TestOpenRedirectCorpusSignIn(t *testing.T) {
	t.Parallel()
	corpus := redirectCorpus(t)
	for _, mode := range []struct {
		name     string
		sameSite string
	}{
		{"redirect", "lax"},
		{"continue page", "strict"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p := newRedirectProbe(newTestEnv(t, withVar("AUTHPROXY_COOKIE_SAMESITE", mode.sameSite)))
			kept := 0
			for i, payload := range corpus {
				start := p.get(t, http.MethodGet, startPath+"?rd="+url.QueryEscape(payload), "")
				if start.Status != http.StatusFound {
					t.Fatalf("payload %d %q: /oauth2/start answered %d, want 302", i, payload, start.Status)
				}
				cb := p.finishSignIn(t, start)
				var locs []string
				if mode.sameSite == "strict" {
					if cb.Status != http.StatusOK {
						t.Fatalf("payload %d %q: callback answered %d, want the 200 continue page", i, payload, cb.Status)
					}
					locs = continueLinks(t, cb.Body)
				} else {
					if cb.Status != http.StatusFound {
						t.Fatalf("payload %d %q: callback answered %d, want 302; body %.200s", i, payload, cb.Status, cb.Body)
					}
					locs = []string{cb.Header.Get("Location")}
				}
				for _, loc := range locs {
					if err := checkLocalLocation(loc); err != nil {
						t.Fatalf("ESCAPE: payload %d %q as ?rd=: after sign-in the browser is sent to %q: %v", i, payload, loc, err)
					}
				}
				if locs[0] != "/" {
					kept++
				}
			}
			t.Logf("%s: %d payloads through /oauth2/start + IdP + callback, none escaped (%d kept as a local path, the rest fell back to /)", mode.name, len(corpus), kept)
		})
	}
}

var (
	continueHref    = regexp.MustCompile(`href="([^"]*)"`)
	continueRefresh = regexp.MustCompile(`content="0;url=([^"]*)"`)
)

// continueLinks returns every link of the SameSite=Strict continue page:
// the meta refresh URL and the anchors' hrefs, HTML-unescaped.
func continueLinks(t testing.TB, body string) []string {
	t.Helper()
	var links []string
	for _, re := range []*regexp.Regexp{continueRefresh, continueHref} {
		for _, m := range re.FindAllStringSubmatch(body, -1) {
			links = append(links, html.UnescapeString(m[1]))
		}
	}
	if len(links) < 2 {
		t.Fatalf("continue page without its refresh and link: %.400s", body)
	}
	return links
}

// TestOpenRedirectCorpusSignOut replays every payload as
// /oauth2/sign_out?rd= against an IdP without an end-session endpoint, so
// that rd decides where the browser goes: signed in and signed out, GET and
// POST.
func TestOpenRedirectCorpusSignOut(t *testing.T) {
	t.Parallel()
	corpus := redirectCorpus(t)
	e := newTestEnv(t, withIdP(func(f *fakeIdP) { f.noEndSession = true }))
	p := newRedirectProbe(e)
	session := e.mintSession(t, testSession())
	cases := 0
	for i, payload := range corpus {
		for _, v := range []struct {
			method, cookie string
		}{
			{http.MethodGet, ""},
			{http.MethodGet, session},
			{http.MethodPost, session},
		} {
			r := p.get(t, v.method, signOutPath+"?rd="+url.QueryEscape(payload), v.cookie)
			if r.Status != http.StatusFound {
				t.Fatalf("payload %d %q: %s sign-out answered %d, want 302", i, payload, v.method, r.Status)
			}
			if err := checkLocalLocation(r.Header.Get("Location")); err != nil {
				t.Fatalf("ESCAPE: payload %d %q as sign-out ?rd= (%s, signed in %t): Location %q: %v", i, payload, v.method, v.cookie != "", r.Header.Get("Location"), err)
			}
			cases++
		}
	}
	t.Logf("%d sign-out requests (%d payloads x GET/POST, signed in or not), none escaped", cases, len(corpus))
}

// TestOpenRedirectCorpusNavigation writes every payload as the raw
// request-target of an unauthenticated browser navigation. Whatever
// authproxy answers, a redirect goes to the IdP or stays local, and after
// sign-in the browser returns to a local path.
func TestOpenRedirectCorpusNavigation(t *testing.T) {
	t.Parallel()
	corpus := redirectCorpus(t)
	e := newTestEnv(t)
	p := newRedirectProbe(e)
	statuses := map[int]int{}
	signIns := 0
	for i, payload := range corpus {
		r := rawHTTP(t, e.addr(), "GET "+payload+" HTTP/1.1\r\nHost: "+e.addr()+"\r\nAccept: "+acceptHTML+"\r\nConnection: close\r\n\r\n")
		statuses[r.Status]++
		if r.Status < 300 || r.Status > 399 {
			continue
		}
		loc := r.Header.Get("Location")
		if p.checkIdPAuthURL(loc) != nil {
			if err := checkLocalLocation(loc); err != nil {
				t.Fatalf("ESCAPE: request-target %d %q: %d Location %q: %v", i, payload, r.Status, loc, err)
			}
			continue
		}
		signIns++
		cb := p.finishSignIn(t, r)
		if cb.Status != http.StatusFound {
			t.Fatalf("request-target %d %q: callback answered %d, want 302", i, payload, cb.Status)
		}
		if err := checkLocalLocation(cb.Header.Get("Location")); err != nil {
			t.Fatalf("ESCAPE: request-target %d %q: after sign-in the browser is sent to %q: %v", i, payload, cb.Header.Get("Location"), err)
		}
	}
	if n := len(e.up.requests()); n != 0 {
		t.Errorf("the upstream saw %d requests without a session", n)
	}
	t.Logf("%d raw request-targets: status counts %v; %d went through sign-in and came back to a local path", len(corpus), statuses, signIns)
}

// TestOpenRedirectRawQueries sends ?rd= as raw query strings: repeated,
// differently cased and encoded parameters, which query-escaping a payload
// cannot produce.
func TestOpenRedirectRawQueries(t *testing.T) {
	t.Parallel()
	queries := []string{
		"rd=/ok&rd=//evil.example", "rd=//evil.example&rd=/ok", "RD=//evil.example", "rd=%2F%2Fevil.example",
		"rd=%252F%252Fevil.example", "rd=/%09/evil.example", "rd=%2F%09%2Fevil.example", `rd=/\evil.example`,
		"rd=%2F%5Cevil.example", "rd=https:%2F%2Fevil.example", "rd=//evil.example;rd=/ok", "rd=/ok;rd=//evil.example",
		"rd=/ok%26rd=//evil.example", "rd", "rd=", "rd=%", "rd=%zz", "rd=/%E2%80%A8/evil.example", "rd=/%0d%0aLocation:%20//evil.example",
		"rd=/%0d%0aSet-Cookie:%20x=1", "rd=+//evil.example", "rd=%20//evil.example", "rd=/+/evil.example",
		"rd=%EF%BC%8F%EF%BC%8Fevil.example", "rd=/?rd=//evil.example", "rd=/#//evil.example", "%72d=//evil.example",
	}
	e := newTestEnv(t, withIdP(func(f *fakeIdP) { f.noEndSession = true }))
	p := newRedirectProbe(e)
	for _, q := range queries {
		start := rawHTTP(t, e.addr(), "GET "+startPath+"?"+q+" HTTP/1.1\r\nHost: "+e.addr()+"\r\nAccept: text/html\r\nConnection: close\r\n\r\n")
		if start.Status != http.StatusFound {
			if start.Status >= 500 {
				t.Errorf("start ?%s: %d", q, start.Status)
			}
			continue
		}
		cb := p.finishSignIn(t, start)
		if err := checkLocalLocation(cb.Header.Get("Location")); err != nil {
			t.Fatalf("ESCAPE: /oauth2/start?%s: after sign-in Location %q: %v", q, cb.Header.Get("Location"), err)
		}
		out := rawHTTP(t, e.addr(), "GET "+signOutPath+"?"+q+" HTTP/1.1\r\nHost: "+e.addr()+"\r\nConnection: close\r\n\r\n")
		if out.Status >= 500 {
			t.Errorf("sign-out ?%s: %d", q, out.Status)
		}
		if out.Status == http.StatusFound {
			if err := checkLocalLocation(out.Header.Get("Location")); err != nil {
				t.Fatalf("ESCAPE: /oauth2/sign_out?%s: Location %q: %v", q, out.Header.Get("Location"), err)
			}
		}
	}
	t.Logf("%d raw ?rd= query strings through start + callback and sign-out, none escaped", len(queries))
}
