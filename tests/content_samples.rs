//! Content samples, crypto-shredded, end to end against the lab: a scan asked to keep samples keeps
//! the pages' first bytes sealed (never a secret-looking path's), readable only with `content:read`;
//! once the retention ends (the app's clock moved on) the sweep destroys the scan's key and the
//! samples are gone from the API, while nothing stored — log, read models, the raw database, an
//! exported package — ever held them in the clear, and the chain and a replay still check out.

use std::process::Command;

use serde_json::{Value, json};
use vantage_tests::TestApp;
use vantage_tests::lab::{Lab, Posture};
use vantage_tests::process::vantage_binary;

/// What the plain-HTTP lab site's page says, and what its exposed `.env` holds.
const PAGE_MARKER: &str = "<p>lab site</p>";
const ENV_SECRET: &str = "lab-secret-value";

async fn issue_key(app: &TestApp, scopes: &[&str]) -> String {
    let issued: Value = app
        .client
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "name": "content test", "scopes": scopes }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    issued["token"].as_str().unwrap().to_owned()
}

/// `POST /api/v1/scans` with `body`, as the admin: the status and the answer.
async fn post_scan(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/scans"))
        .bearer_auth(&app.admin_key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn start_scan(app: &TestApp, body: Value) -> String {
    let (status, created) = post_scan(app, &body).await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let done = app.wait_for_scan(&id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    id
}

async fn samples(app: &TestApp, key: &str, scan: &str) -> (u16, Value) {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/scans/{scan}/content-samples")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn assert_absent(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for needle in [PAGE_MARKER, ENV_SECRET, r#"{"status":"ok"}"#] {
        assert!(!text.contains(needle), "{what} holds {needle:?}");
    }
}

async fn samples_are_sealed_then_shredded(
    app: TestApp,
    lab: &Lab,
    files: Option<&std::path::Path>,
    pg_schema: Option<&str>,
) -> TestApp {
    let reader = issue_key(&app, &["scan:read"]).await;
    let content_reader = issue_key(&app, &["content:read"]).await;
    let plain = lab.site(Posture::PlainHttp).name();
    let exposed = lab.site(Posture::ExposedBehindRedirect).name();

    // Bad settings are refused, naming the field.
    for (body, field) in [
        (
            json!({"target": plain, "include_content_sample": true, "content_retention_days": 6}),
            "content_retention_days",
        ),
        (
            json!({"target": plain, "include_content_sample": true, "content_retention_days": 31}),
            "content_retention_days",
        ),
        (
            json!({"target": plain, "content_retention_days": 10}),
            "content_retention_days",
        ),
    ] {
        let (status, problem) = post_scan(&app, &body).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }

    let sampled_plain = start_scan(
        &app,
        json!({"target": plain, "profile": "quick", "include_content_sample": true}),
    )
    .await;
    let sampled_exposed = start_scan(
        &app,
        json!({"target": exposed, "profile": "quick", "paths": ["/", "/.env"],
               "include_content_sample": true, "content_retention_days": 14}),
    )
    .await;
    let unsampled = start_scan(&app, json!({"target": plain, "profile": "quick"})).await;
    app.caught_up().await;

    // The scan resource says what was asked; reading samples takes content:read.
    let scan = app
        .get_json(&format!("/api/v1/scans/{sampled_exposed}"))
        .await;
    assert_eq!(scan["content_sample"]["retention_days"], 14, "{scan}");
    let (status, problem) = samples(&app, &reader, &sampled_plain).await;
    assert_eq!(status, 403, "{problem}");
    let (status, problem) = samples(&app, &content_reader, &unsampled).await;
    assert_eq!(status, 404, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("kept no content samples")
    );

    let (status, kept) = samples(&app, &content_reader, &sampled_plain).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["retention_days"], 7);
    let items = kept["samples"].as_array().unwrap();
    assert!(!items.is_empty(), "{kept}");
    assert!(
        items.iter().any(
            |s| s["encoding"] == "utf-8" && s["sample"].as_str().unwrap().contains(PAGE_MARKER)
        ),
        "the page's own bytes come back: {kept}"
    );
    let (status, kept) = samples(&app, &content_reader, &sampled_exposed).await;
    assert_eq!(status, 200, "{kept}");
    let urls: Vec<&str> = kept["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert!(urls.iter().any(|u| u.ends_with('/')), "{urls:?}");
    assert!(
        !urls.iter().any(|u| u.contains(".env")),
        "a secret-looking path is never sampled: {urls:?}"
    );
    assert!(!kept.to_string().contains(ENV_SECRET));

    // Nothing stored holds a sample in the clear, nor does any other view.
    for (name, bytes) in vantage_tests::raw_dump(files, pg_schema) {
        assert_absent(&name, &bytes);
    }
    for path in [
        format!("/api/v1/scans/{sampled_plain}"),
        format!("/api/v1/scans/{sampled_plain}/observations"),
        format!("/api/v1/scans/{sampled_plain}/report?format=json"),
        "/api/v1/audit/events?limit=100".to_owned(),
    ] {
        let body = app
            .client
            .get(app.url(&path))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_absent(&path, &body);
    }

    // Before the retention ends, a sweep destroys nothing.
    let sweep = || {
        let read = app.stores.read.clone();
        let services = app.services.clone();
        async move {
            let mut due = move |now, limit| {
                let read = read.clone();
                async move { read.content_due(now, limit).await }
            };
            vantage_app::shred_expired_once(&services, &mut due)
                .await
                .unwrap()
        }
    };
    assert_eq!(sweep().await, 0);

    // Eight days on, the 7-day samples expire; the 14-day ones stay readable.
    app.clock.advance(chrono::Duration::days(8));
    assert_eq!(sweep().await, 1);
    app.caught_up().await;
    let (status, problem) = samples(&app, &content_reader, &sampled_plain).await;
    assert_eq!(status, 410, "{problem}");
    assert_eq!(problem["code"], "content_destroyed");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("retention_expired"),
        "{problem}"
    );
    let (status, _) = samples(&app, &content_reader, &sampled_exposed).await;
    assert_eq!(status, 200);
    // Deleting a scan destroys its key too.
    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/scans/{sampled_exposed}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    app.caught_up().await;
    app.clock.advance(chrono::Duration::days(30));
    assert_eq!(sweep().await, 0, "nothing is left to destroy");

    // The keys are gone from the store beside the log: no copy of the database can open them.
    let tenant = vantage_domain::tenant::TenantId::default_tenant();
    for scan in [&sampled_plain, &sampled_exposed] {
        assert_eq!(
            app.services
                .secrets
                .secret(tenant.as_str(), &format!("content-{scan}"))
                .await
                .unwrap(),
            None
        );
    }
    // The log records why, in the audit trail, and the chain is whole.
    let audit = app.get_json("/api/v1/audit/events?limit=100").await;
    let reasons: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "ContentKeyDestroyed")
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{audit}");
    assert!(reasons.contains(&"retention_expired") && reasons.contains(&"scan_deleted"));
    let report = vantage_store::verify_chain(app.stores.events.as_ref(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.first_break, None);
    for (name, bytes) in vantage_tests::raw_dump(files, pg_schema) {
        assert_absent(&name, &bytes);
    }
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_content_samples_are_sealed_then_shredded() {
    let lab = Lab::start_with(&[Posture::PlainHttp, Posture::ExposedBehindRedirect]).await;
    let t = vantage_tests::SqliteTestStore::new().await;
    let files = t.path().parent().unwrap().to_owned();
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    let app = samples_are_sealed_then_shredded(app, &lab, Some(&files), None).await;
    app.stop().await;

    // `vantage verify`, `vantage replay` and an exported package, from the data directory.
    vantage_tests::process::assert_verify_and_replay_pass(&files);
    let package = files.join("package.tar.gz");
    let export = Command::new(vantage_binary())
        .args(["export", "--domain", lab.site(Posture::PlainHttp).name()])
        .args(["--since", "2000-01-01", "--until", "2100-01-01"])
        .arg("--data-dir")
        .arg(&files)
        .arg("-o")
        .arg(&package)
        .env("VANTAGE_LOG", "error")
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let archive = std::fs::read(&package).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    let mut events = 0;
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        let name = entry.path().unwrap().display().to_string();
        if String::from_utf8_lossy(&bytes).contains("ContentSampleKept") {
            events += 1;
        }
        assert_absent(&format!("package file {name}"), &bytes);
    }
    assert!(events > 0, "the package carries the sealed samples' events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_content_samples_are_sealed_then_shredded() {
    let lab = Lab::start_with(&[Posture::PlainHttp, Posture::ExposedBehindRedirect]).await;
    let t = vantage_tests::PgTestStore::new().await;
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    let app = samples_are_sealed_then_shredded(app, &lab, None, Some(&t.schema)).await;
    app.assert_replay_matches().await;
    app.stop().await;
    t.drop_schema().await;
}
