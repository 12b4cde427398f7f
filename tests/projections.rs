//! The read side against real stores: commands and worker events go through the real pipeline into
//! SQLite or PostgreSQL, the real projectors run, and every read model is asserted through the
//! queries the API uses. Also: a batch that dies before commit, shadow rebuilds, and replay.

use std::sync::Arc;

use tokio::sync::watch;
use vantage_app::{CommandContext, Pipeline};
use vantage_domain::ids::{CommentId, NotificationId, ScanId};
use vantage_domain::notification::{NotificationCommand, Notifications};
use vantage_domain::scan::{Scan, ScanCommand, ScanStatus};
use vantage_domain::tenant::TenantId;
use vantage_domain::triage::{Fingerprint, Triage, TriageCommand, TriageState};
use vantage_projections::model::NotificationKind;
use vantage_projections::query::{AsOf, AuditFilter, FindingFilter, ScanFilter};
use vantage_projections::runtime::{self, RebuildOptions, RunOptions, Until};
use vantage_projections::{ProjectionError, ReadDb, migrate, projector};
use vantage_store::{EventStore, SecretStore, StreamName};
use vantage_tests::history::{self, SiteState};

/// A store and a read-model database of one kind.
struct ReadSide {
    store: Arc<dyn EventStore>,
    secrets: Arc<dyn SecretStore>,
    db: ReadDb,
    _dir: tempfile::TempDir,
    pg: Option<vantage_tests::PgTestStore>,
}

impl ReadSide {
    async fn sqlite() -> Self {
        let t = vantage_tests::SqliteTestStore::new().await;
        let db = ReadDb::open_sqlite(&t.dir.path().join("readmodels.db"))
            .await
            .unwrap();
        migrate(&db).await.unwrap();
        Self {
            store: Arc::new(t.store.clone()),
            secrets: Arc::new(t.store),
            db,
            _dir: t.dir,
            pg: None,
        }
    }

    async fn postgres() -> Self {
        let t = vantage_tests::PgTestStore::new().await;
        let db = ReadDb::connect_postgres(&vantage_tests::database_url(), Some(&t.schema), 4)
            .await
            .unwrap();
        migrate(&db).await.unwrap();
        Self {
            store: Arc::new(t.store.clone()),
            secrets: Arc::new(t.store.clone()),
            db,
            _dir: tempfile::tempdir().unwrap(),
            pg: Some(t),
        }
    }

    async fn finish(self) {
        if let Some(pg) = self.pg {
            pg.drop_schema().await;
        }
    }

    /// Runs every projector until it has applied the whole log.
    async fn catch_up(&self) {
        self.settle().await;
        catch_up(&self.store, &self.db).await;
    }

    /// Makes every committed event readable now (PostgreSQL orders events in the background).
    async fn settle(&self) {
        if let Some(pg) = &self.pg {
            vantage_tests::settle(&pg.store).await;
        }
    }

    fn pipeline(&self) -> Pipeline {
        history::pipeline(self.store.clone(), self.secrets.clone())
    }
}

async fn catch_up(store: &Arc<dyn EventStore>, db: &ReadDb) {
    for name in vantage_projections::PROJECTORS {
        let mut p = projector(name, store.clone()).unwrap();
        let options = RunOptions {
            until: Until::CaughtUp,
            ..RunOptions::default()
        };
        let (_tx, stop) = watch::channel(false);
        runtime::run(p.as_mut(), store.clone(), db, &options, stop)
            .await
            .unwrap();
    }
}

macro_rules! per_store {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let side = super::ReadSide::sqlite().await;
                super::$name(&side).await;
                side.finish().await;
            })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let side = super::ReadSide::postgres().await;
                super::$name(&side).await;
                side.finish().await;
            })+
        }
    };
}

per_store!(
    every_read_model_follows_scans_triage_and_notifications,
    a_batch_that_dies_before_commit_leaves_no_trace_and_a_restart_equals_a_clean_rebuild,
    a_shadow_rebuild_swaps_in_equal_tables_while_queries_keep_answering,
    webhooks_and_their_delivery_log_follow_the_webhook_streams,
    one_pass_rebuilds_every_projector_and_resumes_a_half_done_one,
    a_pipelined_rebuild_in_small_batches_through_a_deletion_equals_projecting_live,
);

const TENANT: &str = "acme";
const DOMAIN: &str = "shop.example.com";

fn context() -> CommandContext {
    CommandContext {
        actor: "key-analyst".into(),
        request_id: Some("req-triage".into()),
        ..CommandContext::system(TenantId::parse(TENANT).unwrap())
    }
}

async fn triage(pipeline: &Pipeline, fingerprint: &str, command: TriageCommand) {
    let stream = StreamName::new(format!("triage-{TENANT}-{fingerprint}")).unwrap();
    pipeline
        .execute::<Triage>(&stream, &context(), command)
        .await
        .unwrap()
        .unwrap();
}

async fn fingerprint_of(side: &ReadSide, scan: ScanId, rule: &str) -> String {
    side.db
        .findings(TENANT, &scan.to_string(), &FindingFilter::default(), None)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .find(|f| f.finding.finding.rule_id == rule)
        .unwrap_or_else(|| panic!("no {rule} finding"))
        .finding
        .finding
        .fingerprint
}

const CSP: &str = "http.csp-missing";
const GIT: &str = "exposure.git-repository";
const CERT: &str = "tls.certificate-expiring";

async fn every_read_model_follows_scans_triage_and_notifications(side: &ReadSide) {
    let pipeline = side.pipeline();
    let bad = SiteState {
        csp: false,
        cert_days_left: 12,
        git_exposed: true,
        extra_pages: 0,
    };
    let first = history::scan_through_pipeline(&pipeline, TENANT, DOMAIN, &bad, None).await;
    let failed = history::scan_through_pipeline(
        &pipeline,
        TENANT,
        "down.example.com",
        &SiteState::default(),
        Some("connection refused"),
    )
    .await;
    // Another tenant's scan never shows up in acme's read models.
    history::scan_through_pipeline(&pipeline, "other", DOMAIN, &bad, None).await;
    side.catch_up().await;
    let after_first = side.store.head_position().await.unwrap();

    // Scans and summaries.
    let scan = side
        .db
        .scan(TENANT, &first.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scan.status, ScanStatus::Completed);
    assert_eq!(scan.domain, DOMAIN);
    assert_eq!(scan.ruleset_version.as_deref(), Some("2"));
    let counts = scan.findings.unwrap();
    // git exposure (high); missing CSP and the expiring certificate (medium).
    assert_eq!((counts.high, counts.medium), (1, 2), "{counts:?}");
    assert!(scan.grades.is_some());
    assert!(
        side.db
            .scan("other", &first.to_string())
            .await
            .unwrap()
            .is_none()
    );
    let listed = side
        .db
        .scans(TENANT, &ScanFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    let only_failed = side
        .db
        .scans(
            TENANT,
            &ScanFilter {
                status: Some("failed".into()),
                ..ScanFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(only_failed.items.len(), 1);
    assert_eq!(only_failed.items[0].id, failed.to_string());
    assert_eq!(
        only_failed.items[0].failure_reason.as_deref(),
        Some("connection refused")
    );
    // Cursor pagination walks both scans once.
    let page1 = side
        .db
        .scans(TENANT, &ScanFilter::default(), None, 1)
        .await
        .unwrap();
    let page2 = side
        .db
        .scans(
            TENANT,
            &ScanFilter::default(),
            page1.next_cursor.as_deref(),
            1,
        )
        .await
        .unwrap();
    assert_ne!(page1.items[0].id, page2.items[0].id);
    assert!(page2.next_cursor.is_none());

    // Findings, fingerprints, coverage.
    let csp = fingerprint_of(side, first, CSP).await;
    let git = fingerprint_of(side, first, GIT).await;
    fingerprint_of(side, first, CERT).await;
    let high = side
        .db
        .findings(
            TENANT,
            &first.to_string(),
            &FindingFilter {
                severity: Some(vantage_rules::Severity::High),
                ..FindingFilter::default()
            },
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(high.len(), 1);
    assert_eq!(high[0].finding.finding.fingerprint, git);
    let coverage = side
        .db
        .coverage(TENANT, &first.to_string(), Some("owasp-asvs"))
        .await
        .unwrap();
    let v14_4_3 = coverage[0]
        .coverage
        .controls
        .iter()
        .find(|c| c.control == "V14.4.3")
        .unwrap();
    assert_eq!(v14_4_3.failing, vec![csp.clone()]);

    // Notifications: a new high finding, an expiring certificate, a failed scan.
    let notes = side
        .db
        .notifications(TENANT, None, false, 50)
        .await
        .unwrap();
    let mut kinds: Vec<NotificationKind> = notes.iter().map(|n| n.kind).collect();
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        vec![
            NotificationKind::CertificateExpiring,
            NotificationKind::NewFinding,
            NotificationKind::ScanFailed
        ]
    );
    assert_eq!(side.db.unread_count(TENANT, None).await.unwrap(), 3);

    // Dashboard and command center: the git exposure comes first.
    let stats = side.db.stats(TENANT, None).await.unwrap();
    assert_eq!(stats.totals.scans_total, 2);
    assert_eq!(stats.totals.domains, 1);
    assert_eq!(stats.totals.scans_by_status["failed"], 1);
    let now = chrono::Utc::now();
    let week = |to: chrono::DateTime<chrono::Utc>| (to - chrono::Duration::days(7), to);
    let (from, to) = week(now + chrono::Duration::minutes(1));
    let center = side
        .db
        .command_center(TENANT, None, from, to)
        .await
        .unwrap();
    assert_eq!(center.top_priorities[0].fingerprint, git);
    let score_before = center.health_score;
    assert!(score_before < 100);
    // The period: the one completed scan and its findings, first seen now.
    assert_eq!(center.period.scans_completed, 1);
    assert!(center.period.new_findings.high >= 1, "{:?}", center.period);
    assert_eq!(
        center.period.new_findings, center.unresolved,
        "counted by severity: every finding so far is new in the period and unresolved"
    );
    let (from, to) = week(now - chrono::Duration::days(20));
    let past = side
        .db
        .command_center(TENANT, None, from, to)
        .await
        .unwrap();
    assert_eq!(past.period.scans_completed, 0);
    assert_eq!(past.period.new_findings.total(), 0);
    assert_eq!(past.health_score, score_before, "the health score is now's");

    // Triage and comments.
    triage(
        &pipeline,
        &git,
        TriageCommand::Set {
            fingerprint: Fingerprint::parse(&git).unwrap(),
            state: TriageState::AcceptedRisk,
            note: Some("internal mirror".into()),
        },
    )
    .await;
    let (c1, c2) = (
        CommentId(uuid::Uuid::now_v7()),
        CommentId(uuid::Uuid::now_v7()),
    );
    for (id, body) in [(c1, "first"), (c2, "second")] {
        triage(
            &pipeline,
            &git,
            TriageCommand::AddComment {
                fingerprint: Fingerprint::parse(&git).unwrap(),
                comment_id: id,
                body: body.into(),
            },
        )
        .await;
    }
    triage(
        &pipeline,
        &git,
        TriageCommand::DeleteComment {
            fingerprint: Fingerprint::parse(&git).unwrap(),
            comment_id: c1,
        },
    )
    .await;
    side.catch_up().await;
    let state = side
        .db
        .fingerprint(TENANT, &git, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.triage, TriageState::AcceptedRisk);
    assert_eq!(state.triage_actor.as_deref(), Some("key-analyst"));
    let comments = side.db.comments(TENANT, &git).await.unwrap();
    assert_eq!(comments.len(), 1);
    // What people write is sealed in the read models; it opens with the tenant's key.
    let vault = pipeline.vault();
    assert!(comments[0].body.starts_with(vantage_app::SEALED_PREFIX));
    assert_eq!(
        vault.open_text(TENANT, &comments[0].body).await.unwrap(),
        "second"
    );
    let note = state.triage_note.as_deref().unwrap();
    assert!(note.starts_with(vantage_app::SEALED_PREFIX));
    assert_eq!(
        vault.open_text(TENANT, note).await.unwrap(),
        "internal mirror"
    );
    let (from, to) = week(chrono::Utc::now() + chrono::Duration::minutes(1));
    let center = side
        .db
        .command_center(TENANT, None, from, to)
        .await
        .unwrap();
    assert!(
        center.health_score > score_before,
        "accepted risk is no longer a penalty"
    );
    assert!(center.top_priorities.iter().all(|f| f.fingerprint != git));

    // A fixed scan, then a regression.
    let second =
        history::scan_through_pipeline(&pipeline, TENANT, DOMAIN, &SiteState::default(), None)
            .await;
    let regressed = SiteState {
        csp: false,
        ..SiteState::default()
    };
    let third = history::scan_through_pipeline(&pipeline, TENANT, DOMAIN, &regressed, None).await;
    side.catch_up().await;
    let diff = side
        .db
        .diff(TENANT, &second.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(diff.previous_scan_id, Some(first.to_string()));
    assert!(diff.fixed.contains(&csp) && diff.fixed.contains(&git));
    assert!(diff.new.is_empty());
    let diff = side
        .db
        .diff(TENANT, &third.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(diff.new, vec![csp.clone()]);
    assert_eq!(diff.regressions, vec![csp.clone()]);
    assert!(
        side.db
            .notifications(TENANT, None, true, 50)
            .await
            .unwrap()
            .iter()
            .any(|n| n.kind == NotificationKind::Regression
                && n.fingerprint.as_deref() == Some(&csp))
    );
    let comparison = side
        .db
        .compare(TENANT, &first.to_string(), &second.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(comparison.fixed.len(), 3);
    assert!(comparison.new.is_empty());
    let state = side
        .db
        .fingerprint(TENANT, &csp, None)
        .await
        .unwrap()
        .unwrap();
    assert!(state.present);
    assert_eq!((state.times_seen, state.regressions), (2, 1));
    assert_eq!(state.first_scan_id, Some(first.to_string()));

    // Time travel: as the first scan left things.
    let then = Some(AsOf::Position(after_first));
    let old = side
        .db
        .fingerprint(TENANT, &git, then)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.triage, TriageState::Open);
    assert!(old.present);
    let latest_then = side
        .db
        .domain_latest(TENANT, DOMAIN, then)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest_then.scan_id, first.to_string());
    let latest_now = side
        .db
        .domain_latest(TENANT, DOMAIN, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest_now.scan_id, third.to_string());
    let before_third = side
        .db
        .findings(TENANT, &third.to_string(), &FindingFilter::default(), then)
        .await
        .unwrap()
        .unwrap();
    assert!(
        before_third.is_empty(),
        "the third scan had not completed then"
    );
    let git_then = side
        .db
        .findings(TENANT, &first.to_string(), &FindingFilter::default(), then)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        git_then
            .iter()
            .find(|f| f.finding.finding.fingerprint == git)
            .unwrap()
            .triage,
        TriageState::Open
    );
    // A time as_of resolves to the same position as the last audited event by then.
    let audit_then = side
        .db
        .audit(TENANT, 0, &AuditFilter::default(), then, 1000)
        .await
        .unwrap();
    let at = audit_then.last().unwrap().recorded_at;
    let by_time = side.db.resolve_as_of(TENANT, AsOf::Time(at)).await.unwrap();
    assert_eq!(by_time, audit_then.last().unwrap().position);

    // Audit trail: commands with actor and request id; no worker observations.
    let audit = side
        .db
        .audit(TENANT, 0, &AuditFilter::default(), None, 1000)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .all(|a| a.action != "ProbeObserved" && a.tenant == TENANT)
    );
    let requested = audit
        .iter()
        .find(|a| a.action == "ScanRequested" && a.target == first.to_string())
        .unwrap();
    assert_eq!(requested.actor, "key-test");
    assert_eq!(requested.request_id, Some(format!("req-{first}")));
    let triaged = side
        .db
        .audit(
            TENANT,
            0,
            &AuditFilter {
                action: Some("TriageSet".into()),
                ..AuditFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(triaged.len(), 1);
    assert_eq!(triaged[0].request_id.as_deref(), Some("req-triage"));

    // Trends: one tenant day with every completed scan.
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let trend = side.db.trends(TENANT, None, None, &day).await.unwrap();
    assert_eq!(trend.len(), 1);
    assert_eq!(trend[0].scans, 3);
    assert_eq!(trend[0].findings.medium, 1, "the latest scan's counts");

    // Notifications read: one, then all.
    let unread = side.db.unread_count(TENANT, None).await.unwrap();
    let one = side.db.notifications(TENANT, None, true, 1).await.unwrap()[0]
        .id
        .clone();
    let stream = StreamName::new(format!("notifications-{TENANT}")).unwrap();
    pipeline
        .execute::<Notifications>(
            &stream,
            &context(),
            NotificationCommand::MarkRead {
                notification_id: NotificationId(one.parse().unwrap()),
            },
        )
        .await
        .unwrap()
        .unwrap();
    side.catch_up().await;
    assert_eq!(
        side.db.unread_count(TENANT, None).await.unwrap(),
        unread - 1
    );
    let head = side.store.head_position().await.unwrap();
    pipeline
        .execute::<Notifications>(
            &stream,
            &context(),
            NotificationCommand::MarkAllRead {
                up_to_position: head,
            },
        )
        .await
        .unwrap()
        .unwrap();
    side.catch_up().await;
    assert_eq!(side.db.unread_count(TENANT, None).await.unwrap(), 0);
    assert!(
        side.db
            .notifications(TENANT, None, false, 50)
            .await
            .unwrap()
            .iter()
            .all(|n| n.read)
    );

    // Deleting a scan drops it from the read models (the log keeps it).
    let stream = StreamName::new(format!("scan-{second}")).unwrap();
    pipeline
        .execute::<Scan>(&stream, &context(), ScanCommand::Delete)
        .await
        .unwrap()
        .unwrap();
    side.catch_up().await;
    assert!(
        side.db
            .scan(TENANT, &second.to_string())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        side.db
            .findings(TENANT, &second.to_string(), &FindingFilter::default(), None)
            .await
            .unwrap()
            .is_none()
    );
    let history = side
        .db
        .domain_history(TENANT, DOMAIN, None, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = history.iter().map(|h| h.scan_id.as_str()).collect();
    assert_eq!(ids, vec![third.to_string(), first.to_string()]);
    let totals = side.db.stats(TENANT, None).await.unwrap().totals;
    assert_eq!(totals.scans_total, 3);
    assert_eq!(
        totals.domains, 1,
        "a domain is counted once, however often it is scanned"
    );
}

async fn webhooks_and_their_delivery_log_follow_the_webhook_streams(side: &ReadSide) {
    use vantage_domain::ids::{DeliveryId, WebhookId};
    use vantage_domain::webhook::{
        DeliveryOutcome, Webhook, WebhookCommand, WebhookDeliveryAttempted, WebhookUrl,
    };
    let pipeline = side.pipeline();
    let hook = WebhookId(uuid::Uuid::from_u128(0x77));
    let other = WebhookId(uuid::Uuid::from_u128(0x78));
    let stream = |id: WebhookId| StreamName::new(format!("webhook-{id}")).unwrap();
    let run = |id: WebhookId, command: WebhookCommand| {
        let pipeline = pipeline.clone();
        async move {
            pipeline
                .execute::<Webhook>(&stream(id), &context(), command)
                .await
                .unwrap()
                .unwrap();
        }
    };
    for id in [hook, other] {
        run(
            id,
            WebhookCommand::Create {
                webhook_id: id,
                tenant: TenantId::parse(TENANT).unwrap(),
                url: WebhookUrl::parse("https://hooks.example.com/vantage").unwrap(),
                events: vec!["scan.completed".into(), "scan.failed".into()],
                active: true,
                secret_sha256: "c".repeat(64),
                project: Default::default(),
            },
        )
        .await;
    }
    run(
        hook,
        WebhookCommand::Update {
            url: None,
            events: None,
            active: Some(false),
        },
    )
    .await;
    let delivery = |n: u128| DeliveryId(uuid::Uuid::from_u128(0x1000 + n));
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
        .unwrap()
        .to_utc();
    let attempts = [
        (delivery(1), 1, DeliveryOutcome::Retrying, Some(503)),
        (delivery(2), 1, DeliveryOutcome::Delivered, Some(200)),
        (delivery(1), 2, DeliveryOutcome::Failed, None),
    ];
    for (delivery_id, attempt, outcome, status_code) in attempts {
        run(
            hook,
            WebhookCommand::RecordDelivery(WebhookDeliveryAttempted {
                delivery_id,
                event_type: "scan.completed".into(),
                attempt,
                outcome,
                status_code,
                duration_ms: 40,
                error: status_code.is_none().then(|| "connection refused".into()),
                next_attempt_at: (outcome == DeliveryOutcome::Retrying).then_some(at),
            }),
        )
        .await;
    }
    side.catch_up().await;

    let tenant_hooks = side.db.webhooks(TENANT).await.unwrap();
    assert_eq!(tenant_hooks.len(), 2);
    let first = &tenant_hooks[0];
    assert_eq!(first.id, hook.to_string());
    assert!(!first.active, "the update deactivated it");
    assert_eq!(first.events, vec!["scan.completed", "scan.failed"]);
    assert!(side.db.webhooks("other-tenant").await.unwrap().is_empty());
    assert!(
        side.db
            .webhook("other-tenant", &hook.to_string())
            .await
            .unwrap()
            .is_none()
    );

    // Most recently attempted first; one row per delivery with every attempt.
    let log = side
        .db
        .deliveries(TENANT, &hook.to_string(), None, 50)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<String> = log.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids, vec![delivery(1).to_string(), delivery(2).to_string()]);
    let retried = &log[0];
    assert_eq!(retried.status, DeliveryOutcome::Failed);
    assert_eq!(retried.attempts.len(), 2);
    assert_eq!(retried.attempts[0].status_code, Some(503));
    assert_eq!(
        retried.attempts[1].error.as_deref(),
        Some("connection refused")
    );
    assert_eq!(retried.next_attempt_at, None);
    assert_eq!(log[1].status, DeliveryOutcome::Delivered);
    // Paging: before the newest delivery's position only the older one is left.
    let older = side
        .db
        .deliveries(TENANT, &hook.to_string(), Some(retried.position), 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(older.len(), 1);
    assert!(
        side.db
            .deliveries(TENANT, &other.to_string(), None, 50)
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    // Delivery attempts are the engine's work, not commands: the audit trail leaves them out.
    let audited = side
        .db
        .audit(TENANT, 0, &AuditFilter::default(), None, 100)
        .await
        .unwrap();
    assert!(
        audited
            .iter()
            .all(|a| a.action != "WebhookDeliveryAttempted")
    );
    assert!(audited.iter().any(|a| a.action == "WebhookUpdated"));

    // Deleting a webhook drops it and its delivery log; another webhook's rows stay.
    run(hook, WebhookCommand::Delete).await;
    side.catch_up().await;
    assert!(
        side.db
            .deliveries(TENANT, &hook.to_string(), None, 50)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(side.db.webhooks(TENANT).await.unwrap().len(), 1);
}

async fn one_pass_rebuilds_every_projector_and_resumes_a_half_done_one(side: &ReadSide) {
    history::append_history(side.store.as_ref(), TENANT, 4, 1_500, 1).await;
    side.settle().await;
    // A rebuild of `scans` alone stops half-way: the one-pass rebuild resumes it from there while
    // the other projectors start from zero.
    let half = side.store.head_position().await.unwrap() / 2;
    let mut scans = projector("scans", side.store.clone()).unwrap();
    let pause = RebuildOptions {
        pause_at: Some(half),
        ..RebuildOptions::default()
    };
    runtime::rebuild(scans.as_mut(), side.store.clone(), &side.db, pause)
        .await
        .unwrap();
    assert_eq!(side.db.checkpoint("scans__shadow").await.unwrap(), half);
    let all = vantage_projections::projectors(side.store.clone());
    let head = side.store.head_position().await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let options = RebuildOptions {
        progress: Some(Arc::new(move |position, _| {
            record.lock().unwrap().push(position)
        })),
        ..RebuildOptions::default()
    };
    let swapped = runtime::rebuild_all(all, side.store.clone(), &side.db, options)
        .await
        .unwrap();
    assert_eq!(swapped, vec![head; vantage_projections::PROJECTORS.len()]);
    assert!(
        seen.lock().unwrap().last().is_some_and(|p| *p == head),
        "progress reported"
    );
    for name in vantage_projections::PROJECTORS {
        assert_eq!(side.db.checkpoint(name).await.unwrap(), head);
        assert_eq!(
            side.db
                .checkpoint(&format!("{name}__shadow"))
                .await
                .unwrap(),
            0
        );
    }
    // Equal to projecting live from zero.
    assert_eq!(
        digests(&side.db, &side.store).await,
        digests_projected_live(&side.store).await
    );
}

/// The one-pass rebuild applies each batch while the previous one is written, reading what that
/// batch left before the database; a batch that deletes a scan (a statement on the tables) is
/// applied again inside its transaction. In batches of 100 events, with a deletion mid-log and
/// batches after it, the result equals projecting live from zero.
async fn a_pipelined_rebuild_in_small_batches_through_a_deletion_equals_projecting_live(
    side: &ReadSide,
) {
    let pipeline = side.pipeline();
    history::append_history(side.store.as_ref(), TENANT, 4, 1_500, 1).await;
    let state = SiteState::default();
    let deleted = history::scan_through_pipeline(&pipeline, TENANT, DOMAIN, &state, None).await;
    let stream = StreamName::new(format!("scan-{deleted}")).unwrap();
    pipeline
        .execute::<Scan>(&stream, &context(), ScanCommand::Delete)
        .await
        .unwrap()
        .unwrap();
    let kept = history::scan_through_pipeline(&pipeline, TENANT, DOMAIN, &state, None).await;
    side.settle().await;
    let head = side.store.head_position().await.unwrap();
    let options = RebuildOptions {
        batch_size: Some(100),
        ..RebuildOptions::default()
    };
    let all = vantage_projections::projectors(side.store.clone());
    let swapped = runtime::rebuild_all(all, side.store.clone(), &side.db, options)
        .await
        .unwrap();
    assert_eq!(swapped, vec![head; vantage_projections::PROJECTORS.len()]);
    assert!(
        side.db
            .scan(TENANT, &deleted.to_string())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        side.db
            .scan(TENANT, &kept.to_string())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        digests(&side.db, &side.store).await,
        digests_projected_live(&side.store).await
    );
}

/// The digests of every read model projected live from zero into a fresh SQLite database.
async fn digests_projected_live(store: &Arc<dyn EventStore>) -> Vec<(String, u64, String)> {
    let dir = tempfile::tempdir().unwrap();
    let clean = ReadDb::open_sqlite(&dir.path().join("clean.db"))
        .await
        .unwrap();
    migrate(&clean).await.unwrap();
    catch_up(store, &clean).await;
    digests(&clean, store).await
}

async fn digests(db: &ReadDb, store: &Arc<dyn EventStore>) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    for name in vantage_projections::PROJECTORS {
        let d = vantage_projections::replay::digest(db, name, store.clone())
            .await
            .unwrap();
        out.push((d.projector, d.rows, d.digest));
    }
    out
}

async fn a_batch_that_dies_before_commit_leaves_no_trace_and_a_restart_equals_a_clean_rebuild(
    side: &ReadSide,
) {
    let written = history::append_history(side.store.as_ref(), TENANT, 6, 3_000, 2).await;
    side.settle().await;
    let head = side.store.head_position().await.unwrap();
    assert!(written >= 3_000 && head as usize >= written);
    // Run the scans projector in batches of 100 and kill the batch that would pass the middle.
    let crash_at = head / 2;
    let mut scans = projector("scans", side.store.clone()).unwrap();
    let (_tx, stop) = watch::channel(false);
    let crashing = RunOptions {
        until: Until::CaughtUp,
        batch_size: 100,
        fail_before_commit_past: Some(crash_at),
        ..RunOptions::default()
    };
    let crashed = runtime::run(
        scans.as_mut(),
        side.store.clone(),
        &side.db,
        &crashing,
        stop.clone(),
    )
    .await;
    assert!(
        matches!(crashed, Err(ProjectionError::Injected)),
        "{crashed:?}"
    );
    let stopped_at = side.db.checkpoint("scans").await.unwrap();
    assert!(stopped_at <= crash_at && stopped_at > crash_at.saturating_sub(100));
    // A new process (a fresh projector: no memory of the dead one) carries on from the checkpoint.
    side.catch_up().await;
    assert_eq!(side.db.checkpoint("scans").await.unwrap(), head);
    // The result equals a clean rebuild from zero, row for row.
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = ReadDb::open_sqlite(&clean_dir.path().join("clean.db"))
        .await
        .unwrap();
    migrate(&clean).await.unwrap();
    catch_up(&side.store, &clean).await;
    assert_eq!(
        digests(&side.db, &side.store).await,
        digests(&clean, &side.store).await
    );
    // And replay says so too.
    let results =
        vantage_projections::replay::replay(side.store.clone(), &side.db, clean_dir.path(), None)
            .await
            .unwrap();
    assert!(results.iter().all(|r| r.matches()), "{results:?}");
}

async fn a_shadow_rebuild_swaps_in_equal_tables_while_queries_keep_answering(side: &ReadSide) {
    history::append_history(side.store.as_ref(), TENANT, 4, 1_500, 1).await;
    side.catch_up().await;
    let before = digests(&side.db, &side.store).await;
    let latest = side
        .db
        .domain_latest(TENANT, "site0.example.com", None)
        .await
        .unwrap()
        .unwrap();
    // A rebuild that stops half-way leaves the live tables answering and resumes later.
    let mut scans = projector("scans", side.store.clone()).unwrap();
    let half = side.store.head_position().await.unwrap() / 2;
    let paused = runtime::rebuild(
        scans.as_mut(),
        side.store.clone(),
        &side.db,
        RebuildOptions {
            pause_at: Some(half),
            ..RebuildOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(paused, half);
    assert_eq!(
        side.db
            .domain_latest(TENANT, "site0.example.com", None)
            .await
            .unwrap()
            .unwrap(),
        latest,
        "queries answer from the live tables during a rebuild"
    );
    assert!(side.db.checkpoint("scans__shadow").await.unwrap() > 0);
    // More history arrives; the resumed rebuild catches up with it and swaps in.
    history::append_history(side.store.as_ref(), TENANT, 2, 200, 0).await;
    side.settle().await;
    for name in vantage_projections::PROJECTORS {
        let mut p = projector(name, side.store.clone()).unwrap();
        let reached = runtime::rebuild(
            p.as_mut(),
            side.store.clone(),
            &side.db,
            RebuildOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(reached, side.store.head_position().await.unwrap());
    }
    assert_eq!(
        side.db.checkpoint("scans__shadow").await.unwrap(),
        0,
        "shadow checkpoint removed"
    );
    side.catch_up().await;
    let after = digests(&side.db, &side.store).await;
    assert_ne!(before, after, "the new history is in");
    // Equal to projecting live from zero.
    assert_eq!(after, digests_projected_live(&side.store).await);
    // Indexes exist again under their live names: a second rebuild works.
    let mut audit = projector("audit", side.store.clone()).unwrap();
    let restart = RebuildOptions {
        restart: true,
        ..RebuildOptions::default()
    };
    runtime::rebuild(audit.as_mut(), side.store.clone(), &side.db, restart)
        .await
        .unwrap();
    assert_eq!(digests(&side.db, &side.store).await, after);
}

/// `replay` over a log of more than 100,000 events proves equality, and catches one altered row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_a_100k_event_log_matches_and_catches_one_altered_row() {
    let side = ReadSide::sqlite().await;
    let written = history::append_history(side.store.as_ref(), TENANT, 50, 100_000, 30).await;
    assert!(written >= 100_000);
    side.catch_up().await;
    let dir = tempfile::tempdir().unwrap();
    let results =
        vantage_projections::replay::replay(side.store.clone(), &side.db, dir.path(), None)
            .await
            .unwrap();
    assert!(results.iter().all(|r| r.matches()), "{results:?}");
    let head = side.store.head_position().await.unwrap();
    assert!(results.iter().all(|r| r.live.position == head));
    // Alter one read-model row: the score of one scan.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        side._dir.path().join("readmodels.db").display()
    ))
    .await
    .unwrap();
    let changed = sqlx::query(
        "UPDATE rm_scans SET doc = replace(doc, '\"score\":', '\"score\":1') \
         WHERE scan_id = (SELECT MIN(scan_id) FROM rm_scans)",
    )
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1);
    pool.close().await;
    let dir = tempfile::tempdir().unwrap();
    let results =
        vantage_projections::replay::replay(side.store.clone(), &side.db, dir.path(), None)
            .await
            .unwrap();
    let scans = results
        .iter()
        .find(|r| r.live.projector == "scans")
        .unwrap();
    assert!(!scans.matches(), "an altered row must be caught");
    assert!(
        results
            .iter()
            .find(|r| r.live.projector == "audit")
            .unwrap()
            .matches()
    );
}

/// Two stores in two schemas of one PostgreSQL database each run their own projectors: the leases
/// (advisory locks, which are database-wide) are keyed by schema, so neither stands by for the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_projectors_of_two_schemas_run_side_by_side() {
    let sides = [ReadSide::postgres().await, ReadSide::postgres().await];
    let board = vantage_projections::StatusBoard::default();
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for side in &sides {
        tasks.extend(vantage_projections::start(
            side.store.clone(),
            side.db.clone(),
            board.clone(),
            stopped.clone(),
        ));
        history::scan_through_pipeline(
            &side.pipeline(),
            TENANT,
            DOMAIN,
            &SiteState::default(),
            None,
        )
        .await;
        side.settle().await;
    }
    // Within 15 s each, though a standby would wait for the other schema's runner forever.
    for side in &sides {
        vantage_tests::projectors_caught_up(
            side.store.as_ref(),
            &side.db,
            std::time::Duration::from_secs(15),
        )
        .await;
    }
    let _ = stop.send(true);
    for task in tasks {
        task.await.unwrap();
    }
    for side in sides {
        side.finish().await;
    }
}

/// A release that changes a projector's tables (a new column or index) drops them and rebuilds
/// them from the log at the next migration; other projectors keep theirs and their checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_whose_tables_changed_shape_is_rebuilt_from_the_log() {
    let side = ReadSide::sqlite().await;
    history::append_history(side.store.as_ref(), TENANT, 3, 300, 2).await;
    side.catch_up().await;
    let before = side
        .db
        .scans(TENANT, &ScanFilter::default(), None, 100)
        .await
        .unwrap();
    assert!(!before.items.is_empty());
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        side._dir.path().join("readmodels.db").display()
    ))
    .await
    .unwrap();
    let checkpoint = |name: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT position FROM rm_checkpoints WHERE name = ?")
                .bind(name)
                .fetch_optional(&pool)
                .await
                .unwrap()
        }
    };
    let audit_at = checkpoint("audit").await.unwrap();
    assert!(audit_at > 0 && checkpoint("scans").await.is_some());
    // As an older release left it: another shape recorded for the scans projector.
    sqlx::query("UPDATE rm_shapes SET shape = 'CREATE TABLE rm_scans (scan_id TEXT)' WHERE projector = 'scans'")
        .execute(&pool)
        .await
        .unwrap();
    migrate(&side.db).await.unwrap();
    assert_eq!(
        checkpoint("scans").await,
        None,
        "the scans projector starts over"
    );
    assert_eq!(
        checkpoint("audit").await,
        Some(audit_at),
        "the others keep theirs"
    );
    let emptied = side
        .db
        .scans(TENANT, &ScanFilter::default(), None, 100)
        .await
        .unwrap();
    assert!(emptied.items.is_empty(), "its tables were dropped");
    // Migrating again with the same shape changes nothing; catching up rebuilds the same rows.
    side.catch_up().await;
    migrate(&side.db).await.unwrap();
    let after = side
        .db
        .scans(TENANT, &ScanFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(after, before);
    pool.close().await;
}
