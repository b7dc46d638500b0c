package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestNginxForwardAuth puts real nginx in front of the legacy app with
// auth_request to authproxy, using the snippets shipped in deploy/nginx, and
// signs in through it with Chromium against node oidc-provider: signed-in,
// signed-out, public and forbidden paths end to end.
func TestNginxForwardAuth(t *testing.T) {
	nginx := "/usr/sbin/nginx"
	if _, err := os.Stat(nginx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nginx is missing (scripts/install-deps.sh installs it); CI=true, so this fails instead of skipping")
		}
		t.Skip("nginx is missing; run scripts/install-deps.sh")
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	front := "http://" + ports[0]
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyFile, `rules:
  - path: /health
    allow: public
  - path: /admin/
    allow: {groups: [auditors]}
  - path: /
    allow: authenticated
`)
	s := startOPStack(t, opOptions{RedirectURIs: []string{front + "/oauth2/callback"}, SkipConsent: true},
		"AUTHPROXY_REDIRECT_URL="+front+"/oauth2/callback",
		"AUTHPROXY_TRUSTED_PROXIES=127.0.0.1/32",
		"AUTHPROXY_POLICY_FILE="+policyFile,
		"AUTHPROXY_GROUPS_CLAIM=groups",
	)
	snippets, err := filepath.Abs(filepath.Join("..", "deploy", "nginx"))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, `worker_processes 1;
pid `+filepath.Join(dir, "nginx.pid")+`;
error_log `+filepath.Join(dir, "error.log")+` info;
events { worker_connections 64; }
http {
    access_log `+filepath.Join(dir, "access.log")+`;
    client_body_temp_path `+dir+`/body; proxy_temp_path `+dir+`/proxy;
    fastcgi_temp_path `+dir+`/fcgi; uwsgi_temp_path `+dir+`/uwsgi; scgi_temp_path `+dir+`/scgi;
    upstream authproxy { server `+strings.TrimPrefix(s.proxyURL, "http://")+`; keepalive 8; }
    upstream app { server `+strings.TrimPrefix(stack.appURL, "http://")+`; }
    server {
        listen `+ports[0]+`;
        include `+snippets+`/authproxy.conf;
        location / {
            include `+snippets+`/protect.conf;
            proxy_pass http://app;
        }
    }
}
`)
	// Registered before newProcSet's clean-up, so it runs after nginx has stopped.
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"error.log", "access.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				t.Logf("----- nginx %s -----\n%s", f, b)
			}
		}
	})
	newProcSet(t).startProc(t, "nginx", nil, nginx, "-c", conf, "-p", dir, "-g", "daemon off;")
	waitHTTP(t, front+"/health")

	// Public: no session needed.
	if resp, _ := rawGet(t, front+"/health", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("public /health through nginx: %d, want 200", resp.StatusCode)
	}

	// Signed out, a browser is sent to sign in and comes back to the page it asked for.
	tab := newBrowser(t)
	run(t, tab, "open a protected page through nginx", chromedp.Navigate(front+"/reports/q3?view=full"))
	s.op.signIn(t, tab, opAda)
	run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
	if loc, want := location(t, tab), front+"/reports/q3?view=full"; loc != want {
		t.Fatalf("after signing in through nginx: landed on %s, want %s", loc, want)
	}
	var w whoami
	opBrowseJSON(t, tab, front+"/api/whoami", &w)
	if w.User != opAda.login || w.Email != opAda.email || w.Groups != strings.Join(opAda.groups, ",") {
		t.Errorf("app behind nginx saw user %q email %q groups %q; want %q %q %q",
			w.User, w.Email, w.Groups, opAda.login, opAda.email, strings.Join(opAda.groups, ","))
	}

	cookies := browserCookies(t, tab)
	// Spoofed identity headers with a session never reach the app.
	resp, body := rawGet(t, front+"/api/whoami", cookies, "X-Forwarded-Email", "evil@example.com", "X-Auth-Request-User", "evil")
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "evil") {
		t.Errorf("spoofed headers through nginx: %d %s", resp.StatusCode, body)
	}
	// Signed in but not in the group /admin/ needs: 403.
	if resp, _ := rawGet(t, front+"/admin/users", cookies); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ada at /admin/ through nginx: %d, want 403", resp.StatusCode)
	}
	// A path trick does not reach /admin/ either.
	if resp, _ := rawGet(t, front+"/health/..%2Fadmin/users", nil); resp.StatusCode == http.StatusOK {
		t.Errorf("path trick through nginx reached the app without a session")
	}
	// Without a session, a request is not served.
	if resp, _ := rawGet(t, front+"/api/whoami", nil); resp.StatusCode == http.StatusOK {
		t.Errorf("no session through nginx: got 200")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rawGet GETs url without following redirects, with cookies and header pairs.
func rawGet(t *testing.T, url string, cookies []*http.Cookie, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf strings.Builder
	_, _ = io.Copy(&buf, resp.Body)
	return resp, []byte(buf.String())
}

// waitHTTP waits up to 10 s for url to answer at all.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 10 s", url)
}
