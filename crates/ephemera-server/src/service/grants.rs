//! Grants as people see them: a user's own on the account page, everyone's
//! for the operator; and revoking one grant without touching the others.
//! Every installation of a client ID metadata document shares its
//! `client_id` (so does every copy of a registered public client), but each
//! authorization made a grant of its own: revoking one grant ends one
//! installation's access, with its tokens, and nothing else.

use super::{Context, OAuthError};
use crate::model::{GrantFilter, GrantSummary, Session, Timestamp};
use crate::store::{Store, StoreError};

/// The most grants one list shows.
pub const LIST_LIMIT: u32 = 500;

/// The signed-in user's grants, newest first.
pub async fn of_user(
    ctx: &Context,
    session: &Session,
    now: Timestamp,
) -> Result<Vec<GrantSummary>, OAuthError> {
    let filter = GrantFilter {
        subject: Some(session.user_id.clone()),
        limit: LIST_LIMIT,
        ..GrantFilter::default()
    };
    Ok(ctx.store.list_grants(&filter, now).await?)
}

/// Ends every grant of the signed-in user ("End all" on the account page),
/// and no one else's; how many ended. A pushed client's metadata goes with
/// its grant.
pub async fn revoke_all_for_user(
    ctx: &Context,
    session: &Session,
    now: Timestamp,
) -> Result<u64, OAuthError> {
    let filter = GrantFilter {
        subject: Some(session.user_id.clone()),
        limit: LIST_LIMIT,
        ..GrantFilter::default()
    };
    let ended = end_matching(ctx.store.as_ref(), &filter, Some(&session.user_id), now).await?;
    tracing::info!(ended, "every grant of a user revoked by the user");
    Ok(ended)
}

/// Revokes one of the signed-in user's grants; false if it is not theirs
/// (or already gone), in which case nothing changes.
pub async fn revoke_for_user(
    ctx: &Context,
    session: &Session,
    grant_id: &str,
) -> Result<bool, OAuthError> {
    let gone = ctx
        .store
        .delete_grant_of(grant_id, &session.user_id)
        .await?;
    if gone {
        tracing::info!(grant_id, "grant revoked by its user");
    }
    Ok(gone)
}

/// The grants `filter` selects, for the operator.
pub async fn list(
    store: &dyn Store,
    filter: &GrantFilter,
    now: Timestamp,
) -> Result<Vec<GrantSummary>, StoreError> {
    store.list_grants(filter, now).await
}

/// Revokes one grant, whoever granted it, for the operator.
pub async fn revoke(store: &dyn Store, grant_id: &str) -> Result<bool, StoreError> {
    let gone = store.delete_grant(grant_id).await?;
    if gone {
        tracing::info!(grant_id, "grant revoked by the operator");
    }
    Ok(gone)
}

/// Revokes every grant `filter` selects, whoever granted it, for the
/// operator: all of a user's, or all bound to one key (one compromised
/// installation of an agent); how many ended.
pub async fn revoke_matching(
    store: &dyn Store,
    filter: &GrantFilter,
    now: Timestamp,
) -> Result<u64, StoreError> {
    if filter.subject.is_none() && filter.client_id.is_none() && filter.key.is_none() {
        // A filter selecting every grant is a mistake, not a request.
        return Ok(0);
    }
    let filter = GrantFilter {
        limit: LIST_LIMIT,
        ..filter.clone()
    };
    let ended = end_matching(store, &filter, None, now).await?;
    tracing::info!(ended, "grants revoked by the operator");
    Ok(ended)
}

/// Deletes what `filter` lists, a page at a time, until nothing is left;
/// with `subject`, each delete also checks that user granted it. Grants made
/// while it runs may be ended too, or not; a page ending nothing (all gone
/// meanwhile) stops it, so it always ends.
async fn end_matching(
    store: &dyn Store,
    filter: &GrantFilter,
    subject: Option<&str>,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut ended = 0;
    loop {
        let page = store.list_grants(filter, now).await?;
        if page.is_empty() {
            return Ok(ended);
        }
        let mut this_page = 0;
        for summary in &page {
            let id = summary.grant.id.as_str();
            let gone = match subject {
                Some(s) => store.delete_grant_of(id, s).await?,
                None => store.delete_grant(id).await?,
            };
            this_page += u64::from(gone);
        }
        if this_page == 0 {
            return Ok(ended);
        }
        ended += this_page;
    }
}

/// A Unix time as a UTC date and minute, `2026-12-06 14:03 UTC`, for pages
/// and the CLI (civil-from-days, proleptic Gregorian).
pub fn utc(ts: Timestamp) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_796_565_780), "2026-12-06 14:03 UTC");
        assert_eq!(utc(-60), "1969-12-31 23:59 UTC");
    }
}
