// oauth4webapi (npm, pinned in package.json), a certified OpenID
// relying-party library, as a client of Ephemera: OpenID discovery, the code
// flow with PKCE, state, nonce and max_age (pushed with PAR and a
// client_registration, or in the front channel for a pre-registered
// client), the token response with its ID Token validated by the library
// and its signature checked against the server's jwks_uri, and /userinfo.
// Run by tests/api/oidc_rp.rs, which reads the JSON printed last. The
// script fills in the login and consent forms where a user would.

import * as oauth from 'oauth4webapi';

import { UserAgent } from '../user-agent.mjs';

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

    const agent = new UserAgent(USERNAME, PASSWORD);
    const callback = await agent.authorize(authorizationUrl, REDIRECT_URL);
    const pages = agent.pages;
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
