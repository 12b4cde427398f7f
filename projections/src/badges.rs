//! The badges projector: which tenants show the latest grade of which domain on the public badge
//! (`GET /badge/{domain}.svg`). A disabled badge's row is dropped; the log keeps the history.

use async_trait::async_trait;
use vantage_app::Decode;
use vantage_domain::DomainEvent;
use vantage_domain::badge::BadgeEvent;
use vantage_store::RecordedEvent;

use crate::ProjectionError;
use crate::db::{Batch, Cell, Table};
use crate::model::{BADGES, BadgeDoc};
use crate::runtime::Projector;

#[derive(Debug, Default)]
pub struct BadgesProjector;

pub static TABLES: &[&Table] = &[&BADGES];

#[async_trait]
impl Projector for BadgesProjector {
    fn name(&self) -> &'static str {
        "badges"
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
            if !BadgeEvent::CATALOG.iter().any(|i| i.event_type == ty) {
                continue;
            }
            match event.decode::<BadgeEvent>()? {
                BadgeEvent::BadgeEnabled(enabled) => batch.put(BadgeDoc {
                    domain: enabled.domain,
                    tenant: enabled.tenant.as_str().to_owned(),
                    enabled_at: event.recorded_at,
                    position: recorded.global_position,
                }),
                BadgeEvent::BadgeDisabled(disabled) => {
                    batch.delete::<BadgeDoc>(vec![
                        Cell::from(disabled.domain.as_str()),
                        Cell::from(disabled.tenant.as_str()),
                    ]);
                }
            }
        }
        Ok(())
    }
}
