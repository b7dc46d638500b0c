package otlphttp

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mapEnv is a lookup over vars.
func mapEnv(vars map[string]string) env {
	return func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
}

func TestParseConfig(t *testing.T) {
	pki := newPKI(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	const https = "https://collector:4318"

	type want struct {
		endpoint   string
		headers    map[string]string
		timeout    time.Duration
		gzip       bool
		roots      bool // a CA pool of our own
		clientCert bool
	}
	def := want{endpoint: "http://localhost:4318/v1/traces", headers: map[string]string{}, timeout: 10 * time.Second}
	with := func(f func(*want)) want { w := def; w.headers = maps.Clone(def.headers); f(&w); return w }
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		want    want
		wantErr []string // the variables named, in order
	}{
		{"defaults", nil, def, nil},
		{"blank is unset", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": " ", "OTEL_EXPORTER_OTLP_TIMEOUT": ""}, def, nil},

		{"base endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, with(func(w *want) { w.endpoint = "http://c:4318/v1/traces" }), nil},
		{"base endpoint, trailing slash", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c/"}, with(func(w *want) { w.endpoint = "https://c/v1/traces" }), nil},
		{"base endpoint with a path", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c/otlp/"}, with(func(w *want) { w.endpoint = "http://c/otlp/v1/traces" }), nil},
		{"traces endpoint as is, and it wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/custom?x=1"}, with(func(w *want) { w.endpoint = "https://b/custom?x=1" }), nil},
		{"traces endpoint, no path", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318"}, with(func(w *want) { w.endpoint = "http://b:4318" }), nil},
		{"gRPC scheme", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://c:4317"}, def, []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}},
		{"no scheme", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318"}, def, []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}},
		{"no host", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http:///v1/traces"}, def, []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}},
		{"unparsable", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:port"}, def, []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}},

		{"headers, decoded", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "Api-Key=s%20cret, x-tenant = blue ,"}, with(func(w *want) { w.headers = map[string]string{"Api-Key": "s cret", "X-Tenant": "blue"} }), nil},
		{"traces headers win per key", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=3"}, with(func(w *want) { w.headers = map[string]string{"A": "1", "B": "3"} }), nil},
		{"header without a value", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1,novalue"}, def, []string{"OTEL_EXPORTER_OTLP_HEADERS"}},
		{"header without a key", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "=v"}, def, []string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS"}},
		{"header key not a token", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a b=c"}, def, []string{"OTEL_EXPORTER_OTLP_HEADERS"}},
		{"header bad escape", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=%zz"}, def, []string{"OTEL_EXPORTER_OTLP_HEADERS"}},
		{"header control character", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=x%0d%0aInjected: 1"}, def, []string{"OTEL_EXPORTER_OTLP_HEADERS"}},

		{"timeout", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "500"}, with(func(w *want) { w.timeout = 500 * time.Millisecond }), nil},
		{"traces timeout wins", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2000"}, with(func(w *want) { w.timeout = 2 * time.Second }), nil},
		{"timeout not a number", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, def, []string{"OTEL_EXPORTER_OTLP_TIMEOUT"}},
		{"timeout fractional", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1.5"}, def, []string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"}},
		{"timeout zero", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "0"}, def, []string{"OTEL_EXPORTER_OTLP_TIMEOUT"}},
		{"timeout negative", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}, def, []string{"OTEL_EXPORTER_OTLP_TIMEOUT"}},

		{"gzip", map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, with(func(w *want) { w.gzip = true }), nil},
		{"traces compression wins", map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none"}, def, nil},
		{"unknown compression", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"}, def, []string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"}},

		{"CA file", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_CERTIFICATE": pki.caFile}, with(func(w *want) { w.endpoint = https + "/v1/traces"; w.roots = true }), nil},
		{"traces CA file wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_CERTIFICATE": missing, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": pki.caFile}, with(func(w *want) { w.endpoint = https + "/v1/traces"; w.roots = true }), nil},
		{"CA file missing", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_CERTIFICATE": missing}, def, []string{"OTEL_EXPORTER_OTLP_CERTIFICATE"}},
		{"CA file not PEM", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": notPEM}, def, []string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"}},
		{"CA file for an http endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_CERTIFICATE": pki.caFile}, def, []string{"OTEL_EXPORTER_OTLP_CERTIFICATE"}},

		{"client certificate", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": pki.clientKeyFile}, with(func(w *want) { w.endpoint = https + "/v1/traces"; w.clientCert = true }), nil},
		{"traces client certificate", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": pki.clientCertFile, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": pki.clientKeyFile}, with(func(w *want) { w.endpoint = https + "/v1/traces"; w.clientCert = true }), nil},
		{"client certificate without a key", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile}, def, []string{"OTEL_EXPORTER_OTLP_CLIENT_KEY"}},
		{"client key without a certificate", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": pki.clientKeyFile}, def, []string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"}},
		{"client certificate missing", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": missing, "OTEL_EXPORTER_OTLP_CLIENT_KEY": pki.clientKeyFile}, def, []string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"}},
		{"client key missing", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": missing}, def, []string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"}},
		{"client key not the certificate's", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": pki.serverKeyFile}, def, []string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"}},
		{"client certificate not PEM", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": https, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": notPEM, "OTEL_EXPORTER_OTLP_CLIENT_KEY": pki.clientKeyFile}, def, []string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"}},

		{"every problem at once", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://c", "OTEL_EXPORTER_OTLP_HEADERS": "x", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon", "OTEL_EXPORTER_OTLP_COMPRESSION": "lz4"}, def,
			[]string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(mapEnv(tc.vars))
			if tc.wantErr != nil {
				var got []string
				for _, e := range unjoin(err) {
					var ce *ConfigError
					if !errors.As(e, &ce) {
						t.Fatalf("error %v is not a *ConfigError", e)
					}
					if !strings.HasPrefix(e.Error(), ce.Variable+": ") {
						t.Errorf("error %q does not start with the variable's name", e)
					}
					got = append(got, ce.Variable)
				}
				if strings.Join(got, " ") != strings.Join(tc.wantErr, " ") {
					t.Fatalf("errors name %v, want %v; error: %v", got, tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			headers := map[string]string{}
			for k := range c.headers {
				headers[k] = c.headers.Get(k)
			}
			got := want{endpoint: c.endpoint, headers: headers, timeout: c.timeout, gzip: c.gzip,
				roots: c.tls != nil && c.tls.RootCAs != nil, clientCert: c.tls != nil && len(c.tls.Certificates) == 1}
			if got.endpoint != tc.want.endpoint || !maps.Equal(got.headers, tc.want.headers) || got.timeout != tc.want.timeout ||
				got.gzip != tc.want.gzip || got.roots != tc.want.roots || got.clientCert != tc.want.clientCert {
				t.Errorf("config\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// unjoin splits an errors.Join into its errors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// TestNewNamesTheVariable checks that New's error names the variable and is
// a *ConfigError under errors.As.
func TestNewNamesTheVariable(t *testing.T) {
	c, err := New(mapEnv(map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}), "test")
	var ce *ConfigError
	if c != nil || !errors.As(err, &ce) || ce.Variable != "OTEL_EXPORTER_OTLP_TIMEOUT" {
		t.Fatalf("New = %v, %v; want a *ConfigError naming OTEL_EXPORTER_OTLP_TIMEOUT", c, err)
	}
	if !strings.Contains(err.Error(), "otlphttp: OTEL_EXPORTER_OTLP_TIMEOUT: ") {
		t.Errorf("error %q", err)
	}
}
