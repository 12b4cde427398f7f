//! Scheduled scans: replicas racing on one due slot start one scan, a later slot starts another,
//! and the schedules read model lists what the API created; on both stores. Then the real thing: a
//! schedule due every minute, served by two `vantage serve` processes on PostgreSQL and NATS, one of
//! them killed between slots, starts exactly one scan per slot.

use chrono::{TimeDelta, Utc};
use serde_json::json;
use vantage_app::SlotOutcome;
use vantage_store::EventStore;
use vantage_tests::TestApp;
use vantage_tests::process::{Deployment, eventually, eventually_within};

/// Longer than a slot of a schedule due every minute.
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(90);

/// The one schedule `GET url` lists, once the list holds exactly one.
async fn the_one_schedule(client: &reqwest::Client, url: &str, key: &str) -> serde_json::Value {
    let list = || async {
        client
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    eventually("the schedule is listed", || async {
        list().await["items"]
            .as_array()
            .is_some_and(|i| i.len() == 1)
    })
    .await;
    list().await["items"][0].clone()
}

async fn one_scan_per_slot(app: TestApp) {
    let created = app
        .client
        .post(app.url("/api/v1/schedules"))
        .bearer_auth(&app.admin_key)
        .json(
            &json!({ "target": "example.com", "cron": "*/5 * * * *", "timezone": "Europe/Paris" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = app
        .client
        .post(app.url("/api/v1/schedules"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "target": "example.com", "interval_seconds": 3600, "cron": "* * * * *" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422, "one cadence, not two");
    let listed = the_one_schedule(&app.client, &app.url("/api/v1/schedules"), &app.admin_key).await;
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["spec"]["trigger"], "scheduled");
    assert!(listed["next_run_at"].is_string());

    let doc = app
        .stores
        .read
        .schedule("default", &id)
        .await
        .unwrap()
        .unwrap();
    let slot = doc.created_at + TimeDelta::minutes(10);
    // Two replicas find the same slot due at once: one scan.
    let (a, b) = tokio::join!(
        app.services.start_scheduled_scan(&doc.schedule, slot),
        app.services.start_scheduled_scan(&doc.schedule, slot),
    );
    let outcomes = [a.unwrap().unwrap(), b.unwrap().unwrap()];
    let started: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, SlotOutcome::Started(_)))
        .collect();
    assert_eq!(started.len(), 1, "{outcomes:?}");
    let SlotOutcome::Started(scan) = started[0] else {
        unreachable!()
    };
    assert_eq!(
        *scan,
        vantage_app::scheduled_scan_id(doc.schedule.schedule_id, slot)
    );
    // The same slot later again: nothing new; the next slot: a new scan.
    assert!(matches!(
        app.services
            .start_scheduled_scan(&doc.schedule, slot)
            .await
            .unwrap()
            .unwrap(),
        SlotOutcome::AlreadyStarted(_)
    ));
    let next = slot + TimeDelta::minutes(5);
    let SlotOutcome::Started(second) = app
        .services
        .start_scheduled_scan(&doc.schedule, next)
        .await
        .unwrap()
        .unwrap()
    else {
        panic!("the next slot starts a scan")
    };
    assert_ne!(second, *scan);
    let view = app
        .services
        .scan(&vantage_domain::tenant::TenantId::default_tenant(), *scan)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view.spec.trigger,
        vantage_domain::target::Trigger::Scheduled
    );
    // No slot is ever before the schedule existed.
    assert!(
        doc.schedule
            .latest_slot(doc.created_at, Utc::now() + TimeDelta::hours(1))
            .is_some_and(|s| s > doc.created_at)
    );

    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/schedules/{id}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_replicas_start_one_scan_per_slot() {
    let t = vantage_tests::SqliteTestStore::new().await;
    one_scan_per_slot(TestApp::spawn(t.app_stores().await).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_start_one_scan_per_slot() {
    let t = vantage_tests::PgTestStore::new().await;
    one_scan_per_slot(TestApp::spawn(t.app_stores().await).await).await;
    t.drop_schema().await;
}

/// The scan ids of every `ScanRequested` in the log with trigger `scheduled`, in log order.
async fn scheduled_scans(log: &dyn EventStore) -> Vec<String> {
    log.read_all(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.event_type == "ScanRequested")
        .map(|e| e.event.payload.to_value().unwrap())
        .filter(|p| p["trigger"] == "scheduled")
        .map(|p| p["scan_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_replicas_start_one_scan_per_minute_slot() {
    let deployment = Deployment::new().await;
    let logs = tempfile::tempdir().unwrap();
    let log_of = |name: &str| logs.path().join(format!("{name}.log"));
    let poll = ["--scheduler-poll-ms", "200"];
    let a = deployment
        .serve(&poll, "info", std::fs::File::create(log_of("a")).unwrap())
        .await;
    let b = deployment
        .serve(&poll, "info", std::fs::File::create(log_of("b")).unwrap())
        .await;
    let log = vantage_store_postgres::PgEventStore::connect(
        vantage_store_postgres::PgStoreOptions::new(deployment.db.url.clone()),
    )
    .await
    .unwrap();
    let client = vantage_tests::http_client();
    let created = client
        .post(b.url("/api/v1/schedules"))
        .bearer_auth(&deployment.admin)
        .json(&json!({ "target": "127.0.0.1", "cron": "* * * * *", "timezone": "UTC" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let schedule: vantage_domain::ids::ScheduleId =
        serde_json::from_value(created["id"].clone()).unwrap();
    let listed = the_one_schedule(&client, &a.url("/api/v1/schedules"), &deployment.admin).await;
    let created_at: chrono::DateTime<Utc> =
        serde_json::from_value(listed["created_at"].clone()).unwrap();
    let minute = |n: i64| {
        let first = created_at.timestamp().div_euclid(60) * 60 + 60 * n;
        vantage_app::scheduled_scan_id(
            schedule,
            chrono::DateTime::from_timestamp(first, 0).unwrap(),
        )
        .to_string()
    };
    let took_scheduler = |name: &str| {
        std::fs::read_to_string(log_of(name))
            .unwrap()
            .lines()
            .filter(|l| l.contains("took the lease") && l.contains("scheduler"))
            .count()
    };

    // The first slot (up to a minute away): one scan, whichever replica's scheduler saw it.
    eventually_within("the first slot's scan starts", SLOT_WAIT, || async {
        !scheduled_scans(&log).await.is_empty()
    })
    .await;
    assert_eq!(scheduled_scans(&log).await, [minute(1)]);

    // The replica holding the scheduler dies; the other takes the lease over and starts the next
    // slot, once.
    let (holder, (other, other_name)) = match (took_scheduler("a"), took_scheduler("b")) {
        (1, 0) => (a, (b, "b")),
        (0, 1) => (b, (a, "a")),
        taken => panic!("one replica takes the scheduler lease, got {taken:?}"),
    };
    drop(holder);
    eventually_within("the next slot's scan starts", SLOT_WAIT, || async {
        scheduled_scans(&log).await.len() >= 2
    })
    .await;
    assert_eq!(took_scheduler(other_name), 1, "the other replica took over");
    // A few more scheduler passes see both slots already started.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(scheduled_scans(&log).await, [minute(1), minute(2)]);
    drop(log);
    other.stop().await;
    deployment.drop().await;
}
