//! Schedule commands, and starting the scan a schedule owes for one slot.
//!
//! A scheduled scan's id is a UUIDv5 of the schedule and the slot's time, and it is started with
//! "this stream must not exist yet": two replicas that both find a slot due race to append the
//! same first event, one wins and the other is told the scan exists. So each slot starts at most one
//! scan, with or without the scheduler's lease.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use vantage_domain::DomainError;
use vantage_domain::ids::{ScanId, ScheduleId};
use vantage_domain::scan::{Scan, ScanCommand, ScanSpec};
use vantage_domain::schedule::{Cadence, Schedule, ScheduleCommand, ScheduleCreated};

use crate::streams::schedule_stream;
use crate::{AppError, CommandContext, Services, new_id, scan_stream};

/// The namespace of scheduled scans' ids.
const SCHEDULED_SCAN_NAMESPACE: Uuid = Uuid::from_u128(0x5c4e_d01e_d5ca_4e11_9a7c_0000_0000_0001);

/// The id of the scan schedule `id` starts for the slot at `slot`.
pub fn scheduled_scan_id(id: ScheduleId, slot: DateTime<Utc>) -> ScanId {
    let name = format!("{id}/{}", slot.timestamp());
    ScanId(Uuid::new_v5(&SCHEDULED_SCAN_NAMESPACE, name.as_bytes()))
}

/// What a scheduled slot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotOutcome {
    /// This call started the slot's scan.
    Started(ScanId),
    /// The slot's scan already exists (another replica, or an earlier pass, started it).
    AlreadyStarted(ScanId),
}

impl Services {
    /// Creates a schedule of the context's tenant; its target passes the SSRF guard now and again at
    /// every scan.
    pub async fn create_schedule(
        &self,
        context: &CommandContext,
        spec: ScanSpec,
        cadence: Cadence,
        enabled: bool,
    ) -> Result<Result<ScheduleId, DomainError>, AppError> {
        if let Err(refused) = self.vet_project(&context.tenant, &spec.project).await? {
            return Ok(Err(refused));
        }
        if let Err(refused) = self.vet_host(spec.target.host()).await {
            return Ok(Err(refused));
        }
        let id = ScheduleId(new_id());
        let command = ScheduleCommand::Create {
            schedule_id: id,
            tenant: context.tenant.clone(),
            spec,
            cadence,
            enabled,
        };
        Ok(self
            .pipeline
            .execute::<Schedule>(&schedule_stream(id), context, command)
            .await?
            .map(|_| id))
    }

    /// Deletes a schedule of the context's tenant (another tenant's is not found).
    pub async fn delete_schedule(
        &self,
        context: &CommandContext,
        id: ScheduleId,
    ) -> Result<Result<(), DomainError>, AppError> {
        let schedule = self
            .pipeline
            .load::<Schedule>(&schedule_stream(id))
            .await?
            .state;
        let own = schedule
            .created
            .as_ref()
            .is_some_and(|c| c.tenant == context.tenant);
        if !own || schedule.deleted {
            return Ok(Err(DomainError::NotFound("schedule")));
        }
        Ok(self
            .pipeline
            .execute::<Schedule>(&schedule_stream(id), context, ScheduleCommand::Delete)
            .await?
            .map(|_| ()))
    }

    /// Starts the scan `schedule` owes for `slot`, as the system, unless it exists. A target the
    /// guard now refuses is refused like any scan's (nothing is appended).
    pub async fn start_scheduled_scan(
        &self,
        schedule: &ScheduleCreated,
        slot: DateTime<Utc>,
    ) -> Result<Result<SlotOutcome, DomainError>, AppError> {
        let id = scheduled_scan_id(schedule.schedule_id, slot);
        let stream = scan_stream(id);
        let existing = self.pipeline.load::<Scan>(&stream).await?.state;
        if existing.requested.is_some() {
            return Ok(Ok(SlotOutcome::AlreadyStarted(id)));
        }
        if let Err(refused) = self.vet_host(schedule.spec.target.host()).await {
            return Ok(Err(refused));
        }
        let context = CommandContext::system(schedule.tenant.clone());
        let command = ScanCommand::Start {
            scan_id: id,
            tenant: schedule.tenant.clone(),
            spec: schedule.spec.clone(),
        };
        match self
            .pipeline
            .execute::<Scan>(&stream, &context, command)
            .await?
        {
            Ok(_) => Ok(Ok(SlotOutcome::Started(id))),
            // Another replica appended the same first event between the load and this append.
            Err(DomainError::AlreadyExists(_)) => Ok(Ok(SlotOutcome::AlreadyStarted(id))),
            Err(refused) => Ok(Err(refused)),
        }
    }
}
