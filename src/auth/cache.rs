//! A short-lived cache of tokens that authenticated, so that a busy client's requests do not
//! each look their token up. Only valid tokens are kept (a flood of bad tokens cannot fill it),
//! and for at most `ttl`: a revoked token stops working within that time
//! (`SBM_AUTH_CACHE_MS`; 0 turns the cache off).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::auth::Caller;

/// More entries than this and the cache starts afresh.
const MAX_ENTRIES: usize = 10_000;

pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Caller)>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, token_hash: &str) -> Option<Caller> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self
            .entries
            .lock()
            .expect("the cache lock is never poisoned");
        entries
            .get(token_hash)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, caller)| caller.clone())
    }

    pub fn put(&self, token_hash: String, caller: Caller) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self
            .entries
            .lock()
            .expect("the cache lock is never poisoned");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(token_hash, (Instant::now(), caller));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            user_id: 1,
            email: "a@b.c".into(),
            is_admin: false,
            is_active: true,
            scope: None,
        }
    }

    #[test]
    fn entries_expire_and_a_zero_ttl_keeps_nothing() {
        let cache = TokenCache::new(Duration::from_millis(50));
        cache.put("h".into(), caller());
        assert!(cache.get("h").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("h").is_none());
        let off = TokenCache::new(Duration::ZERO);
        off.put("h".into(), caller());
        assert!(off.get("h").is_none());
    }
}
