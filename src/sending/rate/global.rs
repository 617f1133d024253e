//! The limit shared by every process on the database (SBM_GLOBAL_SEND_RATE_LIMIT).
//!
//! The tokens live in a bucket row (`store::send_rate`), refilled on the database's clock. A
//! process does not ask the database once per send: the first send that finds no token in hand
//! takes a few from the bucket for all that are waiting (and for what the process spent since
//! its last take, so the next sends find one), at most [`LEASE_SECS`] of the rate; the others
//! wait on the tokens in hand, holding no connection. When the bucket was short, the next take
//! waits until it should have refilled, at most half the time the bucket takes to fill, so
//! that while sends wait the bucket is taken from before it is full and no token is lost to
//! its cap.
//!
//! How close to the rate: over any stretch of time T, the processes send at most
//! `rate × T + burst + tokens in hand`. The burst is [`BURST_SECS`] of the rate (after an idle
//! spell); tokens in hand are each process's spending over one gap between takes, so together
//! about `rate × gap`, whatever the number of processes (K processes sharing the rate each take
//! about a K-th). A process that dies loses at most what it held: one lease of its share.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::store::send_rate::{self as sql, Grant};
use crate::store::{self, Db};

/// Seconds of the rate the bucket holds at most: the burst after an idle spell. Large enough
/// that a take delayed by a busy database (on SQLite, a wait for the one write lock, which
/// SQLite's busy handler sleeps in steps of up to 100 ms) does not let the bucket fill and lose
/// tokens; small against a minute (under 1 %).
pub(super) const BURST_SECS: f64 = 0.5;
/// Seconds of the rate one take asks for at most.
pub(super) const LEASE_SECS: f64 = 0.05;
/// The shortest time between two takes of one process.
pub(super) const MIN_GAP: Duration = Duration::from_millis(5);

/// Where the tokens come from: the database's bucket, or a model of it in tests.
pub(super) trait TokenSource: Send + Sync {
    fn take(
        &self,
        rate: f64,
        burst: f64,
        want: i64,
    ) -> impl Future<Output = store::Result<Grant>> + Send;
}

/// The bucket row of the Message Sender.
#[derive(Debug)]
pub(super) struct DbBucket {
    pub db: Db,
}

impl TokenSource for DbBucket {
    async fn take(&self, rate: f64, burst: f64, want: i64) -> store::Result<Grant> {
        let mut conn = self.db.acquire().await?;
        sql::take(conn.conn(), "message_sender", rate, burst, want).await
    }
}

/// The sizes that follow from the rate: pure arithmetic, tested on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sizing {
    pub rate: f64,
    /// Most tokens the bucket holds (at least one, or nothing could ever be granted).
    pub burst: f64,
    /// Most tokens one take asks for.
    pub max_lease: i64,
    /// Longest wait before taking again after a short grant: half the time the bucket takes
    /// to fill, so that a bucket taken from by waiting sends is never full.
    pub max_gap: Duration,
}

impl Sizing {
    pub fn for_rate(rate: f64) -> Sizing {
        let burst = (rate * BURST_SECS).max(1.0);
        let max_lease = ((rate * LEASE_SECS).ceil() as i64).clamp(1, burst as i64);
        let max_gap = Duration::from_secs_f64(burst / rate / 2.0).max(MIN_GAP);
        Sizing {
            rate,
            burst,
            max_lease,
            max_gap,
        }
    }

    /// Tokens to ask for: one for each send waiting now, and as many as were spent since the
    /// last take (the demand of the next gap), at most one lease.
    pub fn want(&self, waiting: usize, spent_since_last_take: u64) -> i64 {
        let demand = (waiting as u64).saturating_add(spent_since_last_take);
        demand.clamp(1, self.max_lease as u64) as i64
    }

    /// How long to wait before the next take, after `grant` for `want`: the shortest gap when
    /// the bucket had enough; else until it should hold the rest, within the gaps' bounds.
    pub fn next_take_after(&self, want: i64, grant: Grant) -> Duration {
        if grant.granted >= want {
            return MIN_GAP;
        }
        let short = (want - grant.granted) as f64 - grant.left.max(0.0);
        Duration::from_secs_f64(short.max(0.0) / self.rate).clamp(MIN_GAP, self.max_gap)
    }
}

/// What only the process's one taker touches.
#[derive(Debug)]
struct Taker {
    next_take: Instant,
    failures: u32,
}

/// A process's share of the global rate.
#[derive(Debug)]
pub(super) struct GlobalLimiter<S> {
    source: S,
    sizing: Sizing,
    /// Tokens in hand.
    tokens: Semaphore,
    /// Sends waiting for a token.
    waiting: AtomicUsize,
    /// Tokens spent since the last take.
    spent: AtomicU64,
    taker: Mutex<Taker>,
}

/// Counts a send as waiting until it has its token (or is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S: TokenSource> GlobalLimiter<S> {
    /// `None` for a rate of 0 (no limit).
    pub fn per_second(source: S, rate: f64) -> Option<GlobalLimiter<S>> {
        (rate > 0.0).then(|| GlobalLimiter {
            source,
            sizing: Sizing::for_rate(rate),
            tokens: Semaphore::new(0),
            waiting: AtomicUsize::new(0),
            spent: AtomicU64::new(0),
            taker: Mutex::new(Taker {
                next_take: Instant::now(),
                failures: 0,
            }),
        })
    }

    /// Waits for a token and spends it.
    pub async fn acquire(&self) {
        if let Ok(token) = self.tokens.try_acquire() {
            return self.spend(token);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        loop {
            tokio::select! {
                biased;
                token = self.tokens.acquire() => {
                    return self.spend(token.expect("the token semaphore is never closed"));
                }
                mut taker = self.taker.lock() => self.take(&mut taker).await,
            }
        }
    }

    fn spend(&self, token: tokio::sync::SemaphorePermit<'_>) {
        token.forget();
        self.spent.fetch_add(1, Ordering::Relaxed);
    }

    /// The one taker of the process: waits for its turn, then takes tokens for the waiting.
    async fn take(&self, taker: &mut Taker) {
        tokio::time::sleep_until(taker.next_take).await;
        let want = self.sizing.want(
            self.waiting.load(Ordering::Relaxed),
            self.spent.swap(0, Ordering::Relaxed),
        );
        let sizing = self.sizing;
        match self.source.take(sizing.rate, sizing.burst, want).await {
            Ok(grant) => {
                self.tokens.add_permits(grant.granted.max(0) as usize);
                taker.next_take = Instant::now() + sizing.next_take_after(want, grant);
                taker.failures = 0;
            }
            Err(err) => {
                // Sends wait rather than go past the limit; the database being down stops them
                // anyway.
                taker.failures = taker.failures.saturating_add(1);
                let backoff = Duration::from_millis(100) * 2u32.pow(taker.failures.min(5));
                tracing::warn!(error = ?err, retry_in = ?backoff, "could not take send tokens from the global rate limit");
                taker.next_take = Instant::now() + backoff;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_rate_sizes_its_burst_its_lease_and_its_longest_gap() {
        let s = Sizing::for_rate(1000.0);
        assert_eq!((s.burst, s.max_lease), (500.0, 50));
        assert_eq!(s.max_gap, Duration::from_millis(250));
        // A slow rate still holds one token, and waits longer between takes.
        let s = Sizing::for_rate(2.0);
        assert_eq!((s.burst, s.max_lease), (1.0, 1));
        assert_eq!(s.max_gap, Duration::from_millis(250));
    }

    #[test]
    fn a_take_asks_for_the_waiting_and_the_last_gaps_demand_within_a_lease() {
        let s = Sizing::for_rate(1000.0);
        assert_eq!(s.want(3, 0), 3);
        assert_eq!(s.want(3, 10), 13);
        assert_eq!(s.want(256, 0), 50);
        assert_eq!(s.want(0, 0), 1);
    }

    #[test]
    fn after_a_short_grant_the_next_take_waits_for_the_refill() {
        let s = Sizing::for_rate(1000.0);
        let full = Grant {
            granted: 20,
            left: 3.0,
        };
        assert_eq!(s.next_take_after(20, full), MIN_GAP);
        // 30 short, 0.5 of them already in the bucket: 29.5 ms at 1000/s.
        let short = Grant {
            granted: 20,
            left: 0.5,
        };
        assert_eq!(
            s.next_take_after(50, short),
            Duration::from_secs_f64(0.0295)
        );
        // Never longer than half the bucket's fill time.
        let dry = Grant {
            granted: 0,
            left: 0.0,
        };
        assert_eq!(s.next_take_after(50, dry), Duration::from_millis(50));
        assert_eq!(
            Sizing::for_rate(1e5).next_take_after(1, dry),
            Duration::from_millis(5)
        );
    }

    /// The bucket row's arithmetic, as `store::send_rate::take` does it in SQL, on tokio's
    /// clock.
    struct ModelBucket {
        state: std::sync::Mutex<(f64, Instant)>,
        takes: AtomicU64,
    }

    impl ModelBucket {
        fn new() -> Arc<ModelBucket> {
            Arc::new(ModelBucket {
                state: std::sync::Mutex::new((0.0, Instant::now())),
                takes: AtomicU64::new(0),
            })
        }
    }

    impl TokenSource for Arc<ModelBucket> {
        async fn take(&self, rate: f64, burst: f64, want: i64) -> store::Result<Grant> {
            // A database round trip.
            tokio::time::sleep(Duration::from_micros(500)).await;
            self.takes.fetch_add(1, Ordering::Relaxed);
            let mut state = self.state.lock().unwrap();
            let now = Instant::now().max(state.1);
            let tokens = (state.0 + rate * (now - state.1).as_secs_f64()).min(burst);
            let granted = (want as f64).min(tokens.floor());
            *state = (tokens - granted, now);
            Ok(Grant {
                granted: granted as i64,
                left: tokens - granted,
            })
        }
    }

    /// K processes, each with 256 sends in flight, share one bucket for `secs`; returns the
    /// sends of each and the takes.
    async fn share(k: usize, rate: f64, secs: u64) -> (Vec<u64>, u64) {
        let bucket = ModelBucket::new();
        let stop = Instant::now() + Duration::from_secs(secs);
        let mut processes = Vec::new();
        for _ in 0..k {
            let limiter = Arc::new(GlobalLimiter::per_second(bucket.clone(), rate).unwrap());
            let sent = Arc::new(AtomicU64::new(0));
            for _ in 0..256 {
                let (limiter, sent) = (limiter.clone(), sent.clone());
                tokio::spawn(async move {
                    loop {
                        limiter.acquire().await;
                        if Instant::now() >= stop {
                            return;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        // The send's own time at the Message Sender.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
            }
            processes.push(sent);
        }
        tokio::time::sleep_until(stop + Duration::from_millis(1)).await;
        let sent = processes
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        (sent, bucket.takes.load(Ordering::Relaxed))
    }

    #[tokio::test(start_paused = true)]
    async fn processes_sharing_the_bucket_send_the_rate_together_whatever_their_number() {
        for k in [1, 3, 8] {
            let (sent, takes) = share(k, 1000.0, 10).await;
            let total: u64 = sent.iter().sum();
            assert!(
                (9_900..=10_050).contains(&total),
                "{k} processes sent {total} in 10 s at 1000/s: {sent:?}"
            );
            // Each gets a fair part, by asking about as often as the others.
            for part in &sent {
                let fair = total / k as u64;
                assert!(part * 10 > fair * 8, "{k} processes: {sent:?}");
            }
            // Takes stay rare: tens per second per process, not one per send.
            assert!(
                takes < 10 * 60 * k as u64,
                "{k} processes took {takes} times"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_rate_is_kept_too() {
        let (sent, _) = share(3, 5.0, 20).await;
        let total: u64 = sent.iter().sum();
        assert!((99..=101).contains(&total), "{sent:?}");
    }
}
