//! Every event type of every version has a JSON Schema in `schemas/events/`; current versions are
//! generated from the Rust payload types and must match the committed files (regenerate with
//! `VANTAGE_UPDATE_SCHEMAS=1`); sample events of every type validate against their schema.

fn schemas_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/events")
}

#[test]
fn committed_schemas_match_the_payload_types() {
    vantage_tests::assert_committed_schemas(
        &schemas_dir(),
        vantage_domain::event::catalog().map(|info| {
            (
                format!("{}.v{}.json", info.event_type, info.schema_version),
                (info.schema)(),
            )
        }),
    );
}

/// One sample of every event type, as the domain produces it.
fn samples() -> Vec<(String, u32, serde_json::Value)> {
    use vantage_domain::DomainEvent;
    use vantage_domain::apikey::*;
    use vantage_domain::badge::*;
    use vantage_domain::ids::*;
    use vantage_domain::notification::*;
    use vantage_domain::project::*;
    use vantage_domain::scan::*;
    use vantage_domain::schedule::*;
    use vantage_domain::scope::Scopes;
    use vantage_domain::target::*;
    use vantage_domain::tenant::TenantId;
    use vantage_domain::triage::*;
    use vantage_domain::webhook::*;
    let id = uuid::Uuid::now_v7;
    let tenant = TenantId::default_tenant;
    let spec = ScanSpec {
        target: ScanTarget::parse("https://example.com/").unwrap(),
        ports: Ports::default(),
        paths: Paths::default(),
        profile: Profile::Quick,
        trigger: Trigger::PostDeploy,
        vantage_point: VantagePoint::default(),
        content_sample: Some(vantage_domain::content::ContentSampling::new(14).unwrap()),
        project: Default::default(),
    };
    let fingerprint = Fingerprint::parse("00112233445566778899aabbccddeeff").unwrap();
    let scan: Vec<ScanEvent> = vec![
        ScanRequested::new(ScanId(id()), tenant(), spec.clone()).into(),
        ScanStarted {
            worker_id: "w-1".into(),
        }
        .into(),
        ProbeObserved {
            observation_id: ObservationId(id()),
            asset: "93.184.215.14:443".into(),
            observation: vantage_observations::tcp::TcpObservation {
                address: "93.184.215.14:443".parse().unwrap(),
                port: 443,
                state: vantage_observations::tcp::PortState::Open,
                latency_ms: Some(12),
            }
            .into(),
        }
        .into(),
        ProbeFailed {
            observation_id: ObservationId(id()),
            probe: ProbeKind::Dns,
            asset: "example.com".into(),
            reason: "timeout".into(),
        }
        .into(),
        ScanFinalizing {
            observation_count: 2,
        }
        .into(),
        ScanCompleted {
            ruleset_version: "1".into(),
            observation_count: 2,
        }
        .into(),
        ScanFailed {
            reason: "deadline".into(),
        }
        .into(),
        ScanCancelled {
            reason: Some("not needed".into()),
        }
        .into(),
        ScanDeleted {}.into(),
        ContentSampleKept {
            url: "https://example.com/".into(),
            status_code: 200,
            content_type: Some("text/html".into()),
            body_bytes: 5120,
            sample_bytes: 4096,
            sealed: vantage_domain::content::SealedBytes::new(vec![7; 4124]).unwrap(),
        }
        .into(),
        ContentKeyDestroyed {
            reason: vantage_domain::content::ShredReason::RetentionExpired,
        }
        .into(),
    ];
    let triage: Vec<TriageEvent> = vec![
        TriageSet {
            fingerprint: fingerprint.clone(),
            state: TriageState::AcceptedRisk,
            previous: TriageState::Open,
            note: Some("compensating control".into()),
            reason: TriageReason::Decision,
            scan_id: None,
        }
        .into(),
        TriageSet {
            fingerprint: fingerprint.clone(),
            state: TriageState::Open,
            previous: TriageState::Fixed,
            note: None,
            reason: TriageReason::Regressed,
            scan_id: Some(ScanId(id())),
        }
        .into(),
        CommentAdded {
            fingerprint: fingerprint.clone(),
            comment_id: CommentId(id()),
            body: "hi".into(),
        }
        .into(),
        CommentDeleted {
            fingerprint,
            comment_id: CommentId(id()),
        }
        .into(),
    ];
    let keys: Vec<ApiKeyEvent> = vec![
        ApiKeyIssued {
            key_id: ApiKeyId(id()),
            tenant: tenant(),
            name: "ci".into(),
            scopes: Scopes::admin(),
            secret_sha256: "a".repeat(64),
            projects: Default::default(),
        }
        .into(),
        ApiKeyRevoked {
            key_id: ApiKeyId(id()),
        }
        .into(),
        ApiKeyRotated {
            key_id: ApiKeyId(id()),
            secret_sha256: "ab".repeat(32),
            previous_valid_until: chrono::DateTime::UNIX_EPOCH,
        }
        .into(),
        TenantErased { tenant: tenant() }.into(),
    ];
    let webhooks: Vec<WebhookEvent> = vec![
        WebhookCreated {
            webhook_id: WebhookId(id()),
            tenant: tenant(),
            url: WebhookUrl::parse("https://hooks.example.com/").unwrap(),
            events: ["scan.completed".to_owned()].into(),
            active: true,
            secret_sha256: "b".repeat(64),
            project: Default::default(),
        }
        .into(),
        WebhookUpdated {
            url: None,
            events: None,
            active: Some(false),
        }
        .into(),
        WebhookDeleted {}.into(),
        WebhookDeliveryAttempted {
            delivery_id: DeliveryId(id()),
            event_type: "scan.completed".into(),
            attempt: 2,
            outcome: DeliveryOutcome::Retrying,
            status_code: Some(503),
            duration_ms: 180,
            error: Some("the endpoint answered 503".into()),
            next_attempt_at: Some(chrono::DateTime::UNIX_EPOCH),
        }
        .into(),
        WebhookTestRequested {
            delivery_id: DeliveryId(id()),
        }
        .into(),
    ];
    let schedules: Vec<ScheduleEvent> = vec![
        ScheduleCreated {
            schedule_id: ScheduleId(id()),
            tenant: tenant(),
            spec: spec.clone(),
            interval_seconds: Some(3600),
            cron: None,
            enabled: true,
        }
        .into(),
        ScheduleCreated {
            schedule_id: ScheduleId(id()),
            tenant: tenant(),
            spec,
            interval_seconds: None,
            cron: Some(CronCadence::parse("0 6 * * 1-5", "Europe/Paris").unwrap()),
            enabled: false,
        }
        .into(),
        ScheduleDeleted {}.into(),
    ];
    let notifications: Vec<NotificationEvent> = vec![
        NotificationRead {
            notification_id: None,
            up_to_position: Some(7),
        }
        .into(),
    ];
    let badges: Vec<BadgeEvent> = vec![
        BadgeEnabled {
            tenant: tenant(),
            domain: "shop.example.com".to_owned(),
        }
        .into(),
        BadgeDisabled {
            tenant: tenant(),
            domain: "shop.example.com".to_owned(),
        }
        .into(),
    ];
    fn stored<E: DomainEvent>(events: Vec<E>) -> Vec<(String, u32, serde_json::Value)> {
        events
            .into_iter()
            .map(|e| {
                (
                    e.event_type().to_owned(),
                    e.schema_version(),
                    e.to_payload(),
                )
            })
            .collect()
    }
    let projects: Vec<ProjectEvent> = vec![
        ProjectCreated {
            project: ProjectId::parse("web-shop").unwrap(),
            name: "Web shop".into(),
        }
        .into(),
        ProjectDeleted {
            project: ProjectId::parse("web-shop").unwrap(),
        }
        .into(),
    ];
    let mut all = stored(scan);
    all.extend(stored(projects));
    all.extend(stored(triage));
    all.extend(stored(keys));
    all.extend(stored(webhooks));
    all.extend(stored(schedules));
    all.extend(stored(notifications));
    all.extend(stored(badges));
    all
}

fn validator(event_type: &str, version: u32) -> jsonschema::Validator {
    let path = schemas_dir().join(format!("{event_type}.v{version}.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("no schema {}", path.display()));
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

#[test]
fn every_event_type_validates_against_its_schema() {
    let samples = samples();
    let covered: std::collections::BTreeSet<&str> =
        samples.iter().map(|(t, _, _)| t.as_str()).collect();
    let catalog: std::collections::BTreeSet<&str> = vantage_domain::event::catalog()
        .map(|info| info.event_type)
        .collect();
    assert_eq!(covered, catalog, "every event type needs a sample");
    for (event_type, version, payload) in &samples {
        let validator = validator(event_type, *version);
        let errors: Vec<String> = validator
            .iter_errors(payload)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{event_type} v{version}: {errors:?}");
    }
    // The schemas are not vacuous: a payload missing a required field fails.
    let broken = serde_json::json!({ "worker_id": 7 });
    assert!(!validator("ScanStarted", 1).is_valid(&broken));
}

#[test]
fn old_versions_keep_their_schema_and_upcast_to_the_current_one() {
    use vantage_domain::DomainEvent;
    let (_, _, mut v2) = samples().remove(0);
    let fields = v2.as_object_mut().unwrap();
    fields.remove("vantage_point");
    fields.remove("profile");
    let v1 = v2;
    assert!(validator("ScanRequested", 1).is_valid(&v1));
    assert!(!validator("ScanRequested", 2).is_valid(&v1));
    let upcast =
        vantage_domain::scan::ScanEvent::decode("ScanRequested", 1, &v1.to_string()).unwrap();
    let current = upcast.to_payload();
    assert!(validator("ScanRequested", 2).is_valid(&current));
    assert_eq!(current["vantage_point"], "default");
}
