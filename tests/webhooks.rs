//! Webhooks end to end on both stores: a receiver on loopback that fails three attempts and accepts
//! the fourth (backoff shortened by configuration), every delivery's signature checked by the
//! Standard Webhooks reference library for Python (`standardwebhooks`, installed by `.ci/run`), the
//! delivery log showing all four attempts, and a URL that resolves into private space refused at
//! creation and — after its name moves there — at delivery, with nothing sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use vantage_tests::TestApp;
use vantage_tests::process::eventually;

/// One request the receiver got: its three Standard Webhooks headers and its body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// An HTTP receiver on 127.0.0.1 that answers 500 to the first `failures` requests, then 204.
async fn receiver(failures: usize) -> (u16, Arc<Mutex<Vec<Received>>>) {
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut seen = record.lock().unwrap();
                seen.push(Received {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body,
                });
                if seen.len() <= failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

/// The Python that has `standardwebhooks` (the virtual environment `.ci/run` makes).
fn python() -> String {
    std::env::var("VANTAGE_PYTHON").unwrap_or_else(|_| "/var/tmp/vantage-venv/bin/python".into())
}

/// Verifies `received` with the Standard Webhooks reference library and `secret`; its verdict.
fn verified_by_reference(secret: &str, received: &Received) -> Result<Value, String> {
    let script = r#"
import json, sys, time
from standardwebhooks.webhooks import Webhook
secret, msg_id, timestamp, signature, body = sys.argv[1:6]
headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
print(json.dumps(Webhook(secret).verify(body, headers)))
"#;
    let output = std::process::Command::new(python())
        .args(["-c", script, secret])
        .args([
            &received.id,
            &received.timestamp,
            &received.signature,
            &received.body,
        ])
        .output()
        .expect("python with standardwebhooks must be installed (bash .ci/run installs it)");
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn deliveries(app: &TestApp, webhook: &str) -> Vec<Value> {
    let (status, body) = send(
        app,
        reqwest::Method::GET,
        &format!("/api/v1/webhooks/{webhook}/deliveries"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn retried_signed_logged_and_guarded(mut app: TestApp) {
    use reqwest::Method;
    app.start_outbound(
        vantage_outbound::webhooks::RetryPolicy {
            first_retry: Duration::from_millis(100),
            max_retry: Duration::from_millis(400),
            ..Default::default()
        },
        Duration::from_millis(200),
    );
    let (port, received) = receiver(3).await;

    // Refused at creation: a name that resolves into private space.
    let (status, problem) = send(
        &app,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": "http://intranet-app.example/hook", "event_filter": ["scan.completed"] })),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "target_refused");
    assert_eq!(problem["errors"][0]["field"], "url");

    let (status, created) = send(
        &app,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({
            "url": format!("http://hooks.example.net:{port}/hook"),
            "event_filter": ["triage.changed", "scan.completed"],
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let webhook = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let path = format!("/api/v1/webhooks/{webhook}");
    eventually("the webhook is listed", || async {
        send(&app, Method::GET, &path, None).await.0 == 200
    })
    .await;
    let (_, shown) = send(&app, Method::GET, &path, None).await;
    assert_eq!(
        shown["event_filter"],
        json!(["scan.completed", "triage.changed"])
    );
    assert!(
        !shown.to_string().contains(&secret[6..]),
        "the secret is never shown again"
    );

    let (status, test) = send(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{webhook}/test"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{test}");
    let delivery = test["delivery_id"].as_str().unwrap().to_owned();

    eventually("four attempts, the fourth accepted and logged", || async {
        deliveries(&app, &webhook)
            .await
            .first()
            .is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    let seen = received.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "three failures and one success: {seen:?}");
    for attempt in &seen {
        assert_eq!(attempt.id, delivery, "one stable id for every attempt");
        let payload = verified_by_reference(&secret, attempt)
            .unwrap_or_else(|e| panic!("the reference library refused a signature: {e}"));
        assert_eq!(payload["type"], "webhook.test");
        assert_eq!(payload["data"]["webhook_id"], webhook.as_str());
    }
    // A tampered body or another secret is refused by the same library: the check can fail.
    let mut tampered = seen[3].clone();
    tampered.body = tampered.body.replace("webhook.test", "scan.completed");
    assert!(verified_by_reference(&secret, &tampered).is_err());
    assert!(verified_by_reference("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &seen[3]).is_err());

    let log = deliveries(&app, &webhook).await;
    assert_eq!(log.len(), 1, "{log:?}");
    let attempts = log[0]["attempts"].as_array().unwrap();
    let outcomes: Vec<(&str, u64)> = attempts
        .iter()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap(),
                a["status_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("retrying", 500),
            ("retrying", 500),
            ("retrying", 500),
            ("delivered", 204)
        ]
    );
    assert_eq!(log[0]["id"], delivery.as_str());
    assert_eq!(log[0]["event_type"], "webhook.test");

    // A committed event the webhook subscribes to is delivered too (once, accepted at once now).
    // (Triaged through the application services: the API triages only findings a scan has seen.)
    let fingerprint = "a".repeat(64);
    let context =
        vantage_app::CommandContext::system(vantage_domain::tenant::TenantId::default_tenant());
    app.services
        .set_triage(
            &context,
            vantage_domain::triage::Fingerprint::parse(&fingerprint).unwrap(),
            vantage_domain::triage::TriageState::Acknowledged,
            Some("seen".into()),
        )
        .await
        .unwrap()
        .unwrap();
    eventually("triage.changed is delivered", || async {
        received.lock().unwrap().len() == 5
    })
    .await;
    let triage = received.lock().unwrap()[4].clone();
    let payload = verified_by_reference(&secret, &triage).unwrap();
    assert_eq!(payload["type"], "triage.changed");
    assert_eq!(payload["data"]["fingerprint"], fingerprint.as_str());
    assert_eq!(payload["data"]["state"], "acknowledged");
    assert!(payload["data"].get("note").is_none(), "{payload}");

    // Refused at delivery: the webhook's name now resolves into private space. Nothing is sent,
    // and the attempt says why.
    app.dns.as_ref().unwrap().set(
        "hooks.example.net",
        hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A([10, 1, 2, 3].into())),
    );
    let (_, test) = send(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{webhook}/test"),
        None,
    )
    .await;
    let refused = test["delivery_id"].as_str().unwrap().to_owned();
    eventually("the refused attempt is logged", || async {
        deliveries(&app, &webhook)
            .await
            .iter()
            .any(|d| d["id"] == refused.as_str())
    })
    .await;
    let log = deliveries(&app, &webhook).await;
    let attempt = &log.iter().find(|d| d["id"] == refused.as_str()).unwrap()["attempts"][0];
    assert_eq!(attempt["outcome"], "retrying");
    assert!(attempt["status_code"].is_null());
    assert!(
        attempt["error"].as_str().unwrap().starts_with("refused"),
        "{attempt}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        received.lock().unwrap().len(),
        5,
        "nothing reached the private address"
    );

    // Deleted: the webhook is gone from the API and takes no more deliveries.
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/webhooks/{webhook}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    eventually("the deleted webhook is gone from the API", || async {
        send(&app, Method::GET, &path, None).await.0 == 404
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deliveries_are_retried_signed_logged_and_guarded() {
    let t = vantage_tests::SqliteTestStore::new().await;
    retried_signed_logged_and_guarded(TestApp::spawn_loopback(t.app_stores().await).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deliveries_are_retried_signed_logged_and_guarded() {
    let t = vantage_tests::PgTestStore::new().await;
    retried_signed_logged_and_guarded(TestApp::spawn_loopback(t.app_stores().await).await).await;
    t.drop_schema().await;
}

/// A webhook gets the scan events of its own project only.
async fn a_webhook_hears_its_own_project_s_scans(mut app: TestApp) {
    use reqwest::Method;
    app.start_outbound(
        vantage_outbound::webhooks::RetryPolicy::default(),
        Duration::from_millis(200),
    );
    let (status, _) = send(
        &app,
        Method::POST,
        "/api/v1/projects",
        Some(json!({ "id": "web", "name": "Web shop" })),
    )
    .await;
    assert_eq!(status, 201);
    let mut hooks = Vec::new();
    for project in ["web", "default"] {
        let (port, received) = receiver(0).await;
        let (status, created) = send(
            &app,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({
                "url": format!("http://hooks.example.net:{port}/hook"),
                "event_filter": ["scan.completed"],
                "project": project,
            })),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        hooks.push((created["id"].as_str().unwrap().to_owned(), received));
    }
    for (id, _) in &hooks {
        let path = format!("/api/v1/webhooks/{id}");
        eventually("the webhook is listed", || async {
            send(&app, Method::GET, &path, None).await.0 == 200
        })
        .await;
    }
    let mut scans = Vec::new();
    for project in ["web", "default"] {
        let mut spec = vantage_tests::history::spec("example.com");
        spec.project = vantage_domain::project::ProjectId::parse(project).unwrap();
        let id = vantage_tests::history::scan_spec_through_pipeline(
            &app.services.pipeline,
            "default",
            spec,
            &vantage_tests::history::SiteState::default(),
            None,
        )
        .await;
        scans.push(id.to_string());
    }
    eventually("each webhook hears one scan", || async {
        hooks.iter().all(|(_, r)| !r.lock().unwrap().is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for ((_, received), scan) in hooks.iter().zip(&scans) {
        let seen = received.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "only its own project's scan: {seen:?}");
        let body: Value = serde_json::from_str(&seen[0].body).unwrap();
        assert_eq!(body["data"]["scan_id"], scan.as_str(), "{body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_webhook_hears_its_own_project_s_scans() {
    let t = vantage_tests::SqliteTestStore::new().await;
    a_webhook_hears_its_own_project_s_scans(TestApp::spawn_loopback(t.app_stores().await).await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_webhook_hears_its_own_project_s_scans() {
    let t = vantage_tests::PgTestStore::new().await;
    a_webhook_hears_its_own_project_s_scans(TestApp::spawn_loopback(t.app_stores().await).await)
        .await;
    t.drop_schema().await;
}
