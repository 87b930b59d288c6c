// jose (npm) verifies a JWT access token of Ephemera as a resource server
// would (RFC 9068 §4): the signature with a key of the issuer's JWKS
// (fetched by createRemoteJWKSet), `typ: at+jwt`, `iss`, `aud`, `exp`, and
// ES256 only. Then the same token for another audience, with another
// `typ` required, and an opaque token, which must all be refused. Prints
// one JSON line, read by tests/api/jwt_access_tokens.rs.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const { JWKS_URI, ISSUER, AUDIENCE, TOKEN, OPAQUE } = process.env;
const jwks = createRemoteJWKSet(new URL(JWKS_URI));
const options = { issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt', algorithms: ['ES256'] };

const { payload, protectedHeader } = await jwtVerify(TOKEN, jwks, options);

async function refusal(token, overrides) {
  try {
    await jwtVerify(token, jwks, { ...options, ...overrides });
    return 'accepted';
  } catch (e) {
    return e.code ?? String(e);
  }
}

console.log(JSON.stringify({
  header: protectedHeader,
  payload,
  wrong_audience: await refusal(TOKEN, { audience: 'https://other.example/' }),
  wrong_typ: await refusal(TOKEN, { typ: 'JWT' }),
  opaque: await refusal(OPAQUE, {}),
}));
