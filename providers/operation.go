package providers

import (
	"context"
	"net/http"
)

// The calls to the IdP that Operation tells apart.
const (
	OpDiscovery = "discovery" // the discovery document
	OpJWKS      = "jwks"      // the key set that signs ID and logout tokens
	OpToken     = "token"     // the authorization code exchanged at sign-in
	OpRefresh   = "refresh"   // a refresh token exchanged for fresh tokens
	OpUserinfo  = "userinfo"  // the userinfo endpoint (GitHub: its user API)
	OpGroups    = "groups"    // group lookups beside the token (Entra's Graph)
)

type operationKey struct{}

// withOperation labels the IdP calls made with ctx as op.
func withOperation(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, operationKey{}, op)
}

// Operation names the call to the IdP that req, sent through
// OIDCConfig.HTTPClient, belongs to: one of the Op constants. It lets the
// client's transport label what it measures (a trace span) without
// knowing the IdP's URLs. go-oidc fetches the key set with a context of its
// own, shared by every request, which no provider labels: an unlabelled
// request is that fetch, OpJWKS.
func Operation(req *http.Request) string {
	if op, ok := req.Context().Value(operationKey{}).(string); ok {
		return op
	}
	return OpJWKS
}
