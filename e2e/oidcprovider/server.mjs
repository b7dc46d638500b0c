// A real, OpenID-certified provider (panva's oidc-provider) for authproxy's end-to-end tests.
// e2e/op_test.go starts it (`node server.mjs`) with the environment below; it serves one
// confidential (or public) client on loopback and makes no outbound request but the
// back-channel logout POST to the client's loopback backchannel_logout_uri.
//
// Environment (all but the first two have defaults, for running it by hand):
//   OP_PORT                        port to listen on, on 127.0.0.1 (required)
//   OP_ISSUER                      issuer, http://127.0.0.1:$OP_PORT (required)
//   OP_CLIENT_ID                   client_id (default authproxy-op)
//   OP_CLIENT_SECRET               client_secret; empty makes a public client (auth method none)
//   OP_REDIRECT_URIS               comma list of redirect_uris (required to sign in)
//   OP_POST_LOGOUT_REDIRECT_URIS   comma list of post_logout_redirect_uris
//   OP_BACKCHANNEL_LOGOUT_URI      the client's backchannel_logout_uri (session required: sid is sent)
//   OP_BACKCHANNEL_LOGOUT_SESSION_REQUIRED  "true" (default): backchannel_logout_session_required, ID
//                                  tokens and logout tokens carry sid; "false": they carry none, so a
//                                  logout token names the user by sub alone
//   OP_EXTRA_USERS                 comma list of further logins (sub = preferred_username = the login),
//                                  with neither email nor groups: e.g. another provider's sub, so that
//                                  a test can have two providers' users share one
//   OP_CLIENT_CREDENTIALS_RESOURCE a resource indicator (RFC 8707), e.g. https://api.example/: the client
//                                  may then use the client_credentials grant with resource=<it>, which
//                                  issues a JWT access token (RFC 9068: typ at+jwt, aud = the resource,
//                                  sub = the client id, scope "api" if asked for)
//   OP_CLIENT_CREDENTIALS_GROUPS   comma list put in those JWTs' groups claim
//   OP_ACCESS_TOKEN_TTL            access token lifetime, seconds (default 3600)
//   OP_ID_TOKEN_TTL                ID token lifetime, seconds (default 3600)
//   OP_REFRESH_TOKEN_TTL           refresh token lifetime, seconds (default 86400)
//   OP_GROUPS_CLAIM                name of the namespaced groups claim (default https://example.com/groups)
//   OP_REFRESH_TOKENS              "always" (default): a refresh token with every code exchange, as Keycloak
//                                  does; "offline_access": only when offline_access survives, which
//                                  oidc-provider allows only with prompt=consent in the authorization request
//   OP_SKIP_CONSENT                "true": grant every requested scope without the consent page
//                                  (a first-party client); default "false": the consent page is shown
//                                  on a user's first sign-in with the client, and whenever prompt=consent
//   OP_CLAIMS_IN_USERINFO_ONLY     "true": the ID token of a code flow carries only sub (and sid, auth_time…),
//                                  the user's claims come from the userinfo endpoint (oidc-provider's
//                                  default, conformIdTokenClaims); default "false": they are in the ID
//                                  token too, as most providers (Keycloak, Auth0, Okta) put them
//   OP_CLIENT_AUTH                 the client's token_endpoint_auth_method instead of the secret's:
//                                  "private_key_jwt" (with OP_CLIENT_JWKS) or "tls_client_auth" (with
//                                  OP_CLIENT_TLS_SUBJECT_DN and the OP_MTLS_* listener)
//   OP_CLIENT_JWKS                 the client's public JWKS (JSON) that its client assertions verify with
//   OP_CLIENT_TLS_SUBJECT_DN       the client's tls_client_auth_subject_dn, e.g. CN=authproxy-op
//   OP_MTLS_PORT                   with OP_MTLS_CERT, OP_MTLS_KEY and OP_MTLS_CA (PEM files): also serve
//                                  https on 127.0.0.1:$OP_MTLS_PORT, asking every client for a certificate
//                                  (verified against OP_MTLS_CA, refused by tls_client_auth unless it
//                                  verifies), and publish it in discovery as RFC 8705 mtls_endpoint_aliases
//                                  for the token endpoint; features.mTLS (tlsClientAuth) is then on and
//                                  tls_client_auth is listed in token_endpoint_auth_methods_supported.
//                                  Browsers keep using the plain http issuer.
//
// Users (any password is accepted: these are oidc-provider's development interactions):
//   ada     ada@example.com    groups [admins staff]   $OP_GROUPS_CLAIM [ops:admins ops:staff]   roles [admin user]
//   grace   grace@example.org  groups [staff]          $OP_GROUPS_CLAIM [ops:staff]              roles [user]
//   and each OP_EXTRA_USERS login, with only sub and preferred_username.
// The namespaced groups differ from `groups` on purpose, so that a test can tell which claim was read.
//
// Pages the browser meets (oidc-provider 9 devInteractions and rpInitiatedLogout):
//   GET  /auth?…                      authorization endpoint; redirects to /interaction/<uid>
//   GET  /interaction/<uid>           login form (title "Sign-in"):
//                                       <form method=post action=/interaction/<uid>> with a hidden
//                                       input name=prompt value=login, <input name=login> (the user name
//                                       above, which becomes the sub), <input name=password> (anything,
//                                       required by the form) and <button type=submit>Sign-in</button>.
//                                     A login that is none of the users shows the login form again.
//                                   or the consent form (title "Authorize"): hidden prompt=consent and
//                                       <button type=submit>Continue</button>
//   GET  /interaction/<uid>/abort     the "[ Cancel ]" link: access_denied back to the client
//   GET  /session/end?…               end_session_endpoint (id_token_hint, post_logout_redirect_uri, state,
//                                       client_id, logout_hint). With an OP session it shows a page
//                                       "Do you want to sign-out from 127.0.0.1:PORT?" holding
//                                       <form id="op.logoutForm" method=post action=/session/end/confirm>
//                                       with a hidden xsrf input, and two buttons OUTSIDE the form tied to it
//                                       by form="op.logoutForm": button[name=logout][value=yes] "Yes, sign me
//                                       out" and a nameless "No, stay signed in". Without an OP session it
//                                       auto-submits the same form with logout=yes (a self-posting page).
//   POST /session/end/confirm         sends the back-channel logout tokens (and waits for them, 2.5 s at
//                                       most each), ends the session, then 303 to post_logout_redirect_uri
//                                       (+ state) or to /session/end/success. With logout=yes: a token to
//                                       every client the session signed in to, the session ended, the
//                                       grants revoked (refresh tokens die). Without ("No, stay signed in"):
//                                       a token to the client named by id_token_hint/client_id only, that
//                                       client's grant revoked, the OP session kept for the others.
// Back-channel logout: POST $OP_BACKCHANNEL_LOGOUT_URI, Content-Type application/x-www-form-urlencoded,
//   body logout_token=<JWT>, header {alg RS256, typ logout+jwt, kid}, claims {iss, aud: client_id, sub,
//   sid (the sid of the ID token), events {"http://schemas.openid.net/event/backchannel-logout": {}},
//   jti, iat, exp: iat+120}; no nonce. Any answer but 200/204 is only logged ("event backchannel.error").
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const env = process.env;

function required(name) {
  const v = env[name];
  if (!v) {
    console.error(`oidcprovider: ${name} is required`);
    process.exit(2);
  }
  return v;
}

function list(name) {
  return (env[name] || '').split(',').map((s) => s.trim()).filter(Boolean);
}

function seconds(name, def) {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`oidcprovider: ${name}=${raw} is not a positive whole number of seconds`);
    process.exit(2);
  }
  return n;
}

function bool(name, def = 'false') {
  const raw = env[name] || def;
  if (raw !== 'true' && raw !== 'false') {
    console.error(`oidcprovider: ${name}=${raw} is neither true nor false`);
    process.exit(2);
  }
  return raw === 'true';
}

const port = Number(required('OP_PORT'));
const issuer = required('OP_ISSUER');
const clientId = env.OP_CLIENT_ID || 'authproxy-op';
const clientSecret = env.OP_CLIENT_SECRET || '';
const groupsClaim = env.OP_GROUPS_CLAIM || 'https://example.com/groups';
const refreshTokens = env.OP_REFRESH_TOKENS || 'always';
if (refreshTokens !== 'always' && refreshTokens !== 'offline_access') {
  console.error(`oidcprovider: OP_REFRESH_TOKENS=${refreshTokens} is neither always nor offline_access`);
  process.exit(2);
}
const skipConsent = bool('OP_SKIP_CONSENT');
const claimsInUserinfoOnly = bool('OP_CLAIMS_IN_USERINFO_ONLY');
const ttl = {
  accessToken: seconds('OP_ACCESS_TOKEN_TTL', 3600),
  idToken: seconds('OP_ID_TOKEN_TTL', 3600),
  refreshToken: seconds('OP_REFRESH_TOKEN_TTL', 86400),
};

const users = Object.create(null);
Object.assign(users, {
  ada: {
    email: 'ada@example.com',
    name: 'Ada Lovelace',
    groups: ['admins', 'staff'],
    namespacedGroups: ['ops:admins', 'ops:staff'],
    roles: ['admin', 'user'],
  },
  grace: {
    email: 'grace@example.org',
    name: 'Grace Hopper',
    groups: ['staff'],
    namespacedGroups: ['ops:staff'],
    roles: ['user'],
  },
});
for (const login of list('OP_EXTRA_USERS')) {
  if (Object.hasOwn(users, login)) {
    console.error(`oidcprovider: OP_EXTRA_USERS: ${login} is already a user`);
    process.exit(2);
  }
  users[login] = { extra: true };
}

async function findAccount(ctx, id) {
  const u = Object.hasOwn(users, id) ? users[id] : undefined;
  if (!u) return undefined; // the login form is shown again
  return {
    accountId: id, // becomes sub
    async claims() {
      if (u.extra) return { sub: id, preferred_username: id };
      return {
        sub: id,
        email: u.email,
        email_verified: true,
        preferred_username: id,
        name: u.name,
        groups: u.groups,
        [groupsClaim]: u.namespacedGroups,
        realm_access: { roles: u.roles },
      };
    },
  };
}

// A fresh signing key per start: nothing on disk, and the tests never need the same one twice.
// Timed in the log: a start that never reached "listening" (seen twice on a loaded machine, not
// reproduced) says here whether it got this far.
console.log(`${new Date().toISOString()} generating the signing key`);
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
console.log(`${new Date().toISOString()} signing key ready`);
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };

const sessionRequired = bool('OP_BACKCHANNEL_LOGOUT_SESSION_REQUIRED', 'true');
const ccResource = env.OP_CLIENT_CREDENTIALS_RESOURCE || '';
const ccGroups = list('OP_CLIENT_CREDENTIALS_GROUPS');

const clientAuth = env.OP_CLIENT_AUTH || '';
if (!['', 'private_key_jwt', 'tls_client_auth'].includes(clientAuth)) {
  console.error(`oidcprovider: OP_CLIENT_AUTH=${clientAuth} is neither private_key_jwt nor tls_client_auth`);
  process.exit(2);
}
const mtls = env.OP_MTLS_PORT ? {
  port: Number(env.OP_MTLS_PORT),
  cert: fs.readFileSync(required('OP_MTLS_CERT')),
  key: fs.readFileSync(required('OP_MTLS_KEY')),
  ca: fs.readFileSync(required('OP_MTLS_CA')),
} : undefined;

function clientAuthentication() {
  switch (clientAuth) {
    case 'private_key_jwt':
      return { token_endpoint_auth_method: 'private_key_jwt', jwks: JSON.parse(required('OP_CLIENT_JWKS')) };
    case 'tls_client_auth':
      return { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: required('OP_CLIENT_TLS_SUBJECT_DN') };
    default:
      return clientSecret
        ? { client_secret: clientSecret, token_endpoint_auth_method: 'client_secret_basic' }
        : { token_endpoint_auth_method: 'none' };
  }
}

// The certificate the client presented on this request's TLS connection, as PEM.
function peerCertificate(ctx) {
  const socket = ctx.req.socket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined; // plain http
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.raw) return undefined;
  return new crypto.X509Certificate(peer.raw).toString();
}

const client = {
  client_id: clientId,
  redirect_uris: list('OP_REDIRECT_URIS'),
  post_logout_redirect_uris: list('OP_POST_LOGOUT_REDIRECT_URIS'),
  response_types: ['code'],
  grant_types: ['authorization_code', 'refresh_token', ...(ccResource ? ['client_credentials'] : [])],
  scope: 'openid email profile groups roles offline_access',
  ...clientAuthentication(),
  ...(env.OP_BACKCHANNEL_LOGOUT_URI
    ? { backchannel_logout_uri: env.OP_BACKCHANNEL_LOGOUT_URI, backchannel_logout_session_required: sessionRequired }
    : {}),
};

function isLoopback(url) {
  const { hostname } = new URL(url);
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}

const configuration = {
  clients: [client],
  findAccount,
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  responseTypes: ['code'],
  scopes: ['openid', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
    groups: ['groups', groupsClaim, 'realm_access'],
    roles: ['realm_access'],
  },
  conformIdTokenClaims: claimsInUserinfoOnly,
  pkce: { required: () => true }, // oidc-provider 9 knows only S256
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    revocation: { enabled: true },
    ...(ccResource ? {
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Only a request that names the resource gets it: the code flow's access tokens stay
        // opaque, for the userinfo endpoint, as without this feature.
        defaultResource: () => undefined,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== ccResource) throw new errors.InvalidTarget();
          return { scope: 'api', audience: ccResource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
    } : {}),
    ...(mtls ? {
      mTLS: {
        enabled: true,
        tlsClientAuth: true,
        getCertificate: peerCertificate,
        // Verified by the TLS layer against OP_MTLS_CA (requestCert, not rejectUnauthorized: a
        // connection without a good certificate still reaches the endpoints that do not need one).
        certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
        certificateSubjectMatches: (ctx, property, expected) => {
          const pem = peerCertificate(ctx);
          if (property !== 'tls_client_auth_subject_dn' || !pem) return false;
          return new crypto.X509Certificate(pem).subject === expected.replaceAll(',', '\n');
        },
      },
    } : {}),
  },
  ...(mtls ? {
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none', 'tls_client_auth'],
    discovery: { mtls_endpoint_aliases: { token_endpoint: `https://127.0.0.1:${mtls.port}/token` } },
  } : {}),
  // offline_access survives only with prompt=consent (oidc-provider drops it otherwise, as OpenID
  // Connect Core 11 allows); "always" issues a refresh token regardless, bound to the OP session
  // unless offline_access was granted (expiresWithSession's default).
  issueRefreshToken: async (ctx, c, code) => c.grantTypeAllowed('refresh_token')
    && (refreshTokens === 'always' || code.scopes.has('offline_access')),
  ...(skipConsent ? {
    // oidc-provider's "skip consent for first-party clients" recipe: grant what is asked.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      const grant = grantId ? await ctx.oidc.provider.Grant.find(grantId)
        : new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
      grant.addOIDCClaims([...ctx.oidc.requestParamClaims]);
      await grant.save();
      return grant;
    },
  } : {}),
  ttl: {
    AccessToken: ttl.accessToken,
    IdToken: ttl.idToken,
    RefreshToken: ttl.refreshToken,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 86400,
    Grant: 86400,
  },
  // Tokens are good until their exp, not 15 s more (the default tolerance for clock skew, of which
  // loopback has none): a test that waits out OP_ACCESS_TOKEN_TTL then sees them rejected.
  clockTolerance: 0,
  clientBasedCORS: () => false,
  ...(ccGroups.length ? {
    extraTokenClaims: (ctx, token) => (token.kind === 'ClientCredentials' ? { groups: ccGroups } : undefined),
  } : {}),
  // oidc-provider 9 sends its own requests through a dispatcher that refuses special-use
  // addresses (loopback included), which would stop the back-channel logout POST to the test's
  // proxy. Drop that dispatcher, but refuse anything that is not loopback: no outbound requests.
  fetch: (url, options) => {
    if (!isLoopback(url)) {
      return Promise.reject(new Error(`oidcprovider: refusing a request to ${url}: only loopback is allowed`));
    }
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
};

const provider = new Provider(issuer, configuration);

// One line per request, once it is answered.
provider.use(async (ctx, next) => {
  const start = process.hrtime.bigint();
  try {
    await next();
  } finally {
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    // Requests on the OP_MTLS_PORT listener end in " mtls" and the client certificate's subject.
    const tls = ctx.req.socket.encrypted ? ` mtls ${ctx.req.socket.getPeerCertificate()?.subject?.CN || '-'}` : '';
    console.log(`${new Date().toISOString()} ${ctx.method} ${ctx.originalUrl} ${ctx.status} ${ms.toFixed(1)}ms${tls}`);
  }
});

// devInteractions sign in whatever login is typed; for a login that is not one of the users above,
// oidc-provider would then fail with a server error. Show the login form again instead, as a real
// provider does on a wrong user name (without saying why). The body read here is handed on
// parsed (oidc-provider warns once that it found it so).
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path) && ctx.is('application/x-www-form-urlencoded')) {
    const chunks = [];
    let size = 0;
    for await (const chunk of ctx.req) {
      size += chunk.length;
      if (size > 56 * 1024) ctx.throw(413);
      chunks.push(chunk);
    }
    const body = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
    if (body.prompt === 'login' && !Object.hasOwn(users, body.login)) {
      console.log(`${new Date().toISOString()} login rejected: no user ${JSON.stringify(body.login)}`);
      ctx.status = 303;
      ctx.redirect(ctx.path);
      return;
    }
    ctx.request.body = body;
  }
  await next();
});

for (const event of ['backchannel.success', 'end_session.success', 'grant.success', 'interaction.ended']) {
  provider.on(event, (ctx, client, accountId, sid) => {
    const who = event === 'backchannel.success' ? ` client=${client.clientId} sub=${accountId} sid=${sid}` : '';
    console.log(`${new Date().toISOString()} event ${event}${who}`);
  });
}
provider.on('backchannel.error', (ctx, err, client, accountId, sid) => {
  console.log(`${new Date().toISOString()} event backchannel.error client=${client.clientId} sub=${accountId} sid=${sid}: ${err.message}${err.cause ? ` (${err.cause.message})` : ''}`);
});
for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error', 'end_session_confirm.error', 'userinfo.error', 'revocation.error']) {
  provider.on(event, (ctx, err) => {
    console.log(`${new Date().toISOString()} event ${event}: ${err.message}${err.error_description ? `: ${err.error_description}` : ''}`);
  });
}

console.log(`${new Date().toISOString()} provider configured; listening`);
const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  console.log(`${new Date().toISOString()} oidc-provider listening on 127.0.0.1:${port}, issuer ${issuer}, client ${clientId}`);
});
server.on('error', (err) => {
  console.error(`oidcprovider: ${err.message}`);
  process.exit(1);
});

const mtlsServer = mtls ? https.createServer({
  cert: mtls.cert, key: mtls.key, ca: mtls.ca, requestCert: true, rejectUnauthorized: false,
}, provider.callback()) : undefined;
if (mtlsServer) {
  mtlsServer.listen(mtls.port, '127.0.0.1', () => {
    console.log(`${new Date().toISOString()} mutual TLS aliases on https://127.0.0.1:${mtls.port}`);
  });
  mtlsServer.on('error', (err) => {
    console.error(`oidcprovider: ${err.message}`);
    process.exit(1);
  });
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    mtlsServer?.close();
    mtlsServer?.closeAllConnections();
    process.exit(0);
  });
}
