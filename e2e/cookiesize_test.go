package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// manyGroups returns n group names in the style of a directory that names
// groups after their object ids (Entra ID, or Dex's microsoft connector with
// groupNameFormat: id): a readable prefix and a GUID, 50-odd bytes each.
// The GUIDs make them as hard to compress as real ones.
func manyGroups(n int) []string {
	depts := []string{"finance", "engineering", "sales", "support", "legal", "people", "security", "marketing"}
	roles := []string{"readers", "writers", "admins", "oncall", "approvers"}
	groups := make([]string, n)
	for i := range groups {
		h := sha256.Sum256([]byte(fmt.Sprint("group ", i)))
		groups[i] = fmt.Sprintf("app-%s-%s-%x-%x-%x-%x-%x", depts[i%len(depts)], roles[i/len(depts)%len(roles)], h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
	}
	return groups
}

// cookieRecorder is a server on another loopback port: the browser sends it
// every cookie it holds for 127.0.0.1 (cookies do not tell ports apart), so
// it sees the very Cookie header the browser sends to the proxy.
type cookieRecorder struct {
	srv     *httptest.Server
	headers chan []string
}

func newCookieRecorder(t *testing.T) *cookieRecorder {
	t.Helper()
	rec := &cookieRecorder{headers: make(chan []string, 16)}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cookie" {
			rec.headers <- r.Header.Values("Cookie")
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>recorded</title><p id="recorded">recorded</p>`)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// cookieHeader navigates tab to the recorder and returns the Cookie header
// the browser sent with that navigation.
func (rec *cookieRecorder) cookieHeader(t *testing.T, tab context.Context) string {
	t.Helper()
	run(t, tab, "send the browser's cookies to a recorder", chromedp.Navigate(rec.srv.URL+"/cookie"), chromedp.WaitVisible("#recorded", chromedp.ByID))
	select {
	case h := <-rec.headers:
		if len(h) != 1 {
			t.Fatalf("the browser sent %d Cookie headers, want one", len(h))
		}
		return h[0]
	default:
		t.Fatal("the recorder saw no request for /cookie")
		return ""
	}
}

// TestCookieStoreSessionSize signs users in through Chromium with the
// default cookie store and measures what the browser then carries: a Dex
// user with a couple of groups and a refresh token (offline_access) in one
// cookie under 2 KB, and a user in 150 groups (a ~12 KB ID token) with every
// group reaching the app and a Cookie header under nginx's default 8 KB
// line limit (large_client_header_buffers 4 8k).
func TestCookieStoreSessionSize(t *testing.T) {
	ps := newProcSet(t)
	pp := newProxy(t, ps, "authproxy")
	many := manyGroups(150)
	dex := startDex(t, ps, dexOptions{
		Callbacks:   []string{pp.callbackURL()},
		ExtraUsers:  2,
		ExtraGroups: map[int][]string{2: many},
	})
	pp.start(t, dexProxyEnv(dex, pp.callbackURL(), newSecret())...)
	rec := newCookieRecorder(t)

	plain := extraUser(1)
	grouped := extraUser(2)
	grouped.groups = many
	tests := []struct {
		name        string
		u           user
		maxCookies  int // authproxy's cookies
		maxCookie   int // bytes of each, name=value
		maxHeader   int // bytes of the whole Cookie header
		wantGroupsN int
	}{
		{"plain Dex user", plain, 1, 2000, 2000, 2},
		{"user in 150 groups", grouped, 5, 4000, 8000, 150},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newBrowser(t)
			dexSignIn(t, tab, pp.url, dex, tt.u, "/")
			page := readLegacyPage(t, tab)
			if len(page.Groups) != tt.wantGroupsN || !slices.Equal(page.Groups, tt.u.groups) {
				t.Errorf("the app got %d groups, want all %d of %s", len(page.Groups), len(tt.u.groups), tt.u.email)
			}
			if page.Email != tt.u.email {
				t.Errorf("the app got email %q, want %q", page.Email, tt.u.email)
			}

			cookies := proxyCookies(t, tab, pp.url+"/")
			var names []string
			total := 0
			for _, c := range cookies {
				n := len(c.Name) + 1 + len(c.Value)
				total += n
				names = append(names, fmt.Sprintf("%s (%d bytes)", c.Name, n))
				if n > tt.maxCookie {
					t.Errorf("cookie %s is %d bytes, want at most %d", c.Name, n, tt.maxCookie)
				}
			}
			if len(cookies) == 0 || len(cookies) > tt.maxCookies {
				t.Errorf("the browser holds %d authproxy cookies %v, want 1 to %d", len(cookies), names, tt.maxCookies)
			}
			header := rec.cookieHeader(t, tab)
			if len(header) > tt.maxHeader {
				t.Errorf("the browser's Cookie header is %d bytes, want at most %d", len(header), tt.maxHeader)
			}
			if len(cookies) > 0 && !strings.Contains(header, cookies[0].Name+"=") {
				t.Errorf("the recorded Cookie header lacks %s: the recorder did not see the proxy's cookies", cookies[0].Name)
			}
			t.Logf("%s: %d authproxy cookies %s, %d bytes; Cookie header %d bytes",
				tt.name, len(cookies), strings.Join(names, ", "), total, len(header))

			// The session works past the sign-in's redirect, too.
			run(t, tab, "reload the app", chromedp.Navigate(pp.url+"/again"), chromedp.WaitVisible("#preferred-username", chromedp.ByID))
			if again := readLegacyPage(t, tab); !slices.Equal(again.Groups, tt.u.groups) {
				t.Errorf("reloading: the app got %d groups, want %d", len(again.Groups), len(tt.u.groups))
			}
		})
	}
}
