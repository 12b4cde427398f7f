//! Scan histories for read-side tests and benchmarks: realistic scans (observations the rules turn
//! into findings that come, go and come back), written to a real store either through the command
//! pipeline (every command decided by the domain) or, for bulk logs, as whole-scan appends of the
//! same domain events.

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;
use vantage_app::{CommandContext, Pipeline, SystemClock};
use vantage_domain::DomainEvent;
use vantage_domain::ids::{DeliveryId, ObservationId, ScanId, WebhookId};
use vantage_domain::scan::{
    MAX_OBSERVATIONS_PER_COMMAND, Observation, ProbeObserved, Scan, ScanCommand, ScanCompleted,
    ScanEvent, ScanFinalizing, ScanRequested, ScanSpec, ScanStarted,
};
use vantage_domain::target::{Paths, Ports, Profile, ScanTarget, Trigger, VantagePoint};
use vantage_domain::tenant::TenantId;
use vantage_domain::webhook::{
    DeliveryOutcome, WebhookCreated, WebhookDeliveryAttempted, WebhookEvent, WebhookUrl,
};
use vantage_observations::exposure::{ExposureCheck, ExposureDetails, ExposureObservation};
use vantage_observations::http::{HttpHop, HttpObservation};
use vantage_observations::tls::{CertificateSummary, TlsObservation};
use vantage_store::{
    EventMetadata, EventStore, ExpectedVersion, JsonPayload, NewEvent, StreamName,
};

/// How one scan of a site goes.
#[derive(Debug, Clone)]
pub struct SiteState {
    /// The page sends a Content-Security-Policy (else: `http.csp-missing`, medium).
    pub csp: bool,
    /// Days left on the certificate (< 30: `tls.certificate-expiring`).
    pub cert_days_left: i64,
    /// `/.git/HEAD` is readable (`exposure.git-repository`, high).
    pub git_exposed: bool,
    /// Extra HTTP observations (paths) to make the scan bigger.
    pub extra_pages: usize,
}

impl Default for SiteState {
    fn default() -> Self {
        Self {
            csp: true,
            cert_days_left: 200,
            git_exposed: false,
            extra_pages: 0,
        }
    }
}

fn http(url: &str, csp: bool) -> HttpObservation {
    let mut headers: std::collections::BTreeMap<String, String> = [
        ("content-type", "text/html; charset=utf-8"),
        ("strict-transport-security", "max-age=63072000"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if csp {
        headers.insert(
            "content-security-policy".into(),
            "default-src 'self'".into(),
        );
    }
    HttpObservation {
        url: url.into(),
        hops: vec![HttpHop {
            url: url.into(),
            address: "93.184.215.14:443".parse().unwrap(),
            status: 200,
            location: None,
            set_cookies: vec![],
            certificate_valid: Some(true),
        }],
        final_url: Some(url.into()),
        status: Some(200),
        headers,
        header_names: vec![],
        cookies: vec![],
        body_bytes: Some(512),
        html: None,
        cors_preflight: None,
        elapsed_ms: 12,
        refused_redirect: None,
        error: None,
    }
}

/// The observations of one scan of `domain` in `state`; ids from `seed`.
pub fn observations(domain: &str, state: &SiteState, seed: u128) -> Vec<ProbeObserved> {
    let mut n = 0u128;
    let mut next = |asset: String, observation: Observation| {
        n += 1;
        ProbeObserved {
            observation_id: ObservationId(Uuid::from_u128(seed << 32 | n)),
            asset,
            observation,
        }
    };
    let root = format!("https://{domain}/");
    let mut out = vec![
        next(root.clone(), http(&root, state.csp).into()),
        next(
            format!("{domain}:443"),
            TlsObservation {
                address: "93.184.215.14:443".parse().unwrap(),
                server_name: domain.into(),
                handshake: true,
                error: None,
                protocol: Some("TLSv1_3".into()),
                cipher_suite: Some("TLS13_AES_128_GCM_SHA256".into()),
                tls10: false,
                tls11: false,
                tls12: true,
                tls13: true,
                chain: vec![CertificateSummary {
                    subject: format!("CN={domain}"),
                    issuer: "CN=Test CA".into(),
                    sans: vec![domain.into()],
                    not_before: "2026-01-01T00:00:00Z".into(),
                    not_after: "2027-01-01T00:00:00Z".into(),
                    days_left: state.cert_days_left,
                    key_type: "RSA".into(),
                    key_bits: Some(2048),
                    signature_algorithm: "sha256WithRSAEncryption".into(),
                    self_signed: false,
                    embedded_scts: Some(2),
                    must_staple: false,
                }],
                trusted: Some(true),
                hostname_match: Some(true),
                verification_error: None,
                ocsp_stapled: true,
                ocsp_scts: None,
                cipher_suites: None,
                protocol_facts: None,
                chain_facts: None,
            }
            .into(),
        ),
    ];
    if state.git_exposed {
        let url = format!("https://{domain}/.git/HEAD");
        out.push(next(
            url.clone(),
            ExposureObservation {
                check: ExposureCheck::GitHead,
                url,
                status: Some(200),
                found: true,
                details: ExposureDetails::None,
                final_url: Some(format!("https://{domain}/.git/HEAD")),
                redirects: vec![],
                not_followed: None,
            }
            .into(),
        ));
    }
    for i in 0..state.extra_pages {
        let url = format!("https://{domain}/page/{i}");
        out.push(next(url.clone(), http(&url, true).into()));
    }
    out
}

/// A scan spec for `domain`.
pub fn spec(domain: &str) -> ScanSpec {
    ScanSpec {
        target: ScanTarget::parse(domain).unwrap(),
        ports: Ports::new(vec![443]).unwrap(),
        paths: Paths::new(vec!["/".into()]).unwrap(),
        profile: Profile::default(),
        trigger: Trigger::default(),
        vantage_point: VantagePoint::parse("default").unwrap(),
        content_sample: None,
        project: Default::default(),
    }
}

/// Runs one whole scan through the command pipeline, as the API and a worker would, and returns its
/// id. The scan completes unless `fail` is given.
pub async fn scan_through_pipeline(
    pipeline: &Pipeline,
    tenant: &str,
    domain: &str,
    state: &SiteState,
    fail: Option<&str>,
) -> ScanId {
    scan_spec_through_pipeline(pipeline, tenant, spec(domain), state, fail).await
}

/// [`scan_through_pipeline`] with a spec of the caller's (its target's host is the domain).
pub async fn scan_spec_through_pipeline(
    pipeline: &Pipeline,
    tenant: &str,
    spec: ScanSpec,
    state: &SiteState,
    fail: Option<&str>,
) -> ScanId {
    let domain = spec.target.host().to_owned();
    let domain = domain.as_str();
    let tenant = TenantId::parse(tenant).unwrap();
    let id = ScanId(Uuid::now_v7());
    let stream = vantage_app::scan_stream(id);
    let api = CommandContext {
        actor: "key-test".into(),
        request_id: Some(format!("req-{id}")),
        ..CommandContext::system(tenant.clone())
    };
    let worker = CommandContext {
        actor: "worker-1".into(),
        ..CommandContext::system(tenant.clone())
    };
    let run = |context: &CommandContext, command: ScanCommand| {
        let context = context.clone();
        let stream = stream.clone();
        async move {
            pipeline
                .execute::<Scan>(&stream, &context, command)
                .await
                .unwrap()
                .unwrap();
        }
    };
    run(
        &api,
        ScanCommand::Start {
            scan_id: id,
            tenant: tenant.clone(),
            spec,
        },
    )
    .await;
    run(
        &worker,
        ScanCommand::Begin {
            worker_id: "worker-1".into(),
        },
    )
    .await;
    // As a worker records them: a probe's observations together.
    let observed = observations(domain, state, id.0.as_u128() >> 64);
    for probe in observed.chunk_by(|a, b| a.probe() == b.probe()) {
        for batch in probe.chunks(MAX_OBSERVATIONS_PER_COMMAND) {
            run(&worker, ScanCommand::Observe(batch.to_vec())).await;
        }
    }
    match fail {
        Some(reason) => {
            run(
                &worker,
                ScanCommand::Fail {
                    reason: reason.into(),
                },
            )
            .await
        }
        None => {
            run(&worker, ScanCommand::Finalize).await;
            run(
                &worker,
                ScanCommand::Complete {
                    ruleset_version: "2".into(),
                },
            )
            .await;
        }
    }
    id
}

/// A pipeline over `store` with the system clock; personal text is sealed with keys kept in
/// `secrets`, under one fixed secrets key (so every pipeline a test makes opens what another sealed).
pub fn pipeline(
    store: Arc<dyn EventStore>,
    secrets: Arc<dyn vantage_store::SecretStore>,
) -> Pipeline {
    let vault = vantage_app::PersonalVault::new(secrets, vantage_app::Keyring::new([7; 32]));
    Pipeline::new(store, Arc::new(SystemClock), vault)
}

fn new_event<E: DomainEvent>(event: &E, metadata: &EventMetadata) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        occurred_at: Utc::now(),
        payload: JsonPayload::from_text(event.payload_json()).unwrap(),
        metadata: metadata.clone(),
    }
}

/// Appends one completed scan as a single atomic append (for building big logs fast). Returns the
/// number of events written.
pub async fn append_completed_scan(
    store: &dyn EventStore,
    tenant: &str,
    domain: &str,
    state: &SiteState,
) -> usize {
    let id = ScanId(Uuid::now_v7());
    let observations = observations(domain, state, id.0.as_u128() >> 64);
    let count = observations.len() as u32;
    let mut events: Vec<ScanEvent> = opening_events(id, tenant, domain).into();
    events.extend(observations.into_iter().map(ScanEvent::from));
    events.extend(closing_events(count));
    let n = events.len();
    let metadata = worker_metadata(tenant, id);
    store
        .append(
            &vantage_app::scan_stream(id),
            ExpectedVersion::NoStream,
            events.iter().map(|e| new_event(e, &metadata)).collect(),
        )
        .await
        .unwrap();
    n
}

/// The metadata a bench worker writes scan `id`'s events with.
fn worker_metadata(tenant: &str, id: ScanId) -> EventMetadata {
    EventMetadata {
        tenant: tenant.into(),
        actor: "worker-bench".into(),
        request_id: None,
        correlation_id: id.0,
        causation_id: None,
    }
}

/// `ScanRequested` and `ScanStarted` of scan `id` of `domain`.
fn opening_events(id: ScanId, tenant: &str, domain: &str) -> [ScanEvent; 2] {
    [
        ScanRequested::new(id, TenantId::parse(tenant).unwrap(), spec(domain)).into(),
        ScanStarted {
            worker_id: "worker-bench".into(),
        }
        .into(),
    ]
}

/// `ScanFinalizing` and `ScanCompleted` of a scan of `count` observations.
fn closing_events(count: u32) -> [ScanEvent; 2] {
    [
        ScanFinalizing {
            observation_count: count,
        }
        .into(),
        ScanCompleted {
            ruleset_version: "2".into(),
            observation_count: count,
        }
        .into(),
    ]
}

/// A scan that runs for a while, written the way a worker writes one: started by one append, then
/// one append per observation, then finalised and completed (for live benchmarks).
#[derive(Debug)]
pub struct RunningScan {
    pub id: ScanId,
    stream: StreamName,
    version: u64,
    observed: u32,
    metadata: EventMetadata,
}

impl RunningScan {
    /// Appends `ScanRequested` and `ScanStarted` of a new scan of `domain`.
    pub async fn start(store: &dyn EventStore, tenant: &str, domain: &str) -> Self {
        let id = ScanId(Uuid::now_v7());
        let metadata = worker_metadata(tenant, id);
        let stream = vantage_app::scan_stream(id);
        store
            .append(
                &stream,
                ExpectedVersion::NoStream,
                opening_events(id, tenant, domain)
                    .iter()
                    .map(|e| new_event(e, &metadata))
                    .collect(),
            )
            .await
            .unwrap();
        Self {
            id,
            stream,
            version: 2,
            observed: 0,
            metadata,
        }
    }

    /// Appends one observation.
    pub async fn observe(&mut self, store: &dyn EventStore, observation: ProbeObserved) {
        self.append(store, vec![observation.into()]).await;
        self.observed += 1;
    }

    /// Appends `ScanFinalizing` and `ScanCompleted`.
    pub async fn complete(mut self, store: &dyn EventStore) {
        let count = self.observed;
        self.append(store, closing_events(count).into()).await;
    }

    async fn append(&mut self, store: &dyn EventStore, events: Vec<ScanEvent>) {
        let n = events.len() as u64;
        store
            .append(
                &self.stream,
                ExpectedVersion::Exact(self.version),
                events
                    .iter()
                    .map(|e| new_event(e, &self.metadata))
                    .collect(),
            )
            .await
            .unwrap();
        self.version += n;
    }
}

/// The webhook every history notifies of its completed scans.
pub const HISTORY_WEBHOOK: Uuid = Uuid::from_u128(0x7765_6268_6f6f_6b00_0000_0000_0000_0001);

fn history_metadata(tenant: &str) -> EventMetadata {
    EventMetadata {
        tenant: tenant.into(),
        actor: "system".into(),
        request_id: None,
        correlation_id: HISTORY_WEBHOOK,
        causation_id: None,
    }
}

async fn append_webhook_event(store: &dyn EventStore, tenant: &str, event: WebhookEvent) -> usize {
    let stream = StreamName::new(format!("webhook-{HISTORY_WEBHOOK}")).unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![new_event(&event, &history_metadata(tenant))],
        )
        .await
        .unwrap();
    1
}

/// Appends completed scans over `domains` domains until at least `events` events are written; each
/// domain's scans cycle through states so findings appear, get fixed and regress, and each completed
/// scan is delivered to one webhook (every fifth delivery needs a retry). Returns the number of events
/// written.
pub async fn append_history(
    store: &dyn EventStore,
    tenant: &str,
    domains: usize,
    events: usize,
    extra_pages: usize,
) -> usize {
    let created = WebhookCreated {
        webhook_id: WebhookId(HISTORY_WEBHOOK),
        tenant: TenantId::parse(tenant).unwrap(),
        url: WebhookUrl::parse("https://hooks.example.com/history").unwrap(),
        events: ["scan.completed".to_owned()].into(),
        active: true,
        secret_sha256: "d".repeat(64),
        project: Default::default(),
    };
    let mut written = append_webhook_event(store, tenant, created.into()).await;
    let mut round = 0usize;
    let mut scans = 0u128;
    while written < events {
        for d in 0..domains {
            let state = SiteState {
                csp: (round + d) % 3 != 1,
                cert_days_left: if (round + d).is_multiple_of(5) {
                    12
                } else {
                    200
                },
                git_exposed: (round + d) % 4 == 2,
                extra_pages,
            };
            written +=
                append_completed_scan(store, tenant, &format!("site{d}.example.com"), &state).await;
            scans += 1;
            let retry = scans.is_multiple_of(5);
            let attempt = WebhookDeliveryAttempted {
                delivery_id: DeliveryId(Uuid::now_v7()),
                event_type: "scan.completed".into(),
                attempt: 1,
                outcome: if retry {
                    DeliveryOutcome::Retrying
                } else {
                    DeliveryOutcome::Delivered
                },
                status_code: Some(if retry { 503 } else { 204 }),
                duration_ms: 25,
                error: None,
                next_attempt_at: retry.then(Utc::now),
            };
            written += append_webhook_event(store, tenant, attempt.into()).await;
            if written >= events {
                break;
            }
        }
        round += 1;
    }
    written
}
