//! The webhook delivery engine: follows the log, turns committed events into outbound events, and
//! delivers each to every webhook of its tenant that subscribes to it, at least once, signed, retried
//! with exponential backoff and jitter, every attempt recorded as `WebhookDeliveryAttempted` in the
//! webhook's stream.
//!
//! - **Outbound events.** `ScanCompleted` → `scan.completed`, and one `finding.new` /
//!   `finding.regressed` per fingerprint the scan's diff names (read from the scans read model once
//!   the projector has passed the completion); `ScanFailed` → `scan.failed`; `TriageSet` →
//!   `triage.changed`; `WebhookTestRequested` → `webhook.test` to that webhook only. Bodies are
//!   `{"type", "timestamp", "data"}`, public-safe like the API, built once per delivery.
//! - **Projects.** A webhook gets the scan events (`scan.*`, `finding.*`) of its own project's scans
//!   only; `triage.changed` is tenant-wide, like triage itself, and goes to every webhook of the
//!   tenant that asks for it.
//! - **Stable ids.** A delivery's id (the `webhook-id` header) is a UUIDv5 of the webhook, the log
//!   event and the outbound type (and fingerprint), so a delivery made again after a crash carries
//!   the id the receiver already saw.
//! - **The log is the state.** Which deliveries are pending is derived from the log alone: outbound
//!   events create them, their `WebhookDeliveryAttempted` events advance or end them. The engine
//!   saves a cursor — the position of the oldest outbound event with an unfinished delivery — and on
//!   start follows the log from there, so it recovers every pending retry, and a delivery whose
//!   attempt was made but not recorded is made again (at least once).
//! - **Network safety.** Every attempt vets the URL's host with the SSRF guard again (DNS may have
//!   changed) and connects to the vetted address only; redirects are not followed.
//! - **One engine.** It runs under the `webhook-delivery` lease: one process among the replicas
//!   delivers, for every tenant, so no two replicas send the same delivery.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;
use vantage_app::{Decode, Services, scan_of, webhook_of};
use vantage_domain::ids::{DeliveryId, WebhookId};
use vantage_domain::project::ProjectId;
use vantage_domain::scan::ScanEvent;
use vantage_domain::tenant::TenantId;
use vantage_domain::triage::TriageEvent;
use vantage_domain::webhook::{
    DeliveryOutcome, MAX_DELIVERY_ERROR_CHARS, WEBHOOK_TEST_EVENT, WebhookDeliveryAttempted,
    WebhookEvent, WebhookUrl,
};
use vantage_probes::tls::TlsRoots;
use vantage_projections::ReadDb;
use vantage_projections::query::FindingFilter;
use vantage_store::{RecordedEvent, SubscriptionOptions};

use crate::signature::sign;

/// The lease (and cursor) name of the delivery engine.
pub const JOB: &str = "webhook-delivery";
/// The namespace of delivery ids.
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0xde11_0e12_0b0b_4c5e_8d1e_0000_0000_0001);
/// How often the cursor is saved.
const SAVE_CURSOR_EVERY: Duration = Duration::from_secs(2);

/// When attempts are made and given up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; each later wait doubles it (± 20 % jitter).
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    pub max_retry: Duration,
    /// A delivery that has failed for this long since its first attempt is given up (`failed`).
    pub give_up_after: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts in flight at once, across webhooks.
    pub concurrency: usize,
}

impl Default for RetryPolicy {
    /// 30 s, doubling to at most an hour, for at least 24 hours; 10 s per attempt; 16 at once.
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(30),
            max_retry: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            concurrency: 16,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based), with jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_retry
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let base = doubled.min(self.max_retry);
        base.mul_f64(vantage_app::random_in(0.8..1.2))
    }
}

/// Why the engine stopped (it is started again by its lease runner).
#[derive(Debug, thiserror::Error)]
#[error("webhook delivery: {0}")]
pub struct DeliveryError(String);

fn failed(error: impl std::fmt::Display) -> DeliveryError {
    DeliveryError(error.to_string())
}

/// A webhook as the engine knows it, from its stream.
#[derive(Debug, Clone)]
struct Hook {
    tenant: TenantId,
    project: ProjectId,
    url: WebhookUrl,
    events: BTreeSet<String>,
    active: bool,
}

/// A delivery not yet finished.
#[derive(Debug, Clone)]
struct Pending {
    webhook: WebhookId,
    tenant: TenantId,
    event_type: String,
    body: Arc<Vec<u8>>,
    /// Attempts recorded so far.
    attempts: u32,
    first_attempt_at: Option<DateTime<Utc>>,
    due: DateTime<Utc>,
    in_flight: bool,
    /// The log position of the outbound event (the cursor never passes an unfinished delivery).
    origin: u64,
}

/// What one attempt saw.
#[derive(Debug)]
struct AttemptResult {
    delivery: DeliveryId,
    status_code: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
}

/// One outbound event, before it is addressed to webhooks.
struct Outbound {
    event_type: &'static str,
    /// The project of the scan it is about; `None` for what concerns the whole tenant.
    project: Option<ProjectId>,
    /// Distinguishes several outbound events of one type from one log event (a fingerprint).
    part: String,
    data: Value,
}

/// The engine's state, rebuilt from the log on every start.
struct Engine {
    services: Services,
    read: ReadDb,
    policy: RetryPolicy,
    roots: TlsRoots,
    hooks: HashMap<WebhookId, Hook>,
    pending: HashMap<DeliveryId, Pending>,
    /// The position of the last event applied.
    applied: u64,
}

/// Delivers webhooks until `stop` fires; returns an error when the log or the read models fail.
pub async fn run_deliveries(
    services: Services,
    read: ReadDb,
    policy: RetryPolicy,
    roots: TlsRoots,
    mut stop: watch::Receiver<bool>,
) -> Result<(), DeliveryError> {
    let store = services.store().clone();
    let start = match read.cursor(JOB).await.map_err(failed)? {
        Some(cursor) => cursor,
        // The first start delivers what is committed from now on, not the whole history.
        None => store.head_position().await.map_err(failed)?,
    };
    let mut engine = Engine {
        services: services.clone(),
        read,
        policy,
        roots,
        hooks: HashMap::new(),
        pending: HashMap::new(),
        applied: start,
    };
    engine
        .wait_for_projector("webhooks", start, &mut stop)
        .await?;
    engine.load_hooks(start).await?;
    tracing::info!(position = start, "delivering webhooks");
    let mut subscription =
        vantage_store::subscribe_all(store, start, SubscriptionOptions::default());
    let (results_tx, mut results) = mpsc::channel::<AttemptResult>(64);
    let mut save = tokio::time::interval(SAVE_CURSOR_EVERY);
    let mut saved = start;
    loop {
        let next_due = engine.next_due();
        let sleep = next_due.map_or(Duration::from_secs(3600), |due| {
            (due - engine.now()).to_std().unwrap_or(Duration::ZERO)
        });
        tokio::select! {
            next = subscription.next() => {
                let recorded = next.map_err(failed)?;
                engine.apply(&recorded, &mut stop).await?;
            }
            () = tokio::time::sleep(sleep), if next_due.is_some() => engine.dispatch(&results_tx),
            Some(result) = results.recv() => engine.record(result).await?,
            _ = save.tick() => {
                let cursor = engine.cursor();
                if cursor != saved {
                    engine.read.save_cursor(JOB, cursor).await.map_err(failed)?;
                    saved = cursor;
                }
            }
            changed = stop.changed() => if changed.is_err() || *stop.borrow() {
                return Ok(());
            },
        }
    }
}

impl Engine {
    fn now(&self) -> DateTime<Utc> {
        self.services.pipeline.clock().now()
    }

    /// Waits until projector `name` has applied the event at `position`.
    async fn wait_for_projector(
        &self,
        name: &str,
        position: u64,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), DeliveryError> {
        while self.read.checkpoint(name).await.map_err(failed)? < position {
            if *stop.borrow() {
                return Err(failed("stopping"));
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), stop.changed()).await;
        }
        Ok(())
    }

    /// Every webhook that exists, as its stream stood at `position` (later changes are applied as
    /// the log is followed).
    async fn load_hooks(&mut self, position: u64) -> Result<(), DeliveryError> {
        let store = self.services.store().clone();
        for doc in self.read.all_webhooks().await.map_err(failed)? {
            let Ok(id) = doc.id.parse::<Uuid>().map(WebhookId) else {
                continue;
            };
            let stream = vantage_app::webhook_stream(id);
            for recorded in store.read_stream_after(&stream, 0).await.map_err(failed)? {
                if recorded.global_position > position {
                    break;
                }
                self.apply_webhook_event(&recorded)?;
            }
        }
        Ok(())
    }

    /// The earliest due time of a delivery not in flight.
    fn next_due(&self) -> Option<DateTime<Utc>> {
        self.pending
            .values()
            .filter(|p| !p.in_flight)
            .map(|p| p.due)
            .min()
    }

    /// Where to start after a restart: the oldest unfinished delivery's outbound event, or past
    /// everything applied.
    fn cursor(&self) -> u64 {
        self.pending
            .values()
            .map(|p| p.origin.saturating_sub(1))
            .min()
            .unwrap_or(self.applied)
    }

    async fn apply(
        &mut self,
        recorded: &RecordedEvent,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), DeliveryError> {
        let event = &recorded.event;
        let position = recorded.global_position;
        if event.stream.starts_with("webhook-") {
            self.apply_webhook_event(recorded)?;
        } else {
            let outbound = self.outbound(recorded, stop).await?;
            let tenant = TenantId::parse(&event.metadata.tenant).map_err(failed)?;
            let timestamp = event.recorded_at;
            for outbound in outbound {
                let targets: Vec<WebhookId> = self
                    .hooks
                    .iter()
                    .filter(|(_, h)| {
                        h.active
                            && h.tenant == tenant
                            && h.events.contains(outbound.event_type)
                            && outbound.project.as_ref().is_none_or(|p| *p == h.project)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for webhook in targets {
                    let id = delivery_id(webhook, event.event_id, &outbound);
                    self.enqueue(id, webhook, &outbound, timestamp, position);
                }
            }
        }
        self.applied = position;
        Ok(())
    }

    /// Adds a delivery, due now, unless it is known.
    fn enqueue(
        &mut self,
        id: DeliveryId,
        webhook: WebhookId,
        outbound: &Outbound,
        timestamp: DateTime<Utc>,
        origin: u64,
    ) {
        let Some(hook) = self.hooks.get(&webhook) else {
            return;
        };
        let body = json!({
            "type": outbound.event_type,
            "timestamp": timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "data": outbound.data,
        });
        self.pending.entry(id).or_insert_with(|| Pending {
            webhook,
            tenant: hook.tenant.clone(),
            event_type: outbound.event_type.to_owned(),
            body: Arc::new(serde_json::to_vec(&body).unwrap_or_default()),
            attempts: 0,
            first_attempt_at: None,
            due: timestamp,
            in_flight: false,
            origin,
        });
    }

    fn apply_webhook_event(&mut self, recorded: &RecordedEvent) -> Result<(), DeliveryError> {
        let event = &recorded.event;
        let Some(id) = webhook_of(&event.stream) else {
            return Ok(());
        };
        let decoded = event.decode::<WebhookEvent>().map_err(failed)?;
        match decoded {
            WebhookEvent::WebhookCreated(created) => {
                self.hooks.insert(
                    id,
                    Hook {
                        tenant: created.tenant,
                        project: created.project,
                        url: created.url,
                        events: created.events,
                        active: created.active,
                    },
                );
            }
            WebhookEvent::WebhookUpdated(update) => {
                if let Some(hook) = self.hooks.get_mut(&id) {
                    if let Some(url) = update.url {
                        hook.url = url;
                    }
                    if let Some(events) = update.events {
                        hook.events = events;
                    }
                    if let Some(active) = update.active {
                        hook.active = active;
                    }
                }
            }
            WebhookEvent::WebhookDeleted(_) => {
                self.hooks.remove(&id);
                self.pending.retain(|_, p| p.webhook != id);
            }
            WebhookEvent::WebhookDeliveryAttempted(attempt) => {
                if let Some(pending) = self.pending.get_mut(&attempt.delivery_id) {
                    pending.in_flight = false;
                    pending.attempts = attempt.attempt;
                    pending.first_attempt_at.get_or_insert(event.recorded_at);
                    match (attempt.outcome, attempt.next_attempt_at) {
                        (DeliveryOutcome::Retrying, Some(next)) => pending.due = next,
                        _ => {
                            self.pending.remove(&attempt.delivery_id);
                        }
                    }
                }
            }
            WebhookEvent::WebhookTestRequested(test) => {
                let outbound = Outbound {
                    event_type: WEBHOOK_TEST_EVENT,
                    project: None,
                    part: String::new(),
                    data: json!({ "webhook_id": id.to_string(), "message": "A test delivery from Vantage." }),
                };
                self.enqueue(
                    test.delivery_id,
                    id,
                    &outbound,
                    event.recorded_at,
                    recorded.global_position,
                );
            }
        }
        Ok(())
    }

    /// The outbound events one committed event makes.
    async fn outbound(
        &self,
        recorded: &RecordedEvent,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Vec<Outbound>, DeliveryError> {
        let event = &recorded.event;
        let ty = event.event_type.as_str();
        if !matches!(ty, "ScanCompleted" | "ScanFailed" | "TriageSet")
            || !self
                .hooks
                .values()
                .any(|h| h.tenant.as_str() == event.metadata.tenant)
        {
            return Ok(Vec::new());
        }
        let tenant = event.metadata.tenant.as_str();
        let scan_id = scan_of(&event.stream)
            .map(|id| id.to_string())
            .unwrap_or_default();
        let scan_id = scan_id.as_str();
        match ty {
            "ScanCompleted" => {
                // The scan's verdict and diff are the scans projector's: wait until it has them.
                self.wait_for_projector("scans", recorded.global_position, stop)
                    .await?;
                let Some(read) = self.read.scan_at(tenant, scan_id).await.map_err(failed)? else {
                    return Ok(Vec::new());
                };
                let scan = &read.doc;
                let project = Some(scan.spec.project.clone());
                let mut out = vec![Outbound {
                    event_type: "scan.completed",
                    project: project.clone(),
                    part: String::new(),
                    data: json!({
                        "scan_id": scan.id,
                        "target": scan.spec.target,
                        "trigger": scan.spec.trigger,
                        "status": scan.status,
                        "ruleset_version": scan.ruleset_version,
                        "grade": scan.overall.as_ref().map(|o| &o.grade),
                        "score": scan.score,
                        "findings": scan.findings,
                        "finished_at": scan.finished_at,
                    }),
                }];
                let Some(diff) = self.read.diff(tenant, scan_id).await.map_err(failed)? else {
                    return Ok(out);
                };
                let findings = self
                    .read
                    .findings_of(&read, &FindingFilter::default(), None)
                    .await
                    .map_err(failed)?;
                for (event_type, fingerprints) in [
                    ("finding.new", &diff.new),
                    ("finding.regressed", &diff.regressions),
                ] {
                    for view in findings
                        .iter()
                        .filter(|v| fingerprints.contains(&v.finding.finding.fingerprint))
                    {
                        let finding = &view.finding.finding;
                        out.push(Outbound {
                            event_type,
                            project: project.clone(),
                            part: finding.fingerprint.clone(),
                            data: json!({
                                "scan_id": scan.id,
                                "fingerprint": finding.fingerprint,
                                "rule_id": finding.rule_id,
                                "title": finding.title,
                                "severity": finding.severity,
                                "category": finding.category,
                                "asset": finding.asset,
                                "triage": view.triage,
                            }),
                        });
                    }
                }
                Ok(out)
            }
            "ScanFailed" => {
                let reason = match event.decode::<ScanEvent>().map_err(failed)? {
                    ScanEvent::ScanFailed(failed) => failed.reason,
                    _ => String::new(),
                };
                // The scan is in the read model since its request, long before it failed.
                self.wait_for_projector("scans", recorded.global_position, stop)
                    .await?;
                let project = self
                    .read
                    .scan(tenant, scan_id)
                    .await
                    .map_err(failed)?
                    .map(|scan| scan.spec.project);
                Ok(vec![Outbound {
                    event_type: "scan.failed",
                    project,
                    part: String::new(),
                    data: json!({ "scan_id": scan_id, "reason": reason }),
                }])
            }
            _ => {
                let TriageEvent::TriageSet(set) = event.decode::<TriageEvent>().map_err(failed)?
                else {
                    return Ok(Vec::new());
                };
                Ok(vec![Outbound {
                    event_type: "triage.changed",
                    project: None,
                    part: String::new(),
                    data: json!({
                        "fingerprint": set.fingerprint,
                        "state": set.state,
                        "previous": set.previous,
                        "reason": set.reason,
                        "scan_id": set.scan_id,
                        "actor": event.metadata.actor,
                    }),
                }])
            }
        }
    }

    /// Starts every due delivery, up to the concurrency bound.
    fn dispatch(&mut self, results: &mpsc::Sender<AttemptResult>) {
        let now = self.now();
        let mut in_flight = self.pending.values().filter(|p| p.in_flight).count();
        let mut due: Vec<(DeliveryId, DateTime<Utc>)> = self
            .pending
            .iter()
            .filter(|(_, p)| !p.in_flight && p.due <= now)
            .map(|(id, p)| (*id, p.due))
            .collect();
        due.sort_by_key(|(_, due)| *due);
        for (id, _) in due {
            if in_flight >= self.policy.concurrency {
                break;
            }
            let Some(pending) = self.pending.get_mut(&id) else {
                continue;
            };
            let Some(hook) = self.hooks.get(&pending.webhook) else {
                continue;
            };
            pending.in_flight = true;
            in_flight += 1;
            let attempt = Attempt {
                services: self.services.clone(),
                roots: self.roots.clone(),
                timeout: self.policy.timeout,
                delivery: id,
                webhook: pending.webhook,
                tenant: pending.tenant.clone(),
                url: hook.url.clone(),
                body: pending.body.clone(),
            };
            let results = results.clone();
            tokio::spawn(async move {
                let _ = results.send(attempt.run().await).await;
            });
        }
    }

    /// Records an attempt's result in the webhook's stream.
    async fn record(&mut self, result: AttemptResult) -> Result<(), DeliveryError> {
        let Some(pending) = self.pending.get(&result.delivery) else {
            return Ok(());
        };
        let now = self.now();
        let attempt = pending.attempts + 1;
        let first = pending.first_attempt_at.unwrap_or(now);
        let (outcome, next_attempt_at) = if result.error.is_none() {
            (DeliveryOutcome::Delivered, None)
        } else if (now - first).to_std().unwrap_or_default() >= self.policy.give_up_after {
            (DeliveryOutcome::Failed, None)
        } else {
            let wait = TimeDelta::from_std(self.policy.backoff(attempt)).unwrap_or_default();
            (DeliveryOutcome::Retrying, Some(now + wait))
        };
        let record = WebhookDeliveryAttempted {
            delivery_id: result.delivery,
            event_type: pending.event_type.clone(),
            attempt,
            outcome,
            status_code: result.status_code,
            duration_ms: result.duration_ms,
            error: result.error,
            next_attempt_at,
        };
        let (tenant, webhook) = (pending.tenant.clone(), pending.webhook);
        match self
            .services
            .record_delivery(&tenant, webhook, record)
            .await
        {
            // The recorded attempt comes back through the log and advances the delivery.
            Ok(Ok(())) => {}
            // The webhook was deleted meanwhile: nothing more to deliver.
            Ok(Err(refused)) => {
                tracing::info!(%webhook, %refused, "a delivery ends with its webhook");
                self.pending.remove(&result.delivery);
            }
            Err(error) => {
                // Not recorded: the delivery is made again later (at least once).
                tracing::warn!(%error, "cannot record a delivery attempt");
                if let Some(pending) = self.pending.get_mut(&result.delivery) {
                    pending.in_flight = false;
                    pending.due = now + TimeDelta::seconds(1);
                }
            }
        }
        Ok(())
    }
}

fn delivery_id(webhook: WebhookId, event_id: Uuid, outbound: &Outbound) -> DeliveryId {
    let name = format!(
        "{webhook}/{event_id}/{}/{}",
        outbound.event_type, outbound.part
    );
    DeliveryId(Uuid::new_v5(&DELIVERY_NAMESPACE, name.as_bytes()))
}

/// One attempt of one delivery.
struct Attempt {
    services: Services,
    roots: TlsRoots,
    timeout: Duration,
    delivery: DeliveryId,
    webhook: WebhookId,
    tenant: TenantId,
    url: WebhookUrl,
    body: Arc<Vec<u8>>,
}

impl Attempt {
    async fn run(self) -> AttemptResult {
        let started = std::time::Instant::now();
        let outcome = self.send().await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status_code, error) = match outcome {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) => (
                Some(status),
                Some(format!("the endpoint answered {status}")),
            ),
            Err(error) => (None, Some(error)),
        };
        AttemptResult {
            delivery: self.delivery,
            status_code,
            error: error.map(|e| e.chars().take(MAX_DELIVERY_ERROR_CHARS).collect()),
            duration_ms,
        }
    }

    /// Sends the delivery; the status the endpoint answered, or why there was none.
    async fn send(&self) -> Result<u16, String> {
        let url = url::Url::parse(self.url.as_str()).map_err(|e| format!("bad URL: {e}"))?;
        let host = self.url.host();
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses = self
            .services
            .guard
            .vet_host(&host)
            .await
            .map_err(|refusal| format!("refused: {refusal}"))?;
        let address = *addresses.first().ok_or("the host has no address")?;
        let key = self
            .services
            .webhook_signing_key(&self.tenant, self.webhook)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the webhook has no signing secret this server can open")?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(self.roots.verifying_client_config())
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, SocketAddr::new(address, port))
            .timeout(self.timeout)
            .user_agent(concat!("Vantage-Webhooks/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let id = self.delivery.to_string();
        let timestamp = self.services.pipeline.clock().now().timestamp();
        let signature = sign(&key, &id, timestamp, &self.body);
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(self.body.as_ref().clone())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "the endpoint did not answer in time".to_owned()
                } else if e.is_connect() {
                    "cannot connect to the endpoint".to_owned()
                } else {
                    "the request failed".to_owned()
                }
            })?;
        Ok(response.status().as_u16())
    }
}
