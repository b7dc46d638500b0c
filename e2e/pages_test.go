package e2e

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/authproxy/authproxy/templates"
)

// TestPagesRenderFinished loads authproxy's own pages in Chromium and checks
// that they render with their styles, fetch nothing from anywhere else, and
// escape what the IdP sent. Screenshots go to $AUTHPROXY_SCREENSHOTS when
// set (for a person to look at), else to the test's temporary directory.
func TestPagesRenderFinished(t *testing.T) {
	tab := newBrowser(t)
	fetched := watchFetches(t, tab)
	dir := screenshotDir(t)

	pages := []struct {
		name, path, heading string
	}{
		{"expired sign-in", "/oauth2/callback?state=not-a-sign-in-of-this-browser&code=x", "This sign-in link has expired"},
		{"IdP error", "/oauth2/callback?error=access_denied&error_description=" + url.QueryEscape("<b>denied</b> by policy"), "Sign-in was not completed"},
		{"ambiguous path", "/files/a%2Fb", "This address is not valid"},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			body := checkPageFinished(t, tab, fetched, stack.proxyURL, p.path, p.heading, filepath.Join(dir, strings.ReplaceAll(p.name, " ", "-")+".png"))
			if strings.Contains(body, "<b>denied</b>") {
				t.Error("the IdP's markup was rendered, not escaped")
			}
		})
	}
}

// TestChooserRendersFinished loads the sign-in chooser (templates.ChoosePage)
// in Chromium, with two IdPs to choose and one unavailable, and checks it as
// TestPagesRenderFinished checks the other pages: styled, fetching nothing
// from elsewhere, escaping names. The page is rendered by the templates
// package, with the headers (Content-Security-Policy included) authproxy
// serves it with, from a server of the test's own; following a choice must
// reach that choice's link without any script.
func TestChooserRendersFinished(t *testing.T) {
	tab := newBrowser(t)
	fetched := watchFetches(t, tab)
	dir := screenshotDir(t)
	pages, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/sign_in":
			err := pages.Render(w, templates.ChoosePage, templates.Page{
				Status: http.StatusOK, Title: "Sign in", Message: "Choose how to sign in", RequestID: "e2e-chooser",
				Choices: []templates.Choice{
					{Name: "default", DisplayName: "Company account", Link: "/oauth2/start?idp=default&rd=%2Fapp"},
					{Name: "github", DisplayName: "<b>GitHub</b>", Link: "/oauth2/start?idp=github&rd=%2Fapp"},
					{Name: "partner", DisplayName: "Partner SSO", Link: "/oauth2/start?idp=partner&rd=%2Fapp", Unavailable: true},
				},
			})
			if err != nil {
				t.Errorf("render: %v", err)
			}
		case "/oauth2/start":
			select {
			case started <- r.URL.RawQuery:
			default:
			}
			w.Write([]byte("started"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	body := checkPageFinished(t, tab, fetched, srv.URL, "/oauth2/sign_in", "Sign in", filepath.Join(dir, "sign-in-chooser.png"))
	if strings.Contains(body, "<b>GitHub</b>") {
		t.Error("the display name's markup was rendered, not escaped")
	}
	var links []string
	var text, listDisplay, availableBg, unavailableBg string
	run(t, tab, "read the choices",
		chromedp.Evaluate(`[...document.querySelectorAll("main a")].map(a => a.getAttribute("href") + " " + a.textContent)`, &links),
		chromedp.Evaluate(`document.querySelector("ul.choices").innerText`, &text),
		chromedp.Evaluate(`getComputedStyle(document.querySelector("ul.choices")).display`, &listDisplay),
		chromedp.Evaluate(`getComputedStyle(document.querySelector("ul.choices a.button")).backgroundColor`, &availableBg),
		chromedp.Evaluate(`getComputedStyle(document.querySelector("ul.choices .unavailable")).backgroundColor`, &unavailableBg),
	)
	want := []string{"/oauth2/start?idp=default&rd=%2Fapp Company account", "/oauth2/start?idp=github&rd=%2Fapp <b>GitHub</b>"}
	if strings.Join(links, "\n") != strings.Join(want, "\n") {
		t.Errorf("links %q, want %q: the unavailable IdP must not be one", links, want)
	}
	if !strings.Contains(text, "Partner SSO") || !strings.Contains(text, "unavailable right now") {
		t.Errorf("choices read %q, want Partner SSO shown as unavailable right now", text)
	}
	if listDisplay != "grid" {
		t.Errorf("the chooser's own styles are not applied: ul.choices display %q", listDisplay)
	}
	if availableBg == unavailableBg {
		t.Errorf("the unavailable choice looks like an available one: both have background %s", availableBg)
	}

	run(t, tab, "choose Company account", chromedp.Click(`a[href^="/oauth2/start?idp=default"]`, chromedp.ByQuery))
	select {
	case q := <-started:
		if q != "idp=default&rd=%2Fapp" {
			t.Errorf("choosing Company account started %q, want idp=default&rd=%%2Fapp", q)
		}
	case <-tab.Done():
		t.Fatal("the browser ended before the choice was followed")
	case <-time.After(stepTimeout):
		t.Fatalf("choosing Company account did not reach /oauth2/start\n%s", describe(tab))
	}
}

// fetchLog records the URLs a tab requests.
type fetchLog struct {
	mu   sync.Mutex
	urls []string
}

// watchFetches enables network events in tab and records its requests.
func watchFetches(t *testing.T, tab context.Context) *fetchLog {
	t.Helper()
	f := &fetchLog{}
	chromedp.ListenTarget(tab, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			f.mu.Lock()
			f.urls = append(f.urls, e.Request.URL)
			f.mu.Unlock()
		}
	})
	run(t, tab, "enable network events", network.Enable())
	return f
}

// screenshotDir is $AUTHPROXY_SCREENSHOTS when set (for a person to look at),
// else the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("AUTHPROXY_SCREENSHOTS"); dir != "" {
		return dir
	}
	return t.TempDir()
}

// checkPageFinished loads origin+path in tab and checks that the page shows
// heading and a request id, is styled by the layout, fetches nothing but from
// origin, and is not blank; it saves a screenshot to shotPath and returns the
// body's HTML.
func checkPageFinished(t *testing.T, tab context.Context, fetched *fetchLog, origin, path, heading, shotPath string) string {
	t.Helper()
	fetched.mu.Lock()
	fetched.urls = nil
	fetched.mu.Unlock()
	var h1, radius, font, body string
	var shot []byte
	run(t, tab, "load "+path,
		chromedp.Navigate(origin+path),
		chromedp.Text("h1", &h1, chromedp.ByQuery),
		chromedp.Evaluate(`getComputedStyle(document.querySelector("main")).borderRadius`, &radius),
		chromedp.Evaluate(`getComputedStyle(document.body).fontFamily`, &font),
		chromedp.Evaluate(`document.body.innerHTML`, &body),
		chromedp.FullScreenshot(&shot, 100), // 100 means PNG
	)
	if !strings.Contains(body, "request ") {
		t.Error("page shows no request id for the user to quote")
	}
	if h1 != heading {
		t.Errorf("heading %q, want %q", h1, heading)
	}
	if radius != "12px" || !strings.Contains(font, "system-ui") {
		t.Errorf("page is unstyled: main border-radius %q, body font %q", radius, font)
	}
	fetched.mu.Lock()
	for _, u := range fetched.urls {
		if !strings.HasPrefix(u, origin+"/") {
			t.Errorf("page fetched %s: pages must load nothing from elsewhere", u)
		}
	}
	fetched.mu.Unlock()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colors := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colors) < 8 {
		t.Errorf("screenshot has %d colours: the page looks blank", len(colors))
	}
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	return body
}
