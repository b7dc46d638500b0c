package otlphttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const (
	firstBackoff = time.Second      // the wait before the first retry, ±50%; it doubles
	maxBackoff   = 30 * time.Second // and stops doubling here
	maxResponse  = 64 << 10         // bytes of a response body read
	maxErrorBody = 256              // bytes of a response body kept in a StatusError
)

// Client sends spans to the OTLP/HTTP collector that the variables name; it
// is an otlptrace.Client. Build it with New; the zero Client cannot send.
// It is safe for concurrent use.
type Client struct {
	cfg       config
	userAgent string
	http      *http.Client
	backoff   time.Duration   // firstBackoff; tests shorten it
	stopped   context.Context // done once Stop is called
	stop      context.CancelFunc
}

var _ otlptrace.Client = (*Client)(nil)

// New returns the client that the OTEL_EXPORTER_OTLP_* variables describe,
// read with lookup (os.LookupEnv in production): the traces endpoint
// (default http://localhost:4318/v1/traces), headers, timeout (default 10
// s per export, retries included), compression (default none), CA and
// client certificates, whose files it reads now. It sends userAgent as
// User-Agent unless the headers set one. It refuses every bad value at
// once, each a *ConfigError naming its variable.
func New(lookup func(string) (string, bool), userAgent string) (*Client, error) {
	cfg, err := parseConfig(lookup)
	if err != nil {
		return nil, fmt.Errorf("otlphttp: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone() // its proxy from the environment, timeouts, HTTP/2
	tr.TLSClientConfig = cfg.tls
	stopped, stop := context.WithCancel(context.Background())
	return &Client{cfg: cfg, userAgent: userAgent, http: &http.Client{Transport: tr}, backoff: firstBackoff, stopped: stopped, stop: stop}, nil
}

// Start does nothing: the client connects on its first export.
func (c *Client) Start(ctx context.Context) error { return ctx.Err() }

// Stop interrupts an export in flight and closes idle connections; exports
// after it fail.
func (c *Client) Stop(ctx context.Context) error {
	c.stop()
	c.http.CloseIdleConnections()
	return ctx.Err()
}

// UploadTraces sends spans in one export request. It retries a collector
// it cannot reach or that answers 429, 502, 503 or 504, with exponential
// backoff or after its Retry-After, until ctx or the timeout ends; a
// collector's other refusal is a *StatusError, and spans it accepted only
// in part a *PartialSuccessError.
func (c *Client) UploadTraces(ctx context.Context, spans []*tracepb.ResourceSpans) error {
	body, err := c.encode(spans)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	defer context.AfterFunc(c.stopped, cancel)()
	wait := c.backoff
	var last error // the last retryable failure, reported if the timeout ends a later try
	for {
		var retry *retryableError
		err := c.post(ctx, body)
		if !errors.As(err, &retry) {
			if err != nil && last != nil && ctx.Err() != nil {
				return fmt.Errorf("otlphttp: %w: %w", context.Cause(ctx), last)
			}
			return err
		}
		last = retry.err
		delay := max(retry.after, wait/2+rand.N(wait))
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return fmt.Errorf("otlphttp: gave up, the next try would pass the timeout: %w", retry.err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("otlphttp: %w: %w", context.Cause(ctx), retry.err)
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
}

// encode writes spans as an ExportTraceServiceRequest, whose field 1 is
// resource_spans, gzipped if so configured.
func (c *Client) encode(spans []*tracepb.ResourceSpans) ([]byte, error) {
	var b []byte
	for _, rs := range spans {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(proto.Size(rs)))
		var err error
		if b, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(b, rs); err != nil {
			return nil, fmt.Errorf("otlphttp: encoding spans: %w", err)
		}
	}
	if !c.cfg.gzip {
		return b, nil
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, err := zw.Write(b)
	if err = errors.Join(err, zw.Close()); err != nil {
		return nil, fmt.Errorf("otlphttp: compressing spans: %w", err)
	}
	return z.Bytes(), nil
}

// post sends body once.
func (c *Client) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("otlphttp: %w", err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	for k, v := range c.cfg.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if c.cfg.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var badCert *tls.CertificateVerificationError
		var op *net.OpError // "remote error": a TLS alert, such as our certificate refused
		if ctx.Err() != nil || errors.As(err, &badCert) || errors.As(err, &op) && op.Op == "remote error" {
			return fmt.Errorf("otlphttp: %w", err)
		}
		return &retryableError{err: fmt.Errorf("otlphttp: %w", err)} // cannot connect, yet
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse)) // a short body is still an answer
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return &retryableError{err: newStatusError(resp.StatusCode, data), after: retryAfter(resp.Header.Get("Retry-After"))}
	}
	if resp.StatusCode/100 != 2 {
		return newStatusError(resp.StatusCode, data)
	}
	if resp.Header.Get("Content-Type") != "application/x-protobuf" {
		return nil
	}
	return partialSuccess(data)
}

// retryAfter is a Retry-After header's wait: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// retryableError is a failure worth another try, after at least after.
type retryableError struct {
	err   error
	after time.Duration
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// StatusError is a collector's answer other than 2xx (after retries, the
// last one).
type StatusError struct {
	// StatusCode is the HTTP status, such as 400.
	StatusCode int
	// Body is the start of the response body, at most 256 bytes, trimmed.
	Body string
}

func newStatusError(code int, body []byte) *StatusError {
	body = body[:min(len(body), maxErrorBody)]
	return &StatusError{StatusCode: code, Body: strings.ToValidUTF8(strings.TrimSpace(string(body)), "?")}
}

// Error gives the status and the body.
func (e *StatusError) Error() string {
	return fmt.Sprintf("otlphttp: collector answered %d %s: %q", e.StatusCode, http.StatusText(e.StatusCode), e.Body)
}

// PartialSuccessError is a collector's answer that it accepted the export
// but rejected some of its spans.
type PartialSuccessError struct {
	// Rejected is how many spans the collector dropped.
	Rejected int64
	// Message is the collector's explanation, perhaps empty.
	Message string
}

// Error gives the count and the message.
func (e *PartialSuccessError) Error() string {
	return fmt.Sprintf("otlphttp: collector rejected %d spans: %q", e.Rejected, e.Message)
}

// partialSuccess returns the error in an ExportTraceServiceResponse's
// partial_success (field 1, holding rejected_spans, field 1, and
// error_message, field 2), or nil.
func partialSuccess(b []byte) error {
	ps, _ := protowire.ConsumeBytes(field(b, 1, protowire.BytesType))
	n, _ := protowire.ConsumeVarint(field(ps, 1, protowire.VarintType))
	msg, _ := protowire.ConsumeBytes(field(ps, 2, protowire.BytesType))
	if n == 0 && len(msg) == 0 {
		return nil
	}
	return &PartialSuccessError{Rejected: int64(n), Message: string(msg)}
}

// field returns the value, unparsed, of the last field want of type typ in
// the protobuf message b, up to the first malformed field; nil if none.
func field(b []byte, want protowire.Number, typ protowire.Type) (v []byte) {
	for len(b) > 0 {
		num, t, n := protowire.ConsumeTag(b)
		if n < 0 {
			return v
		}
		m := protowire.ConsumeFieldValue(num, t, b[n:])
		if m < 0 {
			return v
		}
		if num == want && t == typ {
			v = b[n : n+m]
		}
		b = b[n+m:]
	}
	return v
}
