//! Optional limits on sends per second towards the Message Sender: one per process
//! (SBM_SEND_RATE_LIMIT, [`pacer`]) and one shared by every process on the database
//! (SBM_GLOBAL_SEND_RATE_LIMIT, [`global`]). A process obeys both.
//!
//! A send first takes its slot of the process's even spacing, then a token of the global rate:
//! in that order a send holds a global token only for the moment it takes to post, so tokens in
//! hand stay few and a process that dies wastes almost none. When the global rate is the
//! tighter one, its tokens come in small batches (a take every few tens of milliseconds), so a
//! process's sends may leave a few at once (at most one take's worth, 50 ms of the global rate).
//!
//! Waiting sends hold no database connection: only the one send that takes tokens for the
//! others uses one, for one statement. A send waits as long as its share of the rate needs:
//! with K processes of C sends in flight at a global rate R, up to K × C / R seconds, which
//! must stay well below the job lease (SBM_JOB_LEASE_SECS), or the sends run again elsewhere.

mod global;
mod pacer;

use crate::store::Db;
use global::{DbBucket, GlobalLimiter};
use pacer::Pacer;

#[derive(Debug)]
pub struct RateLimiter {
    per_process: Option<Pacer>,
    global: Option<GlobalLimiter<DbBucket>>,
}

impl RateLimiter {
    /// `None` when both rates are 0 (no limit).
    pub fn new(db: &Db, per_process: f64, global: f64) -> Option<RateLimiter> {
        let limiter = RateLimiter {
            per_process: Pacer::per_second(per_process),
            global: GlobalLimiter::per_second(DbBucket { db: db.clone() }, global),
        };
        (limiter.per_process.is_some() || limiter.global.is_some()).then_some(limiter)
    }

    /// Waits until this send may go.
    pub async fn wait(&self) {
        if let Some(pacer) = &self.per_process {
            pacer.wait().await;
        }
        if let Some(global) = &self.global {
            global.acquire().await;
        }
    }
}
