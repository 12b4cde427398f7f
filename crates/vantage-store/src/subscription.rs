//! Catch-up-then-live subscriptions to the global log, built on [`EventStore::read_all`] and the
//! store's wake-up signal alone, so every store gets the same semantics.
//!
//! Back-pressure is by construction: a subscription reads the next batch only when its consumer asks
//! for the next event, so a slow consumer holds at most one batch in memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;

use crate::{EventStore, RecordedEvent, StoreError};

/// How a subscription reads.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionOptions {
    /// Events read per query.
    pub batch_size: usize,
    /// How long to wait for a wake-up before looking anyway.
    pub poll_interval: Duration,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// A position in the global log that hands out every later event exactly once, in order.
pub struct Subscription {
    store: Arc<dyn EventStore>,
    position: u64,
    buffer: VecDeque<RecordedEvent>,
    wakeups: tokio::sync::watch::Receiver<u64>,
    options: SubscriptionOptions,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("position", &self.position)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

/// Subscribes to every event with `global_position > after`: first the history, then live events.
pub fn subscribe_all(
    store: Arc<dyn EventStore>,
    after: u64,
    options: SubscriptionOptions,
) -> Subscription {
    let wakeups = store.wakeups();
    Subscription {
        store,
        position: after,
        buffer: VecDeque::new(),
        wakeups,
        options,
    }
}

impl Subscription {
    /// The position of the last event handed out.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next event, waiting for one to be appended if the subscription has caught up.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.next_buffered() {
                return Ok(event);
            }
            // Mark the signal seen *before* reading, so an append between the read and the wait
            // still wakes us.
            self.wakeups.borrow_and_update();
            self.fill().await?;
            if !self.buffer.is_empty() {
                continue;
            }
            let _ = tokio::time::timeout(self.options.poll_interval, self.wakeups.changed()).await;
        }
    }

    /// The next batch of events already in the log, without waiting; empty when caught up.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.buffer.is_empty() {
            self.fill().await?;
        }
        let batch: Vec<RecordedEvent> = self.buffer.drain(..).collect();
        if let Some(last) = batch.last() {
            self.position = last.global_position;
        }
        Ok(batch)
    }

    fn next_buffered(&mut self) -> Option<RecordedEvent> {
        let event = self.buffer.pop_front()?;
        self.position = event.global_position;
        Some(event)
    }

    async fn fill(&mut self) -> Result<(), StoreError> {
        let batch = self
            .store
            .read_all(self.position, self.options.batch_size)
            .await?;
        let mut expected = self.position;
        for event in &batch {
            expected += 1;
            if event.global_position != expected {
                return Err(StoreError::Corrupt {
                    location: format!("global position {}", event.global_position),
                    reason: format!("expected position {expected}: the global order has a gap"),
                });
            }
        }
        self.buffer.extend(batch);
        Ok(())
    }

    /// This subscription as a `Stream` (ends only on an error).
    pub fn into_stream(self) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + Send {
        futures::stream::unfold(Some(self), |state| async move {
            let mut subscription = state?;
            match subscription.next().await {
                Ok(event) => Some((Ok(event), Some(subscription))),
                Err(error) => Some((Err(error), None)),
            }
        })
    }
}
