//! A short-lived cache of the content a send needs (message set, message, last sequence number).
//!
//! A tick sends the same few messages to many subscribers; reading them from the database for
//! every send would double the queries per send. Content edits reach sends within the time to
//! live (`SBM_CONTENT_CACHE_MS`, 0 turns the cache off). Hand-written rather than a caching
//! crate: a map with a time stamp per entry is all it needs, and the number of keys is bounded
//! by the content itself (sets × sequence numbers × languages).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::content::{Message, MessageSet};
use crate::store::{self, content as content_sql, subscriptions as sql, Db};

struct Map<K, V>(Mutex<HashMap<K, (Instant, V)>>);

impl<K: Eq + Hash, V: Clone> Map<K, V> {
    fn new() -> Self {
        Map(Mutex::new(HashMap::new()))
    }

    fn get(&self, key: &K, ttl: Duration) -> Option<V> {
        let map = self.0.lock().expect("the cache lock is never poisoned");
        map.get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: K, value: V) {
        self.0
            .lock()
            .expect("the cache lock is never poisoned")
            .insert(key, (Instant::now(), value));
    }
}

pub struct ContentCache {
    ttl: Duration,
    sets: Map<i64, Option<Arc<MessageSet>>>,
    messages: Map<(i64, i32, String), Option<Arc<Message>>>,
    last: Map<(i64, String), Option<i32>>,
    zones: Map<i64, Option<String>>,
}

impl ContentCache {
    pub fn new(ttl: Duration) -> Self {
        ContentCache {
            ttl,
            sets: Map::new(),
            messages: Map::new(),
            last: Map::new(),
            zones: Map::new(),
        }
    }

    pub async fn message_set(&self, db: &Db, id: i64) -> store::Result<Option<Arc<MessageSet>>> {
        if let Some(hit) = self.sets.get(&id, self.ttl) {
            return Ok(hit);
        }
        let mut conn = db.acquire().await?;
        let value = content_sql::get_message_set(conn.conn(), id)
            .await?
            .map(Arc::new);
        self.sets.put(id, value.clone());
        Ok(value)
    }

    pub async fn message(
        &self,
        db: &Db,
        set: i64,
        sequence_number: i32,
        lang: &str,
    ) -> store::Result<Option<Arc<Message>>> {
        let key = (set, sequence_number, lang.to_string());
        if let Some(hit) = self.messages.get(&key, self.ttl) {
            return Ok(hit);
        }
        let mut conn = db.acquire().await?;
        let value = sql::find_message(conn.conn(), set, sequence_number, lang)
            .await?
            .map(Arc::new);
        self.messages.put(key, value.clone());
        Ok(value)
    }

    /// The time zone of a schedule (`None` if it no longer exists).
    pub async fn schedule_zone(&self, db: &Db, schedule: i64) -> store::Result<Option<String>> {
        if let Some(hit) = self.zones.get(&schedule, self.ttl) {
            return Ok(hit);
        }
        let mut conn = db.acquire().await?;
        let value = content_sql::get_schedule(conn.conn(), schedule)
            .await?
            .map(|s| s.timezone);
        self.zones.put(schedule, value.clone());
        Ok(value)
    }

    /// The last sequence number of a set in a language (where a subscription completes).
    pub async fn last_sequence_number(
        &self,
        db: &Db,
        set: i64,
        lang: &str,
    ) -> store::Result<Option<i32>> {
        let key = (set, lang.to_string());
        if let Some(hit) = self.last.get(&key, self.ttl) {
            return Ok(hit);
        }
        let mut conn = db.acquire().await?;
        let value = sql::last_sequence_number(conn.conn(), set, lang).await?;
        self.last.put(key, value);
        Ok(value)
    }
}
