//! A small bounded map with per-entry expiry, for the caches shared across Mounts (credentials,
//! Key Vault clients, object contents). Least recently used entries go first when it is full.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use tokio::time::Instant;

struct Entry<V> {
    value: V,
    expires: Instant,
    last_used: Instant,
}

/// Bounded, expiring, thread-safe. Values are cloned out (use `Arc`s).
pub struct BoundedCache<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedCache<K, V> {
    /// A cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        BoundedCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live value under `key`, if any.
    pub fn get(&self, key: &K) -> Option<V> {
        let now = Instant::now();
        let mut entries = self.lock();
        match entries.get_mut(key) {
            Some(entry) if entry.expires > now => {
                entry.last_used = now;
                Some(entry.value.clone())
            }
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` until `expires`, evicting expired entries, then the least recently used.
    pub fn insert(&self, key: K, value: V, expires: Instant) {
        let mut entries = self.lock();
        self.insert_locked(&mut entries, key, value, expires);
    }

    fn insert_locked(
        &self,
        entries: &mut HashMap<K, Entry<V>>,
        key: K,
        value: V,
        expires: Instant,
    ) {
        let now = Instant::now();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| e.expires > now);
            while entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => entries.remove(&k),
                    None => break,
                };
            }
        }
        entries.insert(
            key,
            Entry {
                value,
                expires,
                last_used: now,
            },
        );
    }

    /// The live value under `key`, or `make()`'s, stored until `expires`. `make` runs under
    /// the cache's lock (it must be cheap and must not block), so concurrent callers for one
    /// key share one value: two cold Mounts of a new identity share one credential, and so
    /// one token exchange.
    pub fn get_or_try_insert<E>(
        &self,
        key: &K,
        expires: Instant,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let now = Instant::now();
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key)
            && entry.expires > now
        {
            entry.last_used = now;
            return Ok(entry.value.clone());
        }
        let value = make()?;
        self.insert_locked(&mut entries, key.clone(), value.clone(), expires);
        Ok(value)
    }

    /// Live entries (for metrics and tests).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock().values().filter(|e| e.expires > now).count()
    }

    /// Whether no live entry remains.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_and_evicts_least_recently_used() {
        let cache = BoundedCache::new(2);
        let soon = Instant::now() + Duration::from_secs(10);
        cache.insert("a", 1, soon);
        tokio::time::advance(Duration::from_millis(1)).await;
        cache.insert("b", 2, soon);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get(&"a"), Some(1)); // a is now the most recently used
        cache.insert("c", 3, soon);
        assert_eq!(
            (cache.get(&"a"), cache.get(&"b"), cache.get(&"c")),
            (Some(1), None, Some(3))
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(cache.get(&"a"), None);
        assert!(cache.is_empty());
        let made: Result<i32, ()> =
            cache.get_or_try_insert(&"d", Instant::now() + Duration::from_secs(1), || Ok(4));
        assert_eq!(made, Ok(4));
        let again: Result<i32, ()> = cache.get_or_try_insert(&"d", Instant::now(), || Err(()));
        assert_eq!(again, Ok(4));
    }
}
