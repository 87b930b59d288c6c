// The official MCP TypeScript SDK as an OAuth client of Ephemera, run by
// `tests/api/mcp.rs`. Its `auth()` discovers the authorization server from
// the protected resource (RFC 9728, then RFC 8414), registers (a Client ID
// Metadata Document URL or Dynamic Client Registration, RFC 7591), sends the
// user to the authorization endpoint with PKCE (RFC 7636) and `resource`
// (RFC 8707), and redeems the code. Where a real client opens a browser,
// `redirectToAuthorization` fills in Ephemera's login and consent forms.
// The last line on stdout is one JSON object describing what happened;
// everything else goes to stderr.
//
// Environment:
//   RESOURCE_URL          the protected resource, e.g. http://127.0.0.1:9090/api/whoami
//   LOGIN_USERNAME, LOGIN_PASSWORD   the user who logs in and approves
//   REGISTRATION          `dcr` (register at the registration endpoint) or
//                         `cimd` (the client_id is CLIENT_METADATA_URL)
//   CLIENT_METADATA_URL   the https URL of the client's metadata document (cimd)
//   REDIRECT_URL          the redirect_uri; nothing needs to listen there
//                         (default http://127.0.0.1:9999/callback)
//   CLIENT_SCOPE          the `scope` of the client's metadata (default `read`;
//                         `none` sends `"scope": ""`, as clients do when the
//                         server advertises no scopes)

import { randomBytes } from 'node:crypto';
import { auth, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';

import { UserAgent } from '../user-agent.mjs';

const env = (name, fallback) => {
    const value = process.env[name] ?? fallback;
    if (value === undefined || value === '') {
        throw new Error(`${name} is required`);
    }
    return value;
};

const RESOURCE_URL = env('RESOURCE_URL');
const USERNAME = env('LOGIN_USERNAME');
const PASSWORD = env('LOGIN_PASSWORD');
const MODE = env('REGISTRATION', 'dcr');
const REDIRECT_URL = env('REDIRECT_URL', 'http://127.0.0.1:9999/callback');
if (MODE !== 'dcr' && MODE !== 'cimd') {
    throw new Error(`REGISTRATION must be dcr or cimd, not ${MODE}`);
}
const CLIENT_METADATA_URL = MODE === 'cimd' ? env('CLIENT_METADATA_URL') : undefined;
const CLIENT_SCOPE = env('CLIENT_SCOPE', 'read');

const log = (...args) => console.error('[mcp-flow]', ...args);

/** An `OAuthClientProvider` that keeps everything in memory. */
class MemoryProvider {
    constructor() {
        this.stored = {};
        this.expectedState = undefined;
        /** What the browser saw and brought back; filled by redirectToAuthorization. */
        this.authorizationRequest = undefined;
        this.callback = undefined;
        this.pages = [];
        if (CLIENT_METADATA_URL) {
            // SEP-991: used instead of registering when the authorization
            // server's metadata says client_id_metadata_document_supported.
            this.clientMetadataUrl = CLIENT_METADATA_URL;
        }
    }

    get redirectUrl() {
        return REDIRECT_URL;
    }

    get clientMetadata() {
        return {
            client_name: 'MCP SDK end-to-end test',
            redirect_uris: [REDIRECT_URL],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
            scope: CLIENT_SCOPE === 'none' ? '' : CLIENT_SCOPE,
        };
    }

    state() {
        this.expectedState = randomBytes(16).toString('base64url');
        return this.expectedState;
    }

    clientInformation() {
        return this.stored.clientInformation;
    }

    saveClientInformation(info) {
        this.stored.clientInformation = info;
    }

    tokens() {
        return this.stored.tokens;
    }

    saveTokens(tokens) {
        this.stored.tokens = tokens;
    }

    saveCodeVerifier(verifier) {
        this.stored.codeVerifier = verifier;
    }

    codeVerifier() {
        if (!this.stored.codeVerifier) {
            throw new Error('no code verifier saved');
        }
        return this.stored.codeVerifier;
    }

    saveDiscoveryState(state) {
        this.stored.discovery = state;
    }

    discoveryState() {
        return this.stored.discovery;
    }

    invalidateCredentials(scope) {
        log(`the SDK invalidates credentials: ${scope}`);
        if (scope === 'all' || scope === 'client') delete this.stored.clientInformation;
        if (scope === 'all' || scope === 'tokens') delete this.stored.tokens;
        if (scope === 'all' || scope === 'verifier') delete this.stored.codeVerifier;
        if (scope === 'all' || scope === 'discovery') delete this.stored.discovery;
    }

    /** The user's browser: log in, approve, and bring back the callback URL. */
    async redirectToAuthorization(url) {
        const q = url.searchParams;
        this.authorizationRequest = {
            endpoint: `${url.origin}${url.pathname}`,
            client_id: q.get('client_id'),
            response_type: q.get('response_type'),
            redirect_uri: q.get('redirect_uri'),
            scope: q.get('scope'),
            resource: q.getAll('resource'),
            code_challenge_method: q.get('code_challenge_method'),
            has_code_challenge: Boolean(q.get('code_challenge')),
            has_state: Boolean(q.get('state')),
        };
        log('authorization request', JSON.stringify(this.authorizationRequest));
        const agent = new UserAgent(USERNAME, PASSWORD);
        this.callback = await agent.authorize(url, REDIRECT_URL);
        this.pages.push(...agent.pages);
    }
}

async function main() {
    // An MCP client learns where the protected resource's metadata is from
    // the 401 challenge (RFC 9728 §5.1), as the SDK's transports do.
    const challenge = await fetch(RESOURCE_URL);
    await challenge.body?.cancel();
    if (challenge.status !== 401) {
        throw new Error(`the resource answered ${challenge.status} without a token, not 401`);
    }
    const { resourceMetadataUrl } = extractWWWAuthenticateParams(challenge);
    if (!resourceMetadataUrl) {
        throw new Error(`no resource_metadata in WWW-Authenticate: ${challenge.headers.get('www-authenticate')}`);
    }
    log(`resource metadata at ${resourceMetadataUrl}`);

    const provider = new MemoryProvider();
    const options = { serverUrl: RESOURCE_URL, resourceMetadataUrl };
    const first = await auth(provider, options);
    if (first !== 'REDIRECT' || !provider.callback) {
        throw new Error(`the first auth() returned ${first} without sending the user to the authorization server`);
    }
    const discovery = provider.stored.discovery;
    const clientId = provider.stored.clientInformation?.client_id;
    if (MODE === 'cimd' && clientId !== CLIENT_METADATA_URL) {
        const supported = discovery?.authorizationServerMetadata?.client_id_metadata_document_supported;
        throw new Error(
            `the SDK did not use the metadata document URL as client_id (it used ${clientId}); ` +
                `the authorization server's client_id_metadata_document_supported is ${supported}`,
        );
    }
    if (!clientId) {
        throw new Error('the SDK went to the authorization endpoint without a client_id');
    }

    // The authorization response (RFC 6749 §4.1.2) with RFC 9207's `iss`:
    // checking both is the application's part, the SDK leaves it to us.
    const callback = provider.callback;
    const error = callback.searchParams.get('error');
    if (error) {
        throw new Error(`authorization failed: ${error}: ${callback.searchParams.get('error_description')}`);
    }
    if (callback.searchParams.get('state') !== provider.expectedState) {
        throw new Error(`state mismatch in ${callback}`);
    }
    const issuer = discovery?.authorizationServerMetadata?.issuer;
    if (callback.searchParams.get('iss') !== issuer) {
        throw new Error(`iss ${callback.searchParams.get('iss')} is not the issuer ${issuer}`);
    }
    const code = callback.searchParams.get('code');
    if (!code) throw new Error(`no code in ${callback}`);

    const second = await auth(provider, { ...options, authorizationCode: code });
    if (second !== 'AUTHORIZED') {
        throw new Error(`redeeming the code returned ${second}`);
    }
    const tokens = provider.stored.tokens;

    const res = await fetch(RESOURCE_URL, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
    const body = await res.text();
    if (res.status !== 200) {
        throw new Error(`the resource answered ${res.status} with the token: ${body}`);
    }

    console.log(
        JSON.stringify({
            registration: MODE,
            client_id: clientId,
            authorization_server: discovery?.authorizationServerUrl,
            resource_metadata: discovery?.resourceMetadata,
            authorization_request: provider.authorizationRequest,
            pages: provider.pages,
            token_type: tokens.token_type,
            scope: tokens.scope,
            has_refresh_token: Boolean(tokens.refresh_token),
            resource_status: res.status,
            whoami: JSON.parse(body),
        }),
    );
}

main().catch(err => {
    console.error('[mcp-flow] failed:', err?.stack ?? err);
    process.exit(1);
});
