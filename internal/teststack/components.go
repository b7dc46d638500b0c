package teststack

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
)

// Import paths of the binaries Build builds.
const (
	AuthproxyPkg = "github.com/authproxy/authproxy/cmd/authproxy"
	LegacyAppPkg = "github.com/authproxy/authproxy/deploy/demo/legacyapp"
)

// Build builds the packages (import paths of commands of this module) into dir, with the race
// detector when race is set, so that a -race test run also hunts data races in the processes
// its traffic drives.
func Build(ctx context.Context, dir string, race bool, pkgs ...string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkgs...)
	if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("teststack: go %v: %w\n%s", args, err, out)
	}
	return nil
}

// StartRedis starts redis-server (bin) on addr without persistence (what it holds is lost when it
// stops), with s.Dir as its directory, and waits until it answers PING.
func StartRedis(ctx context.Context, s *Set, name, bin, addr string) (*Proc, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("teststack: redis address: %w", err)
	}
	p, err := s.Start(name, nil, bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.Dir)
	if err != nil {
		return nil, err
	}
	return p, p.WaitRedis(ctx, addr)
}

// StartLegacyApp starts the demo's legacy app (bin, built from LegacyAppPkg) on addr and waits
// until it answers.
func StartLegacyApp(ctx context.Context, s *Set, name, bin, addr string) (*Proc, error) {
	p, err := s.Start(name, []string{"LEGACYAPP_LISTEN=" + addr}, bin)
	if err != nil {
		return nil, err
	}
	return p, p.WaitHTTP(ctx, "http://"+addr+"/api/whoami")
}

// Authproxy is how DemoClientEnv configures an authproxy.
type Authproxy struct {
	Addr         string // AUTHPROXY_LISTEN, host:port
	Upstream     string // AUTHPROXY_UPSTREAM
	Issuer       string // AUTHPROXY_OIDC_ISSUER
	RedirectURL  string // AUTHPROXY_REDIRECT_URL; empty: http://Addr/oauth2/callback
	CookieSecret string // AUTHPROXY_COOKIE_SECRET, base64
	LogFormat    string // AUTHPROXY_LOG_FORMAT; empty: text
}

// DemoClientEnv is the environment of an authproxy signing in as the demo's Dex client
// (deploy/demo/dex.yaml) over plain loopback http, asking for groups and a refresh token.
func DemoClientEnv(a Authproxy) []string {
	redirect := a.RedirectURL
	if redirect == "" {
		redirect = "http://" + a.Addr + "/oauth2/callback"
	}
	format := a.LogFormat
	if format == "" {
		format = "text"
	}
	env := []string{}
	if a.Addr != "" {
		env = append(env, "AUTHPROXY_LISTEN="+a.Addr)
	}
	return append(env,
		"AUTHPROXY_UPSTREAM="+a.Upstream,
		"AUTHPROXY_OIDC_ISSUER="+a.Issuer,
		"AUTHPROXY_CLIENT_ID=authproxy-demo",
		"AUTHPROXY_CLIENT_SECRET=demo-secret",
		"AUTHPROXY_REDIRECT_URL="+redirect,
		"AUTHPROXY_COOKIE_SECRET="+a.CookieSecret,
		// Tests and the bench sign in back to back from 127.0.0.1, far beyond what one
		// client may (AUTHPROXY_SIGNIN_RATE_LIMIT's default); the limiter still runs.
		"AUTHPROXY_SIGNIN_RATE_LIMIT=100000/m burst=100000",
		"AUTHPROXY_COOKIE_SECURE=false",
		"AUTHPROXY_SCOPES=openid email profile groups offline_access",
		"AUTHPROXY_LOG_FORMAT="+format,
	)
}

// StartAuthproxy starts the authproxy binary bin on addr with env (which must set
// AUTHPROXY_LISTEN=addr, as DemoClientEnv does) and waits until /readyz answers 200 and its log
// says that it is the one serving addr.
func StartAuthproxy(ctx context.Context, s *Set, name, bin, addr string, env []string) (*Proc, error) {
	p, err := s.Start(name, env, bin)
	if err != nil {
		return nil, err
	}
	return p, p.WaitAuthproxy(ctx, addr)
}

// WaitAuthproxy waits until the authproxy p answers 200 on addr's /readyz and has logged that it
// serves addr. The second check is what tells p's own answer from that of another process that
// has the port: p, unable to listen, would exit a moment later, and its requests would reach a
// stranger. Without a log file (Set.Output) only /readyz is waited for.
func (p *Proc) WaitAuthproxy(ctx context.Context, addr string) error {
	if err := p.WaitHTTP(ctx, "http://"+addr+"/readyz"); err != nil || p.LogPath == "" {
		return err
	}
	last := "no such line"
	return p.poll(ctx, "its log line \"authproxy serving\" on "+addr, &last, func() bool {
		log, err := p.Log()
		if err != nil {
			last = err.Error()
			return false
		}
		for line := range strings.Lines(log) {
			if strings.Contains(line, "authproxy serving") && strings.Contains(line, addr) {
				return true
			}
		}
		return false
	})
}
