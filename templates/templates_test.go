package templates

import (
	"net/http/httptest"
	"os"
	"path/filepath"
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

func TestOverrideSignedOutPage(t *testing.T) {
	dir := t.TempDir()
	custom := `{{define "title"}}Bye{{end}}{{define "body"}}<p class="mine">see you</p><a href="{{.Link}}">again</a>{{end}}{{template "layout" .}}`
	if err := os.WriteFile(filepath.Join(dir, SignedOutPage), []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	pages, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := pages.Render(rec, SignedOutPage, Page{Status: 200, Link: "/oauth2/start"}); err != nil {
		t.Fatal(err)
	}
	if body := rec.Body.String(); !strings.Contains(body, `<p class="mine">see you</p>`) || !strings.Contains(body, "<title>Bye</title>") || strings.Contains(body, "You are signed out") {
		t.Errorf("signed_out.html override not used:\n%s", body)
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
