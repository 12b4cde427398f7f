//! The web dashboard (`/ui`) in a real browser: `tests/ui/e2e.mjs` drives Debian's Chromium through
//! playwright-core against the real server over a real socket, scanning a loopback lab target
//! (sign in, live progress, findings, triage with a comment, the unread count, a comparison of two
//! scans, keys), checks every main page with axe-core at desktop and phone width, and keeps
//! screenshots as artifacts. Then `vantage scan` grades the UI's own headers over HTTPS.
//!
//! `.ci/run` installs the test's npm packages in `tests/ui/node_modules` (`npm ci`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use vantage_tests::process::{ServeProcess, vantage_binary};
use vantage_tests::{SqliteTestStore, TestApp, browser, serve_http};

fn ui_tests_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser test's packages are not installed: (cd tests/ui && npm ci) — bash .ci/run does it"
    );
    dir
}

/// A page with findings worth a notification (a CSP that allows inline scripts is high), and a path
/// that answers after 1.5 s, so that a scan runs long enough for its progress to be watched.
async fn lab_target() -> std::net::SocketAddr {
    let page = || async {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "script-src 'self' 'unsafe-inline'",
                ),
            ],
            "<!doctype html><title>lab</title><p>lab site</p>",
        )
            .into_response()
    };
    let router = axum::Router::new()
        .route("/", axum::routing::get(page))
        .route(
            "/slow",
            axum::routing::get(move || async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                page().await
            }),
        );
    serve_http(router).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let dir = ui_tests_dir();
    let store = SqliteTestStore::new().await;
    let app = TestApp::spawn_lab(store.app_stores().await).await;
    let target = lab_target().await;
    let artifacts = browser::artifacts_dir();
    let mut node = std::process::Command::new("node");
    node.arg("e2e.mjs")
        .current_dir(&dir)
        .env("VANTAGE_URL", &app.base)
        .env("VANTAGE_KEY", &app.admin_key)
        .env("VANTAGE_TARGET", format!("http://{target}/"))
        .env("VANTAGE_PATHS", "/, /slow")
        .env("VANTAGE_ARTIFACTS", &artifacts)
        .env("CHROMIUM", "/usr/bin/chromium");
    let output = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser test failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    println!("ui e2e: {report}");
    // Every step ran, and its screenshots exist.
    let steps = report["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s == "phone width"),
        "the run reached its end: {steps:?}"
    );
    for shot in report["screenshots"].as_array().unwrap() {
        let path = Path::new(shot.as_str().unwrap());
        assert!(std::fs::metadata(path).unwrap().len() > 1000, "{shot}");
    }
    // What the browser did is in the log: the triage decision and the comment.
    let audit = app.get_json("/api/v1/audit/events?limit=100").await;
    let kinds: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for kind in ["TriageSet", "CommentAdded", "ApiKeyRevoked"] {
        assert!(kinds.contains(&kind), "{kind} was recorded: {kinds:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_grades_a_plus_under_vantages_own_scan() {
    let ca = vantage_tests::tls::TestCa::new();
    let (chain, key) = ca.leaf_pem(&["127.0.0.1"]);
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (cert, key, ca_pem) = (
        write("cert.pem", &chain),
        write("key.pem", &key),
        write("ca.pem", ca.pem()),
    );
    let data = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--scan-workers",
            "0",
        ],
        &[],
        std::process::Stdio::null(),
    )
    .await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let mut scan = std::process::Command::new(vantage_binary());
    scan.args(["scan", &server.url("/ui"), "--json", "--ports", &port])
        .args(["--allow-cidr", "127.0.0.1/32", "--extra-ca", &ca_pem])
        .env("VANTAGE_LOG", "error");
    let output = tokio::task::spawn_blocking(move || scan.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "vantage scan printed no JSON: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let headers = &report["headers_grade"];
    println!("the dashboard's headers grade: {headers}");
    assert_eq!(
        headers["grade"], "A+",
        "the dashboard's own header grade: {headers:#}"
    );
    server.stop().await;
}

#[test]
fn serve_refuses_tls_files_it_cannot_use_in_one_sentence() {
    let data = tempfile::tempdir().unwrap();
    let junk = data.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let missing = data.path().join("missing.pem");
    for (cert, key, expected) in [
        (&missing, &junk, "cannot read the certificate"),
        (&junk, &junk, "holds no PEM certificate"),
    ] {
        let output = std::process::Command::new(vantage_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .env("VANTAGE_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "serve must refuse: {stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    }
}
