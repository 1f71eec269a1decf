// The certified OpenID provider (node-oidc-provider) the auth integration tests run
// against. Started by tests/auth/conftest.py; everything it needs comes from the
// environment so the tests can pick free ports and rotate keys by restarting it.
//
//   OIDC_PORT            HTTP port; the issuer is http://127.0.0.1:$OIDC_PORT
//   OIDC_JWKS            signing keys file (default provider-jwks.json)
//   OIDC_AUTH_METHODS    comma list: client auth methods to offer (default: all below)
//   OIDC_MTLS_PORT       if set, an HTTPS listener that asks for a client certificate,
//   OIDC_MTLS_DIR          with server.pem/server-key.pem/ca.pem from this directory,
//                          advertised as mtls_endpoint_aliases (RFC 8705 section 5)
//   OIDC_EXTRA_CLIENTS   JSON file: more client registrations (the mTLS clients, whose
//                          certificates the test generates)
import Provider, { errors } from 'oidc-provider';
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';

const HOST = '127.0.0.1';
const PORT = Number(process.env.OIDC_PORT || 18300);
const ISSUER = `http://${HOST}:${PORT}`;
const here = (f) => new URL(f, import.meta.url);
const load = (f) => JSON.parse(readFileSync(f));
const clientKeys = load(here('./clients.jwks.json'));

const JWT_AT = (alg) => ({ scope: 'llm:invoke llm:admin', audience: 'urn:llm-gateway',
  accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg } } });
const RESOURCES = {
  'urn:llm-gateway': JWT_AT('RS256'),
  'urn:llm-gateway:es256': JWT_AT('ES256'),
  'urn:llm-gateway:eddsa': JWT_AT('EdDSA'),
  'urn:llm-gateway:opaque': { scope: 'llm:invoke llm:admin', audience: 'urn:llm-gateway:opaque',
    accessTokenFormat: 'opaque', accessTokenTTL: 600 },
  'urn:llm-gateway:opaque-short': { scope: 'llm:invoke', audience: 'urn:llm-gateway:opaque',
    accessTokenFormat: 'opaque', accessTokenTTL: 2 },
};

const m2m = { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
const resourceServer = { grant_types: [], response_types: [], redirect_uris: [] };
const SECRET = (name) => `${name}-secret-0123456789abcdef0123456789abcdef`;
const clients = [
  // Callers: they obtain access tokens. `tenant` and `allowed_models` become token claims.
  { client_id: 'gw-basic', client_secret: SECRET('gw-basic'), token_endpoint_auth_method: 'client_secret_basic',
    scope: 'llm:invoke llm:admin', tenant: 'team-a', allowed_models: ['dragoman/echo'], ...m2m },
  { client_id: 'gw-other', client_secret: SECRET('gw-other'), token_endpoint_auth_method: 'client_secret_basic',
    scope: 'llm:invoke', tenant: 'team-b', ...m2m },
  // The gateway as a resource server: introspection only, one client per auth method.
  { client_id: 'gw-rs-basic', client_secret: SECRET('gw-rs-basic'), token_endpoint_auth_method: 'client_secret_basic', ...resourceServer },
  { client_id: 'gw-rs-post', client_secret: SECRET('gw-rs-post'), token_endpoint_auth_method: 'client_secret_post', ...resourceServer },
  { client_id: 'gw-rs-jwt', client_secret: SECRET('gw-rs-jwt'), token_endpoint_auth_method: 'client_secret_jwt',
    token_endpoint_auth_signing_alg: 'HS256', ...resourceServer },
  ...['RS256', 'ES256', 'EdDSA'].map((alg) => ({
    client_id: `gw-rs-pk-${alg.toLowerCase()}`, token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: alg, jwks: clientKeys[alg], ...resourceServer })),
  // A browser-facing relying party, for RP-initiated logout.
  { client_id: 'gw-web', client_secret: SECRET('gw-web'), redirect_uris: ['http://127.0.0.1/cb'],
    post_logout_redirect_uris: ['http://127.0.0.1/bye'], response_types: ['code'], grant_types: ['authorization_code'] },
  ...(process.env.OIDC_EXTRA_CLIENTS ? load(process.env.OIDC_EXTRA_CLIENTS) : []),
];

const MTLS_PORT = process.env.OIDC_MTLS_PORT ? Number(process.env.OIDC_MTLS_PORT) : null;
const MTLS = `https://${HOST}:${MTLS_PORT}`;
const peerCert = (ctx) => (typeof ctx.socket.getPeerX509Certificate === 'function'
  ? ctx.socket.getPeerX509Certificate() : undefined);

const provider = new Provider(ISSUER, {
  jwks: load(process.env.OIDC_JWKS || here('./provider-jwks.json')),
  clients,
  clientAuthMethods: (process.env.OIDC_AUTH_METHODS || 'client_secret_basic,client_secret_jwt,'
    + 'client_secret_post,private_key_jwt,tls_client_auth,self_signed_tls_client_auth,none').split(','),
  extraClientMetadata: { properties: ['tenant', 'allowed_models'] },
  extraTokenClaims: async (ctx, token) => {
    const client = token.clientId && await ctx.oidc.provider.Client.find(token.clientId);
    return client ? { tenant: client.tenant, allowed_models: client.allowed_models } : {};
  },
  scopes: ['openid', 'offline_access', 'llm:invoke', 'llm:admin'],
  discovery: MTLS_PORT ? { mtls_endpoint_aliases: {
    token_endpoint: `${MTLS}/token`, introspection_endpoint: `${MTLS}/token/introspection`,
    revocation_endpoint: `${MTLS}/token/revocation` } } : {},
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true, allowedPolicy: async () => true },
    rpInitiatedLogout: { enabled: true },
    mTLS: {
      enabled: true, tlsClientAuth: true, selfSignedTlsClientAuth: true,
      getCertificate: peerCert,
      // The TLS layer requested a certificate but accepted any: whether it chains to the
      // CA is decided here, per client auth method (self-signed ones are matched by key).
      certificateAuthorized: (ctx) => ctx.socket.authorized === true,
      certificateSubjectMatches: (ctx, property, expected) => property === 'tls_client_auth_san_dns'
        && (peerCert(ctx)?.subjectAltName || '').split(', ').includes(`DNS:${expected}`),
    },
    resourceIndicators: { enabled: true,
      defaultResource: async () => 'urn:llm-gateway', useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, r) => { if (RESOURCES[r]) return RESOURCES[r]; throw new errors.InvalidTarget(); } },
  },
});

const servers = [provider.listen(PORT, HOST, () => console.log(`oidc-provider ready at ${ISSUER}`))];
if (MTLS_PORT) {
  const dir = process.env.OIDC_MTLS_DIR;
  const tls = createServer({ key: readFileSync(`${dir}/server-key.pem`), cert: readFileSync(`${dir}/server.pem`),
    ca: readFileSync(`${dir}/ca.pem`), requestCert: true, rejectUnauthorized: false }, provider.callback());
  servers.push(tls.listen(MTLS_PORT, HOST, () => console.log(`mTLS aliases at ${MTLS}`)));
}
const stop = () => {
  // Keep-alive connections from the tests' pools would hold close() open.
  for (const s of servers) { s.closeAllConnections(); s.close(); }
  setTimeout(() => process.exit(0), 50);
};
process.on('SIGTERM', stop); process.on('SIGINT', stop);
