//! The per-process limit (SBM_SEND_RATE_LIMIT): sends of this process evenly spaced.
//!
//! A dozen lines of our own rather than a crate: one evenly spaced schedule of slots is all
//! that is needed (no bursts, no keyed limits), and each send reserves the next slot.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(super) struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// `None` for a rate of 0 (no limit).
    pub(super) fn per_second(rate: f64) -> Option<Pacer> {
        (rate > 0.0).then(|| Pacer {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(Instant::now()),
        })
    }

    /// Waits for this caller's slot.
    pub(super) async fn wait(&self) {
        let slot = {
            let mut next = self
                .next
                .lock()
                .expect("the limiter lock is never poisoned");
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_evenly() {
        let limiter = Pacer::per_second(10.0).unwrap();
        let start = Instant::now();
        for _ in 0..11 {
            limiter.wait().await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(999) && elapsed < Duration::from_millis(1100),
            "{elapsed:?}"
        );
        assert!(Pacer::per_second(0.0).is_none());
    }
}
