// oauth4webapi (npm, pinned in package.json), a certified OpenID
// relying-party library, as a client of Ephemera: OpenID discovery, the code
// flow with PKCE, state, nonce and max_age (pushed with PAR and a
// client_registration, or in the front channel for a pre-registered
// client), the token response with its ID Token validated by the library
// and its signature checked against the server's jwks_uri, and /userinfo.
// Run by tests/api/oidc_rp.rs, which reads the JSON printed last. The
// script fills in the login and consent forms where a user would.

import * as oauth from 'oauth4webapi';

const env = name => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
};
const ISSUER = env('ISSUER');
const CLIENT_ID = env('CLIENT_ID');
const REDIRECT_URL = env('REDIRECT_URL');
const USERNAME = env('LOGIN_USERNAME');
const PASSWORD = env('LOGIN_PASSWORD');
const MODE = env('MODE'); // `pushed` or `front_channel`
const WITH_DPOP = process.env.DPOP === '1';
const MAX_AGE = 300;

// The test server speaks plain http on 127.0.0.1.
const insecure = { [oauth.allowInsecureRequests]: true };

/** Just enough of a browser for Ephemera's pages: cookies, redirects, forms. */
class Browser {
    constructor() {
        this.cookies = new Map();
    }

    async request(url, init = {}) {
        const headers = new Headers(init.headers);
        if (this.cookies.size > 0) {
            headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
        }
        const res = await fetch(url, { ...init, headers, redirect: 'manual' });
        for (const line of res.headers.getSetCookie()) {
            const pair = line.split(';', 1)[0];
            const eq = pair.indexOf('=');
            if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
        }
        return res;
    }

    /** Follows `url` through the login and consent pages to the redirect_uri. */
    async authorize(url, pages) {
        let current = new URL(url);
        let res = await this.request(current);
        for (let step = 0; step < 12; step++) {
            if (res.status >= 300 && res.status < 400) {
                const to = new URL(res.headers.get('location'), current);
                await res.body?.cancel();
                if (to.href.startsWith(REDIRECT_URL)) {
                    return to;
                }
                current = to;
                res = await this.request(current);
                continue;
            }
            const html = await res.text();
            if (res.status !== 200) {
                throw new Error(`${current} answered ${res.status}: ${html.slice(0, 2000)}`);
            }
            const form = parseForm(html, current);
            if ('password' in form.fields) {
                pages.push('login');
                form.fields.username = USERNAME;
                form.fields.password = PASSWORD;
            } else if (form.buttons.decision?.includes('approve')) {
                pages.push('consent');
                form.fields.decision = 'approve';
            } else {
                throw new Error(`neither a login nor a consent page at ${current}: ${html.slice(0, 2000)}`);
            }
            current = form.action;
            res = await this.request(current, { method: 'POST', body: new URLSearchParams(form.fields) });
        }
        throw new Error('too many steps before the redirect to the client');
    }
}

const decodeEntities = s =>
    s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) => {
        const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e.toLowerCase()];
        if (named) return named;
        return String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    });

const attributes = tag => {
    const out = {};
    for (const [, name, value] of tag.matchAll(/([a-zA-Z_:][-\w:.]*)\s*=\s*"([^"]*)"/g)) {
        out[name.toLowerCase()] = decodeEntities(value);
    }
    return out;
};

/** The page's one POST form: its action, its inputs' values, its buttons' values. */
function parseForm(html, base) {
    const m = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
    if (!m) throw new Error(`no form at ${base}: ${html.slice(0, 2000)}`);
    const action = new URL(attributes(m[1]).action ?? '', base);
    const fields = {};
    const buttons = {};
    for (const [tag] of m[2].matchAll(/<input\b[^>]*>/gi)) {
        const a = attributes(tag);
        if (a.name) fields[a.name] = a.value ?? '';
    }
    for (const [tag] of m[2].matchAll(/<button\b[^>]*>/gi)) {
        const a = attributes(tag);
        if (a.name) (buttons[a.name] ??= []).push(a.value ?? '');
    }
    return { action, fields, buttons };
}


async function main() {
    const issuer = new URL(ISSUER);
    const as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }),
    );
    const client = { client_id: CLIENT_ID };
    const clientAuth = oauth.None();
    const DPoP = WITH_DPOP ? oauth.DPoP(client, await oauth.generateKeyPair('ES256')) : undefined;

    const codeVerifier = oauth.generateRandomCodeVerifier();
    const nonce = oauth.generateRandomNonce();
    const state = oauth.generateRandomState();
    const params = new URLSearchParams({
        client_id: CLIENT_ID,
        redirect_uri: REDIRECT_URL,
        response_type: 'code',
        scope: 'openid profile email',
        code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        max_age: String(MAX_AGE),
    });
    const authorizationUrl = new URL(as.authorization_endpoint);
    if (MODE === 'pushed') {
        params.set('client_registration', JSON.stringify({
            client_name: 'oauth4webapi relying party',
            redirect_uris: [REDIRECT_URL],
            grant_types: ['authorization_code', 'refresh_token'],
            token_endpoint_auth_method: 'none',
            ...(WITH_DPOP ? { dpop_bound_access_tokens: true } : {}),
        }));
        const response = await oauth.pushedAuthorizationRequest(as, client, clientAuth, params, { DPoP, ...insecure });
        const pushed = await oauth.processPushedAuthorizationResponse(as, client, response);
        authorizationUrl.searchParams.set('client_id', CLIENT_ID);
        authorizationUrl.searchParams.set('request_uri', pushed.request_uri);
    } else {
        authorizationUrl.search = params.toString();
    }

    const pages = [];
    const callback = await new Browser().authorize(authorizationUrl, pages);
    // RFC 9207 `iss`, `state`, and no error.
    const callbackParams = oauth.validateAuthResponse(as, client, callback, state);

    const tokenResponse = await oauth.authorizationCodeGrantRequest(
        as, client, clientAuth, callbackParams, REDIRECT_URL, codeVerifier, { DPoP, ...insecure },
    );
    // Core §3.1.3.7: iss, aud (and azp), exp, iat, nonce, auth_time against max_age.
    const result = await oauth.processAuthorizationCodeResponse(as, client, tokenResponse, {
        expectedNonce: nonce,
        maxAge: MAX_AGE,
        requireIdToken: true,
    });
    // The ID Token's signature, by the key the jwks_uri publishes.
    await oauth.validateApplicationLevelSignature(as, tokenResponse, insecure);
    const claims = oauth.getValidatedIdTokenClaims(result);

    const userinfo = await oauth.processUserInfoResponse(
        as, client, claims.sub,
        await oauth.userInfoRequest(as, client, result.access_token, { DPoP, ...insecure }),
    );
    // The library refuses a UserInfo answer about someone else (Core §5.3.4).
    let otherSubjectRefused = false;
    try {
        await oauth.processUserInfoResponse(
            as, client, 'someone-else',
            await oauth.userInfoRequest(as, client, result.access_token, { DPoP, ...insecure }),
        );
    } catch {
        otherSubjectRefused = true;
    }

    let refreshed = null;
    if (result.refresh_token) {
        const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, result.refresh_token, { DPoP, ...insecure });
        const again = await oauth.processRefreshTokenResponse(as, client, response);
        refreshed = oauth.getValidatedIdTokenClaims(again) ?? null;
    }

    console.log(JSON.stringify({
        discovered: {
            issuer: as.issuer,
            userinfo_endpoint: as.userinfo_endpoint,
            id_token_signing_alg_values_supported: as.id_token_signing_alg_values_supported,
        },
        pages,
        token_type: result.token_type,
        scope: result.scope,
        claims,
        userinfo,
        other_subject_refused: otherSubjectRefused,
        refreshed,
    }));
}

main().catch(e => {
    console.error(e?.stack ?? e, e?.cause ? JSON.stringify(e.cause) : '');
    process.exit(1);
});
