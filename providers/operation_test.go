package providers

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

// opRecorder is a transport that records providers.Operation of every
// request it sends, as a tracing transport would.
type opRecorder struct {
	mu  sync.Mutex
	ops []string
}

func (o *opRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	o.mu.Lock()
	o.ops = append(o.ops, Operation(r)+" "+r.URL.Path)
	o.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (o *opRecorder) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ops := o.ops
	o.ops = nil
	return ops
}

// TestOperation checks that every call to the IdP through
// OIDCConfig.HTTPClient is labelled with what it is for.
func TestOperation(t *testing.T) {
	f := newTestIdP(t, "secret")
	f.set(func(f *testIdP) {
		f.userinfo = map[string]any{"sub": "user-1", "email": "from-userinfo@example.com"}
		f.tweak = func(c map[string]any) { delete(c, "email") } // so that userinfo is asked
	})
	rec := &opRecorder{}
	p := f.provider(t, func(c *OIDCConfig) { c.HTTPClient = &http.Client{Transport: rec} })
	if got, want := rec.take(), []string{"discovery /.well-known/openid-configuration"}; !slices.Equal(got, want) {
		t.Errorf("Discover: calls %q, want %q", got, want)
	}

	code, verifier, nonce := signIn(t, f, p)
	if _, err := p.Exchange(context.Background(), code, verifier, nonce); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.take(), []string{"token /token", "jwks /keys", "userinfo /userinfo"}; !slices.Equal(got, want) {
		t.Errorf("Exchange: calls %q, want %q", got, want)
	}

	if _, err := p.Refresh(context.Background(), "rt-good"); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.take(), []string{"refresh /token", "userinfo /userinfo"}; !slices.Equal(got, want) {
		t.Errorf("Refresh: calls %q, want %q (the keys are cached)", got, want)
	}
}

// TestOperationGitHub checks the same for GitHub: the token call, then
// its user API as userinfo.
func TestOperationGitHub(t *testing.T) {
	g := newGitHubFake(t)
	rec := &opRecorder{}
	p := githubProvider(t, g, func(c *Config) { c.HTTPClient = &http.Client{Transport: rec} })
	if _, err := githubSignIn(t, g, p, nil); err != nil {
		t.Fatal(err)
	}
	ops := rec.take()
	if len(ops) < 2 || !strings.HasPrefix(ops[0], "token ") {
		t.Fatalf("calls %q, want the token call first", ops)
	}
	for _, op := range ops[1:] {
		if !strings.HasPrefix(op, "userinfo ") {
			t.Errorf("call %q after the token call, want userinfo", op)
		}
	}
}
