package authproxy

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadConfigSecretFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name       string
		env        map[string]string
		wantSecret string // the client secret, when no error
		wantErr    string
	}{
		{"client secret with trailing newline", map[string]string{"AUTHPROXY_CLIENT_SECRET_FILE": file("a", "s3cret\n")}, "s3cret", ""},
		{"client secret with CRLF", map[string]string{"AUTHPROXY_CLIENT_SECRET_FILE": file("b", "s3cret\r\n")}, "s3cret", ""},
		{"client secret with blank lines after", map[string]string{"AUTHPROXY_CLIENT_SECRET_FILE": file("c", "s3cret\n\n")}, "s3cret", ""},
		{"client secret without newline", map[string]string{"AUTHPROXY_CLIENT_SECRET_FILE": file("d", "s3cret")}, "s3cret", ""},
		{"empty variable and a file", map[string]string{"AUTHPROXY_CLIENT_SECRET": "", "AUTHPROXY_CLIENT_SECRET_FILE": file("e", "s3cret\n")}, "s3cret", ""},
		{"cookie secret from a file", map[string]string{"AUTHPROXY_COOKIE_SECRET": "\x00unset", "AUTHPROXY_COOKIE_SECRET_FILE": file("f", testCookieSecret+"\n")}, "", ""},
		{"both set", map[string]string{"AUTHPROXY_CLIENT_SECRET": "x", "AUTHPROXY_CLIENT_SECRET_FILE": file("g", "y")}, "",
			"AUTHPROXY_CLIENT_SECRET: set either AUTHPROXY_CLIENT_SECRET or AUTHPROXY_CLIENT_SECRET_FILE, not both"},
		{"cookie secret both set", map[string]string{"AUTHPROXY_COOKIE_SECRET_FILE": file("h", testCookieSecret)}, "",
			"AUTHPROXY_COOKIE_SECRET: set either AUTHPROXY_COOKIE_SECRET or AUTHPROXY_COOKIE_SECRET_FILE, not both"},
		{"missing file", map[string]string{"AUTHPROXY_CLIENT_SECRET_FILE": filepath.Join(dir, "absent")}, "",
			"AUTHPROXY_CLIENT_SECRET: reading AUTHPROXY_CLIENT_SECRET_FILE"},
		{"empty cookie secret file", map[string]string{"AUTHPROXY_COOKIE_SECRET": "\x00unset", "AUTHPROXY_COOKIE_SECRET_FILE": file("i", "\n")}, "",
			"AUTHPROXY_COOKIE_SECRET: required"},
		{"short cookie secret in a file", map[string]string{"AUTHPROXY_COOKIE_SECRET": "\x00unset", "AUTHPROXY_COOKIE_SECRET_FILE": file("j", "dHdlbHZlIGJ5dGVz\n")}, "",
			"AUTHPROXY_COOKIE_SECRET: want 32 bytes base64-encoded, got 12 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadWith(tc.env)
			if tc.wantErr != "" {
				if lines := errorLines(err); len(lines) != 1 || !strings.HasPrefix(lines[0], tc.wantErr) {
					t.Fatalf("error %q, want %q…", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ClientSecret.Reveal(); got != tc.wantSecret {
				t.Errorf("client secret %q, want %q", got, tc.wantSecret)
			}
			if len(c.CookieSecrets) != 1 || len(c.CookieSecrets[0].Reveal()) != 32 {
				t.Errorf("cookie secrets %d, want one of 32 bytes", len(c.CookieSecrets))
			}
		})
	}
}

func TestCookieSecretForms(t *testing.T) {
	key := []byte("\xfb\xff\xbf-authproxy-cookie-secret-32b!")
	if len(key) != 32 {
		t.Fatalf("test key is %d bytes", len(key))
	}
	other := bytes.Repeat([]byte{0x42}, 32)
	short := base64.StdEncoding.EncodeToString([]byte("twelve bytes"))
	for _, tc := range []struct {
		name, value string
		want        [][]byte // keys, when valid
		wantErr     string   // the whole message, when not
	}{
		{"standard base64", base64.StdEncoding.EncodeToString(key), [][]byte{key}, ""},
		{"URL base64", base64.URLEncoding.EncodeToString(key), [][]byte{key}, ""},
		{"standard base64 without padding", base64.RawStdEncoding.EncodeToString(key), [][]byte{key}, ""},
		{"URL base64 without padding", base64.RawURLEncoding.EncodeToString(key), [][]byte{key}, ""},
		{"hex", hex.EncodeToString(key), [][]byte{key}, ""},
		{"hex in upper case", strings.ToUpper(hex.EncodeToString(key)), [][]byte{key}, ""},
		{"rotation list", base64.StdEncoding.EncodeToString(key) + ", " + hex.EncodeToString(other), [][]byte{key, other}, ""},
		{"12 bytes", short, nil, "AUTHPROXY_COOKIE_SECRET: want 32 bytes base64-encoded, got 12 bytes"},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(key, 0)), nil, "AUTHPROXY_COOKIE_SECRET: want 32 bytes base64-encoded, got 33 bytes"},
		{"16 bytes as hex", hex.EncodeToString(key[:16]), nil, "AUTHPROXY_COOKIE_SECRET: want 32 bytes base64-encoded, got 24 bytes"},
		{"bad second item", base64.StdEncoding.EncodeToString(key) + "," + short, nil, "AUTHPROXY_COOKIE_SECRET: item 2: want 32 bytes base64-encoded, got 12 bytes"},
		{"neither base64 nor hex", "!!!!", nil, "AUTHPROXY_COOKIE_SECRET: want 32 random bytes base64-encoded (or 64 hex characters); `authproxy secret` prints one; got 4 characters that are neither"},
		{"only commas", ",,", nil, "AUTHPROXY_COOKIE_SECRET: required; want 32 random bytes base64-encoded (or 64 hex characters); `authproxy secret` prints one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadWith(map[string]string{"AUTHPROXY_COOKIE_SECRET": tc.value})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %q, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			for _, s := range c.CookieSecrets {
				got = append(got, []byte(s.Reveal()))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("keys %x, want %x", got, tc.want)
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const clientSecret = "client-secret-do-not-print"
	c, err := loadWith(map[string]string{"AUTHPROXY_CLIENT_SECRET": clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	cookieKey := c.CookieSecrets[0].Reveal()
	logged := func(h func(w io.Writer) slog.Handler, args ...any) string {
		var b bytes.Buffer
		slog.New(h(&b)).Info("config", args...)
		return b.String()
	}
	text := func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }
	js := func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }

	for _, tc := range []struct{ name, out string }{
		{"%v of *Config", fmt.Sprintf("%v", c)},
		{"%+v of *Config", fmt.Sprintf("%+v", c)},
		{"%v of Config", fmt.Sprintf("%v", *c)},
		{"%s of Secret", fmt.Sprintf("%s", c.ClientSecret)},
		{"%v of Secret", fmt.Sprint(c.ClientSecret)},
		{"%q of Secret", fmt.Sprintf("%q", c.ClientSecret)},
		{"%v of []Secret", fmt.Sprint(c.CookieSecrets)},
		{"%#v of Secret", fmt.Sprintf("%#v", c.ClientSecret)},
		{"%#v of *Config", fmt.Sprintf("%#v", c)},
		{"slog text of secrets", logged(text, "client_secret", c.ClientSecret, "cookie_secret", c.CookieSecrets[0])},
		{"slog text of []Secret", logged(text, "cookie_secrets", c.CookieSecrets)},
		{"slog text of *Config", logged(text, "config", c)},
		{"slog JSON of secrets", logged(js, "client_secret", c.ClientSecret, "cookie_secret", c.CookieSecrets[0])},
		{"slog JSON of []Secret", logged(js, "cookie_secrets", c.CookieSecrets)},
		{"slog JSON of *Config", logged(js, "config", c)},
		{"JSON of *Config", mustJSON(t, c)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.out, clientSecret) || strings.Contains(tc.out, cookieKey) {
				t.Errorf("secret printed: %s", tc.out)
			}
			if !strings.Contains(tc.out, "[redacted]") {
				t.Errorf("no [redacted] placeholder in %s", tc.out)
			}
		})
	}
	if got := Secret("").String(); got != "" {
		t.Errorf("empty Secret prints %q, want \"\"", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
