//! A finding triaged `fixed` that the next scan sees again is reopened by an event — a `TriageSet`
//! by the system actor, reason `regressed`, naming the scan — so the triage stream, the read models
//! and the audit trail agree on why it is open again. Through the real API and in-process workers
//! against the lab, on both stores.

use std::time::Duration;

use serde_json::{Value, json};
use vantage_tests::TestApp;
use vantage_tests::lab::{Lab, Posture};

/// The audit entries of `TriageSet` events on `fingerprint`.
async fn triage_audit(app: &TestApp, fingerprint: &str) -> Vec<Value> {
    let audit = app.get_json("/api/v1/audit/events?action=TriageSet").await;
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["target"]
                .as_str()
                .is_some_and(|t| t.contains(fingerprint))
        })
        .cloned()
        .collect()
}

async fn a_regression_of_a_fixed_finding_is_reopened_by_an_event(app: TestApp, lab: Lab) {
    let target = lab.site(Posture::WeakCsp).name();
    let first = app.completed_scan(target, "manual").await;
    app.caught_up().await;
    let findings = app
        .get_json(&format!("/api/v1/scans/{first}/findings"))
        .await;
    let fingerprint = findings["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "csp.script-unsafe-inline")
        .expect("the weak policy is found")["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let marked = app
        .client
        .patch(app.url(&format!("/api/v1/findings/{fingerprint}/state")))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "state": "fixed", "note": "policy tightened" }))
        .send()
        .await
        .unwrap();
    assert!(marked.status().is_success(), "{}", marked.status());
    app.caught_up().await;
    let state = app
        .get_json(&format!("/api/v1/findings/{fingerprint}"))
        .await;
    assert_eq!(state["triage"], "fixed");

    // The site did not change: the next scan sees the finding again.
    let second = app.completed_scan(target, "manual").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let state = loop {
        app.caught_up().await;
        let state = app
            .get_json(&format!("/api/v1/findings/{fingerprint}"))
            .await;
        if state["triage"] == "open" {
            break state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the regression was not reopened: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state["triage_actor"], "system", "{state}");
    assert_eq!(state["triage_reason"], "regressed", "{state}");
    assert_eq!(state["regressions"], 1, "{state}");

    // The audit trail shows the system's event, with the scan that saw the finding again.
    let entries = triage_audit(&app, &fingerprint).await;
    assert_eq!(
        entries.len(),
        2,
        "the user's decision and the reopening: {entries:?}"
    );
    let reopened = entries
        .iter()
        .find(|e| e["actor"] == "system")
        .expect("the reopening is the system's");
    assert_eq!(reopened["details"]["reason"], "regressed");
    assert_eq!(reopened["details"]["previous"], "fixed");
    assert_eq!(reopened["details"]["state"], "open");
    assert_eq!(reopened["details"]["scan_id"], second);
    let decided = entries.iter().find(|e| e["actor"] != "system").unwrap();
    assert_eq!(decided["details"]["reason"], "decision");

    // A third scan sees it again, but it is open already: nothing more is appended.
    app.completed_scan(target, "manual").await;
    app.caught_up().await;
    tokio::time::sleep(vantage_app::REOPEN_POLL * 2).await;
    app.caught_up().await;
    assert_eq!(
        triage_audit(&app, &fingerprint).await.len(),
        2,
        "an open finding is not reopened again"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_regression_of_a_fixed_finding_is_reopened_by_an_event() {
    let lab = Lab::start_with(&[Posture::WeakCsp]).await;
    let t = vantage_tests::SqliteTestStore::new().await;
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    a_regression_of_a_fixed_finding_is_reopened_by_an_event(app, lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_regression_of_a_fixed_finding_is_reopened_by_an_event() {
    let lab = Lab::start_with(&[Posture::WeakCsp]).await;
    let t = vantage_tests::PgTestStore::new().await;
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    a_regression_of_a_fixed_finding_is_reopened_by_an_event(app, lab).await;
    t.drop_schema().await;
}
