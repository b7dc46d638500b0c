package authproxy

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Which IdPs a browser that must sign in is offered: those the rule of the
// page it returns to accepts, whether it arrives by navigating there or by
// /oauth2/start?rd= (nginx's error_page 401, Traefik, a sign-in link).

// threePolicy routes /admin/ to the default IdP only, /shared/ to the
// default and partners IdPs, /elsewhere/ to the robots' bearer tokens only,
// and the rest to any of the three browser IdPs.
const threePolicy = `rules:
  - path: /admin/
    allow: {idps: [default]}
  - path: /shared/
    allow: {idps: [default, partners]}
  - path: /elsewhere/
    allow: {idps: [robots]}
  - path: /
    allow: authenticated
`

// newThreeEnv is an authproxy with three browser IdPs (default, partners,
// contractors), a bearer-only one (robots) and threePolicy.
func newThreeEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	opts = append([]envOption{withOtherIdP("partners"), withOtherIdP("contractors"), withOtherIdP("robots"),
		withVar("AUTHPROXY_IDP_ROBOTS_BEARER_ONLY", "true"), withPolicy(threePolicy)}, opts...)
	e := newTestEnv(t, opts...)
	e.waitReady(t)
	return e
}

func TestSignInOffersTheIdPsTheReturnRouteAccepts(t *testing.T) {
	e := newThreeEnv(t, withVar("AUTHPROXY_TRUSTED_PROXIES", "127.0.0.1/32"))
	// How a browser that must sign in for path arrives.
	arrivals := map[string]func(path string) reply{
		"navigation": func(path string) reply { return e.navigate(t, noFollow(e.browser()), path) },
		"start?rd=": func(path string) reply {
			return e.navigate(t, noFollow(e.browser()), startPath+"?rd="+url.QueryEscape(path))
		},
		"start with X-Original-URI": func(path string) reply {
			return e.request(t, noFollow(e.browser()), http.MethodGet, startPath, "Accept", acceptHTML, "X-Original-URI", path)
		},
	}
	for _, tc := range []struct {
		path    string
		chooser []string // the IdPs the chooser lists
		direct  *fakeIdP // else the IdP the browser is sent straight to
		status  int      // else this status (no IdP the browser can use)
	}{
		{path: "/shared/x", chooser: []string{"default", "partners"}},
		{path: "/other", chooser: []string{"default", "partners", "contractors"}},
		{path: "/admin/", direct: e.idp},
		{path: "/elsewhere/", status: http.StatusForbidden},
	} {
		for how, arrive := range arrivals {
			t.Run(how+" "+tc.path, func(t *testing.T) {
				r := arrive(tc.path)
				switch {
				case tc.chooser != nil:
					var want []string
					for _, name := range tc.chooser {
						want = append(want, startURL(e.srv.idps.get(name), tc.path))
					}
					if got := chooserLinks(r.Body); r.Status != http.StatusOK || !slices.Equal(got, want) {
						t.Errorf("%d, chooser links %q; want 200 and only %q", r.Status, got, want)
					}
				case tc.direct != nil:
					if loc := r.Header.Get("Location"); r.Status != http.StatusFound || !strings.HasPrefix(loc, tc.direct.URL()+"/auth?") {
						t.Errorf("%d to %q; want 302 straight to %s", r.Status, loc, tc.direct.URL())
					}
				default:
					if r.Status != tc.status || chooserLinks(r.Body) != nil {
						t.Errorf("%d, links %q; want %d and no sign-in link", r.Status, chooserLinks(r.Body), tc.status)
					}
				}
			})
		}
	}
}

// TestStartRefusesAnIdPTheReturnRouteDoesNot: ?idp= naming a browser IdP
// that the page rd names does not accept signs in nowhere; the page links
// to the start that offers the right ones.
func TestStartRefusesAnIdPTheReturnRouteDoesNot(t *testing.T) {
	e := newThreeEnv(t)
	for _, tc := range []struct {
		idp, rd string
		want    int
	}{
		{"contractors", "/admin/", http.StatusForbidden},
		{"contractors", "/shared/x", http.StatusForbidden},
		{"partners", "/elsewhere/", http.StatusForbidden},
		{"partners", "/shared/x", http.StatusFound},
		{"contractors", "/other", http.StatusFound},
		{"default", "/admin/", http.StatusFound},
	} {
		t.Run(tc.idp+" "+tc.rd, func(t *testing.T) {
			c := e.browser()
			r := e.navigate(t, noFollow(c), startURL(e.srv.idps.get(tc.idp), tc.rd))
			if r.Status != tc.want {
				t.Fatalf("%d, want %d; body %.300s", r.Status, tc.want, r.Body)
			}
			if tc.want == http.StatusFound {
				f := e.others[tc.idp]
				if tc.idp == "default" {
					f = e.idp
				}
				if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, f.URL()+"/auth?") {
					t.Errorf("Location %q, want %s", loc, f.URL())
				}
				return
			}
			if slices.ContainsFunc(r.Cookies, func(c *http.Cookie) bool { return c.MaxAge >= 0 && c.Value != "" }) {
				t.Errorf("refused start set cookies %v", r.Cookies)
			}
			if tc.rd == "/elsewhere/" {
				return // no browser IdP to link to
			}
			if links := chooserLinks(r.Body); !slices.Equal(links, []string{startURL(nil, tc.rd)}) ||
				!strings.Contains(r.Body, "does not accept accounts from "+tc.idp) {
				t.Errorf("links %q, body %.400s; want a link to %q and the reason", links, r.Body, startURL(nil, tc.rd))
			}
		})
	}
}
