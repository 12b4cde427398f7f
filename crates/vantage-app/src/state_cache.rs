//! Folded aggregate states of recently used streams, so a command reads only what was appended to
//! its stream since the state was last folded, not the whole stream again.
//!
//! Streams are append-only, so a state folded up to version `v` stays exact for that prefix; the
//! pipeline reads the events after `v` from the store (an indexed range) and folds them on. The
//! store stays the judge: every append still checks the expected version, and a conflict makes the
//! pipeline read and fold what it missed. The cache is bounded (least recently used entries go) and
//! aggregates can opt out ([`Aggregate::CACHE_STATE`]) when their states are large.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

use vantage_domain::Aggregate;
use vantage_store::StreamName;

/// Streams whose states are kept.
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

/// A bounded map from stream to its folded state and version.
#[derive(Default)]
pub(crate) struct StateCache {
    entries: Mutex<Entries>,
}

impl StateCache {
    /// The cached state of `stream` as an `A`, with the version it is folded up to.
    pub(crate) fn get<A: Aggregate>(&self, stream: &StreamName) -> Option<(A, u64)> {
        if !A::CACHE_STATE {
            return None;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.by_stream.get_mut(stream.as_str())?;
        entry.used = now;
        let state = entry.state.downcast_ref::<A>()?.clone();
        Some((state, entry.version))
    }

    /// Forgets every kept state (erasing a tenant: states may hold what its people wrote, opened).
    pub(crate) fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.by_stream.clear();
    }

    /// Keeps `state`, folded up to `version`, unless a state further along is kept already.
    pub(crate) fn put<A: Aggregate>(&self, stream: &StreamName, state: &A, version: u64) {
        if !A::CACHE_STATE || version == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clock += 1;
        let now = entries.clock;
        if let Some(entry) = entries.by_stream.get_mut(stream.as_str())
            && entry.state.is::<A>()
            && entry.version >= version
        {
            entry.used = now;
            return;
        }
        if entries.by_stream.len() >= CAPACITY && !entries.by_stream.contains_key(stream.as_str()) {
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
                state: Box::new(state.clone()),
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
