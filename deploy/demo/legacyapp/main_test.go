package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func identityRequest(target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("X-Forwarded-User", "u1")
	r.Header.Set("X-Forwarded-Email", "<b>alice</b>@example.com")
	r.Header.Set("X-Forwarded-Groups", "admins,staff")
	r.Header.Set("X-Forwarded-Idp", "<partners>")
	r.Header.Set("X-Forwarded-Access-Token", "secret-token")
	r.Header["x_forwarded_user"] = []string{"evil"}
	r.Header.Set("Cookie", "b=1; a=2")
	return r
}

func TestPage(t *testing.T) {
	rec := httptest.NewRecorder()
	handlePage(rec, identityRequest("/some/page?x=<1>"))
	body := rec.Body.String()
	for _, tc := range []struct {
		name, want string
	}{
		{"email escaped", `<td id="email">&lt;b&gt;alice&lt;/b&gt;@example.com</td>`},
		{"groups listed", `<ul id="groups"><li>admins</li><li>staff</li></ul>`},
		{"IdP escaped", `<td id="idp">&lt;partners&gt;</td>`},
		{"token only said to be present", `<td id="access-token">present (not shown)</td>`},
		{"cookie names", `<td id="cookies">a, b</td>`},
		{"path", `<td id="path">/some/page</td>`},
		{"query escaped", `<td id="query">x=&lt;1&gt;</td>`},
		{"sign-out link", `href="/oauth2/sign_out"`},
		{"demo policy links", `href="/admin/"`},
	} {
		if !strings.Contains(body, tc.want) {
			t.Errorf("%s: page lacks %s", tc.name, tc.want)
		}
	}
	if strings.Contains(body, "secret-token") {
		t.Error("page shows the access token")
	}
}

func TestWhoami(t *testing.T) {
	rec := httptest.NewRecorder()
	handleWhoami(rec, identityRequest("/api/whoami?q=1"))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if strings.Contains(rec.Body.String(), "secret-token") {
		t.Error("whoami shows the access token")
	}
	var w whoami
	if err := json.Unmarshal(rec.Body.Bytes(), &w); err != nil {
		t.Fatal(err)
	}
	if w.User != "u1" || w.Groups != "admins,staff" || !w.AccessToken || w.Query != "q=1" || w.IdP != "<partners>" || !slices.Equal(w.Cookies, []string{"a", "b"}) {
		t.Errorf("whoami = %+v", w)
	}
	if got := w.IdentityHeaders["x_forwarded_user"]; !slices.Equal(got, []string{"evil"}) {
		t.Errorf("identity_headers[x_forwarded_user] = %q; want the variant reported as received", got)
	}
	if got := w.IdentityHeaders["X-Forwarded-Access-Token"]; !slices.Equal(got, []string{"(redacted)"}) {
		t.Errorf("identity_headers[X-Forwarded-Access-Token] = %q; want it redacted", got)
	}
}

func TestEvents(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(handleEvents))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if n := strings.Count(string(body), "event: tick\n"); n != 5 {
		t.Errorf("got %d events; want 5:\n%s", n, body)
	}
}

func TestEventsCount(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(handleEvents))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "?n=2")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(body), "event: tick\n"); n != 2 {
		t.Errorf("?n=2: got %d events; want 2:\n%s", n, body)
	}
	for _, bad := range []string{"0", "1001", "x", "-1"} {
		resp, err := http.Get(srv.URL + "?n=" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?n=%s: %s; want 400", bad, resp.Status)
		}
	}
}
