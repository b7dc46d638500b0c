// Package otlphttp has one job: send OTLP trace export requests over HTTP
// with protobuf, configured by the standard OTEL_EXPORTER_OTLP_* variables,
// without linking gRPC. Its Client is an otlptrace.Client; hand it to
// otlptrace.New.
package otlphttp

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// ConfigError is a bad value of one OTEL_EXPORTER_OTLP_* variable.
type ConfigError struct {
	// Variable is the variable's name, such as OTEL_EXPORTER_OTLP_HEADERS.
	Variable string
	// Err says what is wrong with its value.
	Err error
}

// Error names the variable and says what is wrong.
func (e *ConfigError) Error() string { return e.Variable + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// config is what the variables say.
type config struct {
	endpoint string
	headers  http.Header
	timeout  time.Duration
	gzip     bool
	tls      *tls.Config // nil: the system's roots, no client certificate
}

// env reads the OTEL_EXPORTER_OTLP_* variables through lookup; a variable
// set to blanks counts as unset.
type env func(string) (string, bool)

// get returns the traces variable OTEL_EXPORTER_OTLP_TRACES_<suffix> if set,
// else OTEL_EXPORTER_OTLP_<suffix>, and the name of the one it read.
func (e env) get(suffix string) (name, value string) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_" + suffix, "OTEL_EXPORTER_OTLP_" + suffix} {
		if v, _ := e(name); strings.TrimSpace(v) != "" {
			return name, strings.TrimSpace(v)
		}
	}
	return "", ""
}

// parseConfig reads the variables, reporting every bad one.
func parseConfig(e env) (config, error) {
	c := config{endpoint: "http://localhost:4318/v1/traces", headers: http.Header{}, timeout: 10 * time.Second}
	var errs []error
	bad := func(name string, err error) { errs = append(errs, &ConfigError{Variable: name, Err: err}) }

	if name, v := e.get("ENDPOINT"); name != "" {
		u, err := url.Parse(v)
		switch {
		case err != nil:
			bad(name, errors.Unwrap(err)) // not the URL, which may hold a password
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			bad(name, errors.New("want an http or https URL with a host"))
		default:
			if name == "OTEL_EXPORTER_OTLP_ENDPOINT" { // a base URL; the traces one is used as is
				u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/")+"/v1/traces", ""
			}
			c.endpoint = u.String()
		}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		if v, _ := e(name); v != "" {
			if err := parseHeaders(v, c.headers); err != nil { // the traces ones, read last, win
				bad(name, err)
			}
		}
	}
	if name, v := e.get("TIMEOUT"); name != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err != nil || ms <= 0 || ms > int64(time.Hour/time.Millisecond) {
			bad(name, fmt.Errorf("%q: want a whole number of milliseconds, from 1 to 3600000", v))
		} else {
			c.timeout = time.Duration(ms) * time.Millisecond
		}
	}
	if name, v := e.get("COMPRESSION"); name != "" {
		switch v {
		case "gzip":
			c.gzip = true
		case "none":
		default:
			bad(name, fmt.Errorf("%q: want gzip or none", v))
		}
	}

	var tc tls.Config
	caName, caFile := e.get("CERTIFICATE")
	if caName != "" {
		tc.RootCAs = x509.NewCertPool()
		if pem, err := os.ReadFile(caFile); err != nil {
			bad(caName, err)
		} else if !tc.RootCAs.AppendCertsFromPEM(pem) {
			bad(caName, fmt.Errorf("%s: no PEM certificate", caFile))
		}
	}
	certName, certFile := e.get("CLIENT_CERTIFICATE")
	keyName, keyFile := e.get("CLIENT_KEY")
	switch {
	case certName != "" && keyName == "":
		bad("OTEL_EXPORTER_OTLP_CLIENT_KEY", fmt.Errorf("not set, but %s is", certName))
	case certName == "" && keyName != "":
		bad("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", fmt.Errorf("not set, but %s is", keyName))
	case certName != "":
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			bad(certName, fmt.Errorf("with %s: %w", keyName, err))
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	if caName != "" || certName != "" {
		c.tls = &tc
		if strings.HasPrefix(c.endpoint, "http:") {
			bad(cmp.Or(caName, certName), errors.New("set, but the endpoint is http, not https"))
		}
	}
	return c, errors.Join(errs...)
}

// parseHeaders adds to h the headers in list, written k=v,k2=v2 as W3C
// baggage is, with the values percent-encoded.
func parseHeaders(list string, h http.Header) error {
	for item := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || !validKey(k) {
			return fmt.Errorf("%q: want key=value pairs separated by commas", item)
		}
		v, err := url.PathUnescape(v)
		if err != nil {
			return fmt.Errorf("header %s: %w", k, err)
		}
		v = strings.TrimSpace(v)
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return fmt.Errorf("header %s: control character in the value", k)
		}
		h.Set(k, v)
	}
	return nil
}

// validKey reports whether k is an HTTP header name (an RFC 9110 token).
func validKey(k string) bool {
	return k != "" && !strings.ContainsFunc(k, func(r rune) bool {
		return r > '~' || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	})
}
