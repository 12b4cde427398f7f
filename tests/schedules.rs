//! Scheduled scans: replicas racing on one due slot start one scan, a later slot starts another,
//! and the schedules read model lists what the API created; on both stores.

use chrono::{TimeDelta, Utc};
use serde_json::json;
use vantage_app::SlotOutcome;
use vantage_tests::TestApp;
use vantage_tests::process::eventually;

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
    let list = || async {
        app.client
            .get(app.url("/api/v1/schedules"))
            .bearer_auth(&app.admin_key)
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
    let listed = list().await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert_eq!(listed["items"][0]["spec"]["trigger"], "scheduled");
    assert!(listed["items"][0]["next_run_at"].is_string());

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
