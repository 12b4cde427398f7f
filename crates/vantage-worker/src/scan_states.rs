//! The folded states of the scans a worker's commands are applied to, kept between commands, so a
//! scan's commands cost what was appended since the last one — not a fold of the whole stream each
//! time (which made a scan's cost grow with the square of its observations).
//!
//! Used where worker commands reach the pipeline: the in-process sink and the NATS bridge. A kept
//! state may be behind the log (a cancel from the API, another replica's append); the pipeline's
//! expected-version check finds out and folds what was missed ([`Pipeline::execute_on`]). States of
//! scans that ended, or refused a command, are dropped; the map is bounded for scans whose end never
//! arrives here.
//!
//! [`Pipeline::execute_on`]: vantage_app::Pipeline::execute_on

use std::collections::HashMap;
use std::sync::Mutex;

use vantage_app::{AppError, CommandContext, Folded, Services, scan_stream};
use vantage_domain::DomainError;
use vantage_domain::ids::ScanId;
use vantage_domain::scan::{Scan, ScanCommand};

/// Scans whose states are kept at most; past it, an arbitrary one is dropped (and folded again if
/// its commands come back).
const CAPACITY: usize = 1024;

/// Folded scan states by scan.
#[derive(Debug, Default)]
pub(crate) struct ScanStates {
    kept: Mutex<HashMap<ScanId, Folded<Scan>>>,
}

impl ScanStates {
    /// Runs `command` on scan `id` against its kept state (folded from the log the first time).
    pub(crate) async fn execute(
        &self,
        services: &Services,
        id: ScanId,
        context: &CommandContext,
        command: ScanCommand,
    ) -> Result<Result<(), DomainError>, AppError> {
        let stream = scan_stream(id);
        let mut folded = match self.take(id) {
            Some(folded) => folded,
            None => services.pipeline.load::<Scan>(&stream).await?,
        };
        let decided = services
            .pipeline
            .execute_on(&stream, context, command, &mut folded)
            .await?;
        let ended = folded.state.status.is_some_and(|s| s.is_terminal()) || folded.state.deleted;
        if decided.is_ok() && !ended {
            self.keep(id, folded);
        }
        Ok(decided.map(|_| ()))
    }

    fn take(&self, id: ScanId) -> Option<Folded<Scan>> {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    fn keep(&self, id: ScanId, folded: Folded<Scan>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= CAPACITY
            && let Some(other) = kept.keys().next().copied()
        {
            kept.remove(&other);
        }
        kept.insert(id, folded);
    }
}
