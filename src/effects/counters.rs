//! Go Metrics counters as a consequence: the original's real-time `.sum` metrics.

use super::Change;
use crate::model::metrics as go_metrics;
use crate::store::{self, content as content_sql, Tx};

/// The Go Metrics counters a change adds to (the original's real-time `.sum` metrics).
pub async fn metrics(tx: &mut Tx, change: Change<'_>) -> store::Result<Vec<String>> {
    Ok(match change {
        Change::SubscriptionCreated(s) => {
            match content_sql::get_message_set(tx.conn(), s.message_set_id).await? {
                Some(set) => go_metrics::created(&set, &s.lang),
                None => Vec::new(),
            }
        }
        Change::MessageSent { set, .. } => go_metrics::sent(set),
        Change::SendFailed {
            reason: Some(reason),
            ..
        } => go_metrics::send_failed(reason),
        _ => Vec::new(),
    })
}
