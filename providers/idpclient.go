package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// MaxResponseBytes bounds every answer read from the IdP (discovery, keys,
// token, userinfo): a larger one fails with ErrBadResponse instead of being
// held in memory. Real answers are a few KiB.
const MaxResponseBytes = 1 << 20

// limitedClient returns a copy of c whose responses fail with ErrBadResponse
// beyond max bytes: at once when Content-Length says so, else when the
// body is read past max. go-oidc reads discovery, keys and userinfo whole;
// this client is what bounds them.
func limitedClient(c *http.Client, max int64) *http.Client {
	cp := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = &limitTransport{base: base, max: max}
	return &cp
}

// limitTransport is limitedClient's RoundTripper.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s%s answered %d bytes, more than the %d allowed", ErrBadResponse, req.URL.Host, req.URL.Path, resp.ContentLength, t.max)
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.max, where: req.URL.Host + req.URL.Path}
	return resp, nil
}

// limitedBody fails a read past its limit with ErrBadResponse.
type limitedBody struct {
	io.ReadCloser
	left  int64
	where string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: %s answered more than %d bytes", ErrBadResponse, b.where, MaxResponseBytes)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// idpFailure classifies err, from a call to the IdP that did not end in the
// IdP refusing something, as the IdP's own failure: ErrTimeout when it did
// not answer in time, ErrUnavailable when it could not be reached, and
// ErrBadResponse when it answered with something unusable (x/oauth2 reports
// an unparsable or truncated body as a plain error).
func idpFailure(op string, err error) error {
	var nerr net.Error
	var uerr *url.Error
	switch {
	case errors.Is(err, ErrUnavailable):
		return fmt.Errorf("providers: %s: %w", op, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout():
		return fmt.Errorf("%w: %s: %w", ErrTimeout, op, err)
	case errors.As(err, &uerr):
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
	default:
		return fmt.Errorf("%w: %s: %w", ErrBadResponse, op, err)
	}
}
