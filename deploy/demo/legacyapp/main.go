// Command legacyapp is the demo's stand-in for a legacy web application behind authproxy.
//
// It trusts the identity headers authproxy sets and shows them back:
//
//	GET /api/whoami   the identity headers it received, as JSON (the end-to-end tests read this)
//	GET /events       a short Server-Sent-Events stream, to see that streamed responses pass through
//	                  (?n=N sends N events instead of 5, at most 1000, so a test can hold one open)
//	GET /ws           a WebSocket (RFC 6455, text frames only): one "tick" message a second, and
//	                  every text message received is sent back; see handleWebSocket
//	anything else     an HTML page with the same information and a sign-out link
//
// It never shows the access token itself, only whether one arrived. It listens on
// LEGACYAPP_LISTEN (default 127.0.0.1:8080) and must only be reachable through the proxy:
// anyone who can reach it directly can claim to be anyone.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// whoami is what the app learned about a request. The JSON names are the header names.
type whoami struct {
	User              string `json:"X-Forwarded-User"`
	Email             string `json:"X-Forwarded-Email"`
	PreferredUsername string `json:"X-Forwarded-Preferred-Username"`
	Groups            string `json:"X-Forwarded-Groups"`
	IdP               string `json:"X-Forwarded-Idp"` // with several IdPs, the one the user signed in at
	AccessToken       bool   `json:"X-Forwarded-Access-Token-Present"`
	ForwardedFor      string `json:"X-Forwarded-For"`
	ForwardedProto    string `json:"X-Forwarded-Proto"`
	ForwardedHost     string `json:"X-Forwarded-Host"`

	// IdentityHeaders holds every received header that looks like an identity header
	// (X-Forwarded-*, X-Auth-Request-*, in any case, with "_" for "-"), exactly as
	// received, so that tests can see a spoofed variant slip through. Token values are
	// replaced by "(redacted)".
	IdentityHeaders map[string][]string `json:"identity_headers"`
	Cookies         []string            `json:"cookies"` // cookie names only
	Method          string              `json:"method"`
	Path            string              `json:"path"`
	Query           string              `json:"query"`
}

// newWhoami reads r's identity headers.
func newWhoami(r *http.Request) whoami {
	w := whoami{
		User:              r.Header.Get("X-Forwarded-User"),
		Email:             r.Header.Get("X-Forwarded-Email"),
		PreferredUsername: r.Header.Get("X-Forwarded-Preferred-Username"),
		Groups:            r.Header.Get("X-Forwarded-Groups"),
		IdP:               r.Header.Get("X-Forwarded-Idp"),
		AccessToken:       r.Header.Get("X-Forwarded-Access-Token") != "",
		ForwardedFor:      r.Header.Get("X-Forwarded-For"),
		ForwardedProto:    r.Header.Get("X-Forwarded-Proto"),
		ForwardedHost:     r.Header.Get("X-Forwarded-Host"),
		IdentityHeaders:   map[string][]string{},
		Cookies:           []string{},
		Method:            r.Method,
		Path:              r.URL.Path,
		Query:             r.URL.RawQuery,
	}
	for name, values := range r.Header {
		norm := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if !strings.HasPrefix(norm, "x-forwarded-") && !strings.HasPrefix(norm, "x-auth-request-") {
			continue
		}
		if strings.Contains(norm, "token") {
			values = []string{"(redacted)"}
		}
		w.IdentityHeaders[name] = values
	}
	for _, c := range r.Cookies() {
		w.Cookies = append(w.Cookies, c.Name)
	}
	sort.Strings(w.Cookies)
	return w
}

// GroupList splits the comma-joined X-Forwarded-Groups value.
func (w whoami) GroupList() []string {
	if w.Groups == "" {
		return nil
	}
	return strings.Split(w.Groups, ",")
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Legacy app</title>
<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}td{font-family:monospace}</style>
</head>
<body>
<h1>Legacy app</h1>
<p>Signed in as <strong id="who">{{or .Email .User "nobody (no identity headers)"}}</strong>.
<a id="sign-out" href="/oauth2/sign_out">Sign out</a></p>
<table>
<tr><th>X-Forwarded-User</th><td id="user">{{.User}}</td></tr>
<tr><th>X-Forwarded-Email</th><td id="email">{{.Email}}</td></tr>
<tr><th>X-Forwarded-Preferred-Username</th><td id="preferred-username">{{.PreferredUsername}}</td></tr>
<tr><th>X-Forwarded-Groups</th><td><ul id="groups">{{range .GroupList}}<li>{{.}}</li>{{end}}</ul></td></tr>
<tr><th>X-Forwarded-Idp</th><td id="idp">{{.IdP}}</td></tr>
<tr><th>X-Forwarded-Access-Token</th><td id="access-token">{{if .AccessToken}}present (not shown){{else}}absent{{end}}</td></tr>
<tr><th>X-Forwarded-For</th><td id="forwarded-for">{{.ForwardedFor}}</td></tr>
<tr><th>X-Forwarded-Proto</th><td id="forwarded-proto">{{.ForwardedProto}}</td></tr>
<tr><th>X-Forwarded-Host</th><td id="forwarded-host">{{.ForwardedHost}}</td></tr>
<tr><th>Cookies received</th><td id="cookies">{{range $i, $c := .Cookies}}{{if $i}}, {{end}}{{$c}}{{end}}</td></tr>
<tr><th>Method</th><td id="method">{{.Method}}</td></tr>
<tr><th>Path</th><td id="path">{{.Path}}</td></tr>
<tr><th>Query</th><td id="query">{{.Query}}</td></tr>
</table>
<p>The demo's policy: <a id="admin" href="/admin/">/admin/</a> (group admins only) · <a id="public" href="/public/">/public/</a> (open, no sign-in)</p>
<p><a href="/api/whoami">/api/whoami</a> (JSON) · <a href="/events">/events</a> (Server-Sent Events) · /ws (WebSocket)</p>
</body>
</html>
`))

func handlePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := page.Execute(w, newWhoami(r)); err != nil {
		slog.Error("render page", "err", err)
	}
}

func handleWhoami(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(newWhoami(r)); err != nil {
		slog.Error("write whoami", "err", err)
	}
}

// handleEvents sends "tick" events, 250ms apart, flushing each one: five, or ?n= of them (1 to 1000).
func handleEvents(w http.ResponseWriter, r *http.Request) {
	count := 5
	if q := r.URL.Query().Get("n"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 1000 {
			http.Error(w, "n must be a whole number from 1 to 1000", http.StatusBadRequest)
			return
		}
		count = n
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		data, _ := json.Marshal(map[string]any{"n": n, "user": r.Header.Get("X-Forwarded-User")})
		fmt.Fprintf(w, "id: %d\nevent: tick\ndata: %s\n\n", n, data)
		if err := rc.Flush(); err != nil || n == count {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func main() {
	addr := os.Getenv("LEGACYAPP_LISTEN")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/whoami", handleWhoami)
	mux.HandleFunc("GET /events", handleEvents)
	mux.HandleFunc("GET /ws", handleWebSocket)
	mux.HandleFunc("/", handlePage)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("legacyapp listening", "addr", addr)

	select {
	case err := <-errc:
		slog.Error("legacyapp", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		slog.Error("legacyapp shutdown", "err", err)
	}
}
