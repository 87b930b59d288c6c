//! The floor under a flow: the cryptography the server must do whatever its
//! storage and HTTP cost. A pushed flow with DPoP verifies three ES256
//! proofs (PAR, token, refresh) and hashes each secret it issues or looks up
//! (request_uri, code, access and refresh tokens). Run with
//! `cargo bench -p ephemera-server --bench floor`.

#![allow(clippy::unwrap_used, clippy::panic)] // a benchmark: failing loudly is right

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ephemera_client::dpop::DpopKey;
use ephemera_proto::dpop::{self, Expectations};
use ephemera_server::secret::{Secret, SecretHash};

const URL: &str = "https://as.example/token";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn floor(c: &mut Criterion) {
    let key = DpopKey::generate();
    let proof = key.proof("POST", URL, None, None).unwrap();
    let expect = Expectations {
        method: "POST",
        url: URL,
        now: now(),
        max_age: 300,
        leeway: 5,
        access_token: None,
    };
    assert!(dpop::verify(&proof, &expect).is_ok());
    c.bench_function("dpop_proof_verify_es256", |b| {
        b.iter(|| dpop::verify(black_box(&proof), &expect).is_ok())
    });
    c.bench_function("dpop_proof_sign_es256 (client side)", |b| {
        b.iter(|| key.proof("POST", URL, None, None).unwrap())
    });
    let secret = Secret::generate();
    c.bench_function("secret_generate", |b| b.iter(Secret::generate));
    c.bench_function("secret_hash_sha256", |b| {
        b.iter(|| SecretHash::of(black_box(secret.expose())))
    });
}

criterion_group!(benches, floor);
criterion_main!(benches);
