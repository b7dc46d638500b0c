package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ClaimsIdentity reads an Identity's claims from decoded JWT claims: the user
// from userClaim, groups from groupsClaim (an array, or one string), email,
// email_verified (a boolean, or the string "true"), preferred_username and
// sid. Claims of unexpected types are ignored, never guessed at. A claim name
// containing dots that is not itself a top-level claim is looked up as a path
// into nested objects (realm_access.roles), unless it is a URL.
func ClaimsIdentity(claims map[string]any, userClaim, groupsClaim string) *Identity {
	return &Identity{
		User:              claimString(lookupClaim(claims, userClaim)),
		Subject:           claimString(claims["sub"]),
		Email:             claimString(claims["email"]),
		EmailVerified:     claimBool(claims["email_verified"]),
		PreferredUsername: claimString(claims["preferred_username"]),
		Groups:            claimStrings(lookupClaim(claims, groupsClaim)),
		SID:               claimString(claims["sid"]),
	}
}

// decodeClaims decodes a token's claims keeping numbers exact (json.Number),
// so a numeric user id is never rounded or printed in exponent form.
func decodeClaims(claims func(v any) error) (map[string]any, error) {
	var raw json.RawMessage
	if err := claims(&raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// extraClaims returns the named claims as strings (lists comma-joined),
// leaving out the ones the token lacks.
func extraClaims(claims map[string]any, names []string) map[string]string {
	if len(names) == 0 {
		return nil
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		v := lookupClaim(claims, n)
		if s := claimString(v); s != "" {
			out[n] = s
		} else if list := claimStrings(v); len(list) > 0 {
			out[n] = strings.Join(list, ",")
		}
	}
	return out
}

// lookupClaim returns the claim name, or, when there is none and name has
// dots, the member its path names. A namespaced claim (Auth0, Okta:
// https://example.com/groups) is a URL, never a path: it is looked up only
// as it is.
func lookupClaim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok || strings.Contains(name, "://") {
		return v
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// claimAt follows path through nested objects, each element one member
// name taken literally (a Keycloak client id may contain dots).
func claimAt(claims map[string]any, path ...string) any {
	var cur any = claims
	for _, part := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	case json.Number:
		return v.String()
	}
	return ""
}

func claimBool(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, item := range v {
			if s := claimString(item); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
