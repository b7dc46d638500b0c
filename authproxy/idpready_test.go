package authproxy

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// stoppable makes the fake IdP f answer 502 to everything while the
// returned flag is set, as an IdP that stopped after its discovery.
func stoppable(f *fakeIdP) *atomic.Bool {
	var down atomic.Bool
	next := f.srv.Config.Handler
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		next.ServeHTTP(w, r)
	})
	return &down
}

// TestReadyNeedsABrowserIdP: with several IdPs /readyz reports each,
// bearer-only ones too. It is ready once a browser IdP's discovery is
// loaded, as with one IdP: IdPs that stop answering their probes later are
// shown unavailable but leave the replica ready (every replica would go
// out at once, and the signed-in users with them).
func TestReadyNeedsABrowserIdP(t *testing.T) {
	e := newMultiEnv(t, withOtherIdP("robots"), withVar("AUTHPROXY_IDP_ROBOTS_BEARER_ONLY", "true"))
	down := map[string]*atomic.Bool{"default": stoppable(e.idp), "partners": stoppable(e.others["partners"]), "robots": stoppable(e.others["robots"])}
	for _, tc := range []struct {
		name string
		down []string
	}{
		{"all up", nil},
		{"one browser IdP down", []string{"partners"}},
		{"the bearer-only IdP down", []string{"robots"}},
		{"every browser IdP down, the bearer-only one up", []string{"default", "partners"}},
		{"every IdP down", []string{"default", "partners", "robots"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := map[string]string{}
			for name, flag := range down {
				flag.Store(slices.Contains(tc.down, name))
				want[name] = map[bool]string{false: "ok", true: "unavailable"}[flag.Load()]
			}
			e.srv.probeIdPs(t.Context())
			r := e.api(t, e.browser(), readyPath)
			var ans readyAnswer
			if err := json.Unmarshal([]byte(r.Body), &ans); err != nil {
				t.Fatalf("/readyz body %q: %v", r.Body, err)
			}
			if r.Status != http.StatusOK || len(ans.NotReady) != 0 || !maps.Equal(ans.IdPs, want) {
				t.Errorf("/readyz: %d %s; want 200, idps %v", r.Status, r.Body, want)
			}
		})
	}
}

// TestReadyNotWithOnlyABearerIdP: until a browser IdP's discovery has
// loaded nobody can sign in, and a discovered bearer-only IdP does not make
// the proxy ready.
func TestReadyNotWithOnlyABearerIdP(t *testing.T) {
	e := newTestEnv(t, withIdPDown(), withOtherIdP("partners"), withOtherIdP("robots"),
		withVar("AUTHPROXY_IDP_PARTNERS_OIDC_ISSUER", "http://"+closedAddr(t)),
		withVar("AUTHPROXY_IDP_ROBOTS_BEARER_ONLY", "true"))
	want := map[string]string{"default": "unavailable", "partners": "unavailable", "robots": "ok"}
	var r reply
	var ans readyAnswer
	// The robots' discovery runs in the background: wait for it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r = e.api(t, e.browser(), readyPath)
		ans = readyAnswer{}
		if err := json.Unmarshal([]byte(r.Body), &ans); err != nil {
			t.Fatalf("/readyz body %q: %v", r.Body, err)
		}
		if ans.IdPs["robots"] == "ok" || time.Now().After(deadline) {
			break
		}
	}
	if r.Status != http.StatusServiceUnavailable || !slices.Equal(ans.NotReady, []string{"identity_provider"}) || !maps.Equal(ans.IdPs, want) {
		t.Errorf("/readyz: %d %s; want 503, not_ready [identity_provider], idps %v", r.Status, r.Body, want)
	}
}
