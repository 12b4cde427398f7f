//! Fifty clients racing on the same streams through the real API: cancels of one scan against the
//! worker completing it, triage decisions and comments on one finding. Every answer is a success
//! or a 409, never a 5xx; the log holds exactly what was acknowledged (no lost update, nothing
//! applied twice), the scan ends exactly once, and the read models agree with the log.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vantage_app::CommandContext;
use vantage_domain::scan::ScanCommand;
use vantage_domain::tenant::TenantId;
use vantage_store::StreamName;
use vantage_tests::TestApp;
use vantage_tests::history::{self, SiteState};

const CANCELLERS: usize = 16;
const TRIAGERS: usize = 17;
const COMMENTERS: usize = 16;

/// What one racer was told.
#[derive(Debug)]
enum Answer {
    Cancel(StatusCode),
    Triage(StatusCode, String),
    Comment(StatusCode, String),
    Worker(bool),
}

fn acknowledged(status: StatusCode, what: &str, body: &Value) -> bool {
    match status {
        s if s.is_success() => true,
        StatusCode::CONFLICT => false,
        other => panic!("{what} answered {other}: {body}"),
    }
}

async fn fifty_clients_race_on_one_scan_and_one_finding(app: TestApp) {
    let tenant = TenantId::default_tenant();
    // A completed scan with a CSP finding to triage and comment on.
    let broken = SiteState {
        csp: false,
        ..SiteState::default()
    };
    let done = history::scan_through_pipeline(
        &app.services.pipeline,
        "default",
        "race.example.com",
        &broken,
        None,
    )
    .await;
    app.caught_up().await;
    let findings = app
        .get_json(&format!("/api/v1/scans/{done}/findings"))
        .await;
    let fingerprint = findings["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "http.csp-missing")
        .unwrap_or_else(|| panic!("no CSP finding in {findings}"))["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    // A scan a worker has begun, to be cancelled by some while the worker completes it.
    let created = app
        .client
        .post(app.url("/api/v1/scans"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "target": "https://example.com", "ports": [443] }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::ACCEPTED);
    let scan: Value = created.json().await.unwrap();
    let scan_id: vantage_domain::ids::ScanId = serde_json::from_value(scan["id"].clone()).unwrap();
    let worker = CommandContext {
        actor: "worker-race".into(),
        ..CommandContext::system(tenant.clone())
    };
    app.services
        .command_scan(
            &worker,
            scan_id,
            ScanCommand::Begin {
                worker_id: "worker-race".into(),
            },
        )
        .await
        .unwrap()
        .unwrap();

    let start = std::sync::Arc::new(tokio::sync::Barrier::new(
        CANCELLERS + TRIAGERS + COMMENTERS + 1,
    ));
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..CANCELLERS {
        let (client, url, key, start) = (
            app.client.clone(),
            app.url(&format!("/api/v1/scans/{scan_id}/cancel")),
            app.admin_key.clone(),
            start.clone(),
        );
        racers.spawn(async move {
            start.wait().await;
            let response = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({ "reason": format!("racer {i}") }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            acknowledged(status, "cancel", &body);
            Answer::Cancel(status)
        });
    }
    let states = ["acknowledged", "accepted_risk", "false_positive", "fixed"];
    for i in 0..TRIAGERS {
        let (client, url, key, start) = (
            app.client.clone(),
            app.url(&format!("/api/v1/findings/{fingerprint}/state")),
            app.admin_key.clone(),
            start.clone(),
        );
        let note = format!("decision {i}");
        racers.spawn(async move {
            start.wait().await;
            let response = client
                .patch(url)
                .bearer_auth(key)
                .json(&json!({ "state": states[i % states.len()], "note": note }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            acknowledged(status, "triage", &body);
            Answer::Triage(status, note)
        });
    }
    for i in 0..COMMENTERS {
        let (client, url, key, start) = (
            app.client.clone(),
            app.url(&format!("/api/v1/findings/{fingerprint}/comments")),
            app.admin_key.clone(),
            start.clone(),
        );
        let text = format!("comment {i}");
        racers.spawn(async move {
            start.wait().await;
            let response = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({ "body": text }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            acknowledged(status, "comment", &body);
            Answer::Comment(status, text)
        });
    }
    {
        let (services, worker, start) = (app.services.clone(), worker.clone(), start.clone());
        racers.spawn(async move {
            start.wait().await;
            let finalized = services
                .command_scan(&worker, scan_id, ScanCommand::Finalize)
                .await
                .expect("the log answers");
            let completed = match finalized {
                Ok(()) => services
                    .command_scan(
                        &worker,
                        scan_id,
                        ScanCommand::Complete {
                            ruleset_version: vantage_rules::RULESET_VERSION.into(),
                        },
                    )
                    .await
                    .expect("the log answers")
                    .is_ok(),
                Err(_) => false,
            };
            Answer::Worker(completed)
        });
    }
    let mut cancels_ok = 0;
    let mut worker_completed = false;
    let mut triaged = BTreeSet::new();
    let mut commented = BTreeSet::new();
    while let Some(answer) = racers.join_next().await {
        match answer.unwrap() {
            Answer::Cancel(status) => cancels_ok += usize::from(status.is_success()),
            Answer::Triage(status, note) if status.is_success() => {
                triaged.insert(note);
            }
            Answer::Comment(status, text) if status.is_success() => {
                commented.insert(text);
            }
            Answer::Worker(completed) => worker_completed = completed,
            Answer::Triage(..) | Answer::Comment(..) => {}
        }
    }

    // The scan ended exactly once: by one cancel or by the worker, never both, nothing after.
    let store = app.services.store();
    let scan_events = store
        .read_stream(&vantage_app::scan_stream(scan_id))
        .await
        .unwrap();
    let types: Vec<&str> = scan_events.iter().map(|e| e.event_type.as_str()).collect();
    let terminal: Vec<usize> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(**t, "ScanCompleted" | "ScanCancelled" | "ScanFailed"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(terminal.len(), 1, "{types:?}");
    assert_eq!(
        terminal[0],
        types.len() - 1,
        "nothing after the end: {types:?}"
    );
    if worker_completed {
        assert_eq!(
            cancels_ok, 0,
            "a cancel acknowledged after completion: {types:?}"
        );
        assert_eq!(types.last(), Some(&"ScanCompleted"));
    } else {
        assert_eq!(cancels_ok, 1, "exactly one cancel wins: {types:?}");
        assert_eq!(types.last(), Some(&"ScanCancelled"));
    }

    // Every acknowledged triage decision and comment is in the log once, and nothing else is.
    let triage_stream = StreamName::new(format!("triage-default-{fingerprint}")).unwrap();
    let triage_events = store.read_stream(&triage_stream).await.unwrap();
    let count = |kind: &str| {
        triage_events
            .iter()
            .filter(|e| e.event_type == kind)
            .count()
    };
    assert_eq!(count("TriageSet"), triaged.len());
    assert_eq!(count("CommentAdded"), commented.len());
    assert!(
        triaged.len() * 2 > TRIAGERS && commented.len() * 2 > COMMENTERS,
        "most racers get through with retries: {} triaged, {} commented",
        triaged.len(),
        commented.len()
    );

    // The read models agree with the log: the last decision recorded is the one shown, and the
    // comments are exactly the acknowledged ones.
    app.caught_up().await;
    let last_state = triage_events
        .iter()
        .rev()
        .find(|e| e.event_type == "TriageSet")
        .map(|e| e.payload.to_value().unwrap()["state"].clone())
        .expect("at least one decision");
    let doc = app
        .get_json(&format!("/api/v1/findings/{fingerprint}"))
        .await;
    assert_eq!(doc["triage"], last_state, "{doc}");
    let note = doc["triage_note"].as_str().unwrap().to_owned();
    assert!(triaged.contains(&note), "{note} was not acknowledged");
    let comments = app
        .get_json(&format!("/api/v1/findings/{fingerprint}/comments"))
        .await;
    let shown: BTreeSet<String> = comments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, commented);
    let status = app.get_json(&format!("/api/v1/scans/{scan_id}")).await;
    let expected = if worker_completed {
        "completed"
    } else {
        "cancelled"
    };
    assert_eq!(status["status"], expected, "{status}");
    app.assert_replay_matches().await;
}

vantage_tests::app_test_per_store!(spawn_unthrottled;
    fifty_clients_race_on_one_scan_and_one_finding,
);
