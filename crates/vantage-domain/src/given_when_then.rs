//! Given/when/then tests for every command rule, and a proptest state machine over random command
//! sequences checking the scan lifecycle invariants.

use proptest::prelude::*;
use uuid::Uuid;
use vantage_observations::dns::{DnsObservation, DnsStatus};
use vantage_observations::tcp::{PortState, TcpObservation};

use crate::apikey::*;
use crate::ids::*;
use crate::notification::*;
use crate::scan::*;
use crate::schedule::*;
use crate::scope::{Scope, Scopes};
use crate::target::*;
use crate::tenant::TenantId;
use crate::triage::*;
use crate::webhook::*;
use crate::{Aggregate, DomainError, DomainEvent};

/// `given(history).when(command)` returns what `handle` decided.
struct Given<A: Aggregate>(A);

fn given<A: Aggregate>(history: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<A::Event> = history.into_iter().collect();
    Given(A::from_history(&events))
}

impl<A: Aggregate> Given<A> {
    fn when(self, command: A::Command) -> Result<Vec<A::Event>, DomainError> {
        self.0.handle(command)
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub(crate) fn spec() -> ScanSpec {
    ScanSpec {
        target: ScanTarget::parse("https://example.com/").unwrap(),
        ports: Ports::default(),
        paths: Paths::default(),
        profile: Profile::Standard,
        trigger: Trigger::Manual,
        vantage_point: VantagePoint::default(),
        content_sample: None,
        project: Default::default(),
    }
}

fn requested() -> ScanEvent {
    ScanRequested {
        scan_id: ScanId(id(1)),
        tenant: TenantId::default_tenant(),
        target: spec().target,
        ports: spec().ports,
        paths: spec().paths,
        profile: spec().profile,
        trigger: spec().trigger,
        vantage_point: spec().vantage_point,
        content_sample: None,
        project: Default::default(),
    }
    .into()
}

fn started(worker: &str) -> ScanEvent {
    ScanStarted {
        worker_id: worker.into(),
    }
    .into()
}

fn observation(n: u128) -> ProbeObserved {
    ProbeObserved {
        observation_id: ObservationId(id(n)),
        asset: "93.184.215.14:443".into(),
        observation: Observation::Tcp(TcpObservation {
            address: "93.184.215.14:443".parse().unwrap(),
            port: 443,
            state: PortState::Open,
            latency_ms: Some(3),
        }),
    }
}

fn terminal_events() -> Vec<(ScanEvent, &'static str)> {
    vec![
        (
            ScanCompleted {
                ruleset_version: "1".into(),
                observation_count: 0,
            }
            .into(),
            "completed",
        ),
        (ScanFailed { reason: "x".into() }.into(), "failed"),
        (ScanCancelled { reason: None }.into(), "cancelled"),
    ]
}

#[test]
fn start_records_the_request_once() {
    let start = ScanCommand::Start {
        scan_id: ScanId(id(1)),
        tenant: TenantId::default_tenant(),
        spec: spec(),
    };
    assert_eq!(given::<Scan>([]).when(start.clone()), Ok(vec![requested()]));
    assert_eq!(
        given::<Scan>([requested()]).when(start),
        Err(DomainError::AlreadyExists("scan"))
    );
}

#[test]
fn cancelling_a_terminal_scan_is_rejected() {
    for (end, status) in terminal_events() {
        let result = given::<Scan>([requested(), started("w"), end])
            .when(ScanCommand::Cancel { reason: None });
        assert_eq!(result, Err(DomainError::ScanTerminal { status }));
    }
}

#[test]
fn cancelling_a_queued_or_running_scan_is_accepted() {
    let cancel = || ScanCommand::Cancel {
        reason: Some(" no longer needed ".into()),
    };
    let expected: Vec<ScanEvent> = vec![
        ScanCancelled {
            reason: Some("no longer needed".into()),
        }
        .into(),
    ];
    assert_eq!(
        given::<Scan>([requested()]).when(cancel()),
        Ok(expected.clone())
    );
    assert_eq!(
        given::<Scan>([requested(), started("w")]).when(cancel()),
        Ok(expected)
    );
}

#[test]
fn cancelling_or_deleting_an_unknown_scan_is_not_found() {
    assert_eq!(
        given::<Scan>([]).when(ScanCommand::Cancel { reason: None }),
        Err(DomainError::NotFound("scan"))
    );
    assert_eq!(
        given::<Scan>([]).when(ScanCommand::Delete),
        Err(DomainError::NotFound("scan"))
    );
}

#[test]
fn deleting_an_active_scan_is_rejected_and_a_deleted_scan_is_gone() {
    assert_eq!(
        given::<Scan>([requested()]).when(ScanCommand::Delete),
        Err(DomainError::ScanActive { status: "queued" })
    );
    assert_eq!(
        given::<Scan>([requested(), started("w")]).when(ScanCommand::Delete),
        Err(DomainError::ScanActive { status: "running" })
    );
    let done = || {
        vec![
            requested(),
            started("w"),
            ScanFailed { reason: "x".into() }.into(),
        ]
    };
    assert_eq!(
        given::<Scan>(done()).when(ScanCommand::Delete),
        Ok(vec![ScanDeleted {}.into()])
    );
    let mut deleted = done();
    deleted.push(ScanDeleted {}.into());
    assert_eq!(
        given::<Scan>(deleted).when(ScanCommand::Delete),
        Err(DomainError::NotFound("scan"))
    );
}

#[test]
fn worker_events_for_a_cancelled_or_terminal_scan_are_rejected() {
    for (end, status) in terminal_events() {
        let history = vec![requested(), started("w"), end];
        for command in [
            ScanCommand::Begin {
                worker_id: "w2".into(),
            },
            ScanCommand::Observe(vec![observation(7)]),
            ScanCommand::Finalize,
            ScanCommand::Complete {
                ruleset_version: "1".into(),
            },
            ScanCommand::Fail {
                reason: "late".into(),
            },
        ] {
            assert_eq!(
                given::<Scan>(history.clone()).when(command),
                Err(DomainError::ScanTerminal { status })
            );
        }
    }
}

#[test]
fn observations_need_a_running_scan_and_are_idempotent() {
    assert_eq!(
        given::<Scan>([requested()]).when(ScanCommand::Observe(vec![observation(7)])),
        Err(DomainError::OutOfOrder {
            event: "ProbeObserved",
            status: "queued"
        })
    );
    let running = vec![requested(), started("w")];
    assert_eq!(
        given::<Scan>(running.clone()).when(ScanCommand::Observe(vec![observation(7)])),
        Ok(vec![observation(7).into()])
    );
    let mut seen = running;
    seen.push(observation(7).into());
    assert_eq!(
        given::<Scan>(seen).when(ScanCommand::Observe(vec![observation(7)])),
        Ok(vec![]),
        "a redelivered observation must not be recorded twice"
    );
}

#[test]
fn a_batch_of_observations_records_each_new_one_once_in_order() {
    let mut seen = vec![requested(), started("w")];
    seen.push(observation(2).into());
    assert_eq!(
        given::<Scan>(seen).when(ScanCommand::Observe(vec![
            observation(1),
            observation(2),
            observation(3),
            observation(1),
        ])),
        Ok(vec![observation(1).into(), observation(3).into()]),
        "held and repeated observations are left out; the rest keep their order"
    );
    let too_many = (0..=MAX_OBSERVATIONS_PER_COMMAND as u128)
        .map(observation)
        .collect();
    assert!(matches!(
        given::<Scan>([requested(), started("w")]).when(ScanCommand::Observe(too_many)),
        Err(DomainError::Invalid {
            field: "observations",
            ..
        })
    ));
}

#[test]
fn oversized_observations_are_refused() {
    let mut big = observation(9);
    big.observation = Observation::Dns(DnsObservation {
        name: "example.com".into(),
        record_type: "TXT".into(),
        status: DnsStatus::Ok,
        records: vec!["x".repeat(MAX_OBSERVATION_BYTES)],
        truncated: false,
    });
    let result = given::<Scan>([requested(), started("w")]).when(ScanCommand::Observe(vec![big]));
    assert!(matches!(
        result,
        Err(DomainError::Invalid { field: "data", .. })
    ));
}

#[test]
fn the_same_worker_beginning_twice_is_a_no_op_and_another_worker_takes_over() {
    let running = vec![requested(), started("w1")];
    assert_eq!(
        given::<Scan>(running.clone()).when(ScanCommand::Begin {
            worker_id: "w1".into()
        }),
        Ok(vec![])
    );
    assert_eq!(
        given::<Scan>(running).when(ScanCommand::Begin {
            worker_id: "w2".into()
        }),
        Ok(vec![started("w2")])
    );
}

#[test]
fn completion_counts_observations_and_records_the_ruleset() {
    let history = vec![
        requested(),
        started("w"),
        observation(1).into(),
        observation(2).into(),
        ScanFinalizing {
            observation_count: 2,
        }
        .into(),
    ];
    assert_eq!(
        given::<Scan>(history).when(ScanCommand::Complete {
            ruleset_version: "2026.11.1".into()
        }),
        Ok(vec![
            ScanCompleted {
                ruleset_version: "2026.11.1".into(),
                observation_count: 2
            }
            .into()
        ])
    );
    assert_eq!(
        given::<Scan>([requested()]).when(ScanCommand::Complete {
            ruleset_version: "1".into()
        }),
        Err(DomainError::OutOfOrder {
            event: "ScanCompleted",
            status: "queued"
        })
    );
}

fn issued(n: u128, scopes: Scopes) -> ApiKeyEvent {
    ApiKeyIssued {
        key_id: ApiKeyId(id(n)),
        tenant: TenantId::default_tenant(),
        name: format!("key {n}"),
        scopes,
        secret_sha256: "a".repeat(64),
        projects: Default::default(),
    }
    .into()
}

#[test]
fn revoking_the_last_admin_key_is_rejected() {
    let revoke = |n| ApiKeyCommand::Revoke {
        key_id: ApiKeyId(id(n)),
    };
    let reader = Scopes::new([Scope::ScanRead]).unwrap();
    assert_eq!(
        given::<ApiKeys>([issued(1, Scopes::admin()), issued(2, reader.clone())]).when(revoke(1)),
        Err(DomainError::LastAdminKey)
    );
    assert_eq!(
        given::<ApiKeys>([issued(1, Scopes::admin()), issued(2, Scopes::admin())]).when(revoke(1)),
        Ok(vec![
            ApiKeyRevoked {
                key_id: ApiKeyId(id(1))
            }
            .into()
        ])
    );
    // A non-admin key can always go, even when only one admin remains.
    assert!(
        given::<ApiKeys>([issued(1, Scopes::admin()), issued(2, reader)])
            .when(revoke(2))
            .is_ok()
    );
}

#[test]
fn an_erased_tenant_s_registry_takes_no_command_and_its_keys_authenticate_nothing() {
    let tenant = TenantId::default_tenant();
    let erase = || ApiKeyCommand::EraseTenant {
        tenant: tenant.clone(),
    };
    let history = vec![issued(1, Scopes::admin()), issued(2, Scopes::admin())];
    let erased: ApiKeyEvent = TenantErased {
        tenant: tenant.clone(),
    }
    .into();
    // Erasing needs no last-admin check: every key goes at once.
    assert_eq!(
        given::<ApiKeys>(history.clone()).when(erase()),
        Ok(vec![erased.clone()])
    );
    let after: Vec<ApiKeyEvent> = history.into_iter().chain([erased]).collect();
    assert_eq!(given::<ApiKeys>(after.clone()).when(erase()), Ok(vec![]));
    for refused in [
        ApiKeyCommand::Issue {
            key_id: ApiKeyId(id(3)),
            tenant: tenant.clone(),
            name: "again".into(),
            scopes: Scopes::admin(),
            secret_sha256: "a".repeat(64),
            projects: Default::default(),
        },
        ApiKeyCommand::Revoke {
            key_id: ApiKeyId(id(1)),
        },
        ApiKeyCommand::Rotate {
            key_id: ApiKeyId(id(1)),
            secret_sha256: "b".repeat(64),
            previous_valid_until: chrono::DateTime::UNIX_EPOCH,
        },
    ] {
        assert_eq!(
            given::<ApiKeys>(after.clone()).when(refused),
            Err(DomainError::TenantErased)
        );
    }
    let mut registry = ApiKeys::default();
    for event in &after {
        registry.apply(event);
    }
    assert!(registry.erased);
    assert_eq!(registry.active_admin_count(), 0);
    assert!(
        registry
            .keys
            .values()
            .all(|k| k.revoked && k.name == crate::event::ERASED_TEXT)
    );
}

#[test]
fn revoking_twice_or_an_unknown_key_is_rejected() {
    let history = vec![
        issued(1, Scopes::admin()),
        issued(2, Scopes::admin()),
        ApiKeyRevoked {
            key_id: ApiKeyId(id(2)),
        }
        .into(),
    ];
    assert_eq!(
        given::<ApiKeys>(history.clone()).when(ApiKeyCommand::Revoke {
            key_id: ApiKeyId(id(2))
        }),
        Err(DomainError::KeyAlreadyRevoked)
    );
    assert_eq!(
        given::<ApiKeys>(history).when(ApiKeyCommand::Revoke {
            key_id: ApiKeyId(id(3))
        }),
        Err(DomainError::NotFound("api key"))
    );
}

#[test]
fn issuing_checks_name_and_hash_and_never_reuses_an_id() {
    let issue = |name: &str, hash: String| ApiKeyCommand::Issue {
        key_id: ApiKeyId(id(1)),
        tenant: TenantId::default_tenant(),
        name: name.into(),
        scopes: Scopes::admin(),
        secret_sha256: hash,
        projects: Default::default(),
    };
    assert!(matches!(
        given::<ApiKeys>([]).when(issue(" ", "a".repeat(64))),
        Err(DomainError::Invalid { field: "name", .. })
    ));
    assert!(matches!(
        given::<ApiKeys>([]).when(issue("ci", "not-a-hash".into())),
        Err(DomainError::Invalid {
            field: "secret_sha256",
            ..
        })
    ));
    assert_eq!(
        given::<ApiKeys>([issued(1, Scopes::admin())]).when(issue("ci", "a".repeat(64))),
        Err(DomainError::AlreadyExists("api key"))
    );
}

fn fingerprint() -> Fingerprint {
    Fingerprint::parse("0123456789abcdef0123456789abcdef").unwrap()
}

#[test]
fn triage_records_the_previous_state() {
    let set = |state| TriageCommand::Set {
        fingerprint: fingerprint(),
        state,
        note: Some("  ".into()),
    };
    let first = TriageSet {
        fingerprint: fingerprint(),
        state: TriageState::Acknowledged,
        previous: TriageState::Open,
        note: None,
        reason: TriageReason::Decision,
        scan_id: None,
    };
    assert_eq!(
        given::<Triage>([]).when(set(TriageState::Acknowledged)),
        Ok(vec![first.clone().into()])
    );
    assert_eq!(
        given::<Triage>([first.into()]).when(set(TriageState::Fixed)),
        Ok(vec![
            TriageSet {
                fingerprint: fingerprint(),
                state: TriageState::Fixed,
                previous: TriageState::Acknowledged,
                note: None,
                reason: TriageReason::Decision,
                scan_id: None,
            }
            .into()
        ])
    );
}

#[test]
fn the_same_triage_decision_again_appends_nothing_but_a_new_note_does() {
    let set = |state, note: Option<&str>| TriageCommand::Set {
        fingerprint: fingerprint(),
        state,
        note: note.map(str::to_owned),
    };
    let decided = TriageSet {
        fingerprint: fingerprint(),
        state: TriageState::AcceptedRisk,
        previous: TriageState::Open,
        note: Some("behind the VPN".into()),
        reason: TriageReason::Decision,
        scan_id: None,
    };
    let given_decided = || given::<Triage>([decided.clone().into()]);
    assert_eq!(
        given_decided().when(set(TriageState::AcceptedRisk, None)),
        Ok(vec![])
    );
    assert_eq!(
        given_decided().when(set(TriageState::AcceptedRisk, Some(" behind the VPN "))),
        Ok(vec![])
    );
    assert_eq!(
        given_decided()
            .when(set(TriageState::AcceptedRisk, Some("still behind the VPN")))
            .map(|events| events.len()),
        Ok(1)
    );
    assert_eq!(
        given::<Triage>([]).when(set(TriageState::Open, None)),
        Ok(vec![])
    );
    assert!(matches!(
        given::<Triage>([]).when(set(TriageState::Fixed, Some("done\u{1b}[2J"))),
        Err(DomainError::Invalid { field: "note", .. })
    ));
}

#[test]
fn port_zero_is_not_a_target() {
    assert!(ScanTarget::parse("http://example.com:0/").is_err());
    assert!(ScanTarget::parse("http://example.com:8080/").is_ok());
}

#[test]
fn a_regression_reopens_only_a_fixed_finding_and_only_once() {
    let scan = ScanId(id(42));
    let reopen = TriageCommand::Reopen {
        fingerprint: fingerprint(),
        scan_id: scan,
    };
    let fixed: TriageEvent = TriageSet {
        fingerprint: fingerprint(),
        state: TriageState::Fixed,
        previous: TriageState::Open,
        note: None,
        reason: TriageReason::Decision,
        scan_id: None,
    }
    .into();
    let reopened: TriageEvent = TriageSet {
        fingerprint: fingerprint(),
        state: TriageState::Open,
        previous: TriageState::Fixed,
        note: None,
        reason: TriageReason::Regressed,
        scan_id: Some(scan),
    }
    .into();
    assert_eq!(
        given::<Triage>([fixed.clone()]).when(reopen.clone()),
        Ok(vec![reopened.clone()])
    );
    assert_eq!(
        given::<Triage>([fixed.clone(), reopened]).when(reopen.clone()),
        Ok(vec![]),
        "already reopened: nothing more"
    );
    let accepted: TriageEvent = TriageSet {
        fingerprint: fingerprint(),
        state: TriageState::AcceptedRisk,
        previous: TriageState::Fixed,
        note: None,
        reason: TriageReason::Decision,
        scan_id: None,
    }
    .into();
    assert_eq!(
        given::<Triage>([fixed, accepted]).when(reopen),
        Ok(vec![]),
        "somebody decided since: their decision stands"
    );
}

#[test]
fn comments_must_exist_to_be_deleted_and_are_not_empty() {
    let added: TriageEvent = CommentAdded {
        fingerprint: fingerprint(),
        comment_id: CommentId(id(5)),
        body: "seen".into(),
    }
    .into();
    let delete = TriageCommand::DeleteComment {
        fingerprint: fingerprint(),
        comment_id: CommentId(id(5)),
    };
    assert_eq!(
        given::<Triage>([]).when(delete.clone()),
        Err(DomainError::NotFound("comment"))
    );
    let deleted: TriageEvent = CommentDeleted {
        fingerprint: fingerprint(),
        comment_id: CommentId(id(5)),
    }
    .into();
    assert_eq!(
        given::<Triage>([added.clone()]).when(delete.clone()),
        Ok(vec![deleted.clone()])
    );
    assert_eq!(
        given::<Triage>([added, deleted]).when(delete),
        Err(DomainError::NotFound("comment"))
    );
    assert!(matches!(
        given::<Triage>([]).when(TriageCommand::AddComment {
            fingerprint: fingerprint(),
            comment_id: CommentId(id(6)),
            body: "   ".into(),
        }),
        Err(DomainError::Invalid { field: "body", .. })
    ));
}

#[test]
fn webhooks_validate_events_and_must_exist() {
    let create = |events: Vec<&str>| WebhookCommand::Create {
        webhook_id: WebhookId(id(1)),
        tenant: TenantId::default_tenant(),
        url: WebhookUrl::parse("https://hooks.example.com/v").unwrap(),
        events: events.into_iter().map(String::from).collect(),
        active: true,
        secret_sha256: "b".repeat(64),
        project: Default::default(),
    };
    assert!(matches!(
        given::<Webhook>([]).when(create(vec!["scan.exploded"])),
        Err(DomainError::Invalid {
            field: "events",
            ..
        })
    ));
    let created = given::<Webhook>([])
        .when(create(vec!["scan.completed"]))
        .unwrap();
    assert_eq!(
        given::<Webhook>(created.clone()).when(create(vec!["scan.completed"])),
        Err(DomainError::AlreadyExists("webhook"))
    );
    let test = WebhookCommand::Test {
        delivery_id: DeliveryId(id(9)),
    };
    assert_eq!(
        given::<Webhook>(created.clone()).when(test.clone()),
        Ok(vec![
            WebhookTestRequested {
                delivery_id: DeliveryId(id(9))
            }
            .into()
        ])
    );
    let mut gone = created;
    gone.push(WebhookDeleted {}.into());
    assert_eq!(
        given::<Webhook>(gone.clone()).when(test),
        Err(DomainError::NotFound("webhook"))
    );
    assert_eq!(
        given::<Webhook>(gone).when(WebhookCommand::Update {
            url: None,
            events: None,
            active: Some(false)
        }),
        Err(DomainError::NotFound("webhook"))
    );
    assert!(WebhookUrl::parse("ftp://x.example").is_err());
}

#[test]
fn delivery_attempts_are_checked_and_need_a_live_webhook() {
    let created: Vec<WebhookEvent> = vec![
        WebhookCreated {
            webhook_id: WebhookId(id(1)),
            tenant: TenantId::default_tenant(),
            url: WebhookUrl::parse("https://hooks.example.com/v").unwrap(),
            events: ["scan.completed".to_owned()].into(),
            active: true,
            secret_sha256: "b".repeat(64),
            project: Default::default(),
        }
        .into(),
    ];
    let attempt = WebhookDeliveryAttempted {
        delivery_id: DeliveryId(id(2)),
        event_type: "scan.completed".into(),
        attempt: 1,
        outcome: DeliveryOutcome::Delivered,
        status_code: Some(204),
        duration_ms: 12,
        error: None,
        next_attempt_at: None,
    };
    let record = |a: &WebhookDeliveryAttempted| WebhookCommand::RecordDelivery(a.clone());
    assert_eq!(
        given::<Webhook>(created.clone()).when(record(&attempt)),
        Ok(vec![attempt.clone().into()])
    );
    assert_eq!(
        given::<Webhook>([]).when(record(&attempt)),
        Err(DomainError::NotFound("webhook"))
    );
    let retrying_without_time = WebhookDeliveryAttempted {
        outcome: DeliveryOutcome::Retrying,
        ..attempt.clone()
    };
    let zeroth = WebhookDeliveryAttempted {
        attempt: 0,
        ..attempt.clone()
    };
    let unknown = WebhookDeliveryAttempted {
        event_type: "scan.exploded".into(),
        ..attempt.clone()
    };
    let verbose = WebhookDeliveryAttempted {
        error: Some("x".repeat(MAX_DELIVERY_ERROR_CHARS + 1)),
        ..attempt
    };
    for bad in [retrying_without_time, zeroth, unknown, verbose] {
        assert!(
            matches!(
                given::<Webhook>(created.clone()).when(record(&bad)),
                Err(DomainError::Invalid { .. })
            ),
            "{bad:?} was accepted"
        );
    }
}

#[test]
fn schedules_bound_their_interval_and_force_the_scheduled_trigger() {
    let create = |seconds| ScheduleCommand::Create {
        schedule_id: ScheduleId(id(1)),
        tenant: TenantId::default_tenant(),
        spec: spec(),
        cadence: Cadence::Interval { seconds },
        enabled: true,
    };
    assert!(given::<Schedule>([]).when(create(59)).is_err());
    assert!(
        given::<Schedule>([])
            .when(create(31 * 24 * 3600 + 1))
            .is_err()
    );
    let events = given::<Schedule>([]).when(create(3600)).unwrap();
    let ScheduleEvent::ScheduleCreated(created) = &events[0] else {
        panic!("expected ScheduleCreated, got {events:?}");
    };
    assert_eq!(created.spec.trigger, Trigger::Scheduled);
    assert_eq!(
        given::<Schedule>([]).when(ScheduleCommand::Delete),
        Err(DomainError::NotFound("schedule"))
    );
}

#[test]
fn notifications_record_read_receipts() {
    assert_eq!(
        given::<Notifications>([]).when(NotificationCommand::MarkAllRead { up_to_position: 42 }),
        Ok(vec![
            NotificationRead {
                notification_id: None,
                up_to_position: Some(42)
            }
            .into()
        ])
    );
}

#[test]
fn events_round_trip_through_their_stored_form() {
    let event = requested();
    let decoded = ScanEvent::decode(
        event.event_type(),
        event.schema_version(),
        &event.payload_json(),
    )
    .unwrap();
    assert_eq!(decoded, event);
    assert_eq!(event.schema_version(), 4);
}

#[test]
fn data_recorded_before_projects_belongs_to_the_default_project() {
    use crate::project::ProjectId;
    let without = |event: serde_json::Value, path: &[&str]| {
        let mut event = event;
        let mut object = event.as_object_mut().unwrap();
        for name in &path[..path.len() - 1] {
            object = object.get_mut(*name).unwrap().as_object_mut().unwrap();
        }
        assert!(object.remove(path[path.len() - 1]).is_some(), "{path:?}");
        event.to_string()
    };
    let scan = without(requested().to_payload(), &["project"]);
    let ScanEvent::ScanRequested(decoded) = ScanEvent::decode("ScanRequested", 3, &scan).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(decoded.project, ProjectId::default_project());

    let created = ScheduleCreated {
        schedule_id: ScheduleId(id(1)),
        tenant: TenantId::default_tenant(),
        spec: spec(),
        interval_seconds: Some(3600),
        cron: None,
        enabled: true,
    };
    let schedule = without(
        serde_json::to_value(&created).unwrap(),
        &["spec", "project"],
    );
    let decoded = ScheduleEvent::decode("ScheduleCreated", 3, &schedule).unwrap();
    assert_eq!(decoded, created.into());
    // A v3 schedule whose spec is not an object is refused, not guessed at.
    assert!(ScheduleEvent::decode("ScheduleCreated", 3, r#"{"spec": 1}"#).is_err());

    let webhook = serde_json::json!({
        "webhook_id": id(2), "tenant": "default", "url": "https://hooks.example.com/",
        "events": ["scan.completed"], "active": true, "secret_sha256": "a".repeat(64),
    });
    let WebhookEvent::WebhookCreated(decoded) =
        WebhookEvent::decode("WebhookCreated", 1, &webhook.to_string()).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(decoded.project, ProjectId::default_project());

    let key = without(issued(1, Scopes::admin()).to_payload(), &["projects"]);
    let ApiKeyEvent::ApiKeyIssued(decoded) = ApiKeyEvent::decode("ApiKeyIssued", 2, &key).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(
        decoded.projects, None,
        "a key issued before projects sees them all"
    );
}

#[test]
fn projects_are_unique_never_reused_and_default_is_always_there() {
    use crate::project::*;
    let web = || ProjectId::parse("web").unwrap();
    let create = |project: ProjectId, name: &str| ProjectCommand::Create {
        project,
        name: name.into(),
    };
    let created: ProjectEvent = ProjectCreated {
        project: web(),
        name: "Web shop".into(),
    }
    .into();
    assert_eq!(
        given::<Projects>([]).when(create(web(), "  Web shop ")),
        Ok(vec![created.clone()])
    );
    assert_eq!(
        given::<Projects>([created.clone()]).when(create(web(), "again")),
        Err(DomainError::AlreadyExists("project"))
    );
    assert_eq!(
        given::<Projects>([]).when(create(ProjectId::default_project(), "x")),
        Err(DomainError::AlreadyExists("project"))
    );
    assert!(matches!(
        given::<Projects>([]).when(create(web(), " ")),
        Err(DomainError::Invalid { field: "name", .. })
    ));
    assert!(matches!(
        given::<Projects>([]).when(ProjectCommand::Delete {
            project: ProjectId::default_project()
        }),
        Err(DomainError::Invalid {
            field: "project",
            ..
        })
    ));
    let deleted: ProjectEvent = ProjectDeleted { project: web() }.into();
    assert_eq!(
        given::<Projects>([created.clone()]).when(ProjectCommand::Delete { project: web() }),
        Ok(vec![deleted.clone()])
    );
    // A deleted id is never given to a new project: old data must not join it.
    assert_eq!(
        given::<Projects>([created, deleted]).when(create(web(), "Web shop 2")),
        Err(DomainError::AlreadyExists("project"))
    );
    for bad in ["", "Web", "-web", "web_shop", &"a".repeat(64)] {
        assert!(ProjectId::parse(bad).is_err(), "{bad:?}");
    }
    let only_web = ProjectAccess::Only([web()].into());
    assert!(only_web.allows("web"));
    assert!(!only_web.allows("default"));
    assert!(ProjectAccess::All.allows("web"));
}

#[test]
fn scan_requested_v1_is_upcast_on_read() {
    let mut v1 = requested().to_payload();
    let fields = v1.as_object_mut().unwrap();
    fields.remove("vantage_point");
    fields.remove("profile");
    let decoded = ScanEvent::decode("ScanRequested", 1, &v1.to_string()).unwrap();
    assert_eq!(decoded, requested());
}

#[test]
fn unknown_and_future_events_are_typed_errors() {
    assert!(matches!(
        ScanEvent::decode("ScanExploded", 1, "{}"),
        Err(crate::UpcastError::UnknownType(_))
    ));
    assert!(matches!(
        ScanEvent::decode("ScanDeleted", 9, "{}"),
        Err(crate::UpcastError::FutureVersion { .. })
    ));
}

// ---- state machine over random command sequences -------------------------------------------------

fn arb_command() -> impl Strategy<Value = ScanCommand> {
    prop_oneof![
        Just(ScanCommand::Start {
            scan_id: ScanId(id(1)),
            tenant: TenantId::default_tenant(),
            spec: spec(),
        }),
        Just(ScanCommand::Cancel { reason: None }),
        Just(ScanCommand::Delete),
        (0u8..3).prop_map(|w| ScanCommand::Begin {
            worker_id: format!("w{w}")
        }),
        proptest::collection::vec(0u128..6, 1..4)
            .prop_map(|ns| ScanCommand::Observe(ns.into_iter().map(observation).collect())),
        Just(ScanCommand::Finalize),
        Just(ScanCommand::Complete {
            ruleset_version: "1".into()
        }),
        Just(ScanCommand::Fail {
            reason: "boom".into()
        }),
    ]
}

proptest! {
    /// Whatever commands arrive in whatever order: a terminal status never changes again, observation
    /// ids are recorded at most once, nothing happens before the scan exists, and nothing happens to a
    /// deleted scan.
    #[test]
    fn scan_lifecycle_invariants_hold(commands in proptest::collection::vec(arb_command(), 0..40)) {
        let mut state = Scan::default();
        let mut recorded: Vec<ScanEvent> = Vec::new();
        for command in commands {
            let before = state.clone();
            match state.handle(command) {
                Ok(events) => {
                    for event in &events {
                        if let Some(status) = before.status {
                            if status.is_terminal() {
                                prop_assert!(
                                    matches!(event, ScanEvent::ScanDeleted(_)),
                                    "{event:?} after terminal {status:?}"
                                );
                            }
                        } else {
                            prop_assert!(matches!(event, ScanEvent::ScanRequested(_)));
                        }
                        prop_assert!(!before.deleted, "{event:?} after deletion");
                        state.apply(event);
                    }
                    recorded.extend(events);
                }
                Err(_) => prop_assert_eq!(&state, &before, "a rejected command changed state"),
            }
        }
        let mut ids: Vec<_> = recorded.iter().filter_map(|e| match e {
            ScanEvent::ProbeObserved(o) => Some(o.observation_id),
            _ => None,
        }).collect();
        let total = ids.len();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), total, "an observation id was recorded twice");
        prop_assert_eq!(Scan::from_history(&recorded), state);
    }
}

fn sampling_requested() -> ScanEvent {
    let ScanEvent::ScanRequested(mut requested) = requested() else {
        unreachable!()
    };
    requested.content_sample = Some(crate::content::ContentSampling::new(10).unwrap());
    requested.into()
}

fn sample(url: &str) -> ContentSampleKept {
    ContentSampleKept {
        url: url.into(),
        status_code: 200,
        content_type: Some("text/html".into()),
        body_bytes: 10,
        sample_bytes: 10,
        sealed: crate::content::SealedBytes::new(vec![1; 38]).unwrap(),
    }
}

#[test]
fn content_samples_are_kept_only_when_asked_never_for_secrets_and_once() {
    let keep = |url: &str| ScanCommand::KeepContentSample(sample(url));
    assert!(matches!(
        given::<Scan>([requested(), started("w")]).when(keep("https://example.com/")),
        Err(DomainError::Invalid {
            field: "content_sample",
            ..
        })
    ));
    assert!(matches!(
        given::<Scan>([sampling_requested(), started("w")]).when(keep("https://example.com/.env")),
        Err(DomainError::Invalid { field: "url", .. })
    ));
    assert_eq!(
        given::<Scan>([sampling_requested(), started("w")]).when(keep("https://example.com/")),
        Ok(vec![sample("https://example.com/").into()])
    );
    assert_eq!(
        given::<Scan>([
            sampling_requested(),
            started("w"),
            sample("https://example.com/").into()
        ])
        .when(keep("https://example.com/")),
        Ok(vec![])
    );
    // Once the key is destroyed nothing more is kept.
    let destroyed: ScanEvent = ContentKeyDestroyed {
        reason: crate::content::ShredReason::TenantErased,
    }
    .into();
    assert!(matches!(
        given::<Scan>([sampling_requested(), started("w"), destroyed])
            .when(keep("https://example.com/")),
        Err(DomainError::Invalid {
            field: "content_sample",
            ..
        })
    ));
}

#[test]
fn a_content_key_is_recorded_destroyed_once_even_after_deletion() {
    use crate::content::ShredReason;
    let destroy = |reason| ScanCommand::RecordContentKeyDestroyed { reason };
    assert!(
        given::<Scan>([requested()])
            .when(destroy(ShredReason::RetentionExpired))
            .is_err(),
        "a scan that kept nothing has no key"
    );
    let deleted: Vec<ScanEvent> = vec![
        sampling_requested(),
        ScanCancelled { reason: None }.into(),
        ScanDeleted {}.into(),
    ];
    assert_eq!(
        given::<Scan>(deleted.clone()).when(destroy(ShredReason::ScanDeleted)),
        Ok(vec![
            ContentKeyDestroyed {
                reason: ShredReason::ScanDeleted
            }
            .into()
        ])
    );
    let mut again = deleted;
    again.push(
        ContentKeyDestroyed {
            reason: ShredReason::ScanDeleted,
        }
        .into(),
    );
    assert_eq!(
        given::<Scan>(again).when(destroy(ShredReason::TenantErased)),
        Ok(vec![])
    );
}
