//! Walks the global log and checks every link of the hash chain (`vantage verify`).

use std::collections::HashMap;

use crate::{EventStore, GENESIS_HASH, StoreError, chain_hash, content_hash};

/// The first place where the log is not what was appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub global_position: u64,
    pub event_id: String,
    pub stream: String,
    pub stream_version: u64,
    pub reason: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event {} (global position {}, stream {} version {}): {}",
            self.event_id, self.global_position, self.stream, self.stream_version, self.reason
        )
    }
}

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events_checked: u64,
    pub head_hash: String,
    pub first_break: Option<ChainBreak>,
}

/// Checks every event from the start: positions gapless, stream versions contiguous, content hash and
/// chain hash as recomputed. Stops at the first break. `progress` is called after each batch with the
/// number of events checked so far.
pub async fn verify_chain(
    store: &dyn EventStore,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, StoreError> {
    let mut position = 0u64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut stream_versions: HashMap<String, u64> = HashMap::new();
    loop {
        let batch = store.read_all(position, 2000).await?;
        if batch.is_empty() {
            return Ok(VerifyReport {
                events_checked: position,
                head_hash: prev_hash,
                first_break: None,
            });
        }
        for recorded in batch {
            let event = &recorded.event;
            let broken = |reason: String| ChainBreak {
                global_position: recorded.global_position,
                event_id: event.event_id.to_string(),
                stream: event.stream.clone(),
                stream_version: event.stream_version,
                reason,
            };
            let report = |chain_break: ChainBreak, checked: u64, head: &str| VerifyReport {
                events_checked: checked,
                head_hash: head.to_owned(),
                first_break: Some(chain_break),
            };
            if recorded.global_position != position + 1 {
                let reason = format!(
                    "expected global position {}: events are missing",
                    position + 1
                );
                return Ok(report(broken(reason), position, &prev_hash));
            }
            let recomputed = content_hash(event);
            if recomputed != event.content_hash {
                let reason = "content does not match its hash: the event was altered".to_owned();
                return Ok(report(broken(reason), position, &prev_hash));
            }
            if recorded.prev_hash != prev_hash {
                let reason =
                    "does not link to its predecessor: events were removed, inserted or reordered"
                        .to_owned();
                return Ok(report(broken(reason), position, &prev_hash));
            }
            if chain_hash(&prev_hash, recorded.global_position, &recomputed) != recorded.hash {
                let reason = "chain hash does not match".to_owned();
                return Ok(report(broken(reason), position, &prev_hash));
            }
            let version = stream_versions.entry(event.stream.clone()).or_insert(0);
            if event.stream_version != *version + 1 {
                let reason = format!("stream version follows {} in the global order", *version);
                return Ok(report(broken(reason), position, &prev_hash));
            }
            *version = event.stream_version;
            position = recorded.global_position;
            prev_hash = recorded.hash;
        }
        progress(position);
    }
}
