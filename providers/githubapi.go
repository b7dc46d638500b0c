package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// githubMaxPages bounds how many pages of one list a sign-in reads.
const githubMaxPages = 20

// githubError is a REST API error answer: {"message": …,
// "documentation_url": …, "status": …}.
type githubError struct {
	Status  int
	Message string
}

func (e *githubError) Error() string {
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

// get GETs one API URL with the access token ("" for none), decodes the JSON
// answer into v and returns the URL of the next page, if any. A 401 (bad
// credentials) is ErrRejected; a rate limit or any 5xx is a plain error;
// other refusals are a *githubError for the caller to explain.
func (g *GitHub) get(ctx context.Context, token, u string, v any) (next string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("providers: github: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "authproxy")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("providers: github: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", fmt.Errorf("providers: github: reading %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ge struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &ge)
		e := &githubError{Status: resp.StatusCode, Message: ge.Message}
		rateLimited := resp.StatusCode == http.StatusTooManyRequests ||
			resp.StatusCode == http.StatusForbidden && resp.Header.Get("X-Ratelimit-Remaining") == "0"
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return "", fmt.Errorf("%w: github: GET %s: GitHub refused the access token (%s)", ErrRejected, req.URL.Path, e)
		case rateLimited:
			return "", fmt.Errorf("providers: github: GET %s: rate limited (%s)", req.URL.Path, e)
		case resp.StatusCode >= 500:
			return "", fmt.Errorf("providers: github: GET %s: %s", req.URL.Path, e)
		}
		return "", e
	}
	if err := json.Unmarshal(body, v); err != nil {
		return "", fmt.Errorf("providers: github: decoding %s: %w", req.URL.Path, err)
	}
	return nextLink(resp.Header.Get("Link")), nil
}

// getAll reads every page of a list, following Link rel="next" only within
// the API, so the token goes nowhere else.
func getAll[T any](ctx context.Context, g *GitHub, token, u string) ([]T, error) {
	var all []T
	for page := 0; u != ""; page++ {
		if page == githubMaxPages {
			return nil, fmt.Errorf("providers: github: more than %d pages at %s", githubMaxPages, u)
		}
		if !strings.HasPrefix(u, g.api+"/") {
			return nil, fmt.Errorf("providers: github: next page %q is outside the API %s", u, g.api)
		}
		var items []T
		next, err := g.get(ctx, token, u, &items)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		u = next
	}
	return all, nil
}

// nextLink returns the rel="next" URL of an RFC 8288 Link header, as GitHub
// sends it: <https://api.github.com/user/teams?page=2>; rel="next", <…>; rel="last".
func nextLink(header string) string {
	for link := range strings.SplitSeq(header, ",") {
		target, params, ok := strings.Cut(link, ";")
		target = strings.TrimSpace(target)
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		for p := range strings.SplitSeq(params, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(name, "rel") && strings.Trim(value, `"`) == "next" {
				return target[1 : len(target)-1]
			}
		}
	}
	return ""
}
