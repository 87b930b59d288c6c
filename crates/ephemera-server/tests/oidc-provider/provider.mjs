// node-oidc-provider (npm `oidc-provider`, pinned in package.json and
// package-lock.json) as an upstream identity provider for
// tests/api/upstream.rs: an independent OpenID Connect implementation that
// Ephemera signs people in through.
//
//   node provider.mjs
//
// Listens on 127.0.0.1 on a free port and prints {"issuer": …} as its first
// line; then reads one line from stdin, the redirect URI of its one static
// client (`ephemera`, client_secret_basic), and serves until stdin closes.
// Its one account is `grace`; interactions (login and consent) complete at
// once, without HTML, when the browser reaches /interaction/<uid>.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as readline from 'node:readline';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
export const CLIENT_SECRET = 'ephemera-upstream-secret-0123456789abcdef';
const ACCOUNT = {
  sub: 'grace-0001',
  preferred_username: 'grace',
  name: 'Grace Hopper',
  email: 'grace@example.com',
  email_verified: true,
};

const server = http.createServer();
await new Promise((resolve) => server.listen(0, HOST, resolve));
const issuer = `http://${HOST}:${server.address().port}`;
console.log(JSON.stringify({ issuer }));

const lines = readline.createInterface({ input: process.stdin });
const redirectUri = await new Promise((resolve) => lines.once('line', (l) => resolve(l.trim())));
lines.on('close', () => process.exit(0));

const signingKey = crypto
  .generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'ephemera',
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  async findAccount(ctx, sub) {
    if (sub !== ACCOUNT.sub) return undefined;
    return { accountId: sub, async claims() { return { ...ACCOUNT }; } };
  },
  // `acr` and `amr` reach ID Tokens only as claims of a granted scope.
  claims: {
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  jwks: { keys: [{ ...signingKey, kid: 'upstream-rs256', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

// Saves a Grant covering what the prompt says is missing.
async function grantFor(interaction, accountId, details) {
  const grant = new provider.Grant({ accountId, clientId: interaction.params.client_id });
  if (interaction.params.scope) grant.addOIDCScope(interaction.params.scope);
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  return grant.save();
}

// GET /interaction/:uid: `grace` signs in (with a one-time password, as the
// `amr` says) and consents at once; 303 back to /auth/:uid.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
  if (ctx.method !== 'GET' || !match) return next();
  const interaction = await provider.interactionDetails(ctx.req, ctx.res);
  const result = {
    login: { accountId: ACCOUNT.sub, amr: ['pwd', 'otp'], acr: 'urn:example:loa:2' },
    consent: { grantId: await grantFor(interaction, ACCOUNT.sub, interaction.prompt.details) },
  };
  ctx.respond = false;
  await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  return undefined;
});

server.on('request', provider.callback());
