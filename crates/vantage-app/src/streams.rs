//! The log's stream names and the typed decoding of stored events: the one place a stream name is
//! made or read back, and the one way a stored event becomes a domain event.
//!
//! Every aggregate instance is a stream named `<kind>-<key>`: `scan-<id>`, `webhook-<id>`,
//! `schedule-<id>`, `apikeys-<tenant>`, `projects-<tenant>`, `notifications-<tenant>`,
//! `triage-<tenant>-<fingerprint>` and `badge-<tenant>-<domain>`. The names are stored in the log, so
//! they never change; readers that follow the whole log (projectors, dispatchers, the delivery
//! engine) tell streams apart with the `…_of` parsers here.

use chrono::{DateTime, Utc};
use vantage_domain::ids::{ScanId, ScheduleId, WebhookId};
use vantage_domain::scan::{ProbeObserved, ScanEvent};
use vantage_domain::tenant::TenantId;
use vantage_domain::triage::Fingerprint;
use vantage_domain::{DomainEvent, UpcastError};
use vantage_store::{EventStore, RecordedEvent, StoreError, StoredEvent, StreamName};

const SCAN: &str = "scan-";
const WEBHOOK: &str = "webhook-";
const SCHEDULE: &str = "schedule-";

fn named(name: String) -> StreamName {
    StreamName::new(name).expect("names made from valid ids are valid stream names")
}

/// The stream of one scan.
pub fn scan_stream(id: ScanId) -> StreamName {
    named(format!("{SCAN}{id}"))
}

/// The scan whose stream `stream` is, if it is a scan's.
pub fn scan_of(stream: &str) -> Option<ScanId> {
    stream.strip_prefix(SCAN)?.parse().ok()
}

/// The stream of one webhook.
pub fn webhook_stream(id: WebhookId) -> StreamName {
    named(format!("{WEBHOOK}{id}"))
}

/// The webhook whose stream `stream` is, if it is a webhook's.
pub fn webhook_of(stream: &str) -> Option<WebhookId> {
    stream.strip_prefix(WEBHOOK)?.parse().ok()
}

/// The stream of one schedule.
pub fn schedule_stream(id: ScheduleId) -> StreamName {
    named(format!("{SCHEDULE}{id}"))
}

/// The schedule whose stream `stream` is, if it is a schedule's.
pub fn schedule_of(stream: &str) -> Option<ScheduleId> {
    stream.strip_prefix(SCHEDULE)?.parse().ok()
}

/// The key registry of a tenant.
pub fn keys_stream(tenant: &TenantId) -> StreamName {
    named(format!("apikeys-{tenant}"))
}

/// The projects of a tenant.
pub fn projects_stream(tenant: &TenantId) -> StreamName {
    named(format!("projects-{tenant}"))
}

/// The notification read receipts of a tenant.
pub fn notifications_stream(tenant: &TenantId) -> StreamName {
    named(format!("notifications-{tenant}"))
}

/// The triage of one fingerprint of a tenant.
pub fn triage_stream(tenant: &TenantId, fingerprint: &Fingerprint) -> StreamName {
    named(format!("triage-{tenant}-{}", fingerprint.as_str()))
}

/// The badge opt-in of one domain of a tenant (`domain` as `badge_domain` normalises it).
pub fn badge_stream(tenant: &TenantId, domain: &str) -> StreamName {
    named(format!("badge-{tenant}-{domain}"))
}

/// A stored event read as the domain event `E` (brought up to `E`'s current version by its
/// upcasters).
pub trait Decode {
    fn decode<E: DomainEvent>(&self) -> Result<E, UpcastError>;
}

impl Decode for StoredEvent {
    fn decode<E: DomainEvent>(&self) -> Result<E, UpcastError> {
        E::decode(&self.event_type, self.schema_version, self.payload.as_str())
    }
}

impl Decode for RecordedEvent {
    fn decode<E: DomainEvent>(&self) -> Result<E, UpcastError> {
        self.event.decode()
    }
}

/// The observations of scan `id` in stream order, each with when it was recorded; with `before`,
/// only those before that stream version. The one reader of a scan's observations (the scan
/// resource, the scans projector, `vantage scan`).
pub async fn scan_observations<E>(
    store: &dyn EventStore,
    id: ScanId,
    before: Option<u64>,
) -> Result<Vec<(ProbeObserved, DateTime<Utc>)>, E>
where
    E: From<StoreError> + From<UpcastError>,
{
    let mut observations = Vec::new();
    for stored in store.read_stream(&scan_stream(id)).await? {
        if before.is_some_and(|before| stored.stream_version >= before) {
            break;
        }
        if stored.event_type != "ProbeObserved" {
            continue;
        }
        if let ScanEvent::ProbeObserved(observed) = stored.decode::<ScanEvent>()? {
            observations.push((observed, stored.occurred_at));
        }
    }
    Ok(observations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_stream_reads_back_as_its_id_and_no_other_kind() {
        let scan = ScanId(uuid::Uuid::from_u128(1));
        let webhook = WebhookId(uuid::Uuid::from_u128(2));
        let schedule = ScheduleId(uuid::Uuid::from_u128(3));
        assert_eq!(scan_of(scan_stream(scan).as_str()), Some(scan));
        assert_eq!(webhook_of(webhook_stream(webhook).as_str()), Some(webhook));
        assert_eq!(
            schedule_of(schedule_stream(schedule).as_str()),
            Some(schedule)
        );
        assert_eq!(webhook_of(scan_stream(scan).as_str()), None);
        assert_eq!(scan_of(schedule_stream(schedule).as_str()), None);
        assert_eq!(scan_of("scan-not-an-id"), None);
        let tenant = TenantId::default_tenant();
        assert_eq!(scan_of(keys_stream(&tenant).as_str()), None);
    }
}
