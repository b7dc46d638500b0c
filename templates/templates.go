// Package templates renders authproxy's own pages (errors, access denied,
// upstream unavailable, signed out, the sign-in chooser) from html/template
// files embedded in the binary.
// An operator may override any page by putting a file of the same name in a
// directory of their own.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
)

//go:embed *.html
var embedded embed.FS

// Page is the data every page is rendered with. Every field is escaped by
// html/template; never put a token or a raw error message in it.
type Page struct {
	// Status is the HTTP status code, shown on the page.
	Status int
	// Title is the page's heading.
	Title string
	// Message says, in words a user understands, what happened.
	Message string
	// Hint says what the user can do next; optional.
	Hint string
	// Detail is extra text for the operator, such as an IdP's error code;
	// optional.
	Detail string
	// Link and LinkText offer one way forward; optional. Link must be a
	// local path or a URL authproxy built itself.
	Link     string
	LinkText string
	// RequestID lets a user quote the failing request to an operator.
	RequestID string
	// Choices are the identity providers ChoosePage offers, in the order
	// shown; the other pages ignore them.
	Choices []Choice
}

// Choice is one identity provider on ChoosePage.
type Choice struct {
	// Name is the IdP's name (lower-case letters, digits and '-'), shown
	// when DisplayName is empty.
	Name string
	// DisplayName is what the user sees, such as "Company account";
	// optional.
	DisplayName string
	// Link starts signing in with this IdP. It must be a local URL
	// authproxy built itself, such as /oauth2/start?idp=NAME&rd=...;
	// html/template replaces an unsafe one (javascript: and the like) with
	// "#ZgotmplZ".
	Link string
	// Unavailable marks an IdP that cannot be used now (its discovery is
	// down): it is shown greyed, with the words "unavailable right now",
	// and Link is not rendered.
	Unavailable bool
}

// Templates holds the parsed pages. It is safe for concurrent use.
type Templates struct {
	pages map[string]*template.Template
}

// Names of the pages authproxy renders.
const (
	// ErrorPage is the generic error page, used for every status.
	ErrorPage = "error.html"
	// ContinuePage is shown after sign-in when a plain redirect would lose
	// the session cookie (SameSite=Strict); it carries Page.Link onward.
	ContinuePage = "continue.html"
	// SignedOutPage says that the session has ended, after a sign-out that
	// named no page to return to; Page.Link signs in again.
	SignedOutPage = "signed_out.html"
	// ChoosePage lets the user choose which identity provider to sign in
	// with: Page.Title as the heading (default "Sign in"), Page.Message
	// and Page.Hint above and below the list, one button per Page.Choices.
	// It has no form and no script, as the pages' Content-Security-Policy
	// allows neither.
	ChoosePage = "choose.html"

	layoutFile = "layout.html"
)

// New parses the embedded pages. When dir is not empty, a file in it named
// like an embedded one (layout.html, error.html, continue.html,
// signed_out.html, choose.html) replaces that one. A page defines the blocks "title" and "body" and ends with
// {{template "layout" .}}, or is a whole document of its own.
func New(dir string) (*Templates, error) {
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("templates: %w", err)
			}
		}
		b, err := embedded.ReadFile(name)
		return string(b), err
	}
	if dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
	}
	layout, err := read(layoutFile)
	if err != nil {
		return nil, err
	}
	base, err := template.New(layoutFile).Parse(layout)
	if err != nil {
		return nil, fmt.Errorf("templates: parsing %s: %w", layoutFile, err)
	}
	t := &Templates{pages: map[string]*template.Template{}}
	for _, name := range []string{ErrorPage, ContinuePage, SignedOutPage, ChoosePage} {
		text, err := read(name)
		if err != nil {
			return nil, err
		}
		page, err := template.Must(base.Clone()).New(name).Parse(text)
		if err != nil {
			return nil, fmt.Errorf("templates: parsing %s: %w", name, err)
		}
		t.pages[name] = page
	}
	return t, nil
}

// Render writes page name with status and data. The page is rendered fully
// before anything is written, so a template error never leaves half a page;
// it then falls back to plain text.
func (t *Templates) Render(w http.ResponseWriter, name string, p Page) error {
	var buf bytes.Buffer
	err := errors.New("no such page")
	if page := t.pages[name]; page != nil {
		err = page.ExecuteTemplate(&buf, name, p)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	if err != nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(p.Status)
		fmt.Fprintf(w, "%d %s\n", p.Status, http.StatusText(p.Status))
		return fmt.Errorf("templates: rendering %s: %w", name, err)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(p.Status)
	_, err = w.Write(buf.Bytes())
	return err
}
