package check

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// composeIdPs are the directories of deploy/compose, one per identity provider, each with a compose.yaml.
var composeIdPs = []string{"dex", "keycloak"}

// demoUsers are the users every compose IdP has, with exactly these groups, as the README promises.
var demoUsers = map[string][]string{
	"alice": {"admins", "staff"},
	"bob":   {"staff"},
}

// idpConfig is what a compose file's identity provider is configured with.
type idpConfig struct {
	issuer  string
	clients []idpClient
	users   map[string][]string // user name -> groups, sorted
}

type idpClient struct {
	id, secret   string
	public       bool
	redirectURIs []string
}

// loadCompose loads a compose file the way Docker Compose does (compose-go, schema validation included), without
// the caller's environment: the files must not depend on it.
func loadCompose(t *testing.T, file string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return p
}

func TestCompose(t *testing.T) {
	vars := variables(t)
	dirs, err := filepath.Glob(filepath.Join(repoRoot(), "deploy", "compose", "*", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range dirs {
		found = append(found, filepath.Base(filepath.Dir(f)))
	}
	if !slices.Equal(found, composeIdPs) {
		t.Errorf("deploy/compose/*/compose.yaml: found %v, want %v (composeIdPs)", found, composeIdPs)
	}
	for _, dir := range found {
		t.Run(dir, func(t *testing.T) {
			file := filepath.Join(repoRoot(), "deploy", "compose", dir, "compose.yaml")
			checkCompose(t, vars, loadCompose(t, file), "deploy/compose/"+dir+"/compose.yaml")
		})
	}
}

func checkCompose(t *testing.T, vars map[string]variable, p *types.Project, where string) {
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
	}
	proxy, ok1 := p.Services["authproxy"]
	app, ok2 := p.Services["legacyapp"]
	if !ok1 || !ok2 {
		t.Fatalf("%s: want services authproxy and legacyapp", where)
	}

	// Every AUTHPROXY_* variable of every service is one authproxy reads; authproxy's configuration loads.
	env := map[string]string{}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for name := range p.Services {
			if !yield(name) {
				return
			}
		}
	}) {
		for k, v := range p.Services[name].Environment {
			base, file, err := resolveName(vars, k)
			switch {
			case err != nil:
				errorf("service %s: environment %v", name, err)
			case base == "":
			case name != "authproxy":
				errorf("service %s: environment %s: only the authproxy service reads authproxy's variables", name, k)
			case file:
				errorf("environment %s: deploy/check does not follow _FILE in compose files; set %s", k, base)
			case v == nil:
				errorf("environment %s has no value: it would come from the caller's environment", k)
			default:
				env[base] = *v
			}
		}
	}
	for _, problem := range configProblems(env) {
		errorf("authproxy.LoadConfig: %s", problem)
	}
	for name, v := range vars {
		if _, set := env[name]; !set {
			env[name] = v.def
		}
	}

	// Images built from this repository.
	if b := proxy.Build; b == nil || b.Context != repoRoot() || (b.Dockerfile != "" && b.Dockerfile != "Dockerfile") {
		errorf("service authproxy: want build context ../../.. (the repository) with its Dockerfile")
	}
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		df := s.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if !filepath.IsAbs(df) {
			df = filepath.Join(s.Build.Context, df)
		}
		if _, err := os.Stat(df); err != nil {
			errorf("service %s: build: %v", name, err)
		}
	}

	// One network namespace, the IdP's, as in a pod: the IdP's URL is the same for the browser (published port)
	// and for authproxy (loopback), and the app is on loopback only.
	idpName, ok := strings.CutPrefix(proxy.NetworkMode, "service:")
	idp, ok2 := p.Services[idpName]
	if !ok || !ok2 || app.NetworkMode != proxy.NetworkMode {
		t.Fatalf("%s: want authproxy and legacyapp both in the IdP's network namespace (network_mode: service:<idp>); got %q and %q", where, proxy.NetworkMode, app.NetworkMode)
	}
	if len(proxy.Ports) > 0 || len(app.Ports) > 0 {
		errorf("authproxy and legacyapp cannot publish ports of their own: publish them on %s", idpName)
	}
	published := func(what, raw string) {
		u, err := url.Parse(raw)
		if err != nil || !isLoopback(u.Hostname()) || u.Port() == "" {
			errorf("%s %q: want a loopback URL with a port, the same for browser and authproxy", what, raw)
			return
		}
		if !slices.ContainsFunc(idp.Ports, func(pc types.ServicePortConfig) bool {
			return pc.Published == u.Port() && fmt.Sprint(pc.Target) == u.Port() && pc.HostIP == "127.0.0.1"
		}) {
			errorf("%s %q: service %s must publish 127.0.0.1:%s:%s", what, raw, idpName, u.Port(), u.Port())
		}
	}
	published("AUTHPROXY_OIDC_ISSUER", env["AUTHPROXY_OIDC_ISSUER"])
	published("AUTHPROXY_REDIRECT_URL", env["AUTHPROXY_REDIRECT_URL"])
	redirect, _ := url.Parse(env["AUTHPROXY_REDIRECT_URL"])
	issuer, _ := url.Parse(env["AUTHPROXY_OIDC_ISSUER"])
	if listen := portOf(env["AUTHPROXY_LISTEN"]); redirect.Port() != listen {
		errorf("AUTHPROXY_REDIRECT_URL's port %s is not AUTHPROXY_LISTEN's %s", redirect.Port(), listen)
	}
	appListen := "127.0.0.1:8080" // legacyapp's default
	if v := app.Environment["LEGACYAPP_LISTEN"]; v != nil {
		appListen = *v
	}
	upstream, err := url.Parse(env["AUTHPROXY_UPSTREAM"])
	if host, _, _ := strings.Cut(appListen, ":"); err != nil || !isLoopback(host) || !isLoopback(upstream.Hostname()) || upstream.Port() != portOf(appListen) {
		errorf("AUTHPROXY_UPSTREAM %q and LEGACYAPP_LISTEN %q: want the same loopback port", env["AUTHPROXY_UPSTREAM"], appListen)
	}
	if ports := []string{portOf(env["AUTHPROXY_LISTEN"]), upstream.Port(), issuer.Port()}; len(slices.Compact(slices.Sorted(slices.Values(ports)))) != len(ports) {
		errorf("authproxy, the app and the IdP share a network namespace and need three different ports; got %v", ports)
	}

	// authproxy starts once the IdP is ready.
	if d, ok := proxy.DependsOn[idpName]; !ok || d.Condition != types.ServiceConditionHealthy {
		errorf("service authproxy: want depends_on %s with condition service_healthy", idpName)
	}
	if idp.HealthCheck == nil || idp.HealthCheck.Disable || len(idp.HealthCheck.Test) == 0 {
		errorf("service %s: no healthcheck", idpName)
	}

	// The IdP knows authproxy's client and the demo users, and sends groups.
	var cfg idpConfig
	switch {
	case strings.HasPrefix(idp.Image, "quay.io/keycloak/keycloak:"):
		cfg = keycloakConfig(t, idp, env, errorf)
	case strings.HasPrefix(idp.Image, "ghcr.io/dexidp/dex:"):
		cfg = dexConfig(t, idp, env, errorf)
	default:
		t.Fatalf("%s: service %s: deploy/check knows Keycloak and Dex, not %s", where, idpName, idp.Image)
	}
	if cfg.issuer != env["AUTHPROXY_OIDC_ISSUER"] {
		errorf("the IdP's issuer is %q; AUTHPROXY_OIDC_ISSUER is %q", cfg.issuer, env["AUTHPROXY_OIDC_ISSUER"])
	}
	i := slices.IndexFunc(cfg.clients, func(c idpClient) bool { return c.id == env["AUTHPROXY_CLIENT_ID"] })
	switch {
	case i < 0:
		errorf("the IdP has no client %q (AUTHPROXY_CLIENT_ID)", env["AUTHPROXY_CLIENT_ID"])
	case cfg.clients[i].public != (env["AUTHPROXY_CLIENT_SECRET"] == ""):
		errorf("client %q: public %v, but AUTHPROXY_CLIENT_SECRET is %q", cfg.clients[i].id, cfg.clients[i].public, env["AUTHPROXY_CLIENT_SECRET"])
	case !cfg.clients[i].public && cfg.clients[i].secret != env["AUTHPROXY_CLIENT_SECRET"]:
		errorf("client %q: its secret is not AUTHPROXY_CLIENT_SECRET", cfg.clients[i].id)
	case !slices.Contains(cfg.clients[i].redirectURIs, env["AUTHPROXY_REDIRECT_URL"]):
		errorf("client %q: redirect URIs %v lack AUTHPROXY_REDIRECT_URL %s", cfg.clients[i].id, cfg.clients[i].redirectURIs, env["AUTHPROXY_REDIRECT_URL"])
	}
	for user, groups := range demoUsers {
		if got, ok := cfg.users[user]; !ok || !slices.Equal(got, groups) {
			errorf("user %s: groups %v (present: %v), want %v", user, got, ok, groups)
		}
	}
}

// keycloakRealm is the part of a Keycloak realm export that deploy/check reads.
type keycloakRealm struct {
	Realm        string          `json:"realm"`
	Enabled      bool            `json:"enabled"`
	ClientScopes json.RawMessage `json:"clientScopes"`
	Roles        struct {
		Realm []struct {
			Name string `json:"name"`
		} `json:"realm"`
	} `json:"roles"`
	Groups []struct {
		Name string `json:"name"`
		Path string `json:"path"`
	} `json:"groups"`
	Users []struct {
		Username      string               `json:"username"`
		Email         string               `json:"email"`
		EmailVerified bool                 `json:"emailVerified"`
		Enabled       bool                 `json:"enabled"`
		Groups        []string             `json:"groups"`
		RealmRoles    []string             `json:"realmRoles"`
		Credentials   []keycloakCredential `json:"credentials"`
	} `json:"users"`
	Clients []struct {
		ClientID        string            `json:"clientId"`
		Enabled         bool              `json:"enabled"`
		PublicClient    bool              `json:"publicClient"`
		Secret          string            `json:"secret"`
		RedirectURIs    []string          `json:"redirectUris"`
		Attributes      map[string]string `json:"attributes"`
		ProtocolMappers []keycloakMapper  `json:"protocolMappers"`
	} `json:"clients"`
}

type keycloakCredential struct {
	Type      string `json:"type"`
	Value     string `json:"value"`
	Temporary bool   `json:"temporary"`
}

type keycloakMapper struct {
	ProtocolMapper string            `json:"protocolMapper"`
	Config         map[string]string `json:"config"`
}

// keycloakConfig reads the realm that the Keycloak service imports.
func keycloakConfig(t *testing.T, kc types.ServiceConfig, env map[string]string, errorf func(string, ...any)) idpConfig {
	t.Helper()
	kcEnv := func(name, def string) string {
		if v := kc.Environment[name]; v != nil {
			return *v
		}
		return def
	}
	if !slices.Contains(kc.Command, "--import-realm") {
		errorf("service %s: want command start-dev --import-realm", kc.Name)
	}
	var file string
	for _, v := range kc.Volumes {
		if path.Dir(v.Target) == "/opt/keycloak/data/import" && path.Ext(v.Target) == ".json" {
			file = v.Source
		}
	}
	if file == "" {
		t.Fatalf("service %s: no realm file mounted in /opt/keycloak/data/import", kc.Name)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var realm keycloakRealm
	if err := json.Unmarshal(data, &realm); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if !realm.Enabled {
		errorf("realm %s is not enabled", realm.Realm)
	}
	if realm.ClientScopes != nil {
		errorf("realm.json: clientScopes replaces Keycloak's built-in scopes (profile, email, …) on import; put mappers on the client instead")
	}
	// Keycloak refuses a sign-in that asks for a scope it does not know; with no clientScopes, these are all it has.
	builtin := []string{"openid", "profile", "email", "roles", "web-origins", "acr", "basic", "offline_access", "address", "phone", "microprofile-jwt", "organization"}
	for s := range strings.FieldsFuncSeq(env["AUTHPROXY_SCOPES"], func(r rune) bool { return r == ' ' || r == ',' }) {
		if !slices.Contains(builtin, s) {
			errorf("AUTHPROXY_SCOPES: Keycloak has no client scope %q in this realm", s)
		}
	}

	hostname := kcEnv("KC_HOSTNAME", "")
	if hostname == "" {
		errorf("service %s: set KC_HOSTNAME, so that the issuer does not depend on the Host header", kc.Name)
	}
	if u, err := url.Parse(hostname); err == nil && u.Port() != kcEnv("KC_HTTP_PORT", "8080") {
		errorf("service %s: KC_HOSTNAME %s and KC_HTTP_PORT %s: Keycloak must listen on its URL's port, which authproxy reaches over loopback", kc.Name, hostname, kcEnv("KC_HTTP_PORT", "8080"))
	}
	cfg := idpConfig{issuer: strings.TrimSuffix(hostname, "/") + "/realms/" + realm.Realm, users: map[string][]string{}}

	var roles, groups []string
	for _, r := range realm.Roles.Realm {
		roles = append(roles, r.Name)
	}
	for _, g := range realm.Groups {
		groups = append(groups, g.Path)
	}
	for _, u := range realm.Users {
		var names []string
		for _, g := range u.Groups {
			if !slices.Contains(groups, g) {
				errorf("user %s: group %s is not in the realm's groups %v", u.Username, g, groups)
			}
			names = append(names, path.Base(g))
		}
		for _, r := range u.RealmRoles {
			if !slices.Contains(roles, r) {
				errorf("user %s: realm role %s is not in the realm's roles %v", u.Username, r, roles)
			}
		}
		if !u.Enabled || u.Email == "" || !u.EmailVerified {
			errorf("user %s: want enabled, with a verified email (authproxy refuses unverified ones)", u.Username)
		}
		if !slices.ContainsFunc(u.Credentials, func(c keycloakCredential) bool {
			return c.Type == "password" && c.Value != "" && !c.Temporary
		}) {
			errorf("user %s: want a password that is not temporary", u.Username)
		}
		slices.Sort(names)
		cfg.users[u.Username] = names
	}

	redirect, _ := url.Parse(env["AUTHPROXY_REDIRECT_URL"])
	origin := redirect.Scheme + "://" + redirect.Host
	for _, c := range realm.Clients {
		cfg.clients = append(cfg.clients, idpClient{id: c.ClientID, secret: c.Secret, public: c.PublicClient, redirectURIs: c.RedirectURIs})
		if c.ClientID != env["AUTHPROXY_CLIENT_ID"] {
			continue
		}
		if !c.Enabled {
			errorf("client %s is not enabled", c.ClientID)
		}
		if m := c.Attributes["pkce.code.challenge.method"]; m != "" && m != "S256" {
			errorf("client %s: PKCE method %s; authproxy uses S256", c.ClientID, m)
		}
		postLogout := env["AUTHPROXY_POST_LOGOUT_REDIRECT_URL"]
		if postLogout == "" {
			postLogout = origin + "/"
		}
		if !slices.Contains(strings.Split(c.Attributes["post.logout.redirect.uris"], "##"), postLogout) {
			errorf("client %s: post.logout.redirect.uris %q lacks authproxy's %s", c.ClientID, c.Attributes["post.logout.redirect.uris"], postLogout)
		}
		if u := c.Attributes["backchannel.logout.url"]; u != "" && u != origin+"/oauth2/backchannel_logout" {
			errorf("client %s: backchannel.logout.url %s, want %s/oauth2/backchannel_logout", c.ClientID, u, origin)
		}
		claim := env["AUTHPROXY_GROUPS_CLAIM"]
		if !slices.ContainsFunc(c.ProtocolMappers, func(m keycloakMapper) bool {
			return m.ProtocolMapper == "oidc-group-membership-mapper" && m.Config["claim.name"] == claim &&
				m.Config["id.token.claim"] == "true" && m.Config["full.path"] == "false"
		}) {
			errorf("client %s: want a group membership mapper to claim %q (AUTHPROXY_GROUPS_CLAIM) in the ID token, without full paths", c.ClientID, claim)
		}
	}
	return cfg
}

// dexConfig reads the configuration file the Dex service serves.
func dexConfig(t *testing.T, dex types.ServiceConfig, env map[string]string, errorf func(string, ...any)) idpConfig {
	t.Helper()
	args := append(slices.Clone(dex.Entrypoint), dex.Command...)
	if len(args) < 3 || args[0] != "dex" || args[1] != "serve" {
		t.Fatalf("service %s: want entrypoint [dex] and command [serve, …, config file]; got %v", dex.Name, args)
	}
	configPath := args[len(args)-1]
	var file string
	for _, v := range dex.Volumes {
		if v.Target == configPath {
			file = v.Source
		}
	}
	if file == "" {
		t.Fatalf("service %s: no volume mounts the config file %s", dex.Name, configPath)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var dc struct {
		Issuer string `json:"issuer"`
		Web    struct {
			HTTP string `json:"http"`
		} `json:"web"`
		StaticClients []struct {
			ID           string   `json:"id"`
			Secret       string   `json:"secret"`
			Public       bool     `json:"public"`
			RedirectURIs []string `json:"redirectURIs"`
		} `json:"staticClients"`
		StaticPasswords []struct {
			Email             string   `json:"email"`
			PreferredUsername string   `json:"preferredUsername"`
			Groups            []string `json:"groups"`
		} `json:"staticPasswords"`
	}
	if err := yaml.Unmarshal(data, &dc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	listen := dc.Web.HTTP
	if i := slices.Index(args, "--web-http-addr"); i > 0 && i+1 < len(args) {
		listen = args[i+1]
	}
	issuer, _ := url.Parse(dc.Issuer)
	if host, _, _ := strings.Cut(listen, ":"); (host != "" && host != "0.0.0.0") || portOf(listen) != issuer.Port() {
		errorf("service %s: Dex listens on %s; want 0.0.0.0:%s (the published port reaches the container's interface, not its loopback)", dex.Name, listen, issuer.Port())
	}
	if !slices.Contains(strings.Fields(strings.ReplaceAll(env["AUTHPROXY_SCOPES"], ",", " ")), "groups") {
		errorf("AUTHPROXY_SCOPES: Dex sends groups only for the groups scope")
	}
	cfg := idpConfig{issuer: dc.Issuer, users: map[string][]string{}}
	for _, c := range dc.StaticClients {
		cfg.clients = append(cfg.clients, idpClient{id: c.ID, secret: c.Secret, public: c.Public, redirectURIs: c.RedirectURIs})
	}
	for _, u := range dc.StaticPasswords {
		name := u.PreferredUsername
		if name == "" {
			name, _, _ = strings.Cut(u.Email, "@")
		}
		groups := slices.Clone(u.Groups)
		slices.Sort(groups)
		cfg.users[name] = groups
	}
	return cfg
}
