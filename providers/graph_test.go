package providers

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// Group ids, shaped like Entra's object ids.
const (
	graphGroupA = "11111111-2222-3333-4444-555555555555"
	graphGroupB = "66666666-7777-8888-9999-000000000000"
	graphRole   = "62e90394-69f5-4237-9190-012177145e10"
)

// graphFake is a fake of Microsoft Graph's GET /v1.0/me/transitiveMemberOf,
// which tests cannot reach. It answers as Graph's documentation shows: two
// pages of directory objects (groups and a directory role, each with
// @odata.type) linked by @odata.nextLink, and errors as
// {"error":{"code","message","innerError"}}.
type graphFake struct {
	srv *httptest.Server

	mu       sync.Mutex
	status   int    // when not 0, every answer is this error
	code     string // its error code
	nextLink string // when set, page 1's @odata.nextLink
	calls    int
	auth     string // the last Authorization header
	selects  string // the last $select
}

func newGraphFake(t *testing.T) *graphFake {
	g := &graphFake{}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *graphFake) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	g.auth, g.selects = r.Header.Get("Authorization"), r.URL.Query().Get("$select")
	if r.Method != http.MethodGet || r.URL.Path != "/v1.0/me/transitiveMemberOf" {
		writeTestJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "Request_ResourceNotFound", "message": "not here"}})
		return
	}
	if g.status != 0 {
		msg := map[string]string{
			"Authorization_RequestDenied": "Insufficient privileges to complete the operation.",
			"InvalidAuthenticationToken":  "Access token validation failure. Invalid audience.",
		}[g.code]
		writeTestJSON(w, g.status, map[string]any{"error": map[string]any{
			"code": g.code, "message": msg,
			"innerError": map[string]any{"date": "2025-01-01T00:00:00", "request-id": "b7a4ff4f-0000-0000-0000-000000000000", "client-request-id": "b7a4ff4f-0000-0000-0000-000000000000"},
		}})
		return
	}
	ctx := g.srv.URL + "/v1.0/$metadata#directoryObjects(id,displayName)"
	if r.URL.Query().Get("$skiptoken") == "" {
		next := g.srv.URL + "/v1.0/me/transitiveMemberOf?$select=id,displayName&$top=999&$skiptoken=RFNwdAIAAQAAAD"
		if g.nextLink != "" {
			next = g.nextLink
		}
		writeTestJSON(w, http.StatusOK, map[string]any{"@odata.context": ctx, "@odata.nextLink": next, "value": []any{
			map[string]any{"@odata.type": "#microsoft.graph.group", "id": graphGroupA, "displayName": "Engineering"},
			map[string]any{"@odata.type": "#microsoft.graph.directoryRole", "id": graphRole, "displayName": "Global Reader"},
		}})
		return
	}
	writeTestJSON(w, http.StatusOK, map[string]any{"@odata.context": ctx, "value": []any{
		map[string]any{"@odata.type": "#microsoft.graph.group", "id": graphGroupB, "displayName": "Platform"},
	}})
}

// TestEntraGroups covers the groups overage: an ID token that cannot hold
// all of a user's groups says so, and the groups come from Microsoft Graph
// with the access token instead.
func TestEntraGroups(t *testing.T) {
	overage := func(c map[string]any) {
		delete(c, "groups")
		c["_claim_names"] = map[string]any{"groups": "src1"}
		c["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": "https://graph.windows.net/" + tenantA + "/users/x/getMemberObjects"}}
	}
	for _, tc := range []struct {
		name        string
		claims      func(c map[string]any)
		names       bool
		groupsClaim string
		graph       func(g *graphFake)
		want        []string
		wantCalls   int
		wantErr     string // "": signed in
	}{
		{"groups in the token", nil, false, "", nil, []string{graphGroupA}, 0, ""},
		{"overage by _claim_names", overage, false, "", nil, []string{graphGroupA, graphGroupB}, 2, ""},
		{"overage by hasgroups", func(c map[string]any) { delete(c, "groups"); c["hasgroups"] = true }, false, "", nil, []string{graphGroupA, graphGroupB}, 2, ""},
		{"names", nil, true, "", nil, []string{graphGroupA, graphGroupB, "Engineering", "Platform"}, 2, ""},
		{"overage, groups from app roles", func(c map[string]any) { overage(c); c["roles"] = []any{"Reader"} }, false, "roles", nil, []string{"Reader"}, 0, ""},

		{"Graph denies", overage, false, "", func(g *graphFake) { g.status, g.code = http.StatusForbidden, "Authorization_RequestDenied" }, nil, 1,
			"Authorization_RequestDenied: Insufficient privileges to complete the operation.): add GroupMember.Read.All to AUTHPROXY_SCOPES"},
		{"token not for Graph", overage, false, "", func(g *graphFake) { g.status, g.code = http.StatusUnauthorized, "InvalidAuthenticationToken" }, nil, 1,
			"it must be for Microsoft Graph, so AUTHPROXY_SCOPES must not ask for another API's scopes"},
		{"Graph unavailable", overage, false, "", func(g *graphFake) { g.status, g.code = http.StatusServiceUnavailable, "serviceNotAvailable" }, nil, 1,
			"Microsoft Graph answered 503 serviceNotAvailable"},
		{"next page elsewhere", overage, false, "", func(g *graphFake) { g.nextLink = "https://evil.example/v1.0/me/transitiveMemberOf?$skiptoken=x" }, nil, 1,
			"is outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGraphFake(t)
			if tc.graph != nil {
				tc.graph(g)
			}
			f := newEntraIdP(t, tenantA, nil, tc.claims)
			p := entraProvider(t, f, "/common/v2.0", []string{tenantA}, func(c *Config) {
				c.Entra.GraphURL, c.Entra.GroupNames = g.srv.URL+"/", tc.names
				if tc.groupsClaim != "" {
					c.GroupsClaim = tc.groupsClaim
				}
			})
			id, err := exchange(t, f, p)
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.calls != tc.wantCalls {
				t.Errorf("Graph called %d times, want %d", g.calls, tc.wantCalls)
			}
			if g.calls > 0 && (g.auth != "Bearer at-1" || g.selects != "id,displayName") {
				t.Errorf("Graph asked with Authorization %q, $select %q", g.auth, g.selects)
			}
			if tc.wantErr != "" {
				if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Exchange: %v; want an error (not ErrRejected) saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if !reflect.DeepEqual(id.Groups, tc.want) {
				t.Errorf("Groups = %q, want %q", id.Groups, tc.want)
			}
		})
	}
}
