//! Reopening regressions as events. When a scan sees again a finding that somebody triaged
//! `fixed`, the scans projector notes the fingerprint as due (its read models keep the triage as
//! the log says: fixed). This loop turns each due note into a `TriageSet` by the system actor —
//! reason `regressed`, with the scan's id — so the triage stream, the read models and the audit
//! trail agree on why the finding is open again. Once projected, the event clears the note.
//!
//! Safe to run in every process at once and after any crash: the triage aggregate reopens only a
//! fingerprint still triaged `fixed`, so a repeat, or a note whose finding somebody triaged since,
//! appends nothing.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use vantage_domain::DomainError;
use vantage_domain::triage::{DueReopen, Triage, TriageCommand};

use crate::Services;
use crate::pipeline::{AppError, CommandContext};
use crate::streams::triage_stream;

/// How often due reopenings are looked for when there were none.
pub const REOPEN_POLL: Duration = Duration::from_millis(500);
/// Most due reopenings handled per round.
pub const REOPEN_BATCH: usize = 100;

impl Services {
    /// Reopens `due` as the system; `false` (and nothing appended) when the fingerprint is no
    /// longer `fixed`.
    pub async fn reopen_regressed(
        &self,
        due: &DueReopen,
    ) -> Result<Result<bool, DomainError>, AppError> {
        let context = CommandContext {
            correlation_id: due.scan_id.as_uuid(),
            ..CommandContext::system(due.tenant.clone())
        };
        let command = TriageCommand::Reopen {
            fingerprint: due.fingerprint.clone(),
            scan_id: due.scan_id,
        };
        Ok(self
            .pipeline
            .execute::<Triage>(
                &triage_stream(&due.tenant, &due.fingerprint),
                &context,
                command,
            )
            .await?
            .map(|executed| !executed.events.is_empty()))
    }
}

/// Reopens what `due` lists (at most [`REOPEN_BATCH`] a call) until `stop` turns true, a round
/// every [`REOPEN_POLL`] (at once after a full batch). A failure is logged and retried on the next
/// round; a note stays listed until its event is projected, and listing it again appends nothing.
pub async fn reopen_regressions<F, Fut, E>(
    services: Services,
    mut due: F,
    mut stop: watch::Receiver<bool>,
) where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<Vec<DueReopen>, E>>,
    E: std::fmt::Display,
{
    while !*stop.borrow() {
        let listed = due(REOPEN_BATCH).await;
        let mut reopened = 0;
        match listed {
            Ok(items) => {
                for item in &items {
                    match services.reopen_regressed(item).await {
                        Ok(Ok(true)) => reopened += 1,
                        Ok(Ok(false)) => {}
                        Ok(Err(refused)) => {
                            tracing::warn!(fingerprint = %item.fingerprint, %refused, "reopen refused");
                        }
                        Err(error) => {
                            tracing::warn!(fingerprint = %item.fingerprint, %error, "reopen failed");
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list due reopenings"),
        }
        if reopened < REOPEN_BATCH {
            tokio::select! {
                _ = tokio::time::sleep(REOPEN_POLL) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
