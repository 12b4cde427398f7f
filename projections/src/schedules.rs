//! The schedules projector: every live schedule with its cadence and scan spec, which the API lists
//! and the scheduler reads to find due slots. A deleted schedule's row is dropped; the log keeps it.

use async_trait::async_trait;
use vantage_app::{Decode, schedule_of};
use vantage_domain::DomainEvent;
use vantage_domain::schedule::ScheduleEvent;
use vantage_store::RecordedEvent;

use crate::ProjectionError;
use crate::db::{Batch, Cell, Table};
use crate::model::{SCHEDULES, ScheduleDoc};
use crate::runtime::Projector;

#[derive(Debug, Default)]
pub struct SchedulesProjector;

pub static TABLES: &[&Table] = &[&SCHEDULES];

#[async_trait]
impl Projector for SchedulesProjector {
    fn name(&self) -> &'static str {
        "schedules"
    }

    fn tables(&self) -> &'static [&'static Table] {
        TABLES
    }

    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        for recorded in events {
            let event = &recorded.event;
            let ty = event.event_type.as_str();
            if !ScheduleEvent::CATALOG.iter().any(|i| i.event_type == ty) {
                continue;
            }
            let Some(id) = schedule_of(&event.stream) else {
                continue;
            };
            let id = id.to_string();
            let id = id.as_str();
            match event.decode::<ScheduleEvent>()? {
                ScheduleEvent::ScheduleCreated(created) => batch.put(ScheduleDoc {
                    id: id.to_owned(),
                    tenant: created.tenant.as_str().to_owned(),
                    schedule: created,
                    created_at: event.recorded_at,
                    position: recorded.global_position,
                }),
                ScheduleEvent::ScheduleDeleted(_) => {
                    batch.delete::<ScheduleDoc>(vec![Cell::from(id)]);
                }
            }
        }
        Ok(())
    }
}
