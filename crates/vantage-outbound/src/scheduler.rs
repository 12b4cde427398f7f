//! The scheduler: every few seconds, for each enabled schedule, starts the scan its latest due slot
//! owes, if that scan does not exist yet. Slots between the last scan and the latest are not made
//! up, so downtime starts one scan per schedule, not one per missed slot; a slot's scan id is
//! derived from the schedule and the slot (see `vantage_app::scheduled_scan_id`), so replicas that
//! race on a slot start it once. It runs under the `scheduler` lease, which only saves work.

use std::time::Duration;

use tokio::sync::watch;
use vantage_app::{Services, SlotOutcome};
use vantage_projections::ReadDb;

/// The lease name of the scheduler.
pub const JOB: &str = "scheduler";

/// Starts due scheduled scans every `every` until `stop` fires; returns an error when the read
/// models or the log fail.
pub async fn run_scheduler(
    services: Services,
    read: ReadDb,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    loop {
        tick(&services, &read).await?;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() {
                return Ok(());
            },
        }
    }
}

/// One pass over every schedule.
pub async fn tick(services: &Services, read: &ReadDb) -> Result<(), String> {
    let now = services.pipeline.clock().now();
    for doc in read.all_schedules().await.map_err(|e| e.to_string())? {
        let Some(slot) = doc.schedule.latest_slot(doc.created_at, now) else {
            continue;
        };
        match services
            .start_scheduled_scan(&doc.schedule, slot)
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(SlotOutcome::Started(scan)) => {
                tracing::info!(schedule = %doc.id, %scan, %slot, "scheduled scan started");
            }
            Ok(SlotOutcome::AlreadyStarted(_)) => {}
            Err(refused) => {
                tracing::warn!(schedule = %doc.id, %slot, %refused, "a scheduled scan was refused");
            }
        }
    }
    Ok(())
}
