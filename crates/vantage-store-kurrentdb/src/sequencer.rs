//! The sequencer: copies stream events, in `$all` order, into the log stream, giving each the next
//! global position and its hash-chain link.
//!
//! One step reads where the log ends (its last entry remembers the `$all` position of the stream
//! event it orders), reads the namespace's stream events after that position from `$all`, links them
//! ([`wire::sequence`]) and appends them to the log stream expecting the revision it read. If another
//! process appended first, KurrentDB refuses the write and this step orders nothing; the winner's
//! entries are the same events in the same order, so nothing is lost or doubled. A write whose answer
//! was lost is retried with the same entry ids and is deduplicated by KurrentDB.
//!
//! `$all` is ordered by commit position and a write becomes readable only once committed at its
//! position, so an event can never appear in `$all` before an event the sequencer has already passed.

use std::sync::Arc;
use std::time::Duration;

use kurrentdb::{ReadAllOptions, StreamPosition, SubscriptionFilter};
use tokio::sync::{Notify, watch};
use vantage_store::{StoreError, StoredEvent, StreamName};

use crate::wire::{self, LogEntry, SourcePosition};
use crate::{LogReader, bounded, collect};

/// Stream events ordered per step.
const BATCH: usize = 500;

/// How long the sequencer waits for a local append before looking anyway (appends by other
/// processes are found by this poll).
const SEQUENCER_POLL: Duration = Duration::from_millis(100);

/// The namespace's stream events after `after` in `$all`, in `$all` order, at most [`BATCH`].
async fn pending(
    log: &LogReader,
    after: Option<SourcePosition>,
) -> Result<Vec<(SourcePosition, StoredEvent)>, StoreError> {
    let filter = SubscriptionFilter::on_stream_name().add_prefix(log.names.stream_prefix());
    // Reading `$all` from a position includes the event at that position: ask for one more.
    let options = ReadAllOptions::default()
        .forwards()
        .position(after.map_or(StreamPosition::Start, |p| {
            StreamPosition::Position(p.into())
        }))
        .filter(filter)
        .max_count(BATCH + 1);
    let raw = bounded(async { collect(log.client.read_all(&options).await).await }).await?;
    let mut events = Vec::with_capacity(raw.len());
    for event in &raw {
        let source = SourcePosition::from(event.position);
        if after.is_some_and(|after| source <= after) {
            continue;
        }
        let Some(stream) = log.names.vantage_stream(event.stream_id()) else {
            continue;
        };
        let stream = StreamName::new(stream)?;
        events.push((source, wire::decode_event(stream.as_str(), event)?));
        if events.len() == BATCH {
            break;
        }
    }
    Ok(events)
}

/// Appends `entries` after log position `head`; [`StoreError::Conflict`] if the log moved.
async fn append_entries(
    log: &LogReader,
    head: u64,
    entries: &[LogEntry],
) -> Result<(), StoreError> {
    let data = entries
        .iter()
        .map(LogEntry::to_event_data)
        .collect::<Result<Vec<_>, _>>()?;
    let log_stream = log.names.log();
    log.append(
        log_stream.clone(),
        head,
        data,
        &log_stream,
        &head.to_string(),
    )
    .await
}

/// Orders the next batch of waiting stream events. Returns how many it ordered and the log's head.
pub(crate) async fn step(log: &LogReader) -> Result<(u64, u64), StoreError> {
    let tail = log.tail().await?;
    let events = pending(log, tail.source).await?;
    if events.is_empty() {
        return Ok((0, tail.head));
    }
    let entries = wire::sequence(&tail, events);
    let ordered = entries.len() as u64;
    match append_entries(log, tail.head, &entries).await {
        Ok(()) => Ok((ordered, tail.head + ordered)),
        // Another sequencer ordered these events first.
        Err(error) if error.is_conflict() => Ok((0, tail.head)),
        Err(error) => Err(error),
    }
}

/// Runs steps whenever this process appends, and at least every [`SEQUENCER_POLL`], and tells
/// subscribers whenever the log's head moves (by this process's steps or another's).
pub(crate) async fn run(log: LogReader, appended: Arc<Notify>, wake: watch::Sender<u64>) {
    loop {
        let _ = tokio::time::timeout(SEQUENCER_POLL, appended.notified()).await;
        loop {
            match step(&log).await {
                Ok((ordered, head)) => {
                    wake.send_if_modified(|seen| {
                        let moved = *seen != head;
                        *seen = head;
                        moved
                    });
                    if ordered == 0 {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "KurrentDB sequencer step failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
