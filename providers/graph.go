package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// graphMaxPages bounds how many pages of groups one sign-in reads.
const graphMaxPages = 50

// graphPage is one page of a Microsoft Graph collection of directory objects.
type graphPage struct {
	NextLink string `json:"@odata.nextLink"`
	Value    []struct {
		Type        string `json:"@odata.type"`
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
	} `json:"value"`
}

// graphError is Microsoft Graph's error body.
type graphError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// graphGroups lists the groups the access token's user is a member of,
// directly or through other groups, from Microsoft Graph's
// GET /v1.0/me/transitiveMemberOf, following @odata.nextLink (only within
// base, so the token goes nowhere else). Directory roles and administrative
// units are left out. It returns the groups' ids, and with names their
// displayNames after them. The token needs GroupMember.Read.All.
func graphGroups(ctx context.Context, client *http.Client, base, accessToken string, names bool) ([]string, error) {
	ctx = withOperation(ctx, OpGroups)
	next := base + "/v1.0/me/transitiveMemberOf?$select=id,displayName&$top=999"
	var ids, display []string
	for page := 0; next != ""; page++ {
		if page == graphMaxPages {
			return nil, fmt.Errorf("Microsoft Graph listed more than %d pages of groups", graphMaxPages)
		}
		if !strings.HasPrefix(next, base+"/") {
			return nil, fmt.Errorf("Microsoft Graph's next page %q is outside %s", next, base)
		}
		var p graphPage
		if err := graphGet(ctx, client, next, accessToken, &p); err != nil {
			return nil, err
		}
		for _, o := range p.Value {
			if o.Type != "#microsoft.graph.group" || o.ID == "" {
				continue
			}
			ids = append(ids, o.ID)
			if names && o.DisplayName != "" {
				display = append(display, o.DisplayName)
			}
		}
		next = p.NextLink
	}
	return append(ids, display...), nil
}

// graphGet GETs one Graph URL with the access token and decodes the JSON
// answer into v; its errors say what to fix when Graph refuses.
func graphGet(ctx context.Context, client *http.Client, u, accessToken string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("Microsoft Graph: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("Microsoft Graph: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("Microsoft Graph: reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var ge graphError
		_ = json.Unmarshal(body, &ge)
		what := fmt.Sprintf("%d %s: %s", resp.StatusCode, ge.Error.Code, ge.Error.Message)
		switch {
		case resp.StatusCode == http.StatusForbidden || ge.Error.Code == "Authorization_RequestDenied":
			return fmt.Errorf("Microsoft Graph refused to list the user's groups (%s): add GroupMember.Read.All to AUTHPROXY_SCOPES and grant it admin consent in the app registration", what)
		case resp.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("Microsoft Graph refused the access token (%s): it must be for Microsoft Graph, so AUTHPROXY_SCOPES must not ask for another API's scopes", what)
		}
		return fmt.Errorf("Microsoft Graph answered %s", what)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("Microsoft Graph: decoding answer: %w", err)
	}
	return nil
}
