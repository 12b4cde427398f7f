//! The HTTP API end to end: the real router over a real socket, on SQLite and on PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};
use vantage_app::CommandContext;
use vantage_domain::scope::{Scope, Scopes};
use vantage_domain::tenant::TenantId;
use vantage_store::StreamName;
use vantage_tests::TestApp;

async fn problem(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "errors are RFC 9457 problems"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(body["type"].as_str().unwrap().contains(code));
    body
}

async fn head(app: &TestApp) -> u64 {
    // Let the PostgreSQL sequencer order anything that was (wrongly) appended.
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    app.services.store().head_position().await.unwrap()
}

async fn health_and_ready(app: TestApp) {
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // Asked once the projectors have registered (on PostgreSQL they first take their leases).
    let ask = |key: Option<String>| {
        let (client, url) = (app.client.clone(), app.url("/ready"));
        async move {
            let mut request = client.get(url);
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            request.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    vantage_tests::process::eventually("the projectors to report", || async {
        ask(None).await["projectors"]
            .as_array()
            .is_some_and(|p| p.len() >= 5)
    })
    .await;
    let ready = ask(None).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"], "ok");
    assert_eq!(ready["dispatch"]["via"], "in_process", "{ready}");
    assert_eq!(ready["dispatch"]["ready"], true, "{ready}");
    // Without a key the log's size and the projectors' positions stay private; an auditor's key
    // sees them.
    assert!(ready.get("head_position").is_none(), "{ready}");
    for projector in ready["projectors"].as_array().unwrap() {
        assert!(projector.get("position").is_none(), "{ready}");
        assert!(projector["lag_events"].is_u64(), "{ready}");
    }
    let detailed = ask(Some(app.admin_key.clone())).await;
    assert!(detailed["head_position"].is_u64(), "{detailed}");
    for projector in detailed["projectors"].as_array().unwrap() {
        assert!(projector["position"].is_u64(), "{detailed}");
    }
    let reader = app.issue_key("default", "reader", &[Scope::ScanRead]).await;
    let as_reader = ask(Some(reader)).await;
    assert!(as_reader.get("head_position").is_none(), "{as_reader}");
    // The root says what the server is and links to everything public, each link answering 200.
    let root = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    let content_type = root.headers()["content-type"].to_str().unwrap().to_owned();
    let root: Value = root.json().await.unwrap();
    vantage_tests::contract::check("GET", "/", 200, &content_type, &root).unwrap();
    assert_eq!(root["name"], "Vantage");
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    for link in ["docs", "openapi", "health", "ready", "signing_key"] {
        let path = root["links"][link].as_str().unwrap();
        let answer = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{link} {path}");
    }
    app.stop().await;
}

async fn a_scan_is_accepted_recorded_and_read_back(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/scans"))
        .bearer_auth(&app.admin_key)
        .header("x-request-id", "client-req-42")
        .json(&json!({ "target": "HTTPS://Example.com:443/login#top", "ports": [443, 80, 443], "profile": "deep" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["x-request-id"], "client-req-42");
    assert_eq!(response.headers()["retry-after"], "2");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "queued");
    assert_eq!(created["target"], "https://example.com/login");
    assert_eq!(created["ports"], json!([80, 443]));
    assert_eq!(created["paths"], json!(["/"]));
    assert_eq!(created["profile"], "deep");
    assert_eq!(created["trigger"], "api");
    assert_eq!(created["kind"], "url");
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/scans/{id}"));

    let read: Value = app
        .client
        .get(app.url(&location))
        .header("x-api-key", &app.admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, created);

    let events = app
        .services
        .store()
        .read_stream(&StreamName::new(format!("scan-{id}")).unwrap())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "ScanRequested");
    assert_eq!(events[0].schema_version, 4);
    assert_eq!(
        events[0].metadata.request_id.as_deref(),
        Some("client-req-42")
    );
    assert!(events[0].metadata.actor.starts_with("apikey:"));
    app.stop().await;
}

async fn bad_input_is_a_problem_and_appends_nothing(app: TestApp) {
    let before = head(&app).await;
    let post = |body: String, content_type: &'static str| {
        app.client
            .post(app.url("/api/v1/scans"))
            .bearer_auth(&app.admin_key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    problem(
        post("{\"target\": ".into(), "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    let unknown = problem(
        post(
            json!({"target": "example.com", "colour": "red"}).to_string(),
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert_eq!(unknown["errors"][0]["field"], "colour");
    problem(
        post(json!({"ports": [80]}).to_string(), "application/json")
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    let invalid = problem(
        post(
            json!({"target": "gopher://example.com", "paths": ["no-slash"]}).to_string(),
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = invalid["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["target", "paths"]);
    let huge = json!({"target": "example.com", "paths": ["/".repeat(100_000)]}).to_string();
    problem(
        post(huge, "application/json").await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    // A client that announces a 100 MB body and waits for `100 Continue` is told 413 instead, on a
    // raw socket, before it sends a byte of it; the answer is a problem document too.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = app.base.trim_start_matches("http://").to_owned();
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "POST /api/v1/scans HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100000000\r\n\
             Expect: 100-continue\r\n\r\n",
            app.admin_key
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut answer))
            .await
            .expect("answered at once")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).to_string();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
    {
        // A body that stalls part-way: 408 problem+json once the body read timeout passes, not
        // a 503 when the whole request times out.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = app.base.trim_start_matches("http://").to_owned();
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "POST /api/v1/scans HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"target\":",
            app.admin_key
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), socket.read(&mut answer))
            .await
            .expect("answered once the body read timeout passes")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).to_string();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("x-request-id"),
            "{answer}"
        );
        assert!(started.elapsed() >= vantage_api::BODY_READ_TIMEOUT / 2);
    }
    // A request target or headers too large: 414 / 431 problem+json with a request id, as every
    // error (hyper's own limits sit above these).
    problem(
        app.client
            .get(app.url(&format!("/api/v1/scans?domain={}", "a".repeat(9000))))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap(),
        StatusCode::URI_TOO_LONG,
        "uri_too_long",
    )
    .await;
    let mut many = app
        .client
        .get(app.url("/api/v1/scans"))
        .bearer_auth(&app.admin_key);
    for i in 0..150 {
        many = many.header(format!("x-filler-{i}"), "1");
    }
    problem(
        many.send().await.unwrap(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    )
    .await;
    problem(
        app.client
            .get(app.url("/api/v1/scans"))
            .bearer_auth(&app.admin_key)
            .header("x-filler", "b".repeat(40 * 1024))
            .send()
            .await
            .unwrap(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    )
    .await;
    problem(
        post(json!({"target": "example.com"}).to_string(), "text/plain")
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    problem(
        app.client
            .get(app.url("/api/v1/nothing-here"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        app.client
            .put(app.url("/api/v1/scans"))
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    problem(
        app.client
            .get(app.url("/api/v1/scans/not-a-uuid"))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        head(&app).await,
        before,
        "a refused request appended events"
    );
    app.stop().await;
}

async fn keys_scopes_and_tenants_are_enforced(app: TestApp) {
    let create = |key: Option<&str>| {
        let request = app
            .client
            .post(app.url("/api/v1/scans"))
            .json(&json!({"target": "example.com"}));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
        .send()
    };
    let missing = create(None).await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    problem(missing, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // The real key with its secret's last digit changed (always to a different digit).
    let (head, last) = app.admin_key.split_at(app.admin_key.len() - 1);
    let forged = format!("{head}{}", if last == "0" { "1" } else { "0" });
    assert_ne!(forged, app.admin_key);
    problem(
        create(Some(&forged)).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    problem(
        create(Some("garbage")).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    let default = TenantId::default_tenant();
    let reader = app.issue_key("default", "reader", &[Scope::ScanRead]).await;
    let denied = problem(
        create(Some(&reader)).await.unwrap(),
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    assert!(denied["detail"].as_str().unwrap().contains("scan:write"));

    let created: Value = create(Some(&app.admin_key))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/scans/{}", created["id"].as_str().unwrap());
    let as_reader = app
        .client
        .get(app.url(&path))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(as_reader.status(), StatusCode::OK);

    let other = TenantId::parse("other-org").unwrap();
    let outsider = app
        .services
        .bootstrap_admin_key(&other, None)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .token
        .expose();
    problem(
        app.client
            .get(app.url(&path))
            .bearer_auth(&outsider)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // A revoked key authenticates nothing.
    let reader_id = reader.parse::<vantage_app::ApiKeyToken>().unwrap().key_id;
    app.services
        .revoke_api_key(&CommandContext::system(default), reader_id)
        .await
        .unwrap()
        .unwrap();
    problem(
        app.client
            .get(app.url(&path))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    app.stop().await;
}

async fn idempotency_key_returns_the_first_result(app: TestApp) {
    let post = |key: &'static str, target: &'static str| {
        app.client
            .post(app.url("/api/v1/scans"))
            .bearer_auth(&app.admin_key)
            .header("idempotency-key", key)
            .json(&json!({ "target": target }))
            .send()
    };
    let first = post("deploy-7", "example.com").await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first_location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    let again = post("deploy-7", "example.com").await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], first_location);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    problem(
        post("deploy-7", "example.org").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    let other: Value = post("deploy-8", "example.com")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(other["id"], first["id"]);
    // A refused request keeps nothing under its key: the corrected request runs.
    problem(
        post("deploy-9", "localhost").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "target_refused",
    )
    .await;
    let corrected = post("deploy-9", "example.com").await.unwrap();
    assert_eq!(corrected.status(), StatusCode::ACCEPTED);
    assert!(!corrected.headers().contains_key("idempotent-replayed"));
    // Exactly three scans were requested, not four.
    let mut subscription = vantage_store::subscribe_all(
        app.services.store().clone(),
        0,
        vantage_store::SubscriptionOptions::default(),
    );
    let mut requested = 0;
    let head = head(&app).await;
    while subscription.position() < head {
        let event = subscription.next().await.unwrap();
        requested += usize::from(event.event.event_type == "ScanRequested");
    }
    assert_eq!(requested, 3);
    app.stop().await;
}

async fn non_public_targets_are_refused_before_anything_is_appended(app: TestApp) {
    let before = head(&app).await;
    for (target, fragment) in [
        ("http://127.0.0.1:8080/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://2130706433/", "loopback"),
        ("intranet-app.example", "10.20.30.40"),
        ("localhost", "not a public host name"),
        ("does-not-exist.example", "does not resolve"),
    ] {
        let refused = problem(
            app.client
                .post(app.url("/api/v1/scans"))
                .bearer_auth(&app.admin_key)
                .json(&json!({ "target": target }))
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target_refused",
        )
        .await;
        assert_eq!(refused["errors"][0]["field"], "target");
        let reason = refused["errors"][0]["reason"].as_str().unwrap();
        assert!(reason.contains(fragment), "{target}: {reason}");
    }
    assert_eq!(head(&app).await, before, "a refused target appended events");
    app.stop().await;
}

/// A rotated key: the new token works at once, the old one through its grace period and not after;
/// the audit trail records the rotation without any secret.
async fn a_rotated_keys_old_secret_works_only_through_its_grace_period(app: TestApp) {
    let issued = app
        .client
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "name": "ci", "scopes": ["scan:read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        issued.headers()["cache-control"],
        "no-store",
        "it holds a secret"
    );
    let issued: Value = issued.json().await.unwrap();
    let (id, old) = (
        issued["id"].as_str().unwrap().to_owned(),
        issued["token"].as_str().unwrap().to_owned(),
    );
    let rotate = |body: Value| {
        app.client
            .post(app.url(&format!("/api/v1/keys/{id}/rotate")))
            .bearer_auth(&app.admin_key)
            .json(&body)
            .send()
    };
    let response = rotate(json!({ "grace_seconds": 2 })).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "it holds a secret"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let rotated: Value = response.json().await.unwrap();
    vantage_tests::contract::check(
        "POST",
        "/api/v1/keys/{id}/rotate",
        200,
        &content_type,
        &rotated,
    )
    .unwrap();
    assert_eq!(rotated["id"], id.as_str());
    assert_eq!(rotated["name"], "ci");
    assert_eq!(rotated["scopes"], json!(["scan:read"]));
    let new = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let me = |token: String| {
        let client = app.client.clone();
        let url = app.url("/api/v1/keys/me");
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
    assert_eq!(me(new.clone()).await, StatusCode::OK);
    assert_eq!(
        me(old.clone()).await,
        StatusCode::OK,
        "within the grace period"
    );
    let listed = app.get_json("/api/v1/keys").await;
    let key = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        key["previous_secret_valid_until"],
        rotated["previous_valid_until"]
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    assert_eq!(
        me(old).await,
        StatusCode::UNAUTHORIZED,
        "after the grace period"
    );
    assert_eq!(me(new).await, StatusCode::OK);

    // The audit trail shows the rotation, and no secret or hash of one.
    app.caught_up().await;
    let audit = app
        .get_json("/api/v1/audit/events?action=ApiKeyRotated")
        .await;
    let entry = &audit["items"][0];
    assert_eq!(entry["details"]["key_id"], id.as_str());
    assert!(!entry.to_string().contains("secret_sha256"), "{entry}");

    // Bad input and impossible rotations.
    problem(
        rotate(json!({ "grace_seconds": 86_401 })).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let unknown = app
        .client
        .post(app.url(&format!("/api/v1/keys/{}/rotate", uuid::Uuid::nil())))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    problem(unknown, StatusCode::NOT_FOUND, "not_found").await;
    let revoked = app
        .client
        .delete(app.url(&format!("/api/v1/keys/{id}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    problem(
        rotate(json!({})).await.unwrap(),
        StatusCode::CONFLICT,
        "key_already_revoked",
    )
    .await;

    // A webhook's signing secret is shown once, and not to caches either.
    let created = app
        .client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "url": "https://example.com/hook", "event_filter": ["scan.completed"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["cache-control"], "no-store");

    // Key names are one line of plain text.
    let control = app
        .client
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "name": "ci\u{0}\u{1b}[31m", "scopes": ["scan:read"] }))
        .send()
        .await
        .unwrap();
    problem(
        control,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    app.stop().await;
}

/// The auth table: every way a presented credential can be wrong is 401 (problem+json,
/// `WWW-Authenticate: Bearer`, no rate-limit headers that would reveal a real key's usage); the right
/// key in either header is let in.
async fn every_wrong_credential_is_refused(app: TestApp) {
    let me = |header: Option<(&'static str, String)>| {
        let request = app.client.get(app.url("/api/v1/keys/me"));
        match header {
            Some((name, value)) => request.header(name, value),
            None => request,
        }
        .send()
    };
    let real = app.admin_key.clone();
    let (prefix, secret) = real.rsplit_once('_').unwrap();
    let (tenant_part, key_id) = prefix.rsplit_once('_').unwrap();
    let system = CommandContext::system(TenantId::default_tenant());
    let reader = |name: &'static str| {
        let (app, system) = (&app, &system);
        async move {
            app.services
                .issue_api_key(system, name, Scopes::new([Scope::ScanRead]).unwrap())
                .await
                .unwrap()
                .unwrap()
                .token
        }
    };
    let revoked = reader("to revoke").await;
    app.services
        .revoke_api_key(&system, revoked.key_id)
        .await
        .unwrap()
        .unwrap();
    let bearer = |token: String| Some(("authorization", format!("Bearer {token}")));
    let cases: Vec<(&str, Option<(&'static str, String)>)> = vec![
        ("no credential", None),
        ("an empty bearer", Some(("authorization", "Bearer ".into()))),
        (
            "another scheme",
            Some(("authorization", format!("Basic {real}"))),
        ),
        ("garbage", bearer("vtg_nope".into())),
        ("truncated", bearer(real[..real.len() - 1].into())),
        ("one more digit", bearer(format!("{real}0"))),
        (
            "the key id with a zero secret",
            bearer(format!("{prefix}_{}", "0".repeat(64))),
        ),
        (
            "the secret in upper case",
            bearer(format!("{prefix}_{}", secret.to_uppercase())),
        ),
        (
            "another tenant's prefix",
            bearer(format!("vtg_other_{key_id}_{secret}")),
        ),
        ("no tenant", bearer(format!("vtg__{key_id}_{secret}"))),
        ("surrounding junk", bearer(format!("x{real}"))),
        ("a revoked key", bearer(revoked.expose())),
        ("an empty X-API-Key", Some(("x-api-key", String::new()))),
        (
            "a forged X-API-Key",
            Some(("x-api-key", format!("{prefix}_{}", "f".repeat(64)))),
        ),
    ];
    assert!(tenant_part.starts_with("vtg"));
    for (what, header) in cases {
        let response = me(header).await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{what}");
        problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // The refused attempts, several naming the real key's id, spent nothing of its budget: its
    // first request leaves as much as a key never used before.
    let fresh = reader("fresh").await.expose();
    let remaining = |response: &reqwest::Response| {
        assert_eq!(response.status(), StatusCode::OK);
        response.headers()["x-ratelimit-remaining"].clone()
    };
    let real_left = remaining(&me(bearer(real.clone())).await.unwrap());
    let fresh_left = remaining(&me(bearer(fresh)).await.unwrap());
    assert_eq!(real_left, fresh_left);
    let response = me(Some(("x-api-key", real.clone()))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "X-API-Key works too");
}

vantage_tests::app_test_per_store!(spawn;
    health_and_ready,
    a_rotated_keys_old_secret_works_only_through_its_grace_period,
    a_scan_is_accepted_recorded_and_read_back,
    bad_input_is_a_problem_and_appends_nothing,
    keys_scopes_and_tenants_are_enforced,
    every_wrong_credential_is_refused,
    idempotency_key_returns_the_first_result,
    non_public_targets_are_refused_before_anything_is_appended,
);

/// The log's head, signed, over the API; and after events are removed from under the read models,
/// `/ready` says the server is not ready and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_checkpoint_is_served_and_a_log_behind_its_read_models_is_not_ready() {
    let t = vantage_tests::SqliteTestStore::new().await;
    let path = t.path();
    let app = TestApp::spawn(t.app_stores().await).await;
    for name in ["a", "b"] {
        let issued = app
            .client
            .post(app.url("/api/v1/keys"))
            .bearer_auth(&app.admin_key)
            .json(&json!({ "name": name, "scopes": ["scan:read"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(issued.status(), StatusCode::CREATED);
    }
    app.caught_up().await;
    let head = app.services.store().head_position().await.unwrap();
    let response = app
        .client
        .get(app.url("/api/v1/audit/checkpoint"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    vantage_tests::contract::check("GET", "/api/v1/audit/checkpoint", 200, &content_type, &body)
        .unwrap();
    let public = app.published_signing_key().await;
    let signed: vantage_reports::checkpoint::SignedCheckpoint =
        serde_json::from_value(body).unwrap();
    let checkpoint = signed.verify(&public).unwrap();
    assert_eq!(checkpoint.position, head);
    let last = app.services.store().read_all(head - 1, 1).await.unwrap();
    assert_eq!(checkpoint.head_hash, last[0].hash);

    // Someone deletes the newest events: the read models are now ahead of the log.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER events_are_append_only_delete")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE global_position = $1")
        .bind(head as i64)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem: Value = ready.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("ahead of the log's head"),
        "{problem}"
    );
    app.stop().await;
}

/// Connections that send nothing, or drip a header line at a time, are closed once the header read
/// timeout passes (slowloris), while the server keeps answering others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = vantage_tests::SqliteTestStore::new().await;
    let app = TestApp::spawn(t.app_stores().await).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let limit = vantage_api::HEADER_READ_TIMEOUT + std::time::Duration::from_secs(4);
    let silent = {
        let address = address.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
            let mut buffer = [0u8; 64];
            let n = tokio::time::timeout(limit, socket.read(&mut buffer)).await;
            (n.map(|r| r.unwrap_or(0)), started.elapsed())
        })
    };
    let dripping = {
        let address = address.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
            socket
                .write_all(format!("GET /health HTTP/1.1\r\nHost: {address}\r\n").as_bytes())
                .await
                .unwrap();
            let mut buffer = [0u8; 256];
            loop {
                if started.elapsed() > limit {
                    return (false, started.elapsed());
                }
                // One more header line every second; the server must give up on the request.
                if socket.write_all(b"X-Drip: 1\r\n").await.is_err() {
                    return (true, started.elapsed());
                }
                match tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    socket.read(&mut buffer),
                )
                .await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => return (true, started.elapsed()),
                    Ok(Ok(n)) => {
                        let answer = String::from_utf8_lossy(&buffer[..n]).to_string();
                        assert!(
                            !answer.starts_with("HTTP/1.1 200"),
                            "answered a dripped request: {answer}"
                        );
                        return (true, started.elapsed());
                    }
                    Err(_) => {}
                }
            }
        })
    };
    // Meanwhile the server answers others.
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (closed, waited) = silent.await.unwrap();
    assert_eq!(
        closed.ok(),
        Some(0),
        "a silent connection is closed (after {waited:?})"
    );
    assert!(waited >= vantage_api::HEADER_READ_TIMEOUT - std::time::Duration::from_secs(1));
    let (closed, waited) = dripping.await.unwrap();
    assert!(closed, "a dripping connection is closed (after {waited:?})");
    app.stop().await;
}

/// At the connection limit, a new connection waits (in the listen backlog) until one ends, then it
/// is served: a flood of connections cannot exhaust the server's file descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_until_one_ends() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = vantage_tests::SqliteTestStore::new().await;
    let app = TestApp::spawn_with_connection_limit(t.app_stores().await, 2).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    // Two connections that send nothing take both slots.
    let first = tokio::net::TcpStream::connect(&address).await.unwrap();
    let _second = tokio::net::TcpStream::connect(&address).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let probe = {
        let address = address.clone();
        tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
            let request = format!("GET /health HTTP/1.1\r\nHost: {address}\r\n\r\n");
            socket.write_all(request.as_bytes()).await.unwrap();
            let mut answer = vec![0u8; 1024];
            let n = socket.read(&mut answer).await.unwrap();
            String::from_utf8_lossy(&answer[..n]).to_string()
        })
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(
        !probe.is_finished(),
        "the third connection waits while both slots are taken"
    );
    drop(first);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), probe)
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.stop().await;
}
