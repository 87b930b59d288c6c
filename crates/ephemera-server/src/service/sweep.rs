//! Expiry and erasure: a background task deletes whatever has expired and
//! every grant with nothing live left in it (and with it a pushed client's
//! metadata).

use std::sync::Arc;
use std::time::Duration;

use crate::model::Timestamp;
use crate::store::{Store, StoreError, SweepReport};

pub async fn sweep(store: &dyn Store, now: Timestamp) -> Result<SweepReport, StoreError> {
    store.sweep(now).await
}

/// Sweeps every `interval` until `shutdown` resolves.
pub async fn run(
    store: Arc<dyn Store>,
    interval: Duration,
    now: impl Fn() -> Timestamp,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => match sweep(store.as_ref(), now()).await {
                Ok(r) if r != SweepReport::default() => tracing::debug!(?r, "swept"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "sweep failed"),
            },
        }
    }
}
