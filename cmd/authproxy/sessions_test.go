package main

import (
	"bytes"
	"encoding/base64"
	"net"
	"strings"
	"testing"
)

// sessionsEnv sets a valid configuration with the cookie store and no
// Redis, changed by extra (name, value pairs).
func sessionsEnv(t *testing.T, extra ...string) {
	t.Helper()
	env := []string{
		"AUTHPROXY_UPSTREAM", "http://127.0.0.1:1",
		"AUTHPROXY_OIDC_ISSUER", "http://127.0.0.1:1/dex",
		"AUTHPROXY_CLIENT_ID", "authproxy",
		"AUTHPROXY_REDIRECT_URL", "https://app.example.com/oauth2/callback",
		"AUTHPROXY_COOKIE_SECRET", base64.StdEncoding.EncodeToString([]byte("0123456789abcdefghijklmnopqrstuv")),
		"AUTHPROXY_SESSION_STORE", "cookie",
		"AUTHPROXY_REDIS_URL", "",
	}
	env = append(env, extra...)
	for i := 0; i < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestSessionsUsage(t *testing.T) {
	sessionsEnv(t)
	tests := []struct {
		name string
		args []string
		want string // in stderr, after which the usage follows
	}{
		{"no action", []string{"sessions"}, "want revoke or list"},
		{"unknown action", []string{"sessions", "end", "--all"}, `unknown action "end"`},
		{"revoke without a selector", []string{"sessions", "revoke"}, "want exactly one of --sub, --email and --all"},
		{"revoke with two selectors", []string{"sessions", "revoke", "--sub", "a", "--email", "b@example.com"}, "want exactly one of --sub, --email and --all"},
		{"revoke with an empty email", []string{"sessions", "revoke", "--email", " "}, "want exactly one of --sub, --email and --all"},
		{"revoke with a selector missing its value", []string{"sessions", "revoke", "--sub"}, "flag needs an argument: -sub"},
		{"revoke with a stray argument", []string{"sessions", "revoke", "--all", "now"}, `unexpected argument "now"`},
		{"list every session", []string{"sessions", "list", "--all"}, "flag provided but not defined: -all"},
		{"list without a selector", []string{"sessions", "list"}, "want exactly one of --sub and --email"},
		{"an IdP without a subject", []string{"sessions", "revoke", "--email", "a@example.com", "--idp", "partners"}, "--idp goes with --sub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "usage: authproxy sessions revoke (--sub S [--idp NAME] | --email E | --all)\n       authproxy sessions list (--sub S [--idp NAME] | --email E)\n") {
				t.Errorf("stderr = %q; want %q and the usage", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q; want nothing", stdout.String())
			}
		})
	}
}

func TestSessionsOutOfReach(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"revoke, cookie store without Redis", nil, []string{"sessions", "revoke", "--email", "alice@example.com"},
			[]string{"sessions cannot be revoked from outside the process that serves them", "AUTHPROXY_SESSION_STORE=cookie and no AUTHPROXY_REDIS_URL", "set AUTHPROXY_REDIS_URL"}},
		{"revoke all, cookie store without Redis", nil, []string{"sessions", "revoke", "--all"},
			[]string{"sessions cannot be revoked from outside the process that serves them"}},
		{"list, cookie store without Redis", nil, []string{"sessions", "list", "--sub", "abc"},
			[]string{"sessions cannot be listed from outside the process that serves them"}},
		{"list, cookie store with Redis", []string{"AUTHPROXY_REDIS_URL", "redis://" + closedAddr(t) + "/0"}, []string{"sessions", "list", "--email", "alice@example.com"},
			[]string{"sessions cannot be listed with AUTHPROXY_SESSION_STORE=cookie", "authproxy sessions revoke"}},
		{"revoke, Redis down", []string{"AUTHPROXY_SESSION_STORE", "redis", "AUTHPROXY_REDIS_URL", "redis://" + closedAddr(t) + "/0"}, []string{"sessions", "revoke", "--sub", "abc"},
			[]string{"cannot reach Redis (AUTHPROXY_REDIS_URL)"}},
		{"bad configuration", []string{"AUTHPROXY_CLIENT_ID", ""}, []string{"sessions", "revoke", "--all"},
			[]string{"invalid configuration", "AUTHPROXY_CLIENT_ID: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sessionsEnv(t, tt.env...)
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != 1 {
				t.Errorf("exit %d, want 1; stderr %q", code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "sessions revoked") {
				t.Errorf("stderr claims a revocation:\n%s", stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q; want nothing", stdout.String())
			}
		})
	}
}
