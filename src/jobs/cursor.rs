//! Where a claimer's next claim starts in its queue.
//!
//! PostgreSQL leaves a dead index entry behind every row a claim takes, until a vacuum, and a
//! claim that walks its queue's index from the head steps over all of them: in a tick of a
//! million sends the last claims each read thousands of index pages, and the send rate fell
//! with N. A claimer therefore claims after the place its last claim reached. Rows can land
//! behind that place (a transaction that took a lower id committing later, a job made due
//! early by hand, an event marked unspread again), so once per `full_claim_every` it claims
//! from the head again.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ClaimCursor<K> {
    position: Option<K>,
    last_full: Option<Instant>,
    full_claim_every: Duration,
}

impl<K: Copy> ClaimCursor<K> {
    /// A cursor whose first claim is a full one. With a zero period every claim is.
    pub fn new(full_claim_every: Duration) -> Self {
        ClaimCursor {
            position: None,
            last_full: None,
            full_claim_every,
        }
    }

    /// The place to claim after, or `None` for a full claim from the head of the queue.
    pub fn start(&mut self) -> Option<K> {
        let recent_full = self
            .last_full
            .is_some_and(|at| at.elapsed() < self.full_claim_every);
        match self.position {
            Some(position) if recent_full => Some(position),
            _ => {
                self.last_full = Some(Instant::now());
                None
            }
        }
    }

    /// Records the furthest place a claim took a row at (`None` when it took none).
    pub fn claimed(&mut self, furthest: Option<K>) {
        if furthest.is_some() {
            self.position = furthest;
        }
    }

    /// Makes the next claim a full one: for a caller that must see everything now.
    pub fn rewind(&mut self) {
        self.last_full = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_claim_is_full_then_claims_follow_on() {
        let mut cursor = ClaimCursor::new(Duration::from_secs(60));
        assert_eq!(cursor.start(), None);
        cursor.claimed(Some(7));
        assert_eq!(cursor.start(), Some(7));
        cursor.claimed(Some(19));
        assert_eq!(cursor.start(), Some(19));
        // A claim that took nothing keeps the place.
        cursor.claimed(None);
        assert_eq!(cursor.start(), Some(19));
    }

    #[test]
    fn until_a_claim_takes_something_every_claim_is_full() {
        let mut cursor = ClaimCursor::<i64>::new(Duration::from_secs(60));
        assert_eq!(cursor.start(), None);
        cursor.claimed(None);
        assert_eq!(cursor.start(), None);
    }

    #[test]
    fn rewinding_makes_the_next_claim_full() {
        let mut cursor = ClaimCursor::new(Duration::from_secs(60));
        assert_eq!(cursor.start(), None);
        cursor.claimed(Some(7));
        cursor.rewind();
        assert_eq!(cursor.start(), None);
        assert_eq!(cursor.start(), Some(7));
    }

    #[test]
    fn with_a_zero_period_every_claim_is_full() {
        let mut cursor = ClaimCursor::new(Duration::ZERO);
        assert_eq!(cursor.start(), None);
        cursor.claimed(Some(7));
        assert_eq!(cursor.start(), None);
    }
}
