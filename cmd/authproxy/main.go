// Command authproxy is an OpenID Connect authentication reverse proxy for
// apps that have no sign-in of their own. See README.md.
//
//	authproxy           serve (configured by AUTHPROXY_* variables)
//	authproxy check     validate the configuration and reach the IdP
//	authproxy secret    print a fresh random cookie secret
//	authproxy sessions  list or revoke users' sessions on every replica
//	authproxy version   print the version
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/authproxy/authproxy/authproxy"
	"github.com/authproxy/authproxy/policy"
	"github.com/authproxy/authproxy/session"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "":
		return serve(stderr)
	case "check":
		return check(stdout, stderr)
	case "secret":
		key := make([]byte, 32)
		rand.Read(key)
		fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
		return 0
	case "policy":
		return explain(args[1:], stdout, stderr)
	case "sessions":
		return sessions(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "authproxy", version)
		return 0
	}
	fmt.Fprintf(stderr, "authproxy: unknown command %q; want no command (serve), check, policy explain, secret, sessions or version\n", cmd)
	return 2
}

// loadConfig reads the configuration, printing every problem on failure.
func loadConfig(stderr io.Writer) (*authproxy.Config, bool) {
	cfg, err := authproxy.LoadConfig(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "authproxy: invalid configuration:\n%s\n", indent(err))
		return nil, false
	}
	return cfg, true
}

// serve runs the proxy until SIGINT or SIGTERM, then drains in-flight
// requests for AUTHPROXY_SHUTDOWN_GRACE. SIGHUP, or a change of a file the
// configuration reads, reloads the configuration.
func serve(stderr io.Writer) int {
	// Before anything else: SIGHUP's default would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, ok := loadConfig(stderr)
	if !ok {
		return 1
	}
	// One writer for every line: the access log's are batched (at most
	// 100 ms), and Close writes what is held, on SIGTERM as on any return.
	logs := authproxy.NewLogWriter(stderr)
	defer logs.Close()
	log := newLogger(cfg.LogFormat, logs)
	var accessLog io.Writer
	if cfg.LogFormat != "text" {
		accessLog = logs.Buffered()
	}
	// go-redis's one, process-wide logger: its lines join this log.
	session.SetRedisLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tracing, err := authproxy.NewTracing(ctx, os.LookupEnv, log, version)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	// After the requests have drained: their spans are the last ones.
	defer func() {
		flush, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancel()
		if err := tracing.Shutdown(flush); err != nil {
			log.Warn("traces not all sent", "err", err)
		}
	}()
	handler, err := authproxy.NewFromConfig(ctx, cfg, authproxy.Runtime{Logger: log, AccessLog: accessLog, Version: version, Tracing: tracing})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer handler.Close()
	go handler.WatchConfig(ctx, os.LookupEnv, hup)
	ready := func(addr string) {
		log.Info("authproxy serving", "listen", addr, "upstream", cfg.Upstream.Redacted(), "version", version)
	}
	if err := handler.Serve(ctx, ready); err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// explain prints which rule decides a request and why:
//
//	authproxy policy explain METHOD PATH [--email E] [--groups G1,G2] [--idp NAME]
func explain(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: authproxy policy explain METHOD PATH [--email E] [--groups G1,G2] [--idp NAME]"
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the signed-in user's email")
	groups := fs.String("groups", "", "the signed-in user's groups, comma-separated")
	idp := fs.String("idp", "", "the name of the IdP the user signed in with; default: the default IdP")
	if len(args) < 3 || args[0] != "explain" || fs.Parse(args[3:]) != nil || fs.NArg() != 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if *idp != "" && !policy.ValidIdPName(*idp) {
		fmt.Fprintf(stderr, "authproxy: --idp %q: want an IdP name of lower-case letters, digits and -\n%s\n", *idp, usage)
		return 2
	}
	p, idps, err := authproxy.LoadPolicy(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "authproxy: invalid configuration:\n%s\n", indent(err))
		return 1
	}
	if *idp != "" && !slices.Contains(idps, *idp) {
		fmt.Fprintf(stderr, "authproxy: --idp %q: no such IdP; the configured IdPs are %s (AUTHPROXY_DEFAULT_IDP_NAME, then AUTHPROXY_IDPS)\n", *idp, strings.Join(idps, ", "))
		return 2
	}
	var id *policy.Identity
	if *email != "" || *groups != "" || *idp != "" {
		id = &policy.Identity{Email: *email, IdP: *idp}
		for g := range strings.SplitSeq(*groups, ",") {
			if g = strings.TrimSpace(g); g != "" {
				id.Groups = append(id.Groups, g)
			}
		}
	}
	fmt.Fprint(stdout, p.Explain(args[1], args[2], id))
	return 0
}

// sessions lists or revokes sessions from outside the serving processes:
//
//	authproxy sessions revoke (--sub S | --email E | --all)
//	authproxy sessions list (--sub S | --email E)
func sessions(args []string, stdout, stderr io.Writer) int {
	req, err := authproxy.ParseSessionsArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n%s\n", err, authproxy.SessionsUsage)
		return 2
	}
	cfg, ok := loadConfig(stderr)
	if !ok {
		return 1
	}
	log := newLogger(cfg.LogFormat, stderr)
	session.SetRedisLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := authproxy.RunSessions(ctx, cfg, req, stdout, log); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	return 0
}

// check validates the configuration and reaches the IdP, printing a report.
func check(stdout, stderr io.Writer) int {
	cfg, ok := loadConfig(stderr)
	if !ok {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := authproxy.Check(ctx, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "authproxy check: FAILED: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "authproxy check: OK")
	return 0
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// indent prints each line of a joined error as an indented list item.
func indent(err error) string {
	var out []byte
	for line := range strings.Lines(err.Error()) {
		out = append(out, "  - "...)
		out = append(out, line...)
	}
	return strings.TrimRight(string(out), "\n")
}
