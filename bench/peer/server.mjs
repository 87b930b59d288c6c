// Benchmark peer: node-oidc-provider configured to serve the same OAuth flows
// that ephemera-bench drives against Ephemera (PAR, authorization code + PKCE,
// refresh with rotation, introspection, client_credentials, DPoP, open DCR).
//
//   PORT=18090 NODE_ENV=production node server.mjs
//
// Interactions complete automatically (no HTML): the only account is `bench`.
// State lives in oidc-provider's own in-memory adapter, over an LRU big
// enough for a benchmark run (the default holds about 1,000 entries and
// silently drops live sessions, codes and tokens under load).

import * as crypto from 'node:crypto';

import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const PORT = Number(process.env.PORT || 18090);
const HOST = '127.0.0.1';
const ISSUER = `http://${HOST}:${PORT}`;

const ACCOUNT_ID = 'bench';
const DAY = 24 * 60 * 60;

// A fresh signing key per process, so the library's published development
// keys are not used (ID tokens and JWT responses are signed with it).
const signingKey = crypto
  .generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

const store = new LRU({ maxSize: 10_000_000 });

const configuration = {
  adapter: (model) => new MemoryAdapter(model, store, 15),

  clients: [
    {
      // Resource server: introspects any token, gets client_credentials tokens.
      client_id: 'bench-rs',
      client_secret: 'bench-rs-secret-0123456789abcdef0123',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      // Confidential web client for the authorization code flow.
      client_id: 'bench-app',
      client_secret: 'bench-app-secret-0123456789abcdef01',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: ['http://127.0.0.1:9999/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
  ],

  async findAccount(ctx, sub) {
    if (sub !== ACCOUNT_ID) return undefined;
    return {
      accountId: ACCOUNT_ID,
      async claims() {
        return { sub: ACCOUNT_ID };
      },
    };
  },

  jwks: { keys: [{ ...signingKey, kid: 'bench-rs256', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },

  scopes: ['openid', 'offline_access', 'read', 'write'],

  features: {
    devInteractions: { enabled: false },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
    dPoP: { enabled: true }, // no nonceSecret: the server never asks for a DPoP nonce
    registration: { enabled: true, initialAccessToken: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Any confidential client may introspect any token; public clients only their own.
      async allowedPolicy(ctx, client, token) {
        return client.clientAuthMethod !== 'none' || token.clientId === client.clientId;
      },
    },
    revocation: {
      enabled: true,
      // A client may revoke only its own tokens.
      async allowedPolicy(ctx, client, token) {
        return token.clientId === client.clientId;
      },
    },
  },

  // PKCE (S256, the only method oidc-provider 9 supports) for every client.
  pkce: { required: () => true },

  // Refresh tokens for every client allowed to use the grant, without
  // requiring offline_access, rotated on every use.
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  rotateRefreshToken: true,
  // Tokens are not bound to the browser session (as if offline_access had
  // been granted): refresh and introspection never look the session up.
  async expiresWithSession() {
    return false;
  },

  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    AuthorizationCode: 60,
    RefreshToken: DAY,
    IdToken: 3600,
    Interaction: 3600,
    Grant: DAY,
    Session: DAY,
  },

  // No browser-facing CORS is needed by the benchmark.
  clientBasedCORS: () => false,

  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
};

const provider = new Provider(ISSUER, configuration);

// Saves a Grant for the interaction's client and account that covers what the
// prompt says is missing (or, at login, every requested scope).
async function grantFor(interaction, accountId, details) {
  const clientId = interaction.params.client_id;

  let grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
  grant ??= new provider.Grant({ accountId, clientId });

  if (interaction.params.scope) grant.addOIDCScope(interaction.params.scope);
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }

  return grant.save();
}

// GET /interaction/:uid completes the pending interaction at once and answers
// 303 to the authorization resume URL (/auth/:uid). provider.use() puts this
// middleware in front of oidc-provider's own routes.
const INTERACTION_PATH = /^\/interaction\/([^/]+)$/;

provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || !INTERACTION_PATH.test(ctx.path)) {
    return next();
  }

  ctx.set('Cache-Control', 'no-store');

  let interaction;
  try {
    interaction = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.body = `${err.message}: ${err.error_description ?? ''}\n`;
    return undefined;
  }

  const { prompt } = interaction;
  let result;
  switch (prompt.name) {
    case 'login':
      // Log in, and consent in the same step, so a first flow has a single
      // interaction hop. A later consent-only prompt is handled below.
      result = {
        login: { accountId: ACCOUNT_ID },
        consent: { grantId: await grantFor(interaction, ACCOUNT_ID, prompt.details) },
      };
      break;
    case 'consent':
      result = {
        consent: { grantId: await grantFor(interaction, interaction.session.accountId, prompt.details) },
      };
      break;
    default:
      result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
  }

  // Writes 303 See Other, Location: <issuer>/auth/<uid>, and ends the response.
  ctx.respond = false;
  await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  return undefined;
});

provider.listen(PORT, HOST, () => {
  console.log(`oidc-provider bench peer listening on ${ISSUER}`);
});
