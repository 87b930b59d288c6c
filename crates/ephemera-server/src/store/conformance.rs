//! The storage conformance suite: one set of tests every [`Store`] backend
//! must pass, so the services can rely on the trait's documented behavior
//! (one-time use under concurrency, expiry, cascades, exact counts) whatever
//! database is underneath.
//!
//! Each test is an `async fn` taking the store (`&dyn Store`, or
//! `Arc<dyn Store>` for the concurrent ones) and knows nothing of the backend.
//! [`conformance_suite!`] instantiates them all for one backend, each test with
//! its own fresh, migrated database.
//!
//! To add a backend, write an `async fn open_<backend>() -> Option<(Arc<dyn Store>, G)>`
//! that returns a fresh, migrated store and a guard `G` that keeps its
//! database alive (and cleans it up on drop), or `None` when this run has no
//! such database (after saying so), then add one line below `open_sqlite`:
//! `conformance_suite!(<backend> => open_<backend>);`.
//!
//! PostgreSQL: the tests run against `EPHEMERA_TEST_DATABASE_URL`
//! (`.ci/run` sets it), each in a schema of its own, created and dropped
//! around it. Without the variable they say they are skipped and pass,
//! except on CI (`CI` set), where they fail: CI must run them.
//!
//! To add a test, write the `async fn` below and list it in the macro.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::str::FromStr as _;
use std::sync::Arc;

use ephemera_proto::scope::Scope;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};
use tempfile::TempDir;
use tokio::sync::Barrier;

use super::{Store, StoreError, SweepReport};
use crate::model::{
    AuthMethod, Authentication, ClientKind, ClientSnapshot, Code, Grant, GrantFilter, GrantSummary,
    KeyBinding, OidcRequest, PendingRequest, SelfDescription, Session, SignIn, SigningKey, Stats,
    StoredClient, Timestamp, Token, TokenKind, UpstreamIdentity, User, UserClaims,
};
use crate::secret::{Secret, SecretHash};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;

/// Instantiates every conformance test for one backend, in a module named
/// after it. `$open` names an `async fn() -> Option<(Arc<dyn Store>, impl Sized)>`;
/// `None` skips the test.
macro_rules! conformance_suite {
    ($backend:ident => $open:ident) => {
        mod $backend {
            conformance_suite!(@sequential $open;
                users_are_found_by_name_and_listed_in_username_order,
                a_duplicate_username_is_a_conflict,
                a_user_is_found_by_id_and_its_claims_replaced,
                an_upstream_identity_signs_in_as_its_user_and_is_linked_once,
                an_upstream_user_is_stored_whole_or_not_at_all,
                an_upstream_login_is_taken_once_and_only_before_it_expires,
                a_session_keeps_how_its_user_signed_in,
                a_client_round_trips_with_its_secret_hash,
                a_duplicate_client_id_is_a_conflict,
                deleting_a_client_removes_its_grants_tokens_and_consents,
                deleting_a_missing_client_returns_false,
                active_signing_keys_are_listed_newest_first,
                retired_keys_stay_published_for_a_while_after_the_signing_ones,
                only_one_first_signing_key_is_stored,
                rate_limit_hits_are_counted_per_key_and_window,
                a_pushed_request_is_found_until_it_expires,
                opening_a_pushed_request_moves_its_expiry_once_and_never_again,
                opening_a_pushed_request_never_moves_its_expiry_earlier,
                opening_an_expired_pushed_request_does_not_revive_it,
                a_pushed_request_is_taken_exactly_once,
                an_expired_pushed_request_cannot_be_taken,
                pending_requests_beyond_the_limit_are_refused_until_one_is_taken,
                a_sweep_takes_every_expired_pending_request_however_many,
                expired_pending_requests_do_not_count_toward_the_limit,
                the_pending_count_equals_the_rows_through_lookups_opens_takes_and_sweeps,
                front_channel_requests_have_a_budget_apart_from_pushed_ones,
                a_session_is_found_with_its_username_until_it_expires,
                a_deleted_session_is_not_found,
                a_saved_consent_is_found_and_overwritten_by_the_next,
                a_new_code_is_found_unused_with_its_grant,
                a_code_is_redeemed_exactly_once,
                a_grant_with_tokens_stores_them_with_the_grant,
                ending_a_grant_ends_the_grants_exchanged_from_it_down_the_chain,
                a_grant_exchanged_from_one_that_is_gone_is_not_stored,
                a_refresh_token_is_rotated_exactly_once,
                an_access_token_cannot_be_rotated,
                a_revoked_token_is_not_found_and_its_grant_stays_while_another_lives,
                revoking_the_last_live_token_deletes_its_grant_in_the_same_call,
                a_sweep_finds_grants_left_with_nothing_whatever_left_them_so,
                deleting_a_grant_removes_its_codes_and_tokens,
                a_grant_with_a_live_token_or_unused_code_has_not_ended,
                a_grant_with_nothing_live_left_is_deleted_when_ended,
                sweep_removes_what_expired_and_ended_and_keeps_what_lives,
                stats_of_an_empty_store_are_zero,
                stats_count_exactly_what_is_live,
                a_jti_is_accepted_once_until_its_window_ends,
                a_token_keeps_its_key_binding,
                a_dynamic_client_round_trips_is_touched_and_swept_when_it_expires,
                a_client_is_found_by_its_fingerprint_which_is_unique_and_cleared_by_an_update,
                grants_are_listed_by_user_and_client_newest_first_with_their_live_tokens,
                a_grant_is_deleted_for_a_user_only_if_that_user_granted_it,
                grants_are_listed_by_the_key_they_are_bound_to_at_par_or_at_the_token_endpoint,
                sweep_forgets_expired_jtis,
                a_name_with_a_nul_character_is_not_found,
                a_jti_with_a_nul_character_or_a_backslash_is_remembered_exactly,
            );
            conformance_suite!(@concurrent $open;
                a_pushed_request_is_taken_exactly_once_under_concurrency,
                a_code_is_redeemed_exactly_once_under_concurrency,
                a_refresh_token_is_rotated_exactly_once_under_concurrency,
                a_jti_is_accepted_once_under_concurrency,
            );
        }
    };
    (@sequential $open:ident; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((store, _guard)) = super::$open().await else {
                    return;
                };
                super::$name(&*store).await;
            }
        )*
    };
    (@concurrent $open:ident; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = super::$open().await else {
                    return;
                };
                super::$name(store).await;
            }
        )*
    };
}

/// A fresh SQLite file in its own temporary directory, migrated.
async fn open_sqlite() -> Option<(Arc<dyn Store>, TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ephemera.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    Some((Arc::new(store), dir))
}

conformance_suite!(sqlite => open_sqlite);

/// The PostgreSQL database the PostgreSQL tests use (`.ci/run` sets it).
const POSTGRES_URL_VAR: &str = "EPHEMERA_TEST_DATABASE_URL";

/// A fresh schema in the database at `EPHEMERA_TEST_DATABASE_URL`, migrated,
/// and a store whose connections use only it (`search_path`). `None`, after
/// saying so, when the variable is not set; a failure on CI.
async fn open_postgres() -> Option<(Arc<dyn Store>, PgSchema)> {
    let schema = PgSchema::create().await?;
    let store = PostgresStore::open_with(schema.options()).await.unwrap();
    store.migrate().await.unwrap();
    Some((Arc::new(store), schema))
}

/// One test's PostgreSQL schema, dropped with everything in it when the test
/// ends, whether it passed or panicked.
struct PgSchema {
    url: String,
    name: String,
}

impl PgSchema {
    /// A new, empty schema, or `None` (see [`open_postgres`]).
    async fn create() -> Option<Self> {
        let Some(url) = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL conformance tests, but {POSTGRES_URL_VAR} is not set"
            );
            // libtest names the thread after the test. Written to stderr
            // itself, past the harness's capture of `eprintln!`, so a skip is seen.
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "skipping: {POSTGRES_URL_VAR} is not set ({test})"
            );
            return None;
        };
        let name = format!("ephemera_test_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!(r#"CREATE SCHEMA "{name}""#))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(Self { url, name })
    }

    /// Connections that see only this schema, named after it so that
    /// [`Drop`] can find them.
    fn options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&self.url)
            .unwrap()
            .options([("search_path", self.name.as_str())])
            .application_name(&self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // `drop` cannot await, and the test's runtime may have one thread,
        // blocked here: clean up with a runtime of its own on a thread of its own.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(async {
                    let options =
                        PgConnectOptions::from_str(&url)?.options([("lock_timeout", "10s")]);
                    let mut conn = PgConnection::connect_with(&options).await?;
                    // The store's connections carry the schema's name; ending
                    // them releases any lock a failed test left behind, which
                    // DROP SCHEMA would otherwise wait for.
                    sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    )
                    .bind(&name)
                    .execute(&mut conn)
                    .await?;
                    sqlx::query(&format!(r#"DROP SCHEMA IF EXISTS "{name}" CASCADE"#))
                        .execute(&mut conn)
                        .await?;
                    conn.close().await
                })
                .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            // Not a panic: this may run while a failed test unwinds.
            let _ = writeln!(
                std::io::stderr(),
                "could not drop the test schema {}: {done:?}",
                self.name
            );
        }
    }
}

conformance_suite!(postgres => open_postgres);

/// Several nodes starting at once against one new database each run the
/// migrations: sqlx's migrator takes a PostgreSQL advisory lock, so they take
/// turns, the first applies every migration and the others find them applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_starting_together_apply_each_migration_once() {
    let Some(schema) = PgSchema::create().await else {
        return;
    };
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(PostgresStore::open_with(schema.options()).await.unwrap());
    }
    let start = Arc::new(Barrier::new(nodes.len()));

    let starting: Vec<_> = nodes
        .into_iter()
        .map(|node| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                node.migrate().await
            })
        })
        .collect();
    for node in starting {
        node.await.unwrap().unwrap();
    }

    let mut conn = PgConnection::connect_with(&schema.options()).await.unwrap();
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count() as i64;
    assert_eq!(
        applied,
        (1..=files).collect::<Vec<_>>(),
        "each migration applied once"
    );
    conn.close().await.unwrap();
}

// ---------------------------------------------------------------------------
// Model builders
// ---------------------------------------------------------------------------

/// The pinned "now" of every test (time is an input).
const NOW: Timestamp = 1_700_000_000;

/// How many tasks race in the concurrent tests.
const RACERS: usize = 16;

fn new_hash() -> SecretHash {
    Secret::generate().hash()
}

fn new_id() -> String {
    Secret::generate().into_string()
}

fn scope(s: &str) -> Scope {
    Scope::parse(s).unwrap()
}

fn user(username: &str) -> User {
    User {
        id: new_id(),
        username: username.to_owned(),
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$salt${username}")),
        claims: UserClaims {
            name: Some(format!("{username} Example")),
            email: Some(format!("{username}@example.com")),
            email_verified: Some(true),
            ..UserClaims::default()
        },
        created_at: NOW,
    }
}

fn registered_client(client_id: &str) -> StoredClient {
    StoredClient {
        client_id: client_id.to_owned(),
        name: Some(format!("{client_id} app")),
        redirect_uris: vec![format!("https://{client_id}.example/callback")],
        allowed_scope: Some(scope("read write")),
        confidential: true,
        can_introspect: false,
        created_at: NOW,
        jwks: None,
        grant_types: None,
        self_described: None,
        secret_hash: Some(new_hash()),
    }
}

/// A pushed client: it exists only inside the grants that carry it.
fn pushed_client() -> ClientSnapshot {
    ClientSnapshot {
        caps: None,
        client_id: format!("pushed:{}", new_id()),
        kind: ClientKind::Pushed,
        auth_method: AuthMethod::None,
        name: Some("Agent".to_owned()),
        redirect_uris: vec!["http://127.0.0.1/callback".to_owned()],
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        response_types: vec!["code".to_owned()],
        allowed_scope: None,
        metadata: json!({ "client_name": "Agent", "token_endpoint_auth_method": "none" }),
        jwks: None,
        verified_origin: None,
    }
}

fn grant(client: ClientSnapshot) -> Grant {
    Grant {
        id: new_id(),
        client,
        key_binding: KeyBinding::default(),
        subject: Some("user-1".to_owned()),
        username: Some("alice".to_owned()),
        scope: scope("read"),
        resources: vec!["https://api.example/".to_owned()],
        created_at: NOW,
        redirect_uri: Some("http://127.0.0.1/callback".to_owned()),
        // Kept in the grant's JSON: both backends must give it back whole.
        authentication: Some(Authentication {
            auth_time: NOW - 30,
            amr: vec!["pwd".to_owned()],
            acr: Some("urn:example:loa:1".to_owned()),
            nonce: Some("n-0S6_WzA2Mj".to_owned()),
        }),
        exchanged: None,
    }
}

fn code(grant: &Grant, expires_at: Timestamp) -> Code {
    Code {
        hash: new_hash(),
        grant_id: grant.id.clone(),
        redirect_uri: Some("http://127.0.0.1/callback".to_owned()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        expires_at,
    }
}

fn token(grant: &Grant, kind: TokenKind, expires_at: Timestamp) -> Token {
    Token {
        hash: new_hash(),
        grant_id: grant.id.clone(),
        kind,
        scope: scope("read"),
        issued_at: NOW,
        expires_at,
        used_at: None,
        jkt: None,
        x5t: None,
        audience: None,
    }
}

/// An access and a refresh token for `grant`, both live for an hour.
fn token_pair(grant: &Grant) -> Vec<Token> {
    vec![
        token(grant, TokenKind::Access, NOW + 3600),
        token(grant, TokenKind::Refresh, NOW + 3600),
    ]
}

/// A limit on pending requests no test reaches.
const NO_LIMIT: u64 = u64::MAX;

fn pushed_request(expires_at: Timestamp) -> PendingRequest {
    PendingRequest {
        client: pushed_client(),
        redirect_uri: "http://127.0.0.1/callback".to_owned(),
        redirect_uri_sent: true,
        state: Some("xyz".to_owned()),
        scope: scope("read"),
        resources: vec![],
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        key_binding: KeyBinding::default(),
        created_at: NOW,
        expires_at,
        front_channel: false,
        // Kept in the request's JSON: both backends must give it back whole.
        oidc: OidcRequest {
            nonce: Some("n-0S6_WzA2Mj".to_owned()),
            max_age: Some(0),
            prompt: ephemera_proto::oidc::Prompt {
                login: true,
                ..Default::default()
            },
        },
    }
}

fn session(user: &User, expires_at: Timestamp) -> Session {
    Session {
        hash: new_hash(),
        user_id: user.id.clone(),
        username: user.username.clone(),
        created_at: NOW,
        expires_at,
        sign_in: SignIn::password(),
    }
}

fn signing_key(kid: &str, created_at: Timestamp) -> SigningKey {
    SigningKey {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        private_der: kid.as_bytes().to_vec(),
        public_jwk: json!({ "kty": "EC", "crv": "P-256", "kid": kid }),
        created_at,
        retired_at: None,
    }
}

/// Whether `token` is stored, exactly as it was given.
async fn is_stored(store: &dyn Store, token: &Token) -> bool {
    match store.find_token(&token.hash).await.unwrap() {
        Some(stored) => {
            assert_eq!(&stored.token, token);
            true
        }
        None => false,
    }
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

async fn users_are_found_by_name_and_listed_in_username_order(store: &dyn Store) {
    let bob = user("bob");
    let alice = user("alice");
    store.insert_user(&bob).await.unwrap();
    store.insert_user(&alice).await.unwrap();

    assert_eq!(
        store.find_user_by_name("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.find_user_by_name("carol").await.unwrap(), None);
    assert_eq!(store.list_users().await.unwrap(), vec![alice, bob]);
}

async fn a_duplicate_username_is_a_conflict(store: &dyn Store) {
    let first = user("alice");
    store.insert_user(&first).await.unwrap();

    let result = store.insert_user(&user("alice")).await;

    assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
    assert_eq!(store.list_users().await.unwrap(), vec![first]);
}

async fn a_user_is_found_by_id_and_its_claims_replaced(store: &dyn Store) {
    let alice = User {
        password_hash: None,
        ..user("alice")
    };
    store.insert_user(&alice).await.unwrap();
    let claims = UserClaims {
        name: Some("Alice Liddell".into()),
        locale: Some("en-GB".into()),
        ..UserClaims::default()
    };

    assert!(store.update_user_claims(&alice.id, &claims).await.unwrap());

    let found = store.find_user(&alice.id).await.unwrap().unwrap();
    assert_eq!(found.claims, claims);
    assert_eq!(found.password_hash, None);
    assert_eq!(store.find_user("nobody").await.unwrap(), None);
    assert!(!store.update_user_claims("nobody", &claims).await.unwrap());
}

fn identity(issuer: &str, subject: &str, user: &User) -> UpstreamIdentity {
    UpstreamIdentity {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        user_id: user.id.clone(),
        provider: "corp".to_owned(),
        created_at: NOW,
    }
}

async fn an_upstream_identity_signs_in_as_its_user_and_is_linked_once(store: &dyn Store) {
    let alice = user("alice");
    let bob = user("bob");
    store.insert_user(&alice).await.unwrap();
    store.insert_user(&bob).await.unwrap();

    store
        .link_upstream_identity(&identity("https://idp.example", "248289761001", &alice))
        .await
        .unwrap();
    let again = store
        .link_upstream_identity(&identity("https://idp.example", "248289761001", &bob))
        .await;

    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    let found = store
        .find_upstream_user("https://idp.example", "248289761001")
        .await
        .unwrap();
    assert_eq!(found, Some(alice.clone()));
    // The same subject at another issuer is someone else.
    assert_eq!(
        store
            .find_upstream_user("https://other.example", "248289761001")
            .await
            .unwrap(),
        None
    );
}

async fn an_upstream_user_is_stored_whole_or_not_at_all(store: &dyn Store) {
    let taken = user("alice");
    store.insert_user(&taken).await.unwrap();
    let newcomer = User {
        password_hash: None,
        ..user("alice")
    };

    let result = store
        .insert_upstream_user(&newcomer, &identity("https://idp.example", "s1", &newcomer))
        .await;

    assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
    assert_eq!(
        store
            .find_upstream_user("https://idp.example", "s1")
            .await
            .unwrap(),
        None
    );
    let carol = User {
        password_hash: None,
        ..user("carol")
    };
    store
        .insert_upstream_user(&carol, &identity("https://idp.example", "s2", &carol))
        .await
        .unwrap();
    assert_eq!(
        store
            .find_upstream_user("https://idp.example", "s2")
            .await
            .unwrap(),
        Some(carol)
    );
}

async fn an_upstream_login_is_taken_once_and_only_before_it_expires(store: &dyn Store) {
    let login = |state: &str, expires_at| crate::model::UpstreamLogin {
        state_hash: SecretHash::of(state),
        browser_hash: SecretHash::of("browser"),
        provider: "corp".to_owned(),
        return_to: "sealed".to_owned(),
        created_at: NOW,
        expires_at,
    };
    store
        .insert_upstream_login(&login("live", NOW + 600))
        .await
        .unwrap();
    store
        .insert_upstream_login(&login("old", NOW + 10))
        .await
        .unwrap();
    let twice = store.insert_upstream_login(&login("live", NOW + 600)).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");

    let taken = store
        .take_upstream_login(&SecretHash::of("live"), NOW)
        .await
        .unwrap();
    let again = store
        .take_upstream_login(&SecretHash::of("live"), NOW)
        .await
        .unwrap();
    let expired = store
        .take_upstream_login(&SecretHash::of("old"), NOW + 10)
        .await
        .unwrap();

    assert_eq!(taken, Some(login("live", NOW + 600)));
    assert_eq!(again, None, "a callback replayed");
    assert_eq!(expired, None);
    let report = store.sweep(NOW + 10).await.unwrap();
    assert_eq!(report.upstream_logins, 1);
}

async fn a_session_keeps_how_its_user_signed_in(store: &dyn Store) {
    let alice = user("alice");
    store.insert_user(&alice).await.unwrap();
    let s = Session {
        sign_in: SignIn {
            amr: vec!["fed".into(), "mfa".into()],
            acr: Some("urn:example:loa:2".into()),
            provider: Some("corp".into()),
        },
        ..session(&alice, NOW + 60)
    };
    store.insert_session(&s).await.unwrap();

    let found = store.find_session(&s.hash, NOW).await.unwrap().unwrap();

    assert_eq!(found.sign_in, s.sign_in);
}

// ---------------------------------------------------------------------------
// Registered clients
// ---------------------------------------------------------------------------

async fn a_client_round_trips_with_its_secret_hash(store: &dyn Store) {
    let confidential = registered_client("zeta");
    let public = StoredClient {
        confidential: false,
        secret_hash: None,
        allowed_scope: None,
        ..registered_client("alpha")
    };
    store.insert_client(&confidential).await.unwrap();
    store.insert_client(&public).await.unwrap();

    let found = store.find_client("zeta").await.unwrap().unwrap();
    assert_eq!(found, confidential);
    assert!(found.secret_hash.is_some());
    assert_eq!(
        store.find_client("alpha").await.unwrap(),
        Some(public.clone())
    );
    assert_eq!(store.find_client("missing").await.unwrap(), None);
    assert_eq!(
        store.list_clients().await.unwrap(),
        vec![public, confidential]
    );
}

async fn a_duplicate_client_id_is_a_conflict(store: &dyn Store) {
    store
        .insert_client(&registered_client("app"))
        .await
        .unwrap();

    let result = store.insert_client(&registered_client("app")).await;

    assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
}

async fn deleting_a_client_removes_its_grants_tokens_and_consents(store: &dyn Store) {
    let alice = user("alice");
    store.insert_user(&alice).await.unwrap();
    let doomed = registered_client("doomed");
    let kept = registered_client("kept");
    store.insert_client(&doomed).await.unwrap();
    store.insert_client(&kept).await.unwrap();
    let doomed_grant = grant(doomed.snapshot());
    let doomed_code = code(&doomed_grant, NOW + 60);
    store
        .insert_grant_with_code(&doomed_grant, &doomed_code)
        .await
        .unwrap();
    let doomed_tokens = token_pair(&doomed_grant);
    assert!(store
        .redeem_code(&doomed_code.hash, NOW, &doomed_tokens)
        .await
        .unwrap());
    let kept_grant = grant(kept.snapshot());
    let kept_tokens = token_pair(&kept_grant);
    store
        .insert_grant_with_tokens(&kept_grant, &kept_tokens)
        .await
        .unwrap();
    store
        .save_consent(&alice.id, "doomed", &scope("read"), NOW)
        .await
        .unwrap();

    assert!(store.delete_client("doomed").await.unwrap());

    assert_eq!(store.find_client("doomed").await.unwrap(), None);
    assert!(store.find_code(&doomed_code.hash).await.unwrap().is_none());
    for t in &doomed_tokens {
        assert!(!is_stored(store, t).await);
    }
    assert_eq!(store.find_consent(&alice.id, "doomed").await.unwrap(), None);
    for t in &kept_tokens {
        assert!(is_stored(store, t).await);
    }
    let stats = store.stats(NOW).await.unwrap();
    assert_eq!((stats.grants, stats.registered_clients), (1, 1));
}

async fn deleting_a_missing_client_returns_false(store: &dyn Store) {
    assert!(!store.delete_client("missing").await.unwrap());

    store
        .insert_client(&registered_client("app"))
        .await
        .unwrap();
    assert!(store.delete_client("app").await.unwrap());
    assert!(!store.delete_client("app").await.unwrap());
}

// ---------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------

async fn active_signing_keys_are_listed_newest_first(store: &dyn Store) {
    let oldest = signing_key("k-oldest", NOW - 200);
    let newest = signing_key("k-newest", NOW);
    let middle = signing_key("k-middle", NOW - 100);
    for key in [&oldest, &newest, &middle] {
        store.insert_signing_key(key).await.unwrap();
    }

    let keys = store.signing_keys(NOW).await.unwrap();

    assert_eq!(keys, vec![newest, middle, oldest]);
}

async fn rate_limit_hits_are_counted_per_key_and_window(store: &dyn Store) {
    assert_eq!(store.hit_rate_limit("register:a", 60).await.unwrap(), 1);
    assert_eq!(store.hit_rate_limit("register:a", 60).await.unwrap(), 2);
    assert_eq!(store.hit_rate_limit("register:b", 60).await.unwrap(), 1);
    assert_eq!(
        store.hit_rate_limit("register:a", 120).await.unwrap(),
        1,
        "a new window starts over"
    );
    store.sweep(300).await.unwrap();
    assert_eq!(store.hit_rate_limit("register:a", 300).await.unwrap(), 1);
}

async fn only_one_first_signing_key_is_stored(store: &dyn Store) {
    assert!(store
        .insert_first_signing_key(&signing_key("k-1", NOW))
        .await
        .unwrap());
    assert!(!store
        .insert_first_signing_key(&signing_key("k-2", NOW))
        .await
        .unwrap());
    assert_eq!(store.signing_keys(NOW).await.unwrap().len(), 1);
}

async fn retired_keys_stay_published_for_a_while_after_the_signing_ones(store: &dyn Store) {
    let old = signing_key("k-old", NOW - 100);
    let new = signing_key("k-new", NOW);
    store.insert_signing_key(&old).await.unwrap();
    store.insert_signing_key(&new).await.unwrap();

    assert_eq!(store.retire_signing_keys("k-new", NOW).await.unwrap(), 1);

    let retired = SigningKey {
        retired_at: Some(NOW),
        ..old
    };
    assert_eq!(
        store.signing_keys(NOW - 10).await.unwrap(),
        vec![new.clone(), retired]
    );
    assert_eq!(
        store.signing_keys(NOW).await.unwrap(),
        vec![new],
        "retired before the cut-off: gone"
    );
}

// ---------------------------------------------------------------------------
// Pushed requests (RFC 9126)
// ---------------------------------------------------------------------------

async fn a_pushed_request_is_found_until_it_expires(store: &dyn Store) {
    let hash = new_hash();
    let request = pushed_request(NOW + 60);
    store
        .insert_pending_request(&hash, &request, NO_LIMIT)
        .await
        .unwrap();

    assert_eq!(
        store.find_pending_request(&hash, NOW).await.unwrap(),
        Some(request.clone())
    );
    assert_eq!(
        store.find_pending_request(&hash, NOW + 59).await.unwrap(),
        Some(request)
    );
    assert_eq!(
        store.find_pending_request(&hash, NOW + 60).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_pending_request(&hash, NOW + 61).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_pending_request(&new_hash(), NOW).await.unwrap(),
        None
    );
}

async fn opening_a_pushed_request_moves_its_expiry_once_and_never_again(store: &dyn Store) {
    let hash = new_hash();
    store
        .insert_pending_request(&hash, &pushed_request(NOW + 60), NO_LIMIT)
        .await
        .unwrap();

    store
        .open_pending_request(&hash, NOW + 600, NOW)
        .await
        .unwrap();
    let opened = store
        .find_pending_request(&hash, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.expires_at, NOW + 600);

    // A reload later on does not start the window again.
    store
        .open_pending_request(&hash, NOW + 300 + 600, NOW + 300)
        .await
        .unwrap();
    let kept = store
        .find_pending_request(&hash, NOW + 300)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.expires_at, NOW + 600);
    assert!(store
        .find_pending_request(&hash, NOW + 600)
        .await
        .unwrap()
        .is_none());
}

async fn opening_a_pushed_request_never_moves_its_expiry_earlier(store: &dyn Store) {
    let hash = new_hash();
    store
        .insert_pending_request(&hash, &pushed_request(NOW + 600), NO_LIMIT)
        .await
        .unwrap();
    store
        .open_pending_request(&hash, NOW + 120, NOW)
        .await
        .unwrap();
    let kept = store
        .find_pending_request(&hash, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.expires_at, NOW + 600);
}

async fn opening_an_expired_pushed_request_does_not_revive_it(store: &dyn Store) {
    let hash = new_hash();
    store
        .insert_pending_request(&hash, &pushed_request(NOW + 60), NO_LIMIT)
        .await
        .unwrap();

    store
        .open_pending_request(&hash, NOW + 600, NOW + 60)
        .await
        .unwrap();

    assert_eq!(
        store.find_pending_request(&hash, NOW + 61).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .find_pending_request(&hash, NOW)
            .await
            .unwrap()
            .map(|r| r.expires_at),
        Some(NOW + 60)
    );
}

async fn a_pushed_request_is_taken_exactly_once(store: &dyn Store) {
    let hash = new_hash();
    let request = pushed_request(NOW + 60);
    store
        .insert_pending_request(&hash, &request, NO_LIMIT)
        .await
        .unwrap();

    assert_eq!(
        store.take_pending_request(&hash, NOW).await.unwrap(),
        Some(request)
    );
    assert_eq!(store.take_pending_request(&hash, NOW).await.unwrap(), None);
    assert_eq!(store.find_pending_request(&hash, NOW).await.unwrap(), None);
}

async fn an_expired_pushed_request_cannot_be_taken(store: &dyn Store) {
    let hash = new_hash();
    store
        .insert_pending_request(&hash, &pushed_request(NOW + 60), NO_LIMIT)
        .await
        .unwrap();

    assert_eq!(
        store.take_pending_request(&hash, NOW + 60).await.unwrap(),
        None
    );
}

async fn a_pushed_request_is_taken_exactly_once_under_concurrency(store: Arc<dyn Store>) {
    let hash = new_hash();
    let request = pushed_request(NOW + 60);
    store
        .insert_pending_request(&hash, &request, NO_LIMIT)
        .await
        .unwrap();
    let start = Arc::new(Barrier::new(RACERS));

    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, start, hash) = (store.clone(), start.clone(), hash.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.take_pending_request(&hash, NOW).await
            })
        })
        .collect();
    let mut taken = Vec::new();
    for racer in racers {
        if let Some(r) = racer.await.unwrap().unwrap() {
            taken.push(r);
        }
    }

    assert_eq!(taken, vec![request]);
    assert_eq!(store.find_pending_request(&hash, NOW).await.unwrap(), None);
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

async fn a_session_is_found_with_its_username_until_it_expires(store: &dyn Store) {
    let alice = user("alice");
    store.insert_user(&alice).await.unwrap();
    let s = session(&alice, NOW + 60);
    store.insert_session(&s).await.unwrap();

    let found = store.find_session(&s.hash, NOW).await.unwrap();

    assert_eq!(found, Some(s.clone()));
    assert_eq!(found.map(|f| f.username), Some("alice".to_owned()));
    assert_eq!(store.find_session(&s.hash, NOW + 60).await.unwrap(), None);
    assert_eq!(store.find_session(&new_hash(), NOW).await.unwrap(), None);
}

async fn a_deleted_session_is_not_found(store: &dyn Store) {
    let alice = user("alice");
    store.insert_user(&alice).await.unwrap();
    let gone = session(&alice, NOW + 60);
    let other = session(&alice, NOW + 60);
    store.insert_session(&gone).await.unwrap();
    store.insert_session(&other).await.unwrap();

    store.delete_session(&gone.hash).await.unwrap();
    store.delete_session(&new_hash()).await.unwrap();

    assert_eq!(store.find_session(&gone.hash, NOW).await.unwrap(), None);
    assert_eq!(
        store.find_session(&other.hash, NOW).await.unwrap(),
        Some(other)
    );
}

// ---------------------------------------------------------------------------
// Consents
// ---------------------------------------------------------------------------

async fn a_saved_consent_is_found_and_overwritten_by_the_next(store: &dyn Store) {
    let alice = user("alice");
    let bob = user("bob");
    store.insert_user(&alice).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    store
        .insert_client(&registered_client("app"))
        .await
        .unwrap();
    assert_eq!(store.find_consent(&alice.id, "app").await.unwrap(), None);

    store
        .save_consent(&alice.id, "app", &scope("read write"), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.find_consent(&alice.id, "app").await.unwrap(),
        Some(scope("read write"))
    );

    store
        .save_consent(&alice.id, "app", &scope("read"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store.find_consent(&alice.id, "app").await.unwrap(),
        Some(scope("read"))
    );
    assert_eq!(store.find_consent(&bob.id, "app").await.unwrap(), None);
}

// ---------------------------------------------------------------------------
// Grants and codes
// ---------------------------------------------------------------------------

async fn a_new_code_is_found_unused_with_its_grant(store: &dyn Store) {
    let g = grant(pushed_client());
    let c = code(&g, NOW + 60);

    store.insert_grant_with_code(&g, &c).await.unwrap();

    let found = store.find_code(&c.hash).await.unwrap().unwrap();
    assert_eq!(found.code, c);
    assert!(!found.used);
    assert_eq!(found.grant, g);
    assert!(store.find_code(&new_hash()).await.unwrap().is_none());
}

async fn a_code_is_redeemed_exactly_once(store: &dyn Store) {
    let g = grant(pushed_client());
    let c = code(&g, NOW + 60);
    store.insert_grant_with_code(&g, &c).await.unwrap();
    let first = token_pair(&g);
    let second = token_pair(&g);

    assert!(store.redeem_code(&c.hash, NOW, &first).await.unwrap());
    assert!(!store.redeem_code(&c.hash, NOW + 1, &second).await.unwrap());

    assert!(store.find_code(&c.hash).await.unwrap().unwrap().used);
    for t in &first {
        let stored = store.find_token(&t.hash).await.unwrap().unwrap();
        assert_eq!(&stored.token, t);
        assert_eq!(stored.grant, g);
    }
    for t in &second {
        assert!(!is_stored(store, t).await);
    }
    let stats = store.stats(NOW).await.unwrap();
    assert_eq!(
        (stats.codes, stats.access_tokens, stats.refresh_tokens),
        (0, 1, 1)
    );
}

async fn a_code_is_redeemed_exactly_once_under_concurrency(store: Arc<dyn Store>) {
    let g = grant(pushed_client());
    let c = code(&g, NOW + 60);
    store.insert_grant_with_code(&g, &c).await.unwrap();
    let start = Arc::new(Barrier::new(RACERS));

    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, start, hash) = (store.clone(), start.clone(), c.hash.clone());
            let tokens = token_pair(&g);
            tokio::spawn(async move {
                start.wait().await;
                let won = store.redeem_code(&hash, NOW, &tokens).await;
                (won, tokens)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for racer in racers {
        let (won, tokens) = racer.await.unwrap();
        if won.unwrap() {
            winners.push(tokens);
        } else {
            losers.push(tokens);
        }
    }

    assert_eq!(winners.len(), 1, "exactly one redemption wins");
    for t in &winners[0] {
        assert!(is_stored(&*store, t).await);
    }
    for t in losers.iter().flatten() {
        assert!(!is_stored(&*store, t).await);
    }
    let stats = store.stats(NOW).await.unwrap();
    assert_eq!(
        (stats.codes, stats.access_tokens, stats.refresh_tokens),
        (0, 1, 1)
    );
}

/// A grant made by token exchange, child of `parent`.
fn exchanged_from(parent: &Grant) -> Grant {
    Grant {
        exchanged: Some(crate::model::Exchanged {
            parent: parent.id.clone(),
            subject_client: parent.client.client_id.clone(),
            act: Some(json!({ "sub": "mcp", "client_id": "mcp" })),
        }),
        ..grant(registered_client("mcp").snapshot())
    }
}

async fn ending_a_grant_ends_the_grants_exchanged_from_it_down_the_chain(store: &dyn Store) {
    let root = grant(pushed_client());
    let root_tokens = token_pair(&root);
    store
        .insert_grant_with_tokens(&root, &root_tokens)
        .await
        .unwrap();
    let child = exchanged_from(&root);
    let child_token = token(&child, TokenKind::Access, NOW + 300);
    store
        .insert_grant_with_tokens(&child, std::slice::from_ref(&child_token))
        .await
        .unwrap();
    let grandchild = exchanged_from(&child);
    let grandchild_token = token(&grandchild, TokenKind::Access, NOW + 300);
    store
        .insert_grant_with_tokens(&grandchild, std::slice::from_ref(&grandchild_token))
        .await
        .unwrap();
    let found = store.find_token(&grandchild_token.hash).await.unwrap();
    assert_eq!(found.map(|t| t.grant), Some(grandchild.clone()));

    assert!(store.delete_grant(&root.id).await.unwrap());

    for t in [&child_token, &grandchild_token] {
        assert!(store.find_token(&t.hash).await.unwrap().is_none());
    }
    assert!(!store.delete_grant(&child.id).await.unwrap());
    assert!(!store.delete_grant(&grandchild.id).await.unwrap());
}

async fn a_grant_exchanged_from_one_that_is_gone_is_not_stored(store: &dyn Store) {
    let gone = grant(pushed_client());
    let child = exchanged_from(&gone);
    let child_token = token(&child, TokenKind::Access, NOW + 300);

    let result = store
        .insert_grant_with_tokens(&child, std::slice::from_ref(&child_token))
        .await;

    assert!(matches!(result, Err(StoreError::Gone)), "{result:?}");
    assert!(store.find_token(&child_token.hash).await.unwrap().is_none());
}

async fn a_grant_with_tokens_stores_them_with_the_grant(store: &dyn Store) {
    let g = Grant {
        subject: None,
        username: None,
        ..grant(registered_client("service").snapshot())
    };
    let access = token(&g, TokenKind::Access, NOW + 300);

    store
        .insert_grant_with_tokens(&g, std::slice::from_ref(&access))
        .await
        .unwrap();

    let stored = store.find_token(&access.hash).await.unwrap().unwrap();
    assert_eq!(stored.token, access);
    assert_eq!(stored.grant, g);
}

// ---------------------------------------------------------------------------
// Refresh tokens
// ---------------------------------------------------------------------------

async fn a_refresh_token_is_rotated_exactly_once(store: &dyn Store) {
    let g = grant(pushed_client());
    let original = token_pair(&g);
    store.insert_grant_with_tokens(&g, &original).await.unwrap();
    let refresh = &original[1];
    let first = token_pair(&g);
    let second = token_pair(&g);

    assert!(store
        .rotate_refresh_token(&refresh.hash, NOW + 10, &first)
        .await
        .unwrap());
    assert!(!store
        .rotate_refresh_token(&refresh.hash, NOW + 20, &second)
        .await
        .unwrap());

    let rotated = store.find_token(&refresh.hash).await.unwrap().unwrap();
    assert_eq!(rotated.token.used_at, Some(NOW + 10));
    for t in &first {
        assert!(is_stored(store, t).await);
    }
    for t in &second {
        assert!(!is_stored(store, t).await);
    }
    let stats = store.stats(NOW + 20).await.unwrap();
    assert_eq!((stats.access_tokens, stats.refresh_tokens), (2, 1));
}

async fn a_refresh_token_is_rotated_exactly_once_under_concurrency(store: Arc<dyn Store>) {
    let g = grant(pushed_client());
    let refresh = token(&g, TokenKind::Refresh, NOW + 3600);
    store
        .insert_grant_with_tokens(&g, std::slice::from_ref(&refresh))
        .await
        .unwrap();
    let start = Arc::new(Barrier::new(RACERS));

    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, start, hash) = (store.clone(), start.clone(), refresh.hash.clone());
            let tokens = token_pair(&g);
            tokio::spawn(async move {
                start.wait().await;
                let won = store.rotate_refresh_token(&hash, NOW, &tokens).await;
                (won, tokens)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for racer in racers {
        let (won, tokens) = racer.await.unwrap();
        if won.unwrap() {
            winners.push(tokens);
        } else {
            losers.push(tokens);
        }
    }

    assert_eq!(winners.len(), 1, "exactly one rotation wins");
    for t in &winners[0] {
        assert!(is_stored(&*store, t).await);
    }
    for t in losers.iter().flatten() {
        assert!(!is_stored(&*store, t).await);
    }
    let rotated = store.find_token(&refresh.hash).await.unwrap().unwrap();
    assert_eq!(rotated.token.used_at, Some(NOW));
    let stats = store.stats(NOW).await.unwrap();
    assert_eq!((stats.access_tokens, stats.refresh_tokens), (1, 1));
}

async fn an_access_token_cannot_be_rotated(store: &dyn Store) {
    let g = grant(pushed_client());
    let access = token(&g, TokenKind::Access, NOW + 3600);
    store
        .insert_grant_with_tokens(&g, std::slice::from_ref(&access))
        .await
        .unwrap();
    let successors = token_pair(&g);

    assert!(!store
        .rotate_refresh_token(&access.hash, NOW, &successors)
        .await
        .unwrap());
    assert!(!store
        .rotate_refresh_token(&new_hash(), NOW, &successors)
        .await
        .unwrap());

    assert!(is_stored(store, &access).await);
    for t in &successors {
        assert!(!is_stored(store, t).await);
    }
}

async fn a_revoked_token_is_not_found_and_its_grant_stays_while_another_lives(store: &dyn Store) {
    let g = grant(pushed_client());
    let tokens = token_pair(&g);
    store.insert_grant_with_tokens(&g, &tokens).await.unwrap();

    assert!(!store.revoke_token(&tokens[0].hash, NOW).await.unwrap());
    assert!(!store.revoke_token(&new_hash(), NOW).await.unwrap());

    assert!(!is_stored(store, &tokens[0]).await);
    assert!(is_stored(store, &tokens[1]).await);
    assert_eq!(store.stats(NOW).await.unwrap().grants, 1);
}

async fn revoking_the_last_live_token_deletes_its_grant_in_the_same_call(store: &dyn Store) {
    let g = grant(pushed_client());
    let access = token(&g, TokenKind::Access, NOW + 60);
    store
        .insert_grant_with_tokens(&g, std::slice::from_ref(&access))
        .await
        .unwrap();

    assert!(store.revoke_token(&access.hash, NOW).await.unwrap());

    let stats = store.stats(NOW).await.unwrap();
    assert_eq!((stats.grants, stats.pushed_client_grants), (0, 0));
}

async fn a_sweep_finds_grants_left_with_nothing_whatever_left_them_so(store: &dyn Store) {
    // A grant with no code and no token at all (what a crash between two
    // writes used to leave), among many live ones: no expiry points at it.
    let mut live = Vec::new();
    for _ in 0..3 {
        let g = grant(pushed_client());
        store
            .insert_grant_with_tokens(&g, &[token(&g, TokenKind::Access, NOW + 600)])
            .await
            .unwrap();
        live.push(g);
    }
    let empty = grant(pushed_client());
    store.insert_grant_with_tokens(&empty, &[]).await.unwrap();
    assert_eq!(store.stats(NOW).await.unwrap().grants, 4);

    let report = store.sweep(NOW).await.unwrap();

    assert_eq!(report.grants, 1);
    assert_eq!(store.stats(NOW).await.unwrap().pushed_client_grants, 3);
    // The scan goes round: a grant emptied later is found by a later sweep.
    store
        .insert_grant_with_tokens(&grant(pushed_client()), &[])
        .await
        .unwrap();
    let mut found = 0;
    for _ in 0..3 {
        found += store.sweep(NOW).await.unwrap().grants;
    }
    assert_eq!(found, 1);
    assert_eq!(store.stats(NOW).await.unwrap().grants, 3);
}

// ---------------------------------------------------------------------------
// Ending grants
// ---------------------------------------------------------------------------

async fn deleting_a_grant_removes_its_codes_and_tokens(store: &dyn Store) {
    let g = grant(pushed_client());
    let c = code(&g, NOW + 60);
    store.insert_grant_with_code(&g, &c).await.unwrap();
    let tokens = token_pair(&g);
    assert!(store.redeem_code(&c.hash, NOW, &tokens).await.unwrap());
    let other = grant(pushed_client());
    let other_tokens = token_pair(&other);
    store
        .insert_grant_with_tokens(&other, &other_tokens)
        .await
        .unwrap();

    assert!(store.delete_grant(&g.id).await.unwrap());
    assert!(!store.delete_grant(&g.id).await.unwrap());

    assert!(store.find_code(&c.hash).await.unwrap().is_none());
    for t in &tokens {
        assert_eq!(
            store.find_token(&t.hash).await.unwrap().map(|s| s.token),
            None
        );
    }
    for t in &other_tokens {
        assert!(is_stored(store, t).await);
    }
    assert_eq!(store.stats(NOW).await.unwrap().pushed_client_grants, 1);
}

async fn a_grant_with_a_live_token_or_unused_code_has_not_ended(store: &dyn Store) {
    // An unused, unexpired code keeps the grant.
    let waiting = grant(pushed_client());
    store
        .insert_grant_with_code(&waiting, &code(&waiting, NOW + 60))
        .await
        .unwrap();
    // A live token keeps the grant, even beside a used code and dead tokens.
    let active = grant(pushed_client());
    let c = code(&active, NOW + 60);
    store.insert_grant_with_code(&active, &c).await.unwrap();
    let tokens = vec![
        token(&active, TokenKind::Access, NOW - 1),
        token(&active, TokenKind::Refresh, NOW + 3600),
    ];
    assert!(store.redeem_code(&c.hash, NOW - 10, &tokens).await.unwrap());

    assert!(!store.delete_grant_if_ended(&waiting.id, NOW).await.unwrap());
    assert!(!store.delete_grant_if_ended(&active.id, NOW).await.unwrap());

    assert!(store.find_code(&c.hash).await.unwrap().is_some());
    assert!(is_stored(store, &tokens[1]).await);
    assert_eq!(store.stats(NOW).await.unwrap().grants, 2);
}

async fn a_grant_with_nothing_live_left_is_deleted_when_ended(store: &dyn Store) {
    // Its code was used and its only tokens expired.
    let spent = grant(pushed_client());
    let c = code(&spent, NOW + 60);
    store.insert_grant_with_code(&spent, &c).await.unwrap();
    let expired = vec![token(&spent, TokenKind::Access, NOW)];
    assert!(store
        .redeem_code(&c.hash, NOW - 10, &expired)
        .await
        .unwrap());
    // Its code expired unused.
    let abandoned = grant(pushed_client());
    store
        .insert_grant_with_code(&abandoned, &code(&abandoned, NOW))
        .await
        .unwrap();
    // Its only refresh token was rotated (used) and the successor revoked.
    let rotated = grant(pushed_client());
    let refresh = token(&rotated, TokenKind::Refresh, NOW + 3600);
    store
        .insert_grant_with_tokens(&rotated, std::slice::from_ref(&refresh))
        .await
        .unwrap();
    let successor = token(&rotated, TokenKind::Refresh, NOW + 3600);
    assert!(store
        .rotate_refresh_token(&refresh.hash, NOW - 5, std::slice::from_ref(&successor))
        .await
        .unwrap());
    // The revocation takes the emptied grant with it.
    assert!(store.revoke_token(&successor.hash, NOW).await.unwrap());
    assert!(!store.delete_grant_if_ended(&rotated.id, NOW).await.unwrap());

    for g in [&spent, &abandoned] {
        assert!(store.delete_grant_if_ended(&g.id, NOW).await.unwrap());
        assert!(!store.delete_grant_if_ended(&g.id, NOW).await.unwrap());
    }

    assert!(store.find_code(&c.hash).await.unwrap().is_none());
    assert!(!is_stored(store, &expired[0]).await);
    assert!(store.find_token(&refresh.hash).await.unwrap().is_none());
    assert_eq!(store.stats(NOW).await.unwrap().grants, 0);
}

// ---------------------------------------------------------------------------
// Sweep and stats
// ---------------------------------------------------------------------------

async fn sweep_removes_what_expired_and_ended_and_keeps_what_lives(store: &dyn Store) {
    let alice = user("alice");
    store.insert_user(&alice).await.unwrap();
    // Pushed requests: two expired (one exactly now), one live.
    let (p_old, p_now, p_live) = (new_hash(), new_hash(), new_hash());
    for (hash, expires_at) in [(&p_old, NOW - 1), (&p_now, NOW), (&p_live, NOW + 60)] {
        store
            .insert_pending_request(hash, &pushed_request(expires_at), NO_LIMIT)
            .await
            .unwrap();
    }
    // Sessions: one expired, one live.
    let s_old = session(&alice, NOW - 1);
    let s_live = session(&alice, NOW + 60);
    store.insert_session(&s_old).await.unwrap();
    store.insert_session(&s_live).await.unwrap();
    // Grant A: its code expired unused -> code and grant go.
    let a = grant(pushed_client());
    let a_code = code(&a, NOW - 1);
    store.insert_grant_with_code(&a, &a_code).await.unwrap();
    // Grant B: code used (unexpired), access expired, refresh live -> access goes.
    let b = grant(registered_client("app").snapshot());
    let b_code = code(&b, NOW + 60);
    store.insert_grant_with_code(&b, &b_code).await.unwrap();
    let b_access = token(&b, TokenKind::Access, NOW - 1);
    let b_refresh = token(&b, TokenKind::Refresh, NOW + 3600);
    let b_tokens = vec![b_access.clone(), b_refresh.clone()];
    assert!(store
        .redeem_code(&b_code.hash, NOW - 10, &b_tokens)
        .await
        .unwrap());
    // Grant C: both tokens expired -> tokens and grant go.
    let c = grant(pushed_client());
    let c_tokens = vec![
        token(&c, TokenKind::Access, NOW - 1),
        token(&c, TokenKind::Refresh, NOW),
    ];
    store.insert_grant_with_tokens(&c, &c_tokens).await.unwrap();
    // Grant D: a live unused code -> stays.
    let d = grant(pushed_client());
    let d_code = code(&d, NOW + 60);
    store.insert_grant_with_code(&d, &d_code).await.unwrap();

    let report = store.sweep(NOW).await.unwrap();

    assert_eq!(
        report,
        SweepReport {
            pending_requests: 2,
            sessions: 1,
            upstream_logins: 0,
            codes: 1,
            tokens: 3,
            grants: 2,
            jtis: 0,
            clients: 0,
        }
    );
    assert!(store
        .find_pending_request(&p_live, NOW)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_session(&s_live.hash, NOW)
        .await
        .unwrap()
        .is_some());
    assert!(store.find_code(&a_code.hash).await.unwrap().is_none());
    assert!(store.find_code(&b_code.hash).await.unwrap().is_some());
    assert!(!is_stored(store, &b_access).await);
    assert!(is_stored(store, &b_refresh).await);
    for t in &c_tokens {
        assert!(!is_stored(store, t).await);
    }
    assert!(!store.find_code(&d_code.hash).await.unwrap().unwrap().used);
    assert_eq!(store.stats(NOW).await.unwrap().grants, 2);
    assert_eq!(store.sweep(NOW).await.unwrap(), SweepReport::default());
}

async fn pending_requests_beyond_the_limit_are_refused_until_one_is_taken(store: &dyn Store) {
    let first = new_hash();
    store
        .insert_pending_request(&first, &pushed_request(NOW + 60), 2)
        .await
        .unwrap();
    store
        .insert_pending_request(&new_hash(), &pushed_request(NOW + 90), 2)
        .await
        .unwrap();
    let third = new_hash();
    let refused = store
        .insert_pending_request(&third, &pushed_request(NOW + 60), 2)
        .await;
    // A place frees up when the oldest one expires, 60 s after NOW.
    assert!(matches!(refused, Err(StoreError::Full(60))), "{refused:?}");
    assert!(store
        .find_pending_request(&third, NOW)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .take_pending_request(&first, NOW)
        .await
        .unwrap()
        .is_some());
    store
        .insert_pending_request(&third, &pushed_request(NOW + 60), 2)
        .await
        .unwrap();
    assert!(store
        .find_pending_request(&third, NOW)
        .await
        .unwrap()
        .is_some());
}

/// More expired pending requests than one sweep step (SQLite deletes them
/// 200 at a time, each step its own transaction): all of them go, and the
/// count of pending requests follows.
async fn a_sweep_takes_every_expired_pending_request_however_many(store: &dyn Store) {
    for _ in 0..1_200 {
        store
            .insert_pending_request(&new_hash(), &pushed_request(NOW), 10_000)
            .await
            .unwrap();
    }
    let live = new_hash();
    store
        .insert_pending_request(&live, &pushed_request(NOW + 60), 10_000)
        .await
        .unwrap();
    assert_eq!(store.sweep(NOW).await.unwrap().pending_requests, 1_200);
    assert_eq!(store.stats(NOW).await.unwrap().pending_pushed_requests, 1);
    assert!(store
        .find_pending_request(&live, NOW)
        .await
        .unwrap()
        .is_some());
    // One place left under a limit of two: the count is exact again.
    assert!(fits(store, 2, false, NOW + 60).await);
    assert!(!fits(store, 2, false, NOW + 60).await);
}

async fn expired_pending_requests_do_not_count_toward_the_limit(store: &dyn Store) {
    for _ in 0..2 {
        store
            .insert_pending_request(&new_hash(), &pushed_request(NOW), 2)
            .await
            .unwrap();
    }
    let fresh = new_hash();
    store
        .insert_pending_request(&fresh, &pushed_request(NOW + 60), 2)
        .await
        .unwrap();
    assert!(store
        .find_pending_request(&fresh, NOW)
        .await
        .unwrap()
        .is_some());
}

/// Whether one more request of `front_channel`'s budget fits under `max`.
async fn fits(store: &dyn Store, max: u64, front_channel: bool, expires_at: Timestamp) -> bool {
    let request = PendingRequest {
        front_channel,
        ..pushed_request(expires_at)
    };
    match store
        .insert_pending_request(&new_hash(), &request, max)
        .await
    {
        Ok(()) => true,
        Err(StoreError::Full(_)) => false,
        Err(e) => panic!("{e}"),
    }
}

async fn the_pending_count_equals_the_rows_through_lookups_opens_takes_and_sweeps(
    store: &dyn Store,
) {
    let hashes: Vec<SecretHash> = (0..3).map(|_| new_hash()).collect();
    for hash in &hashes {
        store
            .insert_pending_request(hash, &pushed_request(NOW + 60), 3)
            .await
            .unwrap();
    }
    // Lookups and opens (page loads and reloads) change no count.
    for _ in 0..5 {
        for hash in &hashes {
            assert!(store
                .find_pending_request(hash, NOW)
                .await
                .unwrap()
                .is_some());
            store
                .open_pending_request(hash, NOW + 120, NOW)
                .await
                .unwrap();
        }
    }
    assert!(!fits(store, 3, false, NOW + 60).await, "3 rows, limit 3");
    // A take frees exactly one place.
    assert!(store
        .take_pending_request(&hashes[0], NOW)
        .await
        .unwrap()
        .is_some());
    assert!(fits(store, 3, false, NOW + 60).await);
    assert!(!fits(store, 3, false, NOW + 60).await);
    // A sweep of expired rows frees their places, and only theirs.
    assert_eq!(store.sweep(NOW + 60).await.unwrap().pending_requests, 1);
    assert!(fits(store, 3, false, NOW + 200).await);
    assert!(!fits(store, 3, false, NOW + 200).await);
    assert_eq!(
        store.stats(NOW + 60).await.unwrap().pending_pushed_requests,
        3
    );
}

async fn front_channel_requests_have_a_budget_apart_from_pushed_ones(store: &dyn Store) {
    assert!(fits(store, 2, true, NOW + 60).await);
    assert!(fits(store, 2, true, NOW + 60).await);
    assert!(!fits(store, 2, true, NOW + 60).await, "front channel full");
    // Pushed requests are not refused for it...
    assert!(fits(store, 2, false, NOW + 60).await);
    assert!(fits(store, 2, false, NOW + 60).await);
    assert!(!fits(store, 2, false, NOW + 60).await, "pushed full");
    // ...and a full pushed budget leaves the front channel's alone.
    let hash = new_hash();
    let front = PendingRequest {
        front_channel: true,
        ..pushed_request(NOW + 60)
    };
    assert!(matches!(
        store.insert_pending_request(&hash, &front, 2).await,
        Err(StoreError::Full(_))
    ));
    assert!(fits(store, 3, true, NOW + 60).await);
}

async fn stats_of_an_empty_store_are_zero(store: &dyn Store) {
    assert_eq!(store.stats(NOW).await.unwrap(), Stats::default());
}

async fn stats_count_exactly_what_is_live(store: &dyn Store) {
    let alice = user("alice");
    store.insert_user(&alice).await.unwrap();
    store.insert_user(&user("bob")).await.unwrap();
    let app = registered_client("app");
    store.insert_client(&app).await.unwrap();
    store
        .insert_session(&session(&alice, NOW + 60))
        .await
        .unwrap();
    store.insert_session(&session(&alice, NOW)).await.unwrap();
    store
        .insert_pending_request(&new_hash(), &pushed_request(NOW + 60), NO_LIMIT)
        .await
        .unwrap();
    store
        .insert_pending_request(&new_hash(), &pushed_request(NOW), NO_LIMIT)
        .await
        .unwrap();
    // Registered grant with a live unused code: one code.
    let waiting = grant(app.snapshot());
    store
        .insert_grant_with_code(&waiting, &code(&waiting, NOW + 60))
        .await
        .unwrap();
    // Registered grant whose unused code expired: no code.
    let abandoned = grant(app.snapshot());
    store
        .insert_grant_with_code(&abandoned, &code(&abandoned, NOW))
        .await
        .unwrap();
    // Pushed grant: code used, then its refresh token rotated once.
    let active = grant(pushed_client());
    let active_code = code(&active, NOW + 60);
    store
        .insert_grant_with_code(&active, &active_code)
        .await
        .unwrap();
    let first = token_pair(&active);
    assert!(store
        .redeem_code(&active_code.hash, NOW - 20, &first)
        .await
        .unwrap());
    assert!(store
        .rotate_refresh_token(&first[1].hash, NOW - 10, &token_pair(&active))
        .await
        .unwrap());
    // Pushed grant whose tokens all expired.
    let expired = grant(pushed_client());
    let expired_tokens = vec![
        token(&expired, TokenKind::Access, NOW),
        token(&expired, TokenKind::Refresh, NOW - 1),
    ];
    store
        .insert_grant_with_tokens(&expired, &expired_tokens)
        .await
        .unwrap();

    let stats = store.stats(NOW).await.unwrap();

    assert_eq!(
        stats,
        Stats {
            pending_pushed_requests: 1,
            grants: 4,
            pushed_client_grants: 2,
            codes: 1,
            access_tokens: 2,
            refresh_tokens: 1,
            sessions: 1,
            registered_clients: 1,
            dynamic_clients: 0,
            users: 2,
        }
    );
}

// ---------------------------------------------------------------------------
// Replay cache and key bindings
// ---------------------------------------------------------------------------

async fn a_jti_is_accepted_once_until_its_window_ends(store: &dyn Store) {
    assert!(store
        .remember_jti("dpop:k1:j1", NOW + 60, NOW)
        .await
        .unwrap());
    assert!(!store
        .remember_jti("dpop:k1:j1", NOW + 60, NOW + 1)
        .await
        .unwrap());
    assert!(
        store
            .remember_jti("dpop:k2:j1", NOW + 60, NOW)
            .await
            .unwrap(),
        "other key, other namespace"
    );
    // Once the window has passed the row may be taken over.
    assert!(store
        .remember_jti("dpop:k1:j1", NOW + 200, NOW + 61)
        .await
        .unwrap());
}

async fn a_jti_is_accepted_once_under_concurrency(store: Arc<dyn Store>) {
    let barrier = Arc::new(Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .remember_jti("assertion:c:j", NOW + 60, NOW)
                .await
                .unwrap()
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        if t.await.unwrap() {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

async fn a_token_keeps_its_key_binding(store: &dyn Store) {
    let g = grant(pushed_client());
    let mut t = token(&g, TokenKind::Access, NOW + 60);
    t.jkt = Some("thumb".to_owned());
    t.x5t = Some("cert".to_owned());
    t.audience = Some(vec!["https://api.example/".to_owned()]);
    store
        .insert_grant_with_tokens(&g, &[t.clone()])
        .await
        .unwrap();
    let found = store.find_token(&t.hash).await.unwrap().unwrap();
    assert_eq!(found.token, t);
}

async fn sweep_forgets_expired_jtis(store: &dyn Store) {
    store.remember_jti("a", NOW + 10, NOW).await.unwrap();
    store.remember_jti("b", NOW + 100, NOW).await.unwrap();
    let report = store.sweep(NOW + 50).await.unwrap();
    assert_eq!(report.jtis, 1);
    assert!(!store.remember_jti("b", NOW + 100, NOW + 50).await.unwrap());
}

/// PostgreSQL cannot store NUL in TEXT; SQLite can. Either way a name with
/// one that was never stored is simply not there (such names come straight
/// from forms and requests).
async fn a_name_with_a_nul_character_is_not_found(store: &dyn Store) {
    let alice = user("alice");
    store.insert_user(&alice).await.unwrap();
    store
        .insert_client(&registered_client("app"))
        .await
        .unwrap();

    assert_eq!(store.find_user_by_name("alice\0").await.unwrap(), None);
    assert_eq!(store.find_client("app\0").await.unwrap(), None);
    assert_eq!(store.find_consent(&alice.id, "app\0").await.unwrap(), None);
    store.touch_client("app\0", NOW + 60).await.unwrap();
    assert!(!store.delete_client("app\0").await.unwrap());
    assert!(!store.delete_grant("grant\0").await.unwrap());
    assert!(!store.delete_grant_if_ended("grant\0", NOW).await.unwrap());

    assert_eq!(store.list_users().await.unwrap(), vec![alice]);
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
}

/// A `jti` is whatever string the client put in its proof.
async fn a_jti_with_a_nul_character_or_a_backslash_is_remembered_exactly(store: &dyn Store) {
    let keys = [
        "dpop:k:a\0b",
        "dpop:k:a\\0b",
        "dpop:k:a\\\0b",
        "dpop:k:a\\b",
        "dpop:k:a\\\\b",
    ];

    for key in keys {
        assert!(
            store.remember_jti(key, NOW + 60, NOW).await.unwrap(),
            "{key:?} is new"
        );
    }
    for key in keys {
        assert!(
            !store.remember_jti(key, NOW + 60, NOW + 1).await.unwrap(),
            "{key:?} is a replay"
        );
    }
    assert_eq!(store.sweep(NOW + 60).await.unwrap().jtis, keys.len() as u64);
}

// ---------------------------------------------------------------------------
// Dynamically registered clients
// ---------------------------------------------------------------------------

async fn a_dynamic_client_round_trips_is_touched_and_swept_when_it_expires(store: &dyn Store) {
    let token = Secret::generate().hash();
    let client = StoredClient {
        self_described: Some(SelfDescription {
            kind: ClientKind::SelfRegistered,
            verified_origin: None,
            metadata: json!({"client_name": "self"}),
            grant_types: vec!["authorization_code".to_owned()],
            auth_method: AuthMethod::None,
            expires_at: NOW + 100,
            registration_token_hash: Some(token.clone()),
            fingerprint: None,
        }),
        secret_hash: None,
        ..registered_client("dyn")
    };
    store.insert_client(&client).await.unwrap();
    let found = store.find_client("dyn").await.unwrap().unwrap();
    assert_eq!(found, client);
    assert_eq!(store.stats(NOW).await.unwrap().dynamic_clients, 1);

    store.touch_client("dyn", NOW + 50).await.unwrap();
    assert_eq!(
        store
            .find_client("dyn")
            .await
            .unwrap()
            .unwrap()
            .self_described
            .unwrap()
            .expires_at,
        NOW + 100,
        "never earlier"
    );
    store.touch_client("dyn", NOW + 500).await.unwrap();
    let g = grant(found.snapshot());
    store
        .insert_grant_with_tokens(&g, &token_pair(&g))
        .await
        .unwrap();

    let report = store.sweep(NOW + 200).await.unwrap();
    assert_eq!(report.clients, 0, "touched: still alive");
    // Idle past its time-to-live, but its tokens live until NOW + 3600.
    let report = store.sweep(NOW + 501).await.unwrap();
    assert_eq!(report.clients, 0, "a client holding a live token is kept");
    let report = store.sweep(NOW + 3601).await.unwrap();
    assert_eq!(report.clients, 1);
    assert!(store.find_client("dyn").await.unwrap().is_none());
    assert_eq!(
        store.stats(NOW + 3601).await.unwrap().grants,
        0,
        "its grants went with it"
    );
}

async fn a_client_is_found_by_its_fingerprint_which_is_unique_and_cleared_by_an_update(
    store: &dyn Store,
) {
    let fingerprint = SecretHash::of("same metadata, same address");
    let client = StoredClient {
        self_described: Some(SelfDescription {
            kind: ClientKind::SelfRegistered,
            verified_origin: None,
            metadata: json!({"client_name": "reconnects"}),
            grant_types: vec!["authorization_code".to_owned()],
            auth_method: AuthMethod::None,
            expires_at: NOW + 100,
            registration_token_hash: None,
            fingerprint: Some(fingerprint.clone()),
        }),
        secret_hash: None,
        ..registered_client("shared")
    };
    assert!(store
        .find_client_by_fingerprint(&fingerprint)
        .await
        .unwrap()
        .is_none());
    store.insert_client(&client).await.unwrap();
    assert_eq!(
        store
            .find_client_by_fingerprint(&fingerprint)
            .await
            .unwrap(),
        Some(client.clone())
    );
    assert!(store
        .find_client_by_fingerprint(&SecretHash::of("other"))
        .await
        .unwrap()
        .is_none());

    let twin = StoredClient {
        client_id: "twin".to_owned(),
        ..client.clone()
    };
    assert!(
        matches!(store.insert_client(&twin).await, Err(StoreError::Conflict)),
        "a fingerprint names one client"
    );
    // Clients without one do not collide.
    let mut plain = twin.clone();
    plain.self_described.as_mut().unwrap().fingerprint = None;
    store.insert_client(&plain).await.unwrap();
    let mut plain2 = plain.clone();
    plain2.client_id = "plain2".to_owned();
    store.insert_client(&plain2).await.unwrap();

    let mut updated = client.clone();
    updated.self_described.as_mut().unwrap().fingerprint = None;
    assert!(store.update_client(&updated).await.unwrap());
    assert!(store
        .find_client_by_fingerprint(&fingerprint)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.find_client("shared").await.unwrap(), Some(updated));
}

// ---------------------------------------------------------------------------
// Listing and revoking grants one at a time
// ---------------------------------------------------------------------------

fn filter(subject: Option<&str>, client_id: Option<&str>) -> GrantFilter {
    GrantFilter {
        subject: subject.map(str::to_owned),
        client_id: client_id.map(str::to_owned),
        key: None,
        limit: 100,
    }
}

fn key_filter(key: &str) -> GrantFilter {
    GrantFilter {
        key: Some(key.to_owned()),
        ..filter(None, None)
    }
}

async fn grants_are_listed_by_the_key_they_are_bound_to_at_par_or_at_the_token_endpoint(
    store: &dyn Store,
) {
    let app = registered_client("app").snapshot();
    let bound = |dpop_jkt: Option<&str>, x5t_s256: Option<&str>| KeyBinding {
        dpop_jkt: dpop_jkt.map(str::to_owned),
        x5t_s256: x5t_s256.map(str::to_owned),
    };
    // Bound at PAR, by DPoP and by certificate; bound at the token endpoint
    // (its tokens carry the key, the grant does not); another key's.
    let at_par = Grant {
        key_binding: bound(Some("jkt-1"), None),
        ..grant(app.clone())
    };
    let by_certificate = Grant {
        key_binding: bound(None, Some("x5t-1")),
        created_at: NOW + 1,
        ..grant(app.clone())
    };
    let at_token = Grant {
        created_at: NOW + 2,
        ..grant(app.clone())
    };
    let others = Grant {
        created_at: NOW + 3,
        ..grant(app)
    };
    store
        .insert_grant_with_tokens(&at_par, &token_pair(&at_par))
        .await
        .unwrap();
    store
        .insert_grant_with_code(&by_certificate, &code(&by_certificate, NOW + 60))
        .await
        .unwrap();
    for (g, jkt) in [(&at_token, "jkt-1"), (&others, "jkt-2")] {
        let mut tokens = token_pair(g);
        for t in &mut tokens {
            t.jkt = Some(jkt.to_owned());
        }
        store.insert_grant_with_tokens(g, &tokens).await.unwrap();
    }

    let ids = |list: &[GrantSummary]| -> Vec<String> {
        list.iter().map(|s| s.grant.id.clone()).collect()
    };
    let jkt_1 = store.list_grants(&key_filter("jkt-1"), NOW).await.unwrap();
    assert_eq!(ids(&jkt_1), [at_token.id.clone(), at_par.id.clone()]);
    assert_eq!(jkt_1[0].token_key, bound(Some("jkt-1"), None));
    assert_eq!(jkt_1[0].key(), &bound(Some("jkt-1"), None));
    assert_eq!(jkt_1[1].token_key, KeyBinding::default());
    assert_eq!(jkt_1[1].key(), &at_par.key_binding);
    let x5t_1 = store.list_grants(&key_filter("x5t-1"), NOW).await.unwrap();
    assert_eq!(ids(&x5t_1), vec![by_certificate.id.clone()]);
    assert_eq!(x5t_1[0].key(), &by_certificate.key_binding);
    assert_eq!(
        ids(&store.list_grants(&key_filter("jkt-2"), NOW).await.unwrap()),
        vec![others.id.clone()]
    );
    for nothing in ["jkt-3", "jkt\0-1", ""] {
        assert!(store
            .list_grants(&key_filter(nothing), NOW)
            .await
            .unwrap()
            .is_empty());
    }
    // With a user: both must match.
    let bobs = GrantFilter {
        subject: Some("user-2".to_owned()),
        ..key_filter("jkt-1")
    };
    assert!(store.list_grants(&bobs, NOW).await.unwrap().is_empty());
    assert_eq!(
        store
            .list_grants(&filter(None, None), NOW)
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn grants_are_listed_by_user_and_client_newest_first_with_their_live_tokens(
    store: &dyn Store,
) {
    let app = registered_client("app").snapshot();
    // Two installations of one client by alice, one by bob, one other client.
    let older = grant(app.clone());
    let newer = Grant {
        created_at: NOW + 10,
        ..grant(app.clone())
    };
    let bobs = Grant {
        subject: Some("user-2".to_owned()),
        username: Some("bob".to_owned()),
        ..grant(app.clone())
    };
    let other = grant(registered_client("other").snapshot());
    let mut older_tokens = token_pair(&older);
    older_tokens[0].expires_at = NOW + 5; // the access token ends first
    older_tokens[1].issued_at = NOW + 3;
    store
        .insert_grant_with_tokens(&older, &older_tokens)
        .await
        .unwrap();
    store
        .insert_grant_with_code(&newer, &code(&newer, NOW + 60))
        .await
        .unwrap();
    for g in [&bobs, &other] {
        store
            .insert_grant_with_tokens(g, &token_pair(g))
            .await
            .unwrap();
    }

    let alices = store
        .list_grants(&filter(Some("user-1"), Some("app")), NOW + 6)
        .await
        .unwrap();
    let ids: Vec<&str> = alices.iter().map(|s| s.grant.id.as_str()).collect();
    assert_eq!(ids, [newer.id.as_str(), older.id.as_str()], "newest first");
    assert_eq!(alices[0].grant, newer);
    assert_eq!((alices[0].live_tokens, alices[0].last_issued), (0, None));
    assert_eq!(
        (alices[1].live_tokens, alices[1].last_issued),
        (1, Some(NOW + 3)),
        "the expired access token is not live"
    );
    assert_eq!(
        store
            .list_grants(&filter(Some("user-1"), None), NOW)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .list_grants(&filter(None, Some("app")), NOW)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .list_grants(&filter(None, None), NOW)
            .await
            .unwrap()
            .len(),
        4
    );
    assert!(store
        .list_grants(&filter(Some("nobody"), None), NOW)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_grants(&filter(Some("user\0-1"), None), NOW)
        .await
        .unwrap()
        .is_empty());
    let limited = GrantFilter {
        limit: 1,
        ..filter(None, None)
    };
    assert_eq!(store.list_grants(&limited, NOW).await.unwrap().len(), 1);
}

async fn a_grant_is_deleted_for_a_user_only_if_that_user_granted_it(store: &dyn Store) {
    let app = registered_client("app").snapshot();
    let alices = grant(app.clone());
    let kept = grant(app);
    for g in [&alices, &kept] {
        store
            .insert_grant_with_tokens(g, &token_pair(g))
            .await
            .unwrap();
    }
    let tokens = token_pair(&alices);
    assert!(!store.delete_grant_of(&alices.id, "user-2").await.unwrap());
    assert!(!store
        .delete_grant_of("no-such-grant", "user-1")
        .await
        .unwrap());
    assert!(!store.delete_grant_of(&alices.id, "user\0-1").await.unwrap());
    assert_eq!(store.stats(NOW).await.unwrap().grants, 2);
    assert!(store.delete_grant_of(&alices.id, "user-1").await.unwrap());
    let left = store.list_grants(&filter(None, None), NOW).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].grant.id, kept.id,
        "the other installation is untouched"
    );
    assert_eq!(left[0].live_tokens, 2);
    assert!(store.find_token(&tokens[0].hash).await.unwrap().is_none());
}
