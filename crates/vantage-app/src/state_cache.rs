//! Values folded from recently used streams, so the next command or read of a stream reads only what
//! was appended to it since, not the whole stream again: the pipeline's aggregate states, and the
//! scan views that status polls read.
//!
//! Streams are append-only, so a value folded up to version `v` stays exact for that prefix; the
//! reader reads the events after `v` from the store (an indexed range) and folds them on. The store
//! stays the judge: every append still checks the expected version, and a conflict makes the
//! pipeline read and fold what it missed. The cache is bounded (least recently used entries go) and
//! aggregates can opt out ([`vantage_domain::Aggregate::CACHE_STATE`]) when their states are large.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

use vantage_store::StreamName;

/// Streams whose values are kept, unless a cache is made with its own capacity.
const CAPACITY: usize = 4096;

struct Entry {
    state: Box<dyn Any + Send + Sync>,
    version: u64,
    used: u64,
}

#[derive(Default)]
struct Entries {
    by_stream: HashMap<String, Entry>,
    clock: u64,
}

/// A bounded map from stream to a value folded from it and the version it is folded up to.
pub(crate) struct StateCache {
    entries: Mutex<Entries>,
    capacity: usize,
}

impl Default for StateCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl StateCache {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// The cached value of `stream` as a `T`, with the version it is folded up to.
    pub(crate) fn get<T: Clone + 'static>(&self, stream: &StreamName) -> Option<(T, u64)> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.by_stream.get_mut(stream.as_str())?;
        entry.used = now;
        let value = entry.state.downcast_ref::<T>()?.clone();
        Some((value, entry.version))
    }

    /// Forgets every kept state (erasing a tenant: states may hold what its people wrote, opened).
    pub(crate) fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.by_stream.clear();
    }

    /// Keeps `value`, folded up to `version`, unless a value further along is kept already.
    pub(crate) fn put<T: Clone + Send + Sync + 'static>(
        &self,
        stream: &StreamName,
        value: &T,
        version: u64,
    ) {
        if version == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clock += 1;
        let now = entries.clock;
        if let Some(entry) = entries.by_stream.get_mut(stream.as_str())
            && entry.state.is::<T>()
            && entry.version >= version
        {
            entry.used = now;
            return;
        }
        if entries.by_stream.len() >= self.capacity
            && !entries.by_stream.contains_key(stream.as_str())
        {
            let oldest = entries
                .by_stream
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(stream, _)| stream.clone());
            if let Some(oldest) = oldest {
                entries.by_stream.remove(&oldest);
            }
        }
        entries.by_stream.insert(
            stream.as_str().to_owned(),
            Entry {
                state: Box::new(value.clone()),
                version,
                used: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_domain::webhook::Webhook;

    fn stream(n: usize) -> StreamName {
        StreamName::new(format!("webhook-{n}")).unwrap()
    }

    #[test]
    fn keeps_the_furthest_state_and_drops_the_least_recently_used() {
        let cache = StateCache::default();
        let deleted = Webhook {
            deleted: true,
            ..Webhook::default()
        };
        cache.put(&stream(0), &deleted, 3);
        cache.put(&stream(0), &Webhook::default(), 2);
        assert_eq!(cache.get::<Webhook>(&stream(0)), Some((deleted.clone(), 3)));
        for n in 1..CAPACITY {
            cache.put(&stream(n), &Webhook::default(), 1);
        }
        // Stream 1 is now the least recently used; stream 0 was read after it was put.
        assert!(cache.get::<Webhook>(&stream(0)).is_some());
        cache.put(&stream(CAPACITY), &Webhook::default(), 1);
        assert!(cache.get::<Webhook>(&stream(1)).is_none());
        assert!(cache.get::<Webhook>(&stream(0)).is_some());
        assert!(cache.get::<Webhook>(&stream(CAPACITY)).is_some());
    }
}
