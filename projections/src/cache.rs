//! Answers of the scans read models kept until the scans projector's checkpoint moves.
//!
//! Every table a scan's findings, its fingerprints' triage and the command center are read from is
//! written by the scans projector alone, in the same transaction as its checkpoint: while the
//! checkpoint stands still, a query of those tables returns what it returned before. A cached
//! answer is therefore kept with the checkpoint read *before* its query (the query may see more,
//! never less) and served to a later read only if that read finds the checkpoint unchanged — one
//! primary-key lookup instead of the answer's queries and decoding. Pollers of a finished scan and
//! dashboards refreshed by many people ask the same question far more often than the projector
//! moves.
//!
//! Each [`ReadDb`](crate::ReadDb) (one per database, so one per replica) has its own cache; the
//! caches are bounded and drop what an older checkpoint answered first.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Answers keyed by `K`, each with the checkpoint it was read at, at most `capacity` of them.
pub(crate) struct CheckpointCache<K, V> {
    entries: Mutex<HashMap<K, (u64, Arc<V>)>>,
    capacity: usize,
}

impl<K: Eq + Hash, V> CheckpointCache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The answer to `key` if it was read at `checkpoint`.
    pub(crate) fn get(&self, key: &K, checkpoint: u64) -> Option<Arc<V>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| *at == checkpoint)
            .map(|(_, value)| Arc::clone(value))
    }

    /// Keeps `value`, the answer to `key` read at `checkpoint` (or later). When full, answers read
    /// at an older checkpoint go first, then all of them.
    pub(crate) fn insert(&self, key: K, checkpoint: u64, value: Arc<V>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| *at >= checkpoint);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (checkpoint, value));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

impl<K, V> std::fmt::Debug for CheckpointCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_served_only_at_the_checkpoint_it_was_read_at() {
        let cache = CheckpointCache::new(4);
        cache.insert("a", 7, Arc::new(1));
        assert_eq!(cache.get(&"a", 7).as_deref(), Some(&1));
        assert_eq!(cache.get(&"a", 8), None, "the projector moved on");
        assert_eq!(cache.get(&"b", 7), None);
        cache.insert("a", 8, Arc::new(2));
        assert_eq!(cache.get(&"a", 8).as_deref(), Some(&2));
    }

    #[test]
    fn a_full_cache_drops_older_answers_first_then_everything() {
        let cache = CheckpointCache::new(3);
        cache.insert(1, 1, Arc::new("old"));
        cache.insert(2, 2, Arc::new("new"));
        cache.insert(3, 2, Arc::new("new"));
        cache.insert(4, 2, Arc::new("new"));
        assert_eq!(cache.len(), 3, "the answer read at checkpoint 1 made room");
        assert!(cache.get(&1, 1).is_none());
        assert!(cache.get(&2, 2).is_some());
        cache.insert(5, 2, Arc::new("new"));
        assert_eq!(cache.len(), 1, "nothing older to drop: emptied");
        assert!(cache.get(&5, 2).is_some());
        cache.insert(5, 3, Arc::new("newer"));
        assert_eq!(cache.len(), 1, "a key answered again replaces its entry");
    }
}
