package providers

import "context"

// gitlabHooks returns the gitlab kind's hooks, for gitlab.com and
// self-hosted GitLab alike (the issuer URL says which). GitLab's ID token
// lists the user's direct groups in groups_direct (full paths); its
// userinfo endpoint lists all of them, inherited ones included, in groups.
// Both are added to the groups claim's: groups come in as full paths such
// as "acme/platform".
func gitlabHooks() Hooks {
	return Hooks{
		Kind:       "gitlab",
		GroupsHint: "GitLab sends groups_direct in the ID token and groups from userinfo, both with the openid scope; check that the application has the openid scope",
		Describe:   "groups from groups_direct and userinfo's groups",
		Identity: func(ctx context.Context, t *Token, id *Identity) error {
			id.Groups = addGroups(id.Groups, claimStrings(t.Claims["groups_direct"])...)
			ui, err := t.UserInfo(ctx)
			if err != nil {
				return err
			}
			id.Groups = addGroups(id.Groups, claimStrings(ui["groups"])...)
			return nil
		},
	}
}
