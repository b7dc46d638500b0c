package templates

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestRenderEscapesEveryField(t *testing.T) {
	pages, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	const evil = `<script>alert(1)</script>`
	rec := httptest.NewRecorder()
	err = pages.Render(rec, ErrorPage, Page{
		Status: 400, Title: evil, Message: evil, Hint: evil, Detail: evil,
		Link: "javascript:alert(1)", LinkText: evil, RequestID: evil,
	})
	if err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	if rec.Code != 400 {
		t.Errorf("status = %d, want 400", rec.Code)
	}
	if strings.Contains(body, evil) {
		t.Errorf("page contains unescaped markup:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("page lacks the escaped text:\n%s", body)
	}
	if strings.Contains(body, `href="javascript:`) {
		t.Errorf("javascript: link was not neutralised:\n%s", body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Cache-Control"} {
		if rec.Header().Get(h) == "" {
			t.Errorf("missing %s header", h)
		}
	}
}

func TestRenderPages(t *testing.T) {
	pages, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, page string
		p          Page
		want       []string
	}{
		{"error", ErrorPage, Page{Status: 502, Title: "Upstream down", Message: "did not answer", RequestID: "r-1"},
			[]string{"Error 502", "<h1>Upstream down</h1>", "did not answer", "request r-1"}},
		{"error with link", ErrorPage, Page{Status: 403, Title: "Access denied", Link: "/oauth2/sign_out", LinkText: "Sign out"},
			[]string{`href="/oauth2/sign_out"`, "Sign out"}},
		{"continue", ContinuePage, Page{Status: 200, Link: "/app?x=1&y=2"},
			[]string{`content="0;url=/app?x=1&amp;y=2"`, `href="/app?x=1&amp;y=2"`}},
		{"signed out", SignedOutPage, Page{Status: 200, Link: "/oauth2/start?rd=%2F", RequestID: "r-2"},
			[]string{"<title>Signed out</title>", "<h1>You are signed out</h1>", `href="/oauth2/start?rd=%2F"`, "Sign in again", "request r-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := pages.Render(rec, tt.page, tt.p); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.p.Status {
				t.Errorf("status = %d, want %d", rec.Code, tt.p.Status)
			}
			for _, w := range tt.want {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("page lacks %q:\n%s", w, rec.Body.String())
				}
			}
		})
	}
}

func TestOverrideFromDirectory(t *testing.T) {
	dir := t.TempDir()
	custom := `{{define "title"}}Custom{{end}}{{define "body"}}<p class="mine">{{.Message}}</p>{{end}}{{template "layout" .}}`
	if err := os.WriteFile(filepath.Join(dir, "error.html"), []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	pages, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := pages.Render(rec, ErrorPage, Page{Status: 500, Message: "<b>x</b>"}); err != nil {
		t.Fatal(err)
	}
	if body := rec.Body.String(); !strings.Contains(body, `<p class="mine">&lt;b&gt;x&lt;/b&gt;</p>`) || !strings.Contains(body, "<title>Custom</title>") {
		t.Errorf("override not used or not escaped:\n%s", body)
	}
	// The page not overridden is still the embedded one.
	rec = httptest.NewRecorder()
	if err := pages.Render(rec, ContinuePage, Page{Status: 200, Link: "/"}); err != nil || !strings.Contains(rec.Body.String(), "Signed in") {
		t.Errorf("continue page = %v, %q", err, rec.Body.String())
	}
}

// TestOverridePage checks that a file in the directory replaces the
// embedded page of its name, and only that page.
func TestOverridePage(t *testing.T) {
	tests := []struct {
		page, custom string
		p            Page
		want         []string
		notWant      string // what the embedded page shows
		other        string // a page not overridden, still the embedded one
	}{
		{SignedOutPage,
			`{{define "title"}}Bye{{end}}{{define "body"}}<p class="mine">see you</p><a href="{{.Link}}">again</a>{{end}}{{template "layout" .}}`,
			Page{Status: 200, Link: "/oauth2/start"},
			[]string{`<p class="mine">see you</p>`, "<title>Bye</title>"},
			"You are signed out", ChoosePage},
		{ChoosePage,
			`{{define "title"}}Pick{{end}}{{define "body"}}<ol class="mine">{{range .Choices}}<li><a href="{{.Link}}">{{.Name}}</a>{{if .Unavailable}} (down){{end}}</li>{{end}}</ol>{{end}}{{template "layout" .}}`,
			Page{Status: 200, Choices: []Choice{{Name: "default", Link: "/oauth2/start?idp=default"}, {Name: "<b>x</b>", Unavailable: true}}},
			[]string{`<ol class="mine"><li><a href="/oauth2/start?idp=default">default</a></li><li><a href="">&lt;b&gt;x&lt;/b&gt;</a> (down)</li></ol>`, "<title>Pick</title>"},
			"unavailable right now", SignedOutPage},
	}
	for _, tt := range tests {
		t.Run(tt.page, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.page), []byte(tt.custom), 0o644); err != nil {
				t.Fatal(err)
			}
			pages, err := New(dir)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			if err := pages.Render(rec, tt.page, tt.p); err != nil {
				t.Fatal(err)
			}
			body := rec.Body.String()
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s override not used: page lacks %q:\n%s", tt.page, w, body)
				}
			}
			if strings.Contains(body, tt.notWant) {
				t.Errorf("%s is still the embedded page:\n%s", tt.page, body)
			}
			rec = httptest.NewRecorder()
			if err := pages.Render(rec, tt.other, Page{Status: 200, Link: "/"}); err != nil || strings.Contains(rec.Body.String(), `class="mine"`) {
				t.Errorf("%s = %v, %q: want the embedded page", tt.other, err, rec.Body.String())
			}
		})
	}
}

func TestNewRejectsBadOverrides(t *testing.T) {
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "error.html"), []byte(`{{.Unclosed`), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{
		"missing directory": filepath.Join(t.TempDir(), "nope"),
		"syntax error":      broken,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(dir); err == nil || !strings.HasPrefix(err.Error(), "templates: ") {
				t.Errorf("New(%q) error = %v, want a templates: error", dir, err)
			}
		})
	}
}

func TestRenderFailureFallsBackToText(t *testing.T) {
	dir := t.TempDir()
	// Calling a missing template fails at execution, not at parse.
	if err := os.WriteFile(filepath.Join(dir, "error.html"), []byte(`{{template "nope" .}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	pages, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := pages.Render(rec, ErrorPage, Page{Status: 503}); err == nil {
		t.Error("Render error = nil, want the execution error")
	}
	if rec.Code != 503 || !strings.HasPrefix(rec.Body.String(), "503 Service Unavailable") {
		t.Errorf("fallback = %d %q", rec.Code, rec.Body.String())
	}
}

func TestRenderChooser(t *testing.T) {
	pages, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	const evil = `<script>alert(1)</script>`
	tests := []struct {
		name    string
		p       Page
		want    []string
		notWant []string
		links   int // how many <a> elements the page must hold
	}{
		{"display names, falling back to the name",
			Page{Title: "Sign in", Message: "Choose how to sign in", Choices: []Choice{
				{Name: "default", DisplayName: "Company account", Link: "/oauth2/start?idp=default&rd=%2Fapp"},
				{Name: "github", Link: "/oauth2/start?idp=github&rd=%2Fapp"},
			}},
			[]string{"<title>Sign in</title>", "<h1>Sign in</h1>", "<p>Choose how to sign in</p>",
				`<a class="button" href="/oauth2/start?idp=default&amp;rd=%2Fapp">Company account</a>`,
				`<a class="button" href="/oauth2/start?idp=github&amp;rd=%2Fapp">github</a>`},
			nil, 2},
		{"title defaults to Sign in",
			Page{Choices: []Choice{{Name: "default", Link: "/oauth2/start?idp=default"}}},
			[]string{"<title>Sign in</title>", "<h1>Sign in</h1>"},
			nil, 1},
		{"markup in names and texts is escaped",
			Page{Title: evil, Message: evil, Hint: evil, RequestID: evil, Choices: []Choice{
				{Name: "a", DisplayName: evil, Link: "/oauth2/start?idp=a"},
				{Name: evil, Link: "/oauth2/start?idp=b"},
				{Name: "c", DisplayName: evil, Unavailable: true},
			}},
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;"},
			[]string{evil}, 2},
		{"quotes in a link do not leave the attribute",
			Page{Choices: []Choice{{Name: "a", Link: `/oauth2/start?idp=a" onmouseover="alert(1)`}}},
			[]string{`href="/oauth2/start?idp=a%22%20onmouseover=%22alert%281%29"`},
			[]string{`" onmouseover="`}, 1},
		{"quotes in a display name are escaped",
			Page{Choices: []Choice{{Name: "a", DisplayName: `"Corp" & 'Co'`, Link: "/oauth2/start?idp=a"}}},
			[]string{`>&#34;Corp&#34; &amp; &#39;Co&#39;</a>`},
			[]string{`"Corp"`}, 1},
		{"javascript: link is not active",
			Page{Choices: []Choice{{Name: "a", Link: "javascript:alert(1)"}, {Name: "b", Link: "JavaScript:alert(2)"}}},
			[]string{`<a class="button" href="#ZgotmplZ">a</a>`, `<a class="button" href="#ZgotmplZ">b</a>`},
			[]string{"javascript:", "JavaScript:", "alert("}, 2},
		{"unavailable choice renders no link",
			Page{Choices: []Choice{
				{Name: "default", DisplayName: "Company account", Link: "/oauth2/start?idp=default"},
				{Name: "partner", DisplayName: "Partner SSO", Link: "/oauth2/start?idp=partner", Unavailable: true},
			}},
			[]string{`<a class="button" href="/oauth2/start?idp=default">Company account</a>`,
				`<span class="button unavailable" aria-disabled="true">Partner SSO <small>unavailable right now</small></span>`},
			[]string{"idp=partner"}, 1},
		{"unavailable choice without a display name shows its name",
			Page{Choices: []Choice{{Name: "partner", Unavailable: true}}},
			[]string{`>partner <small>unavailable right now</small>`},
			nil, 0},
		{"no choices",
			Page{},
			[]string{"No way to sign in is configured."},
			nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Status = 200
			rec := httptest.NewRecorder()
			if err := pages.Render(rec, ChoosePage, tt.p); err != nil {
				t.Fatal(err)
			}
			body := rec.Body.String()
			if rec.Code != 200 {
				t.Errorf("status = %d, want 200", rec.Code)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q:\n%s", w, body)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page contains %q:\n%s", w, body)
				}
			}
			if n := strings.Count(body, "<a "); n != tt.links {
				t.Errorf("page has %d links, want %d:\n%s", n, tt.links, body)
			}
		})
	}
}

// TestChooserFetchesNothing checks that the chooser names no URL but the
// links it was given: no scripts, images, fonts or style sheets.
func TestChooserFetchesNothing(t *testing.T) {
	pages, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	links := []string{"https://proxy.example/oauth2/start?idp=default", "/oauth2/start?idp=github"}
	rec := httptest.NewRecorder()
	err = pages.Render(rec, ChoosePage, Page{Status: 200, Title: "Sign in", Message: "Choose how to sign in", Choices: []Choice{
		{Name: "default", Link: links[0]}, {Name: "github", Link: links[1]},
		{Name: "partner", Link: "https://partner.example/oauth2/start", Unavailable: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	for _, l := range links {
		if !strings.Contains(body, `href="`+l+`"`) {
			t.Fatalf("page lacks the link %s:\n%s", l, body)
		}
		body = strings.ReplaceAll(body, `href="`+l+`"`, "")
	}
	for _, bad := range []string{"src=", "http://", "https://", "url(", "@import", "<script", "<form", "<link"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q:\n%s", bad, body)
		}
	}
}

// TestChooserHeaders checks that the chooser is served with the same
// headers, Content-Security-Policy included, as the other pages.
func TestChooserHeaders(t *testing.T) {
	pages, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	render := func(name string) http.Header {
		rec := httptest.NewRecorder()
		if err := pages.Render(rec, name, Page{Status: 200, Choices: []Choice{{Name: "default", Link: "/oauth2/start"}}}); err != nil {
			t.Fatal(err)
		}
		return rec.Header()
	}
	want, got := render(ErrorPage), render(ChoosePage)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("chooser headers = %v, want those of the error page %v", got, want)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Cache-Control", "Referrer-Policy"} {
		if got.Get(h) == "" {
			t.Errorf("missing %s header", h)
		}
	}
	if csp := got.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if ct := got.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
}

// TestEveryEmbeddedFileIsParsed keeps New's list of pages in step with the
// embedded files, so a new page cannot be forgotten there.
func TestEveryEmbeddedFileIsParsed(t *testing.T) {
	pages, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(embedded, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		if f != layoutFile {
			want = append(want, f)
		}
	}
	var got []string
	for name := range pages.pages {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("New parses %v, want every embedded page %v", got, want)
	}
}
