package authproxy

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
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
// bearer-only ones too, and is ready while any browser IdP is; with every
// browser IdP down no one can sign in, and a bearer-only IdP that is up does
// not make the proxy ready.
func TestReadyNeedsABrowserIdP(t *testing.T) {
	e := newMultiEnv(t, withOtherIdP("robots"), withVar("AUTHPROXY_IDP_ROBOTS_BEARER_ONLY", "true"))
	down := map[string]*atomic.Bool{"default": stoppable(e.idp), "partners": stoppable(e.others["partners"]), "robots": stoppable(e.others["robots"])}
	for _, tc := range []struct {
		name     string
		down     []string
		status   int
		notReady []string
	}{
		{"all up", nil, http.StatusOK, nil},
		{"one browser IdP down", []string{"partners"}, http.StatusOK, nil},
		{"the bearer-only IdP down", []string{"robots"}, http.StatusOK, nil},
		{"every browser IdP down, the bearer-only one up", []string{"default", "partners"}, http.StatusServiceUnavailable, []string{"identity_provider"}},
		{"every IdP down", []string{"default", "partners", "robots"}, http.StatusServiceUnavailable, []string{"identity_provider"}},
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
			if r.Status != tc.status || !slices.Equal(ans.NotReady, tc.notReady) || !maps.Equal(ans.IdPs, want) {
				t.Errorf("/readyz: %d %s; want %d, not_ready %q, idps %v", r.Status, r.Body, tc.status, tc.notReady, want)
			}
		})
	}
}
