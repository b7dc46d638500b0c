package providers

import (
	"context"
	"strings"
)

// KeycloakOptions configure the keycloak kind.
type KeycloakOptions struct {
	// Roles says which Keycloak roles become groups, beside those of the
	// groups claim: "realm" adds realm_access.roles as they are, "client"
	// adds the roles of authproxy's own client (resource_access.<client
	// id>.roles) as "<client id>:<role>", so that they cannot pass for a
	// realm role or group of the same name. Empty means none.
	Roles []string
}

// hooks returns the keycloak kind's hooks. Roles are read from the ID token
// and from the access token, where Keycloak puts them by default; the
// access token is verified with the realm's keys first.
func (o KeycloakOptions) hooks(clientID string) (Hooks, error) {
	var realm, client bool
	for _, r := range o.Roles {
		switch r {
		case "realm":
			realm = true
		case "client":
			client = true
		default:
			return Hooks{}, configError("Keycloak.Roles", "want realm and/or client, got %q", r)
		}
	}
	h := Hooks{
		Kind:       "keycloak",
		GroupsHint: "add a Group Membership mapper (token claim name groups, Add to ID token on) to a client scope of this client",
	}
	if !realm && !client {
		return h, nil
	}
	h.Describe = "roles as groups: " + strings.Join(o.Roles, ", ")
	h.Identity = func(ctx context.Context, t *Token, id *Identity) error {
		sources := []map[string]any{t.Claims}
		if at, err := t.AccessTokenClaims(ctx); err != nil {
			return err
		} else if at != nil && !t.Bearer {
			sources = append(sources, at)
		}
		for _, c := range sources {
			if realm {
				id.Groups = addGroups(id.Groups, claimStrings(claimAt(c, "realm_access", "roles"))...)
			}
			if client {
				for _, r := range claimStrings(claimAt(c, "resource_access", clientID, "roles")) {
					id.Groups = addGroups(id.Groups, clientID+":"+r)
				}
			}
		}
		return nil
	}
	return h, nil
}
