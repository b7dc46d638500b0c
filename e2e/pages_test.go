package e2e

import (
	"bytes"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestPagesRenderFinished loads authproxy's own pages in Chromium and checks
// that they render with their styles, fetch nothing from anywhere else, and
// escape what the IdP sent. Screenshots go to $AUTHPROXY_SCREENSHOTS when
// set (for a person to look at), else to the test's temporary directory.
func TestPagesRenderFinished(t *testing.T) {
	tab := newBrowser(t)
	var mu sync.Mutex
	var fetched []string
	chromedp.ListenTarget(tab, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			fetched = append(fetched, e.Request.URL)
			mu.Unlock()
		}
	})
	run(t, tab, "enable network events", network.Enable())
	dir := os.Getenv("AUTHPROXY_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}

	pages := []struct {
		name, path, heading string
	}{
		{"expired sign-in", "/oauth2/callback?state=not-a-sign-in-of-this-browser&code=x", "This sign-in link has expired"},
		{"IdP error", "/oauth2/callback?error=access_denied&error_description=" + url.QueryEscape("<b>denied</b> by policy"), "Sign-in was not completed"},
		{"ambiguous path", "/files/a%2Fb", "This address is not valid"},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			mu.Lock()
			fetched = nil
			mu.Unlock()
			var heading, radius, font, body string
			var shot []byte
			run(t, tab, "load "+p.path,
				navigate(p.path),
				chromedp.Text("h1", &heading, chromedp.ByQuery),
				chromedp.Evaluate(`getComputedStyle(document.querySelector("main")).borderRadius`, &radius),
				chromedp.Evaluate(`getComputedStyle(document.body).fontFamily`, &font),
				chromedp.Evaluate(`document.body.innerHTML`, &body),
				chromedp.FullScreenshot(&shot, 100), // 100 means PNG
			)
			if !strings.Contains(body, "request ") {
				t.Error("page shows no request id for the user to quote")
			}
			if heading != p.heading {
				t.Errorf("heading %q, want %q", heading, p.heading)
			}
			if radius != "12px" || !strings.Contains(font, "system-ui") {
				t.Errorf("page is unstyled: main border-radius %q, body font %q", radius, font)
			}
			if strings.Contains(body, "<b>denied</b>") {
				t.Error("the IdP's markup was rendered, not escaped")
			}
			mu.Lock()
			for _, u := range fetched {
				if !strings.HasPrefix(u, stack.proxyURL+"/") {
					t.Errorf("page fetched %s: pages must load nothing from elsewhere", u)
				}
			}
			mu.Unlock()
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
			name := strings.ReplaceAll(p.name, " ", "-") + ".png"
			if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}
