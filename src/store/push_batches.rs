//! A push that may have been delivered but was never confirmed: its batch row is still unmarked
//! after its lease ran out (the worker died, or lost its database connection, between the
//! receiver's 2xx and the mark), or it was released after a failed POST. The next push sends
//! exactly that batch again, so the receiver sees the same messages under the same token and
//! `Idempotency-Key` and can drop the repeat (found by the crash campaign, benches/chaos).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::QueryBuilder;

use super::integrations::BatchMessage;
use super::{on_conn, Conn, Result};

/// Unconfirmed batches looked at per push: a push leaves at most one behind.
const LOOK_AT: i64 = 10;

/// Appends ` where group_name = <group> and id in (<ids>)<tail>` to a QueryBuilder of the
/// connection's driver (expanded once per driver inside `on_conn!`).
macro_rules! where_ids {
    ($qb:expr, $group:expr, $ids:expr, $tail:expr) => {{
        $qb.push(" where group_name = ")
            .push_bind($group.to_string());
        $qb.push(" and id in (");
        let mut list = $qb.separated(", ");
        for id in $ids {
            list.push_bind(*id);
        }
        $qb.push(")").push($tail);
    }};
}

/// What became of an unconfirmed batch's messages.
#[derive(Debug, PartialEq)]
enum Standing {
    /// All waiting and free: push the batch again.
    Free,
    /// Some were sent since, or are gone: the batch is history.
    Stale,
    /// Still held by a push whose lease has not run out.
    Held,
}

type MessageState = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn standing(ids: &[i64], states: &[MessageState], now: DateTime<Utc>) -> Standing {
    if ids.is_empty() || states.len() < ids.len() || states.iter().any(|(sent, _)| sent.is_some()) {
        Standing::Stale
    } else if states
        .iter()
        .any(|(_, leased)| leased.is_some_and(|until| until > now))
    {
        Standing::Held
    } else {
        Standing::Free
    }
}

/// Leases the oldest unconfirmed batch of `group` again; `None` when there is none to resume.
/// Its row stays as it was: a push batch's token is derived from its ids (integrations::push).
pub async fn retake_unconfirmed(
    conn: Conn<'_>,
    group: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Vec<BatchMessage>>> {
    const UNMARKED: &str = "select token_hash, message_ids from integration_batch \
        where group_name = $1 and marked_at is null order by created_at, token_hash limit $2";
    const FORGET: &str = "delete from integration_batch where token_hash = $1";
    Ok(on_conn!(conn, c => {
        let unmarked: Vec<(String, Json<Vec<i64>>)> =
            sqlx::query_as(UNMARKED).bind(group).bind(LOOK_AT).fetch_all(&mut *c).await?;
        let mut resumed = None;
        for (hash, Json(ids)) in unmarked {
            let states: Vec<MessageState> = if ids.is_empty() {
                Vec::new()
            } else {
                let mut qb = QueryBuilder::new("select sent_at, leased_until from integration_message");
                where_ids!(qb, group, &ids, "");
                qb.build_query_as().fetch_all(&mut *c).await?
            };
            match standing(&ids, &states, now) {
                Standing::Held => continue,
                Standing::Stale => {
                    sqlx::query(FORGET).bind(&hash).execute(&mut *c).await?;
                }
                Standing::Free => {
                    let mut qb = QueryBuilder::new("update integration_message set leased_until = ");
                    qb.push_bind(lease_until);
                    where_ids!(qb, group, &ids, " returning id, created_at, data");
                    let mut messages: Vec<BatchMessage> =
                        qb.build_query_as().fetch_all(&mut *c).await?;
                    messages.sort_by_key(|m| m.id);
                    resumed = Some(messages);
                    break;
                }
            }
        }
        Ok::<_, sqlx::Error>(resumed)
    })?)
}

/// Gives a batch row another token (a push batch takes the one derived from its ids).
pub async fn rekey(conn: Conn<'_>, old_hash: &str, new_hash: &str) -> Result<()> {
    const SQL: &str = "update integration_batch set token_hash = $2 where token_hash = $1";
    on_conn!(conn, c => sqlx::query(SQL).bind(old_hash).bind(new_hash).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unconfirmed_batch_is_pushed_again_only_when_all_its_messages_wait_free() {
        let now = Utc::now();
        let later = Some(now + chrono::Duration::seconds(5));
        let earlier = Some(now - chrono::Duration::seconds(5));
        let ids = [1, 2];
        assert_eq!(
            standing(&ids, &[(None, None), (None, earlier)], now),
            Standing::Free
        );
        assert_eq!(
            standing(&ids, &[(None, None), (None, later)], now),
            Standing::Held
        );
        assert_eq!(
            standing(&ids, &[(None, None), (Some(now), None)], now),
            Standing::Stale
        );
        assert_eq!(standing(&ids, &[(None, None)], now), Standing::Stale);
        assert_eq!(standing(&[], &[], now), Standing::Stale);
    }
}
