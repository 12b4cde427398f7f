//! The audit projector: one row per command event — who (actor), what (event type), to what (stream),
//! when (recorded time), under which request — public-safe. Worker progress (ProbeObserved,
//! ProbeFailed) and the delivery engine's attempts (WebhookDeliveryAttempted) are not commands and are
//! left out; the scan's stream and the webhook delivery log show them.

use async_trait::async_trait;
use vantage_domain::event::public_details;
use vantage_store::RecordedEvent;

use crate::ProjectionError;
use crate::db::{Batch, Table};
use crate::model::{AUDIT, AuditDoc};
use crate::runtime::Projector;

#[derive(Debug, Default)]
pub struct AuditProjector;

pub static TABLES: &[&Table] = &[&AUDIT];

/// Events that are worker progress, not commands.
const NOT_AUDITED: &[&str] = &[
    "ProbeObserved",
    "ProbeFailed",
    "ContentSampleKept",
    "WebhookDeliveryAttempted",
];

fn target_of(stream: &str) -> String {
    stream
        .split_once('-')
        .map_or(stream, |(_, rest)| rest)
        .to_owned()
}

#[async_trait]
impl Projector for AuditProjector {
    fn name(&self) -> &'static str {
        "audit"
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
            if NOT_AUDITED.contains(&event.event_type.as_str()) {
                continue;
            }
            batch.put(AuditDoc {
                position: recorded.global_position,
                event_id: event.event_id.to_string(),
                tenant: event.metadata.tenant.clone(),
                recorded_at: event.recorded_at,
                actor: event.metadata.actor.clone(),
                action: event.event_type.clone(),
                stream: event.stream.clone(),
                target: target_of(&event.stream),
                request_id: event.metadata.request_id.clone(),
                correlation_id: event.metadata.correlation_id.to_string(),
                details: public_details(&event.event_type, event.payload.as_str()),
                hash: recorded.hash.clone(),
            });
        }
        Ok(())
    }
}
