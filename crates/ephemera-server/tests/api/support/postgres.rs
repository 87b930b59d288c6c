//! A PostgreSQL schema of a test's own, in the database at
//! `EPHEMERA_TEST_DATABASE_URL` (`.ci/run` sets it), dropped with everything
//! in it when the test ends, passed or panicked. The library's store tests
//! keep a copy of their own in `src/store/conformance.rs`: a `cfg(test)`
//! module, out of this binary's reach.

use std::io::Write as _;

use sqlx::{Connection as _, PgConnection};

const URL_VAR: &str = "EPHEMERA_TEST_DATABASE_URL";

pub struct TestSchema {
    /// `EPHEMERA_TEST_DATABASE_URL`: the schema is created and dropped there.
    admin_url: String,
    name: String,
}

impl TestSchema {
    /// A new, empty schema; `None` when `EPHEMERA_TEST_DATABASE_URL` is not
    /// set, after saying that `what` is skipped (a failure on CI).
    pub async fn create(what: &str) -> Option<Self> {
        let Some(admin_url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) else {
            super::skip(what, &format!("{URL_VAR} is not set"));
            return None;
        };
        let name = format!("ephemera_api_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(&format!(r#"CREATE SCHEMA "{name}""#))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(Self { admin_url, name })
    }

    /// A database URL whose connections see only this schema
    /// (`search_path`), named after it (`application_name`) so that
    /// [`Drop`] can find any left behind.
    pub fn url(&self) -> String {
        let (url, name) = (&self.admin_url, &self.name);
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-c%20search_path%3D{name}&application_name={name}")
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // `drop` cannot await, and the test's runtime may be blocked here:
        // clean up with a runtime of its own on a thread of its own.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(async {
                    let mut conn = PgConnection::connect(&url).await?;
                    // Connections a killed process left behind hold locks
                    // DROP SCHEMA would wait for; ending them releases those.
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
