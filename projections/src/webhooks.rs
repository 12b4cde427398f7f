//! The webhooks projector: every live webhook subscription (public-safe: no secret, not even its hash)
//! and the delivery log — one row per outbound event delivered to a webhook, with each attempt's
//! outcome, status code, duration and reason, as the delivery engine recorded them in the webhook's
//! stream (`WebhookDeliveryAttempted`).
//!
//! A deleted webhook's row and its deliveries are dropped from the read models; the log keeps them.

use async_trait::async_trait;
use vantage_app::{Decode, webhook_of};
use vantage_domain::DomainEvent;
use vantage_domain::webhook::{DeliveryOutcome, WebhookEvent};
use vantage_store::RecordedEvent;

use crate::ProjectionError;
use crate::db::{Batch, Cell, Table};
use crate::model::{DELIVERIES, DeliveryAttemptDoc, DeliveryDoc, WEBHOOKS, WebhookDoc};
use crate::runtime::Projector;

#[derive(Debug, Default)]
pub struct WebhooksProjector;

pub static TABLES: &[&Table] = &[&WEBHOOKS, &DELIVERIES];

fn is_webhook_event(event_type: &str) -> bool {
    WebhookEvent::CATALOG
        .iter()
        .any(|info| info.event_type == event_type)
}

#[async_trait]
impl Projector for WebhooksProjector {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn tables(&self) -> &'static [&'static Table] {
        TABLES
    }

    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        let webhook_events = events
            .iter()
            .filter(|recorded| is_webhook_event(recorded.event.event_type.as_str()))
            .filter_map(|recorded| Some((recorded, webhook_of(&recorded.event.stream)?)))
            .map(|(recorded, id)| Ok((recorded, id, recorded.event.decode::<WebhookEvent>()?)))
            .collect::<Result<Vec<_>, ProjectionError>>()?;
        // Every delivery the batch records an attempt of, in a few queries instead of one each.
        let deliveries = webhook_events
            .iter()
            .filter_map(|(_, _, event)| match event {
                WebhookEvent::WebhookDeliveryAttempted(attempt) => {
                    Some(vec![Cell::from(attempt.delivery_id.to_string())])
                }
                _ => None,
            })
            .collect();
        batch.prefetch::<DeliveryDoc>(deliveries).await?;
        for (recorded, webhook_id, decoded) in webhook_events {
            let event = &recorded.event;
            let webhook_id = webhook_id.to_string();
            let webhook_id = webhook_id.as_str();
            let at = event.recorded_at;
            let position = recorded.global_position;
            let key = || vec![Cell::from(webhook_id)];
            match decoded {
                WebhookEvent::WebhookCreated(created) => batch.put(WebhookDoc {
                    id: webhook_id.to_owned(),
                    tenant: created.tenant.as_str().to_owned(),
                    url: created.url.as_str().to_owned(),
                    events: created.events.into_iter().collect(),
                    active: created.active,
                    project: created.project.as_str().to_owned(),
                    created_at: at,
                    updated_at: at,
                    position,
                }),
                WebhookEvent::WebhookUpdated(update) => {
                    if let Some(mut doc) = batch.get::<WebhookDoc>(key()).await? {
                        if let Some(url) = update.url {
                            doc.url = url.as_str().to_owned();
                        }
                        if let Some(events) = update.events {
                            doc.events = events.into_iter().collect();
                        }
                        if let Some(active) = update.active {
                            doc.active = active;
                        }
                        doc.updated_at = at;
                        batch.put(doc);
                    }
                }
                WebhookEvent::WebhookDeleted(_) => {
                    let deliveries = batch.table(&DELIVERIES);
                    batch
                        .execute(
                            &format!("DELETE FROM {deliveries} WHERE webhook_id = $1"),
                            &key(),
                        )
                        .await?;
                    batch.delete::<WebhookDoc>(key());
                }
                WebhookEvent::WebhookDeliveryAttempted(attempt) => {
                    let id = attempt.delivery_id.to_string();
                    let this = DeliveryAttemptDoc {
                        attempt: attempt.attempt,
                        outcome: attempt.outcome,
                        status_code: attempt.status_code,
                        duration_ms: attempt.duration_ms,
                        error: attempt.error,
                        at,
                    };
                    let mut doc = batch
                        .get::<DeliveryDoc>(vec![id.as_str().into()])
                        .await?
                        .unwrap_or_else(|| DeliveryDoc {
                            id: id.clone(),
                            tenant: event.metadata.tenant.clone(),
                            webhook_id: webhook_id.to_owned(),
                            event_type: attempt.event_type.clone(),
                            status: DeliveryOutcome::Retrying,
                            attempts: Vec::new(),
                            first_attempt_at: at,
                            last_attempt_at: at,
                            next_attempt_at: None,
                            position,
                        });
                    doc.status = attempt.outcome;
                    doc.next_attempt_at = attempt.next_attempt_at;
                    doc.last_attempt_at = at;
                    doc.position = position;
                    doc.attempts.push(this);
                    batch.put(doc);
                }
                // A test delivery shows in the log once its first attempt is recorded.
                WebhookEvent::WebhookTestRequested(_) => {}
            }
        }
        Ok(())
    }
}
