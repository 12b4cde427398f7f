//! The webhook aggregate (stream `webhook-<id>`): a tenant's subscription of an HTTPS endpoint to
//! outbound events.
//!
//! The signing secret is shown once and kept outside the event log (the log is exported in compliance
//! packages); events carry only its SHA-256 so an auditor can tell rotations apart.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain_events;
use crate::ids::{DeliveryId, WebhookId};
use crate::tenant::TenantId;
use crate::{Aggregate, DomainError};

/// The outbound event types a webhook can subscribe to (its `event_filter`).
pub const WEBHOOK_EVENT_TYPES: [&str; 5] = [
    "scan.completed",
    "scan.failed",
    "finding.new",
    "finding.regressed",
    "triage.changed",
];

/// The outbound event a test delivery sends; every webhook receives it when asked, whatever its
/// filter.
pub const WEBHOOK_TEST_EVENT: &str = "webhook.test";

/// Outbound event types a delivery may carry: [`WEBHOOK_EVENT_TYPES`] and [`WEBHOOK_TEST_EVENT`].
pub fn is_outbound_type(event_type: &str) -> bool {
    event_type == WEBHOOK_TEST_EVENT || WEBHOOK_EVENT_TYPES.contains(&event_type)
}

/// A validated webhook endpoint: an absolute `https://` (or, for labs, `http://`) URL without user info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let url = url::Url::parse(raw.trim())
            .map_err(|e| DomainError::invalid("url", format!("is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http")
            || url.host_str().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || raw.len() > 2048
        {
            return Err(DomainError::invalid(
                "url",
                "must be an http(s) URL with a host, no credentials, at most 2048 bytes",
            ));
        }
        Ok(Self(url.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL's host, without the brackets of an IPv6 literal (as a resolver or a connection
    /// wants it).
    pub fn host(&self) -> String {
        url::Url::parse(&self.0)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
            .unwrap_or_default()
    }
}

impl TryFrom<String> for WebhookUrl {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<WebhookUrl> for String {
    fn from(url: WebhookUrl) -> Self {
        url.0
    }
}

fn event_set(events: Vec<String>) -> Result<BTreeSet<String>, DomainError> {
    let set: BTreeSet<String> = events.into_iter().collect();
    if set.is_empty() {
        return Err(DomainError::invalid(
            "events",
            "subscribe to at least one event type",
        ));
    }
    if let Some(unknown) = set
        .iter()
        .find(|e| !WEBHOOK_EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(DomainError::invalid(
            "events",
            format!(
                "unknown event type {unknown:?}; expected some of {}",
                WEBHOOK_EVENT_TYPES.join(", ")
            ),
        ));
    }
    Ok(set)
}

/// Longest failure reason a delivery attempt records.
pub const MAX_DELIVERY_ERROR_CHARS: usize = 200;

fn check_attempt(attempt: &WebhookDeliveryAttempted) -> Result<(), DomainError> {
    if attempt.attempt == 0 {
        return Err(DomainError::invalid("attempt", "attempts count from 1"));
    }
    if !is_outbound_type(&attempt.event_type) {
        return Err(DomainError::invalid(
            "event_type",
            format!("unknown outbound event type {:?}", attempt.event_type),
        ));
    }
    if attempt
        .error
        .as_ref()
        .is_some_and(|e| e.chars().count() > MAX_DELIVERY_ERROR_CHARS)
    {
        return Err(DomainError::invalid(
            "error",
            format!("at most {MAX_DELIVERY_ERROR_CHARS} characters"),
        ));
    }
    if (attempt.outcome == DeliveryOutcome::Retrying) != attempt.next_attempt_at.is_some() {
        return Err(DomainError::invalid(
            "next_attempt_at",
            "is set exactly when another attempt is scheduled",
        ));
    }
    Ok(())
}

domain_events! {
    /// Everything that can happen to a webhook.
    pub enum WebhookEvent {
        WebhookCreated = 2,
        WebhookUpdated = 1,
        WebhookDeleted = 1,
        WebhookDeliveryAttempted = 1,
        WebhookTestRequested = 1,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookCreated {
    pub webhook_id: WebhookId,
    pub tenant: TenantId,
    pub url: WebhookUrl,
    pub events: BTreeSet<String>,
    pub active: bool,
    pub secret_sha256: String,
    /// The project whose scans it reports (v2; `default` before).
    pub project: crate::project::ProjectId,
}

/// Fields that changed; absent fields kept their value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookUpdated {
    pub url: Option<WebhookUrl>,
    pub events: Option<BTreeSet<String>>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeleted {}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// The attempt failed and another is scheduled (`next_attempt_at`).
    Retrying,
    /// The attempt failed and no other will be made.
    Failed,
}

/// One attempt to deliver one outbound event to this webhook, recorded by the delivery engine.
/// Public-safe: the response body and headers are never recorded, only the status and a short,
/// engine-written reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveryAttempted {
    /// The delivery (one outbound event to one webhook); stable across its attempts.
    pub delivery_id: DeliveryId,
    /// The outbound event type, one of [`WEBHOOK_EVENT_TYPES`] or `webhook.test`.
    pub event_type: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
    /// The endpoint's HTTP status, if it answered.
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// Why the attempt failed (at most 200 characters), if it did.
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Somebody asked for a test delivery (`webhook.test`) to this webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookTestRequested {
    /// The delivery the test makes (the `webhook-id` the receiver sees).
    pub delivery_id: DeliveryId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebhookCommand {
    Create {
        webhook_id: WebhookId,
        tenant: TenantId,
        url: WebhookUrl,
        events: Vec<String>,
        /// Whether deliveries are made (an inactive webhook still takes test deliveries).
        active: bool,
        secret_sha256: String,
        project: crate::project::ProjectId,
    },
    Update {
        url: Option<WebhookUrl>,
        events: Option<Vec<String>>,
        active: Option<bool>,
    },
    Delete,
    /// The delivery engine reports an attempt.
    RecordDelivery(WebhookDeliveryAttempted),
    /// Send a `webhook.test` delivery (even to a disabled webhook: the owner asked for it).
    Test {
        delivery_id: DeliveryId,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Webhook {
    pub created: Option<WebhookCreated>,
    pub deleted: bool,
}

impl Aggregate for Webhook {
    type Command = WebhookCommand;
    type Event = WebhookEvent;

    fn handle(&self, command: WebhookCommand) -> Result<Vec<WebhookEvent>, DomainError> {
        let exists = self.created.is_some() && !self.deleted;
        let event: WebhookEvent = match command {
            WebhookCommand::Create {
                webhook_id,
                tenant,
                url,
                events,
                active,
                secret_sha256,
                project,
            } => {
                if self.created.is_some() {
                    return Err(DomainError::AlreadyExists("webhook"));
                }
                WebhookCreated {
                    webhook_id,
                    tenant,
                    url,
                    events: event_set(events)?,
                    active,
                    secret_sha256,
                    project,
                }
                .into()
            }
            WebhookCommand::Update {
                url,
                events,
                active,
            } => {
                if !exists {
                    return Err(DomainError::NotFound("webhook"));
                }
                if url.is_none() && events.is_none() && active.is_none() {
                    return Ok(vec![]);
                }
                WebhookUpdated {
                    url,
                    events: events.map(event_set).transpose()?,
                    active,
                }
                .into()
            }
            WebhookCommand::Delete => {
                if !exists {
                    return Err(DomainError::NotFound("webhook"));
                }
                WebhookDeleted {}.into()
            }
            WebhookCommand::RecordDelivery(attempt) => {
                if !exists {
                    return Err(DomainError::NotFound("webhook"));
                }
                check_attempt(&attempt)?;
                attempt.into()
            }
            WebhookCommand::Test { delivery_id } => {
                if !exists {
                    return Err(DomainError::NotFound("webhook"));
                }
                WebhookTestRequested { delivery_id }.into()
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &WebhookEvent) {
        match event {
            WebhookEvent::WebhookCreated(created) => self.created = Some(created.clone()),
            WebhookEvent::WebhookUpdated(update) => {
                if let Some(created) = self.created.as_mut() {
                    if let Some(url) = &update.url {
                        created.url = url.clone();
                    }
                    if let Some(events) = &update.events {
                        created.events = events.clone();
                    }
                    if let Some(active) = update.active {
                        created.active = active;
                    }
                }
            }
            WebhookEvent::WebhookDeleted(_) => self.deleted = true,
            WebhookEvent::WebhookDeliveryAttempted(_) | WebhookEvent::WebhookTestRequested(_) => {}
        }
    }
}
