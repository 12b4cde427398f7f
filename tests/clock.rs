//! The wall clock stepped back two hours under a running server: new events are never dated before
//! older ones (the scan list keeps its order), an idempotency key still replays its first answer,
//! and a rotated key's grace period ends when it should in real time, not two hours later.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vantage_tests::TestApp;

const SCAN: &str = r#"{ "target": "https://example.com", "ports": [443] }"#;

/// A scan created under a fixed idempotency key (`TestApp::call` makes a fresh key per call).
async fn create_scan_once(app: &TestApp, idempotency_key: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/scans"))
        .bearer_auth(&app.admin_key)
        .header("Idempotency-Key", idempotency_key)
        .header("content-type", "application/json")
        .body(SCAN)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

async fn a_clock_stepped_back_changes_no_order_window_or_expiry(app: TestApp) {
    let (status, first) = create_scan_once(&app, "before-the-step").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    // A key rotated with a 3 s grace period for its old secret, just before the step.
    let (status, issued) = app
        .call(
            Method::POST,
            "/api/v1/keys",
            &app.admin_key,
            Some(json!({ "name": "clock", "scopes": ["scan:read"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let (id, old) = (
        issued["id"].as_str().unwrap().to_owned(),
        issued["token"].as_str().unwrap().to_owned(),
    );
    let (status, rotated) = app
        .call(
            Method::POST,
            &format!("/api/v1/keys/{id}/rotate"),
            &app.admin_key,
            Some(json!({ "grace_seconds": 3 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let rotated_at = std::time::Instant::now();

    app.clock.step_back(chrono::Duration::hours(2));

    // Order: a scan created after the step is not dated before the first, and lists first.
    let (status, second) = app
        .call(
            Method::POST,
            "/api/v1/scans",
            &app.admin_key,
            Some(serde_json::from_str(SCAN).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert!(
        time(&second["created_at"]) >= time(&first["created_at"]),
        "{} is dated before {}",
        second["created_at"],
        first["created_at"]
    );
    app.caught_up().await;
    let list = app.get_json("/api/v1/scans").await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            second["id"].as_str().unwrap(),
            first["id"].as_str().unwrap()
        ]
    );
    // Idempotency: the key used before the step still replays its first answer, appending nothing.
    let head = app.services.store().head_position().await.unwrap();
    let (status, replayed) = create_scan_once(&app, "before-the-step").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
    assert_eq!(replayed["id"], first["id"]);
    assert_eq!(app.services.store().head_position().await.unwrap(), head);
    // Expiry: the old secret stops working 3 s after the rotation in real time, not 2 h later.
    let me = |token: String| {
        let (client, url) = (app.client.clone(), app.url("/api/v1/keys/me"));
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    if rotated_at.elapsed() < Duration::from_secs(2) {
        assert_eq!(me(old.clone()).await, StatusCode::OK, "within its grace");
    }
    tokio::time::sleep(Duration::from_secs(3) + Duration::from_millis(1500)).await;
    assert_eq!(
        me(old).await,
        StatusCode::UNAUTHORIZED,
        "the grace period outlived the step back"
    );
}

vantage_tests::app_test_per_store!(spawn_unthrottled;
    a_clock_stepped_back_changes_no_order_window_or_expiry,
);
