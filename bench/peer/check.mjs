// Self-check for the benchmark peer (server.mjs): drives every flow that
// ephemera-bench uses and asserts the responses. Node built-ins only.
//
//   node check.mjs [base-url] [-v]   (default http://127.0.0.1:18090)
//
// Prints one line per step (-v: also each redirect's Location); exits 1 on
// the first failure.

import * as crypto from 'node:crypto';

const args = process.argv.slice(2);
const VERBOSE = args.includes('-v');
const BASE = (args.find((a) => a !== '-v') || 'http://127.0.0.1:18090').replace(/\/$/, '');

const APP = { id: 'bench-app', secret: 'bench-app-secret-0123456789abcdef01' };
const RS = { id: 'bench-rs', secret: 'bench-rs-secret-0123456789abcdef0123' };
const REDIRECT_URI = 'http://127.0.0.1:9999/cb';
const SCOPE = 'read';
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const DCR_BODY = {
  client_name: 'Bench Agent',
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
};

// ---------------------------------------------------------------- helpers

let step = 0;
function ok(msg) {
  step += 1;
  console.log(`ok ${String(step).padStart(2)} ${msg}`);
}
function fail(msg) {
  console.log(`FAIL ${msg}`);
  process.exit(1);
}
function assert(cond, msg) {
  if (!cond) fail(msg);
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const basic = ({ id, secret }) => `Basic ${Buffer.from(
  `${encodeURIComponent(id)}:${encodeURIComponent(secret)}`,
).toString('base64')}`;

// Sanity: the fixed PKCE pair is what RFC 7636 says it is.
assert(b64u(crypto.createHash('sha256').update(VERIFIER).digest()) === CHALLENGE, 'PKCE pair mismatch');

// Minimal cookie jar for a single origin: name -> { value, path }.
class CookieJar {
  #cookies = new Map();

  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.toLowerCase();
        if (key === 'path') path = v;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${name};${path}`;
      if (expired) this.#cookies.delete(id);
      else this.#cookies.set(id, { name, value, path });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    return [...this.#cookies.values()]
      .filter(({ path }) => pathname === path || pathname.startsWith(path.endsWith('/') ? path : `${path}/`))
      .map(({ name, value }) => `${name}=${value}`)
      .join('; ');
  }
}

// DPoP proofs (RFC 9449) with an ES256 key.
function dpopKey() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  return { privateKey, jwk: { kty, crv, x, y } };
}
function dpopProof(key, htm, htu, nonce) {
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk };
  const claims = {
    jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000),
  };
  if (nonce) claims.nonce = nonce;
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64u(sig)}`;
}

let nonceSeen = false;
// POST a form; with a DPoP key, adds a proof and answers one use_dpop_nonce challenge.
async function postForm(url, form, { auth, dpop } = {}) {
  let nonce;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth) headers.authorization = basic(auth);
    if (dpop) headers.dpop = dpopProof(dpop, 'POST', url, nonce);
    const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(form), redirect: 'manual' });
    const body = await res.json().catch(() => ({}));
    if (dpop && !nonce && res.status === 400 && body.error === 'use_dpop_nonce' && res.headers.get('dpop-nonce')) {
      nonceSeen = true;
      nonce = res.headers.get('dpop-nonce');
      console.log(`   note: ${url} asked for a DPoP nonce`);
      continue;
    }
    return { res, body };
  }
  throw new Error('unreachable');
}

// ---------------------------------------------------------------- flows

async function discover() {
  const res = await fetch(`${BASE}/.well-known/openid-configuration`);
  assert(res.status === 200, `discovery: status ${res.status}`);
  const meta = await res.json();
  for (const k of ['pushed_authorization_request_endpoint', 'authorization_endpoint', 'token_endpoint',
    'introspection_endpoint', 'revocation_endpoint', 'registration_endpoint']) {
    assert(typeof meta[k] === 'string', `discovery: no ${k}`);
  }
  assert(meta.issuer === BASE, `discovery: issuer ${meta.issuer} != ${BASE}`);
  return meta;
}

// PAR, then the authorization hops with a manual cookie jar, until the
// redirect to the client's callback. Returns the code and the hops taken.
async function authorize(meta, jar, { client = APP, dpop, label }) {
  const state = b64u(crypto.randomBytes(12));
  // client_id is required in the PAR body even with HTTP Basic: oidc-provider
  // validates it as an authorization request parameter.
  const form = {
    client_id: client.id, response_type: 'code', redirect_uri: REDIRECT_URI, state, scope: SCOPE,
    code_challenge: CHALLENGE, code_challenge_method: 'S256',
  };
  const isPublic = !client.secret;
  const par = await postForm(meta.pushed_authorization_request_endpoint, form, { auth: isPublic ? undefined : client, dpop });
  assert(par.res.status === 201, `${label} PAR: status ${par.res.status} ${JSON.stringify(par.body)}`);
  assert(par.body.request_uri?.startsWith('urn:ietf:params:oauth:request_uri:'), `${label} PAR: request_uri ${par.body.request_uri}`);
  ok(`${label} PAR 201 request_uri=${par.body.request_uri.slice(0, 40)}... expires_in=${par.body.expires_in}`);

  const authUrl = new URL(meta.authorization_endpoint);
  authUrl.search = new URLSearchParams({ client_id: client.id, request_uri: par.body.request_uri });
  let url = authUrl.href;
  const hops = [];
  for (let i = 0; i < 10; i += 1) {
    const headers = {};
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    const res = await fetch(url, { headers, redirect: 'manual' });
    jar.store(res);
    const location = res.headers.get('location');
    const { pathname } = new URL(url);
    assert([302, 303].includes(res.status) && location,
      `${label} GET ${pathname}: status ${res.status} ${await res.text()}`);
    const next = new URL(location, url);
    hops.push(`${pathname.replace(/\/[^/]{16,}$/, '/<uid>')} ${res.status}`);
    if (VERBOSE) console.log(`   ${res.status} GET ${url}\n       Location: ${location}`);
    if (next.href.startsWith(REDIRECT_URI)) {
      const p = next.searchParams;
      assert(!p.get('error'), `${label} callback error: ${p.get('error')} ${p.get('error_description')}`);
      assert(p.get('code'), `${label} callback without code: ${next.href}`);
      assert(p.get('state') === state, `${label} callback state mismatch`);
      assert(p.get('iss') === meta.issuer, `${label} callback iss ${p.get('iss')}`);
      const interactions = hops.filter((h) => h.startsWith('/interaction/')).length;
      ok(`${label} authorize: ${hops.join(' -> ')} -> callback (code, state, iss); interaction hops: ${interactions}`);
      return { code: p.get('code'), interactions };
    }
    url = next.href;
  }
  return fail(`${label} authorize: too many redirects: ${hops.join(' -> ')}`);
}

async function exchangeCode(meta, code, { client = APP, dpop, label }) {
  const form = {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: VERIFIER,
  };
  if (!client.secret) form.client_id = client.id;
  const { res, body } = await postForm(meta.token_endpoint, form, { auth: client.secret ? client : undefined, dpop });
  assert(res.status === 200, `${label} token: status ${res.status} ${JSON.stringify(body)}`);
  const type = dpop ? 'DPoP' : 'Bearer';
  assert(body.token_type === type, `${label} token: token_type ${body.token_type}, want ${type}`);
  assert(body.access_token && body.refresh_token, `${label} token: missing tokens ${JSON.stringify(body)}`);
  ok(`${label} token 200 token_type=${body.token_type} scope=${body.scope} expires_in=${body.expires_in} refresh_token=yes`);
  return body;
}

async function refresh(meta, refreshToken, { client = APP, dpop, label }) {
  const form = { grant_type: 'refresh_token', refresh_token: refreshToken };
  if (!client.secret) form.client_id = client.id;
  const { res, body } = await postForm(meta.token_endpoint, form, { auth: client.secret ? client : undefined, dpop });
  assert(res.status === 200, `${label} refresh: status ${res.status} ${JSON.stringify(body)}`);
  assert(body.refresh_token && body.refresh_token !== refreshToken, `${label} refresh: refresh token not rotated`);
  const type = dpop ? 'DPoP' : 'Bearer';
  assert(body.token_type === type, `${label} refresh: token_type ${body.token_type}, want ${type}`);
  ok(`${label} refresh 200 token_type=${body.token_type} rotated refresh_token`);
  return body;
}

async function introspect(meta, token, { active, label }) {
  const { res, body } = await postForm(meta.introspection_endpoint, { token }, { auth: RS });
  assert(res.status === 200, `${label} introspect: status ${res.status} ${JSON.stringify(body)}`);
  assert(body.active === active, `${label} introspect: active ${body.active}, want ${active}`);
  const extra = active ? ` client_id=${body.client_id} scope=${body.scope} token_type=${body.token_type}${body.cnf ? ' cnf.jkt' : ''}` : '';
  ok(`${label} introspect as bench-rs 200 active=${body.active}${extra}`);
  return body;
}

// ---------------------------------------------------------------- main

const meta = await discover();
ok(`discovery 200 par=${new URL(meta.pushed_authorization_request_endpoint).pathname}`
  + ` authorize=${new URL(meta.authorization_endpoint).pathname}`
  + ` token=${new URL(meta.token_endpoint).pathname}`
  + ` introspect=${new URL(meta.introspection_endpoint).pathname}`
  + ` revoke=${new URL(meta.revocation_endpoint).pathname}`
  + ` register=${new URL(meta.registration_endpoint).pathname}`);

const jar = new CookieJar();

// First flow: no session yet, one interaction hop (login + consent).
const first = await authorize(meta, jar, { label: '[flow 1]' });
assert(first.interactions === 1, `[flow 1] expected 1 interaction hop, got ${first.interactions}`);
const tokens = await exchangeCode(meta, first.code, { label: '[flow 1]' });
const info = await introspect(meta, tokens.access_token, { active: true, label: '[flow 1]' });
assert(info.client_id === APP.id, `[flow 1] introspect client_id ${info.client_id}`);
await refresh(meta, tokens.refresh_token, { label: '[flow 1]' });

// Second flow on the same cookie jar: existing session and grant, no interaction.
const second = await authorize(meta, jar, { label: '[flow 2]' });
assert(second.interactions === 0, `[flow 2] expected no interaction hop, got ${second.interactions}`);
const tokens2 = await exchangeCode(meta, second.code, { label: '[flow 2]' });

// Revocation by the owning client, then introspection says inactive.
{
  const { res, body } = await postForm(meta.revocation_endpoint, { token: tokens2.access_token, token_type_hint: 'access_token' }, { auth: APP });
  assert(res.status === 200, `[flow 2] revoke: status ${res.status} ${JSON.stringify(body)}`);
  ok('[flow 2] revoke access token as bench-app 200');
  await introspect(meta, tokens2.access_token, { active: false, label: '[flow 2]' });
}

// DPoP flow: proofs on PAR, token and refresh.
{
  const key = dpopKey();
  const flow = await authorize(meta, jar, { dpop: key, label: '[dpop]' });
  const t = await exchangeCode(meta, flow.code, { dpop: key, label: '[dpop]' });
  const i = await introspect(meta, t.access_token, { active: true, label: '[dpop]' });
  assert(i.token_type === 'DPoP' && i.cnf?.jkt, '[dpop] introspect: expected DPoP token_type and cnf.jkt');
  await refresh(meta, t.refresh_token, { dpop: key, label: '[dpop]' });
  ok(`[dpop] DPoP nonce requested by server: ${nonceSeen ? 'yes' : 'no'}`);
}

// client_credentials as the resource server, without and with a scope.
for (const scope of [undefined, 'read']) {
  const form = { grant_type: 'client_credentials' };
  if (scope) form.scope = scope;
  const { res, body } = await postForm(meta.token_endpoint, form, { auth: RS });
  assert(res.status === 200, `client_credentials: status ${res.status} ${JSON.stringify(body)}`);
  assert(body.access_token && body.token_type === 'Bearer', `client_credentials: ${JSON.stringify(body)}`);
  ok(`client_credentials${scope ? ` scope=${scope}` : ''} 200 token_type=${body.token_type} scope=${body.scope} expires_in=${body.expires_in}`);
}

// Open dynamic client registration, then a full flow with that public client
// on the same cookie jar (session exists: one consent-only interaction hop).
{
  const res = await fetch(meta.registration_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(DCR_BODY),
  });
  const body = await res.json().catch(() => ({}));
  assert(res.status === 201, `DCR: status ${res.status} ${JSON.stringify(body)}`);
  assert(body.client_id && !body.client_secret, `DCR: ${JSON.stringify(body)}`);
  ok(`DCR 201 client_id=${body.client_id} application_type=${body.application_type} token_endpoint_auth_method=${body.token_endpoint_auth_method}`);

  const agent = { id: body.client_id };
  const flow = await authorize(meta, jar, { client: agent, label: '[agent]' });
  const t = await exchangeCode(meta, flow.code, { client: agent, label: '[agent]' });
  await refresh(meta, t.refresh_token, { client: agent, label: '[agent]' });
  const again = await authorize(meta, jar, { client: agent, label: '[agent 2]' });
  assert(again.interactions === 0, `[agent 2] expected no interaction hop, got ${again.interactions}`);
}

console.log(`all ${step} checks passed against ${BASE}`);
