//! Who the client is, how it authenticates at the back channel
//! (RFC 6749 §2.3.1 secrets, RFC 7523 `private_key_jwt`, RFC 8705
//! `self_signed_tls_client_auth`), and which DPoP key (RFC 9449) it proves.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ephemera_proto::assertion::JWT_BEARER_ASSERTION;
use ephemera_proto::PUSHED_CLIENT_URN;
use serde_json::Value;

use crate::dpop::DpopKey;
use crate::error::Result;
use crate::keys::ClientKey;

/// The `token_endpoint_auth_method` of JWT client assertions (RFC 7523 §2.2).
pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// The `token_endpoint_auth_method` of a client that authenticates with a
/// self-signed certificate over mutual TLS, its certificate registered in
/// `jwks` as `x5c` (RFC 8705 §2.2).
pub const SELF_SIGNED_TLS_CLIENT_AUTH: &str = "self_signed_tls_client_auth";

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2,
/// §6.4.1; RFC 8037 §2): never pushed.
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A form body: name-value pairs in order, names may repeat.
pub(crate) type Form = Vec<(String, String)>;

/// How a confidential client sends its secret (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMethod {
    /// `client_secret_basic`: HTTP Basic, both parts form-urlencoded first.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

/// The client, as the authorization server will know it: its `client_id`,
/// how it authenticates at the back channel, and optionally the DPoP key it
/// proves on every PAR, token and refresh request.
///
/// The DPoP key lives here, not on each call, so that it cannot be
/// forgotten half-way: the identity that pushed the request is kept in the
/// [`PendingAuthorization`](crate::PendingAuthorization) that redeems the
/// code, and the same identity is what [`refresh`](crate::AuthorizationServer::refresh)
/// takes. A pushed client exists only inside its grant anyway, so its
/// identity is naturally per grant.
#[derive(Clone)]
pub struct ClientIdentity {
    authentication: Authentication,
    dpop: Option<DpopKey>,
}

#[derive(Clone)]
enum Authentication {
    /// `client_id` is [`PUSHED_CLIENT_URN`]; the RFC 7591 metadata travels in
    /// the PAR as `client_registration`. With a key, the metadata carries its
    /// `jwks` and every request a client assertion.
    Pushed {
        registration: Value,
        key: Option<ClientKey>,
    },
    /// A pushed client that authenticates with its certificate over mutual
    /// TLS (RFC 8705 §2.2): the metadata carries the certificate in `jwks`,
    /// the form only `client_id`; the TLS connection does the rest.
    PushedWithCertificate { registration: Value },
    /// A pre-registered public client (`none`).
    Public { client_id: String },
    /// A pre-registered client with a shared secret.
    Secret {
        client_id: String,
        secret: String,
        method: SecretMethod,
    },
    /// A pre-registered client with `private_key_jwt` (RFC 7523 §2.2).
    PrivateKeyJwt { client_id: String, key: ClientKey },
}

impl ClientIdentity {
    fn new(authentication: Authentication) -> Self {
        Self {
            authentication,
            dpop: None,
        }
    }

    /// A pushed client with this RFC 7591 metadata and no secret: its
    /// `client_id` is [`PUSHED_CLIENT_URN`] and the metadata goes in the PAR
    /// as `client_registration` (draft-richer-oauth-pushed-client-registration).
    /// The metadata is sent as given.
    pub fn pushed(registration: Value) -> Self {
        Self::new(Authentication::Pushed {
            registration,
            key: None,
        })
    }

    /// A pushed client that authenticates with `private_key_jwt`
    /// (RFC 7523 §2.2) using a key it pushes itself: `jwks`
    /// (`{"keys": [key's public JWK]}`) and `token_endpoint_auth_method`
    /// `private_key_jwt` are set in `registration` (replacing any given
    /// values; a `registration` that is not a JSON object is sent as it is),
    /// and the PAR and every token, refresh and revocation request carry a
    /// client assertion signed by `key` for the issuer.
    pub fn pushed_with_key(mut registration: Value, key: ClientKey) -> Self {
        if let Value::Object(members) = &mut registration {
            members.insert("jwks".into(), key.jwks());
            members.insert(
                "token_endpoint_auth_method".into(),
                Value::from(PRIVATE_KEY_JWT),
            );
        }
        Self::new(Authentication::Pushed {
            registration,
            key: Some(key),
        })
    }

    /// A pushed client that authenticates with a self-signed certificate
    /// over mutual TLS (`self_signed_tls_client_auth`, RFC 8705 §2.2).
    ///
    /// `certificate_der` is the certificate (DER) and `public_jwk` its
    /// public key as a JWK. `jwks` (`{"keys": [public_jwk + "x5c":
    /// [base64(certificate_der)]]}`) and `token_endpoint_auth_method`
    /// `self_signed_tls_client_auth` are set in `registration` (replacing any
    /// given values; a `registration` that is not a JSON object is sent as
    /// it is). Private JWK members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`,
    /// `k`) are dropped, so a private JWK given by mistake is never pushed.
    /// Add `"tls_client_certificate_bound_access_tokens": true` to the
    /// registration yourself to have the tokens bound to the certificate
    /// too (RFC 8705 §3).
    ///
    /// Requests then carry only `client_id`: the proof is the TLS handshake,
    /// so the [`AuthorizationServer`](crate::AuthorizationServer) must use an
    /// HTTP client that presents this certificate, made by
    /// [`http_client`](crate::http::http_client) with it as
    /// [`client_certificate_pem`](crate::http::HttpClientOptions::client_certificate_pem).
    pub fn pushed_with_certificate(
        mut registration: Value,
        certificate_der: &[u8],
        public_jwk: Value,
    ) -> Self {
        if let Value::Object(members) = &mut registration {
            members.insert("jwks".into(), certificate_jwks(certificate_der, public_jwk));
            members.insert(
                "token_endpoint_auth_method".into(),
                Value::from(SELF_SIGNED_TLS_CLIENT_AUTH),
            );
        }
        Self::new(Authentication::PushedWithCertificate { registration })
    }

    /// A pre-registered public client.
    pub fn public(client_id: impl Into<String>) -> Self {
        Self::new(Authentication::Public {
            client_id: client_id.into(),
        })
    }

    /// A pre-registered confidential client with a shared secret.
    pub fn confidential(
        client_id: impl Into<String>,
        secret: impl Into<String>,
        method: SecretMethod,
    ) -> Self {
        Self::new(Authentication::Secret {
            client_id: client_id.into(),
            secret: secret.into(),
            method,
        })
    }

    /// A pre-registered client that authenticates with `private_key_jwt`
    /// (RFC 7523 §2.2): the server has `key`'s public JWK on file.
    pub fn private_key_jwt(client_id: impl Into<String>, key: ClientKey) -> Self {
        Self::new(Authentication::PrivateKeyJwt {
            client_id: client_id.into(),
            key,
        })
    }

    /// This identity, proving possession of `key` with a DPoP proof
    /// (RFC 9449) on its PAR, token and refresh requests: the grant and its
    /// tokens are bound to the key.
    pub fn with_dpop(mut self, key: DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// The `client_id` this client sends.
    pub fn client_id(&self) -> &str {
        match &self.authentication {
            Authentication::Pushed { .. } | Authentication::PushedWithCertificate { .. } => {
                PUSHED_CLIENT_URN
            }
            Authentication::Public { client_id }
            | Authentication::Secret { client_id, .. }
            | Authentication::PrivateKeyJwt { client_id, .. } => client_id,
        }
    }

    /// The metadata a pushed client sends as `client_registration`, exactly
    /// as it goes out; `None` for a pre-registered client.
    pub fn registration(&self) -> Option<&Value> {
        match &self.authentication {
            Authentication::Pushed { registration, .. }
            | Authentication::PushedWithCertificate { registration } => Some(registration),
            _ => None,
        }
    }

    /// The `token_endpoint_auth_method` (RFC 7591 §2) this client uses.
    pub fn token_endpoint_auth_method(&self) -> &'static str {
        match &self.authentication {
            Authentication::Pushed { key: None, .. } | Authentication::Public { .. } => "none",
            Authentication::Secret {
                method: SecretMethod::Basic,
                ..
            } => "client_secret_basic",
            Authentication::Secret {
                method: SecretMethod::Post,
                ..
            } => "client_secret_post",
            Authentication::Pushed { key: Some(_), .. } | Authentication::PrivateKeyJwt { .. } => {
                PRIVATE_KEY_JWT
            }
            Authentication::PushedWithCertificate { .. } => SELF_SIGNED_TLS_CLIENT_AUTH,
        }
    }

    /// The key client assertions are signed with, for `private_key_jwt`.
    pub fn client_key(&self) -> Option<&ClientKey> {
        match &self.authentication {
            Authentication::Pushed { key, .. } => key.as_ref(),
            Authentication::PrivateKeyJwt { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The DPoP key this identity proves, if any.
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.dpop.as_ref()
    }

    /// Adds this client's authentication to a back-channel form and returns
    /// the `Authorization` header value to send, if any. `audience` is the
    /// `aud` of a client assertion: Ephemera wants its issuer identifier.
    ///
    /// Clients without a secret identify themselves with `client_id`
    /// (RFC 6749 §3.2.1), and so do clients authenticated by their TLS
    /// certificate (RFC 8705 §2); `client_secret_post` puts both values in
    /// the body; `private_key_jwt` sends `client_id` (a pushed client has no
    /// other way to name itself) with a fresh assertion (RFC 7523 §2.2), so
    /// call this again for every request, retries included: the server
    /// refuses a replayed `jti`.
    pub(crate) fn authenticate(&self, form: &mut Form, audience: &str) -> Result<Option<String>> {
        match &self.authentication {
            Authentication::Pushed { key: None, .. }
            | Authentication::PushedWithCertificate { .. }
            | Authentication::Public { .. } => {
                form.push(("client_id".into(), self.client_id().into()));
                Ok(None)
            }
            Authentication::Pushed { key: Some(key), .. }
            | Authentication::PrivateKeyJwt { key, .. } => {
                let client_id = self.client_id();
                let assertion = key.assertion(client_id, audience)?;
                form.push(("client_id".into(), client_id.into()));
                form.push(("client_assertion_type".into(), JWT_BEARER_ASSERTION.into()));
                form.push(("client_assertion".into(), assertion));
                Ok(None)
            }
            Authentication::Secret {
                client_id,
                secret,
                method: SecretMethod::Basic,
            } => Ok(Some(basic_authorization(client_id, secret))),
            Authentication::Secret {
                client_id,
                secret,
                method: SecretMethod::Post,
            } => {
                form.push(("client_id".into(), client_id.clone()));
                form.push(("client_secret".into(), secret.clone()));
                Ok(None)
            }
        }
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("ClientIdentity");
        out.field("client_id", &self.client_id()).field(
            "token_endpoint_auth_method",
            &self.token_endpoint_auth_method(),
        );
        if let Some(registration) = self.registration() {
            out.field("registration", registration);
        }
        if let Authentication::Secret { .. } = &self.authentication {
            out.field("secret", &"[redacted]");
        }
        if let Some(key) = self.client_key() {
            out.field("client_key", key);
        }
        if let Some(key) = &self.dpop {
            out.field("dpop", key);
        }
        out.finish()
    }
}

/// `{"keys": [jwk]}` with the certificate as the key's `x5c` (RFC 7517
/// §4.7: standard base64 DER, not base64url) and no private member.
fn certificate_jwks(certificate_der: &[u8], public_jwk: Value) -> Value {
    let mut jwk = public_jwk;
    if let Value::Object(members) = &mut jwk {
        for name in PRIVATE_JWK_MEMBERS {
            members.remove(name);
        }
        members.insert(
            "x5c".into(),
            Value::from(vec![STANDARD.encode(certificate_der)]),
        );
    }
    serde_json::json!({ "keys": [jwk] })
}

/// The `Authorization` header value for `client_secret_basic`: RFC 6749
/// §2.3.1 requires both parts to be form-urlencoded before they are joined
/// and base64-encoded, so a `:` in the `client_id` cannot be misread.
pub fn basic_authorization(client_id: &str, secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ephemera_proto::assertion::{self, parse_jwks, Expectations};
    use serde_json::json;

    const ISSUER: &str = "https://as.example";

    fn pairs(form: &Form) -> Vec<(&str, &str)> {
        form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn basic_authorization_form_urlencodes_both_parts() {
        // "a:b c" -> "a%3Ab+c", "p@ss/w" -> "p%40ss%2Fw"
        let header = basic_authorization("a:b c", "p@ss/w");
        assert_eq!(
            header,
            format!("Basic {}", STANDARD.encode("a%3Ab+c:p%40ss%2Fw"))
        );
    }

    #[test]
    fn public_and_pushed_clients_send_their_client_id_in_the_body() {
        let mut form = Vec::new();
        let pushed = ClientIdentity::pushed(json!({}));
        assert_eq!(pushed.authenticate(&mut form, ISSUER).unwrap(), None);
        assert_eq!(pairs(&form), [("client_id", PUSHED_CLIENT_URN)]);
        assert_eq!(pushed.token_endpoint_auth_method(), "none");

        let mut form = Vec::new();
        let public = ClientIdentity::public("cli");
        assert_eq!(public.authenticate(&mut form, ISSUER).unwrap(), None);
        assert_eq!(pairs(&form), [("client_id", "cli")]);
        assert_eq!(public.registration(), None);
    }

    #[test]
    fn confidential_clients_use_their_chosen_method() {
        let mut form = Vec::new();
        let basic = ClientIdentity::confidential("svc", "s3cret", SecretMethod::Basic);
        assert_eq!(
            basic.authenticate(&mut form, ISSUER).unwrap(),
            Some(basic_authorization("svc", "s3cret"))
        );
        assert!(form.is_empty());

        let post = ClientIdentity::confidential("svc", "s3cret", SecretMethod::Post);
        assert_eq!(post.authenticate(&mut form, ISSUER).unwrap(), None);
        assert_eq!(
            pairs(&form),
            [("client_id", "svc"), ("client_secret", "s3cret")]
        );
        assert_eq!(basic.token_endpoint_auth_method(), "client_secret_basic");
        assert_eq!(post.token_endpoint_auth_method(), "client_secret_post");
    }

    #[test]
    fn a_pushed_client_with_a_key_pushes_its_jwks_and_signs_assertions() {
        let key = ClientKey::generate();
        let identity = ClientIdentity::pushed_with_key(
            json!({"client_name": "agent", "token_endpoint_auth_method": "none"}),
            key.clone(),
        );
        let mut form = Vec::new();

        let header = identity.authenticate(&mut form, ISSUER).unwrap();

        let registration = identity.registration().unwrap();
        assert_eq!(registration["client_name"], "agent");
        assert_eq!(registration["jwks"], key.jwks());
        assert_eq!(registration["token_endpoint_auth_method"], PRIVATE_KEY_JWT);
        assert_eq!(identity.token_endpoint_auth_method(), PRIVATE_KEY_JWT);
        assert_eq!(header, None);
        let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["client_id", "client_assertion_type", "client_assertion"]
        );
        assert_eq!(form[0].1, PUSHED_CLIENT_URN);
        assert_eq!(form[1].1, JWT_BEARER_ASSERTION);
        let keys = parse_jwks(&registration["jwks"]).unwrap();
        let expect = Expectations {
            client_id: PUSHED_CLIENT_URN,
            issuer: ISSUER,
            now: crate::keys::now(),
            max_lifetime: 300,
            leeway: 5,
        };
        let verified = assertion::verify(&form[2].1, &keys, &expect).unwrap();
        assert_eq!(verified.jkt, key.kid());
    }

    #[test]
    fn every_request_gets_a_fresh_assertion() {
        let identity = ClientIdentity::private_key_jwt("app", ClientKey::generate());
        let (mut first, mut second) = (Vec::new(), Vec::new());
        identity.authenticate(&mut first, ISSUER).unwrap();
        identity.authenticate(&mut second, ISSUER).unwrap();
        assert_eq!(first[0], ("client_id".to_owned(), "app".to_owned()));
        assert_ne!(first[2].1, second[2].1);
        assert_eq!(identity.registration(), None);
        assert_eq!(identity.token_endpoint_auth_method(), PRIVATE_KEY_JWT);
    }

    #[test]
    fn a_registration_that_is_not_an_object_is_sent_as_it_is() {
        let identity = ClientIdentity::pushed_with_key(json!(["odd"]), ClientKey::generate());
        assert_eq!(identity.registration(), Some(&json!(["odd"])));
        let identity = ClientIdentity::pushed_with_certificate(json!("odd"), b"der", json!({}));
        assert_eq!(identity.registration(), Some(&json!("odd")));
    }

    /// A self-signed certificate (DER) and its public key as a JWK.
    fn certificate() -> (Vec<u8>, Value) {
        let ck = rcgen::generate_simple_self_signed(vec!["agent".to_owned()]).unwrap();
        let raw = ck.key_pair.public_key_raw();
        let (x, y) = raw[1..].split_at(32);
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
        (ck.cert.der().to_vec(), jwk)
    }

    #[test]
    fn a_pushed_client_with_a_certificate_pushes_it_as_x5c() {
        let (der, jwk) = certificate();
        let identity = ClientIdentity::pushed_with_certificate(
            json!({
                "client_name": "agent",
                "token_endpoint_auth_method": "none",
                "jwks": {"keys": []},
                "tls_client_certificate_bound_access_tokens": true,
            }),
            &der,
            jwk.clone(),
        );

        let registration = identity.registration().unwrap();
        assert_eq!(registration["client_name"], "agent");
        assert_eq!(
            registration["token_endpoint_auth_method"],
            SELF_SIGNED_TLS_CLIENT_AUTH
        );
        assert_eq!(
            registration["tls_client_certificate_bound_access_tokens"],
            true
        );
        let mut expected = jwk;
        expected["x5c"] = json!([STANDARD.encode(&der)]);
        assert_eq!(registration["jwks"], json!({"keys": [expected]}));
        // The server reads the same jwks: a usable key, and the certificate
        // back from its x5c.
        assert_eq!(parse_jwks(&registration["jwks"]).unwrap().len(), 1);
        let x5c = registration["jwks"]["keys"][0]["x5c"][0].as_str().unwrap();
        assert_eq!(STANDARD.decode(x5c).unwrap(), der);
    }

    #[test]
    fn a_pushed_client_with_a_certificate_sends_only_its_client_id() {
        let (der, jwk) = certificate();
        let identity = ClientIdentity::pushed_with_certificate(json!({}), &der, jwk);
        let mut form = Vec::new();

        let header = identity.authenticate(&mut form, ISSUER).unwrap();

        assert_eq!(header, None);
        assert_eq!(pairs(&form), [("client_id", PUSHED_CLIENT_URN)]);
        assert_eq!(identity.client_id(), PUSHED_CLIENT_URN);
        assert_eq!(
            identity.token_endpoint_auth_method(),
            SELF_SIGNED_TLS_CLIENT_AUTH
        );
        assert!(identity.client_key().is_none());
        assert!(format!("{identity:?}").contains(SELF_SIGNED_TLS_CLIENT_AUTH));
    }

    #[test]
    fn a_private_jwk_given_for_a_certificate_is_pushed_without_its_private_parts() {
        let key = ClientKey::generate();
        let pem = key.to_pkcs8_pem().unwrap();
        use p256::pkcs8::DecodePrivateKey as _;
        let private = p256::SecretKey::from_pkcs8_pem(&pem)
            .unwrap()
            .to_jwk_string();
        let mut jwk: Value = serde_json::from_str(&private).unwrap();
        jwk["kid"] = json!("agent-1");
        assert!(jwk.get("d").is_some());

        let identity = ClientIdentity::pushed_with_certificate(json!({}), b"der", jwk);

        let pushed = &identity.registration().unwrap()["jwks"]["keys"][0];
        assert_eq!(pushed.get("d"), None);
        assert_eq!(pushed["kid"], "agent-1");
        assert_eq!(pushed["x"], key.jwks()["keys"][0]["x"]);
        assert_eq!(pushed["x5c"], json!([STANDARD.encode(b"der")]));
    }

    #[test]
    fn the_dpop_key_travels_with_the_identity() {
        let key = DpopKey::generate();
        let identity = ClientIdentity::public("app").with_dpop(key.clone());
        assert_eq!(identity.dpop_key().map(DpopKey::jkt), Some(key.jkt()));
        assert!(ClientIdentity::public("app").dpop_key().is_none());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let identity = ClientIdentity::confidential("svc", "s3cret", SecretMethod::Basic);
        let printed = format!("{identity:?}");
        assert!(printed.contains("svc") && !printed.contains("s3cret"));
        assert!(printed.contains("[redacted]"));
    }
}
