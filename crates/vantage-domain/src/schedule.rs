//! The schedule aggregate (stream `schedule-<id>`): a scan spec repeated at a fixed interval. Scans it
//! starts carry trigger `scheduled`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain_events;
use crate::ids::ScheduleId;
use crate::scan::ScanSpec;
use crate::target::Trigger;
use crate::tenant::TenantId;
use crate::{Aggregate, DomainError};

/// Shortest interval between two scheduled scans of one schedule.
pub const MIN_INTERVAL_SECONDS: u32 = 300;
/// Longest interval (31 days).
pub const MAX_INTERVAL_SECONDS: u32 = 31 * 24 * 3600;

domain_events! {
    /// Everything that can happen to a schedule.
    pub enum ScheduleEvent {
        ScheduleCreated = 1,
        ScheduleDeleted = 1,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleCreated {
    pub schedule_id: ScheduleId,
    pub tenant: TenantId,
    pub spec: ScanSpec,
    pub interval_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleDeleted {}

#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleCommand {
    Create {
        schedule_id: ScheduleId,
        tenant: TenantId,
        spec: ScanSpec,
        interval_seconds: u32,
    },
    Delete,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    pub created: Option<ScheduleCreated>,
    pub deleted: bool,
}

impl Aggregate for Schedule {
    type Command = ScheduleCommand;
    type Event = ScheduleEvent;

    fn handle(&self, command: ScheduleCommand) -> Result<Vec<ScheduleEvent>, DomainError> {
        let event: ScheduleEvent = match command {
            ScheduleCommand::Create {
                schedule_id,
                tenant,
                mut spec,
                interval_seconds,
            } => {
                if self.created.is_some() {
                    return Err(DomainError::AlreadyExists("schedule"));
                }
                if !(MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(&interval_seconds) {
                    return Err(DomainError::invalid(
                        "interval_seconds",
                        format!(
                            "must be between {MIN_INTERVAL_SECONDS} and {MAX_INTERVAL_SECONDS}"
                        ),
                    ));
                }
                spec.trigger = Trigger::Scheduled;
                ScheduleCreated {
                    schedule_id,
                    tenant,
                    spec,
                    interval_seconds,
                }
                .into()
            }
            ScheduleCommand::Delete => {
                if self.created.is_none() || self.deleted {
                    return Err(DomainError::NotFound("schedule"));
                }
                ScheduleDeleted {}.into()
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &ScheduleEvent) {
        match event {
            ScheduleEvent::ScheduleCreated(created) => self.created = Some(created.clone()),
            ScheduleEvent::ScheduleDeleted(_) => self.deleted = true,
        }
    }
}
