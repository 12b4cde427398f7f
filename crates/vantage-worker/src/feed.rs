//! Which scans need running, read from the event log: every requested scan that has not ended —
//! first those a previous process left behind (history), then new ones as they are requested — and
//! which running scans must stop. Shared by the in-process pool and the NATS bridge.
//!
//! *Until the scans projection exists, catching up reads the log from the start.*

use std::collections::BTreeMap;
use std::sync::Arc;

use vantage_domain::DomainEvent;
use vantage_domain::ids::ScanId;
use vantage_domain::scan::ScanEvent;
use vantage_store::{EventStore, StoreError, Subscription, SubscriptionOptions, subscribe_all};

use crate::run::ScanJob;

/// What the feed says to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// Run this scan.
    Run(ScanJob),
    /// The scan was cancelled or deleted: stop working on it.
    Stop(ScanId),
    /// The scan ended (completed or failed): forget it.
    Ended(ScanId),
}

/// Follows the log and hands out [`Dispatch`]es in order.
#[derive(Debug)]
pub struct ScanFeed {
    log: Subscription,
    start_head: u64,
    caught_up: bool,
    backlog: BTreeMap<u64, ScanJob>,
    ready: std::collections::VecDeque<Dispatch>,
}

impl ScanFeed {
    pub async fn start(store: Arc<dyn EventStore>) -> Result<Self, StoreError> {
        let start_head = store.head_position().await?;
        Ok(Self {
            log: subscribe_all(store, 0, SubscriptionOptions::default()),
            start_head,
            caught_up: start_head == 0,
            backlog: BTreeMap::new(),
            ready: std::collections::VecDeque::new(),
        })
    }

    /// The next thing to do; waits for the log to grow when there is nothing.
    pub async fn next(&mut self) -> Result<Dispatch, StoreError> {
        loop {
            if !self.caught_up && self.log.position() >= self.start_head {
                self.caught_up = true;
                self.ready.extend(
                    std::mem::take(&mut self.backlog)
                        .into_values()
                        .map(Dispatch::Run),
                );
            }
            if let Some(next) = self.ready.pop_front() {
                return Ok(next);
            }
            let recorded = self.log.next().await?;
            let Some(scan_id) = recorded
                .event
                .stream
                .strip_prefix("scan-")
                .and_then(|id| id.parse::<ScanId>().ok())
            else {
                continue;
            };
            let Ok(event) = ScanEvent::decode(
                &recorded.event.event_type,
                recorded.event.schema_version,
                recorded.event.payload.as_str(),
            ) else {
                continue;
            };
            let dispatch = match event {
                ScanEvent::ScanRequested(requested) => {
                    let job = ScanJob {
                        scan_id,
                        spec: requested.spec(),
                        tenant: requested.tenant,
                    };
                    if !self.caught_up {
                        self.backlog.insert(recorded.global_position, job);
                        continue;
                    }
                    Dispatch::Run(job)
                }
                ScanEvent::ScanCancelled(_) | ScanEvent::ScanDeleted(_) => {
                    self.backlog.retain(|_, job| job.scan_id != scan_id);
                    Dispatch::Stop(scan_id)
                }
                ScanEvent::ScanCompleted(_) | ScanEvent::ScanFailed(_) => {
                    self.backlog.retain(|_, job| job.scan_id != scan_id);
                    Dispatch::Ended(scan_id)
                }
                _ => continue,
            };
            if self.caught_up {
                return Ok(dispatch);
            }
        }
    }
}
