//! Which scans need running, read from the event log: every requested scan that has not ended —
//! first those a previous process left behind (history), then new ones as they are requested — and
//! which running scans must stop. Shared by the in-process pool and the NATS bridge.
//!
//! Starting does not read the log from its beginning: a [`Resume`] — the scans projection's
//! checkpoint and the scans that had not ended by it — says what history holds, and the feed follows
//! the log from that checkpoint. So start-up costs what is unfinished and the projection's lag, not
//! the log's length. Without a projection ([`Resume::default`]) the feed reads the whole log.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use vantage_app::{Decode, scan_of};
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

/// Where a feed picks up: the scans that had not ended as of log position `position`, each with the
/// position of its request (the order they are run in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    pub position: u64,
    pub unfinished: Vec<(u64, ScanJob)>,
}

/// Reads a [`Resume`] each time a feed starts (the composition root reads it from the scans
/// projection).
pub type ResumeSource =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Resume, StoreError>> + Send + Sync>;

/// A source that always starts from the beginning of the log (no projection to ask).
pub fn from_log_start() -> ResumeSource {
    Arc::new(|| Box::pin(async { Ok(Resume::default()) }))
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
    /// A feed that starts with `resume`'s unfinished scans and follows the log after its position.
    pub async fn start(store: Arc<dyn EventStore>, resume: Resume) -> Result<Self, StoreError> {
        let start_head = store.head_position().await?;
        Ok(Self {
            log: subscribe_all(store, resume.position, SubscriptionOptions::default()),
            start_head,
            caught_up: false,
            backlog: resume.unfinished.into_iter().collect(),
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
            let Some(scan_id) = scan_of(&recorded.event.stream) else {
                continue;
            };
            let Ok(event) = recorded.decode::<ScanEvent>() else {
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
                        // Keyed by the request's position: a scan the resume named already is
                        // named once.
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
