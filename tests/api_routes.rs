//! Every query and command route of the API over a real socket against the real app, on SQLite and
//! PostgreSQL: scans are driven through the real command pipeline (as a worker would), the real
//! projectors build the read models, and each route is asserted on its happy path, its documented
//! error statuses, a scope denial and another tenant's 404.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vantage_app::CommandContext;
use vantage_domain::ids::ScanId;
use vantage_domain::scope::{Scope, Scopes};
use vantage_domain::target::Trigger;
use vantage_domain::tenant::TenantId;
use vantage_tests::TestApp;
use vantage_tests::history::{self, SiteState};

const DOMAIN: &str = "shop.example.com";
const GIT: &str = "exposure.git-repository";
const CSP: &str = "http.csp-missing";

/// A response's status and JSON body (problem documents included).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    assert!(headers.contains_key("x-request-id"), "{path}");
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{path}: errors are problems"
        );
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    };
    vantage_tests::contract::check(method.as_str(), path, status.as_u16(), &content_type, &body)
        .unwrap_or_else(|mismatch| panic!("the response breaks the OpenAPI contract: {mismatch}"));
    (status, body, headers)
}

/// A request with a raw body and content type, its reply checked against the document.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let reply_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    vantage_tests::contract::check(method.as_str(), path, status.as_u16(), &reply_type, &body)
        .unwrap_or_else(|mismatch| panic!("the response breaks the OpenAPI contract: {mismatch}"));
    (status, body)
}

/// Every authenticated operation of the document with a path its parameters fill in (ids nobody
/// owns), required query parameters included, and its documented request example if it takes a body.
fn documented_operations(doc: &Value) -> Vec<(Method, String, Value, Option<Value>)> {
    let mut out = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("x-required-scope").is_none() {
                continue;
            }
            let path = template
                .replace("{id}", &uuid::Uuid::nil().to_string())
                .replace("{finding_id}", &"ab".repeat(32))
                .replace("{fingerprint}", &"ab".repeat(32))
                .replace("{domain}", DOMAIN);
            let required: Vec<String> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| format!("{}={}", p["name"].as_str().unwrap(), uuid::Uuid::nil()))
                .collect();
            let path = if required.is_empty() {
                path
            } else {
                format!("{path}?{}", required.join("&"))
            };
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .and_then(|r| doc.pointer(r.trim_start_matches('#')))
                .and_then(|schema| schema["examples"][0].as_object().cloned())
                .map(Value::Object);
            out.push((method, path, op.clone(), body));
        }
    }
    out
}

/// [`call`] without the headers.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, body, _) = call(app, method, path, key, body).await;
    (status, body)
}

async fn get(app: &TestApp, path: &str, key: &str) -> (StatusCode, Value) {
    let (status, body, _) = call(app, Method::GET, path, key, None).await;
    (status, body)
}

async fn get_ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = get(app, path, &app.admin_key).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// Asserts a problem with `status` and `code`.
fn problem(answer: (StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
}

/// A key of `tenant` with `scopes`, issued through the application.
async fn key(app: &TestApp, tenant: &str, scopes: &[Scope]) -> String {
    app.issue_key(tenant, "test key", scopes).await
}

/// A key of the default tenant with `scope`, limited to its `default` project.
async fn project_key(app: &TestApp, scope: Scope) -> String {
    let context = CommandContext::system(TenantId::default_tenant());
    let projects =
        std::collections::BTreeSet::from([vantage_domain::project::ProjectId::default_project()]);
    app.services
        .issue_project_api_key(
            &context,
            "limited key",
            Scopes::new([scope]).unwrap(),
            projects,
        )
        .await
        .unwrap()
        .unwrap()
        .token
        .expose()
}

/// What the seed wrote.
struct Seeded {
    /// Completed, with a CSP and a `.git` finding.
    first: ScanId,
    /// Completed, `post_deploy`: the `.git` finding is gone, CSP stays, certificate expiring.
    second: ScanId,
    /// Failed.
    failed: ScanId,
}

/// Three scans of one domain through the command pipeline, then waits for the projectors.
async fn seed(app: &TestApp) -> Seeded {
    let pipeline = app.services.pipeline.clone();
    let broken = SiteState {
        csp: false,
        git_exposed: true,
        ..SiteState::default()
    };
    let first = history::scan_through_pipeline(&pipeline, "default", DOMAIN, &broken, None).await;
    let mut spec = history::spec(DOMAIN);
    spec.trigger = Trigger::PostDeploy;
    let better = SiteState {
        csp: false,
        git_exposed: false,
        cert_days_left: 10,
        ..SiteState::default()
    };
    let second =
        history::scan_spec_through_pipeline(&pipeline, "default", spec, &better, None).await;
    let failed = history::scan_through_pipeline(
        &pipeline,
        "default",
        DOMAIN,
        &better,
        Some("the target did not answer"),
    )
    .await;
    app.caught_up().await;
    Seeded {
        first,
        second,
        failed,
    }
}

fn fingerprint_of(findings: &Value, rule: &str) -> String {
    findings["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {findings}"))["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn scan_reads_list_filter_page_and_explain(app: TestApp) {
    let s = seed(&app).await;
    let reader = key(&app, "default", &[Scope::ScanRead]).await;

    // List: newest first, filters, cursor pages.
    let all = get_ok(&app, "/api/v1/scans").await;
    let ids: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            s.failed.to_string(),
            s.second.to_string(),
            s.first.to_string()
        ]
    );
    assert_eq!(all["next_cursor"], Value::Null);
    let page = get_ok(&app, "/api/v1/scans?limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = get_ok(&app, &format!("/api/v1/scans?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["items"][0]["id"], s.first.to_string());
    assert_eq!(rest["next_cursor"], Value::Null);
    let failed = get_ok(&app, "/api/v1/scans?status=failed").await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
    let post_deploy = get_ok(&app, "/api/v1/scans?trigger=post_deploy").await;
    assert_eq!(post_deploy["items"][0]["id"], s.second.to_string());
    let by_domain = get_ok(
        &app,
        &format!("/api/v1/scans?domain={}", DOMAIN.to_uppercase()),
    )
    .await;
    assert_eq!(by_domain["items"].as_array().unwrap().len(), 3);
    let nothing = get_ok(&app, "/api/v1/scans?domain=elsewhere.example").await;
    assert!(nothing["items"].as_array().unwrap().is_empty());
    for bad in ["limit=0", "limit=101"] {
        problem(
            get(&app, &format!("/api/v1/scans?{bad}"), &app.admin_key).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    for bad in ["status=exploded", "colour=blue", "limit=many", "cursor=zz"] {
        problem(
            get(&app, &format!("/api/v1/scans?{bad}"), &app.admin_key).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
    }
    problem(
        get(&app, "/api/v1/scans", "vtg_nope").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // Status: terminal, so no Retry-After.
    let (status, body, headers) = call(
        &app,
        Method::GET,
        &format!("/api/v1/scans/{}/status", s.first),
        &reader,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["terminal"], true);
    assert!(!headers.contains_key("retry-after"));
    problem(
        get(&app, "/api/v1/scans/not-a-scan/status", &reader).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Findings: highest priority first, filters, one finding, time travel.
    let findings = get_ok(&app, &format!("/api/v1/scans/{}/findings", s.first)).await;
    assert_eq!(
        findings["count"],
        findings["items"].as_array().unwrap().len()
    );
    let git = fingerprint_of(&findings, GIT);
    assert_eq!(
        findings["items"][0]["fingerprint"], git,
        "highest priority first"
    );
    assert!(
        findings["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["triage"] == "open")
    );
    let high = get_ok(
        &app,
        &format!("/api/v1/scans/{}/findings?severity=high", s.first),
    )
    .await;
    assert!(
        high["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "high")
    );
    assert!(
        high["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == GIT)
    );
    let headers_only = get_ok(
        &app,
        &format!("/api/v1/scans/{}/findings?category=headers", s.first),
    )
    .await;
    assert!(
        headers_only["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["category"] == "headers")
            && headers_only["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["rule_id"] == CSP)
    );
    let none_then = get_ok(&app, &format!("/api/v1/scans/{}/findings?as_of=1", s.first)).await;
    assert_eq!(
        none_then["count"], 0,
        "at position 1 the scan had not completed"
    );
    problem(
        get(
            &app,
            &format!("/api/v1/scans/{}/findings?as_of=yesterday", s.first),
            &reader,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    problem(
        get(
            &app,
            &format!("/api/v1/scans/{}/findings?severity=dire", s.first),
            &reader,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    let one = get_ok(&app, &format!("/api/v1/scans/{}/findings/{git}", s.first)).await;
    assert_eq!(one["rule_id"], GIT);
    assert!(
        one["recommended_fix"]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    problem(
        get(
            &app,
            &format!("/api/v1/scans/{}/findings/{}", s.first, "ab".repeat(32)),
            &reader,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Summary with the post_deploy gate.
    let summary = get_ok(&app, &format!("/api/v1/scans/{}/summary", s.first)).await;
    assert_eq!(
        summary["gate"],
        Value::Null,
        "only post_deploy scans are gated"
    );
    assert!(summary["score"].as_u64().is_some_and(|s| s < 100));
    assert!(summary["grade"].is_string());
    let gated = get_ok(&app, &format!("/api/v1/scans/{}/summary", s.second)).await;
    assert_eq!(gated["diff"]["fixed"], 1, "the .git exposure was fixed");
    assert_eq!(gated["gate"]["decision"], "pass", "{gated}");
    let failed_summary = get_ok(&app, &format!("/api/v1/scans/{}/summary", s.failed)).await;
    assert_eq!(failed_summary["status"], "failed");

    // Observations and history.
    let observations = get_ok(&app, &format!("/api/v1/scans/{}/observations", s.first)).await;
    let count = observations["items"].as_array().unwrap().len();
    assert!(count >= 3, "{observations}");
    let http = get_ok(
        &app,
        &format!("/api/v1/scans/{}/observations?probe=http", s.first),
    )
    .await;
    let http_items = http["items"].as_array().unwrap();
    assert!(!http_items.is_empty() && http_items.len() < count);
    assert!(http_items.iter().all(|o| o["probe"] == "http"));
    problem(
        get(
            &app,
            &format!("/api/v1/scans/{}/observations?probe=ftp", s.first),
            &reader,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    let history = get_ok(&app, &format!("/api/v1/scans/{}/history", s.first)).await;
    let types: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "ScanRequested",
            "ScanStarted",
            "ScanFinalizing",
            "ScanCompleted"
        ]
    );

    // Compare: the .git finding was fixed between the two.
    let compared = get_ok(
        &app,
        &format!(
            "/api/v1/scans/compare?scan_a={}&scan_b={}",
            s.first, s.second
        ),
    )
    .await;
    assert_eq!(compared["same_target"], true);
    assert!(
        compared["fixed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == GIT)
    );
    assert!(
        compared["unchanged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == CSP)
    );
    problem(
        get(
            &app,
            &format!("/api/v1/scans/compare?scan_a={}", s.first),
            &reader,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    problem(
        get(
            &app,
            &format!(
                "/api/v1/scans/compare?scan_a={}&scan_b={}",
                s.first,
                uuid::Uuid::nil()
            ),
            &reader,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Domains: latest (now and as it stood), history with a cursor.
    let latest = get_ok(&app, &format!("/api/v1/domains/{DOMAIN}/latest")).await;
    assert_eq!(latest["scan_id"], s.second.to_string());
    let then = get_ok(
        &app,
        &format!(
            "/api/v1/domains/{DOMAIN}/latest?as_of={}",
            latest["position"].as_u64().unwrap() - 1
        ),
    )
    .await;
    assert_eq!(then["scan_id"], s.first.to_string());
    problem(
        get(&app, "/api/v1/domains/never.example/latest", &reader).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let domain_history = get_ok(&app, &format!("/api/v1/domains/{DOMAIN}/history?limit=1")).await;
    assert_eq!(domain_history["items"][0]["scan_id"], s.second.to_string());
    let cursor = domain_history["next_cursor"].as_str().unwrap();
    let older = get_ok(
        &app,
        &format!("/api/v1/domains/{DOMAIN}/history?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(older["items"][0]["scan_id"], s.first.to_string());

    // A key without scan:read is refused everywhere here.
    let auditor = key(&app, "default", &[Scope::AuditRead]).await;
    for path in [
        "/api/v1/scans".to_owned(),
        format!("/api/v1/scans/{}/findings", s.first),
        format!("/api/v1/scans/{}/summary", s.first),
        format!("/api/v1/domains/{DOMAIN}/latest"),
    ] {
        problem(
            get(&app, &path, &auditor).await,
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        );
    }
    app.stop().await;
}

async fn scan_commands_cancel_and_delete_with_their_conflicts(app: TestApp) {
    let s = seed(&app).await;
    let writer = key(&app, "default", &[Scope::ScanWrite, Scope::ScanRead]).await;
    let reader = key(&app, "default", &[Scope::ScanRead]).await;
    // A queued scan (no workers run in this app).
    let (status, created, _) = call(
        &app,
        Method::POST,
        "/api/v1/scans",
        &writer,
        Some(json!({ "target": "https://example.com" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let queued = created["id"].as_str().unwrap().to_owned();
    let (status, body, headers) = call(
        &app,
        Method::GET,
        &format!("/api/v1/scans/{queued}/status"),
        &reader,
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("queued"))
    );
    assert_eq!(
        headers["retry-after"], "2",
        "pending work says when to poll again"
    );

    // Deleting is refused while the scan is queued.
    problem(
        send(
            &app,
            Method::DELETE,
            &format!("/api/v1/scans/{queued}"),
            &writer,
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "scan_active",
    );
    // Cancel: a reader may not; then it works once and is 409 after.
    let cancel = |key: String, body: Option<Value>| {
        let path = format!("/api/v1/scans/{queued}/cancel");
        let app = &app;
        async move { send(app, Method::POST, &path, &key, body).await }
    };
    problem(
        cancel(reader.clone(), None).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let (status, cancelled) =
        cancel(writer.clone(), Some(json!({ "reason": "wrong target" }))).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let again = cancel(writer.clone(), None).await;
    assert_eq!(again.0, StatusCode::CONFLICT, "{}", again.1);
    let completed = send(
        &app,
        Method::POST,
        &format!("/api/v1/scans/{}/cancel", s.first),
        &writer,
        None,
    )
    .await;
    assert_eq!(
        completed.0,
        StatusCode::CONFLICT,
        "a completed scan cannot be cancelled"
    );
    problem(
        send(
            &app,
            Method::POST,
            &format!("/api/v1/scans/{}/cancel", uuid::Uuid::nil()),
            &writer,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Delete a completed scan: 204, then it is gone from reads and lists.
    let (status, _, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/scans/{}", s.failed),
        &writer,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.caught_up().await;
    problem(
        get(&app, &format!("/api/v1/scans/{}", s.failed), &reader).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    problem(
        get(
            &app,
            &format!("/api/v1/scans/{}/summary", s.failed),
            &reader,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let listed = get_ok(&app, "/api/v1/scans?status=failed").await;
    assert!(listed["items"].as_array().unwrap().is_empty());
    app.stop().await;
}

async fn triage_and_comments_carry_across_scans(app: TestApp) {
    let s = seed(&app).await;
    let triager = key(&app, "default", &[Scope::TriageWrite, Scope::ScanRead]).await;
    let reader = key(&app, "default", &[Scope::ScanRead]).await;
    let findings = get_ok(&app, &format!("/api/v1/scans/{}/findings", s.first)).await;
    let csp = fingerprint_of(&findings, CSP);
    let patch = |key: &str, fingerprint: &str, body: Value| {
        let path = format!("/api/v1/findings/{fingerprint}/state");
        let key = key.to_owned();
        let app = &app;
        async move { send(app, Method::PATCH, &path, &key, Some(body)).await }
    };
    let (status, set) = patch(
        &triager,
        &csp,
        json!({ "state": "accepted_risk", "note": "  legacy app, CSP planned for Q3  " }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["note"], "legacy app, CSP planned for Q3");
    // The same decision again is answered alike but appends nothing; a control character in a note
    // is refused.
    app.caught_up().await;
    let head = app.services.store().head_position().await.unwrap();
    for _ in 0..3 {
        let (status, _) = patch(&triager, &csp, json!({ "state": "accepted_risk" })).await;
        assert_eq!(status, StatusCode::OK);
    }
    app.caught_up().await;
    assert_eq!(app.services.store().head_position().await.unwrap(), head);
    problem(
        patch(
            &triager,
            &csp,
            json!({ "state": "fixed", "note": "done\u{1b}[2J" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    problem(
        patch(&reader, &csp, json!({ "state": "fixed" })).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    problem(
        patch(&triager, &csp, json!({ "state": "ignored" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    problem(
        patch(&triager, &"ab".repeat(32), json!({ "state": "fixed" })).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    problem(
        patch(&triager, "not-hex", json!({ "state": "fixed" })).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    app.caught_up().await;
    // The triage shows on every scan's findings and in the fingerprint's state, and `as_of` an
    // earlier position shows it as it was.
    let second = get_ok(
        &app,
        &format!("/api/v1/scans/{}/findings?triage=accepted_risk", s.second),
    )
    .await;
    assert_eq!(second["items"][0]["fingerprint"], csp);
    // The first scan's findings, read before the decision, are not answered as they were then.
    let first = get_ok(&app, &format!("/api/v1/scans/{}/findings", s.first)).await;
    assert_eq!(first, {
        let mut expected = findings.clone();
        for item in expected["items"].as_array_mut().unwrap() {
            if item["fingerprint"] == csp {
                item["triage"] = json!("accepted_risk");
            }
        }
        expected
    });
    let state = get_ok(&app, &format!("/api/v1/findings/{csp}")).await;
    assert_eq!(state["triage"], "accepted_risk");
    assert_eq!(state["times_seen"], 2);
    let before = get_ok(
        &app,
        &format!(
            "/api/v1/findings/{csp}?as_of={}",
            state["position"].as_u64().unwrap() - 1
        ),
    )
    .await;
    assert_eq!(before["triage"], "open");

    // Comments: add, list oldest first, delete, and the errors.
    let comments = format!("/api/v1/findings/{csp}/comments");
    let (status, first, _) = call(
        &app,
        Method::POST,
        &comments,
        &triager,
        Some(json!({ "body": "Owner: web team" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, _, _) = call(
        &app,
        Method::POST,
        &comments,
        &triager,
        Some(json!({ "body": "Ticket WEB-12" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, blank, _) = call(
        &app,
        Method::POST,
        &comments,
        &triager,
        Some(json!({ "body": "   " })),
    )
    .await;
    problem(
        (status, blank),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    app.caught_up().await;
    let listed = get_ok(&app, &comments).await;
    let bodies: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, vec!["Owner: web team", "Ticket WEB-12"]);
    let one = format!("{comments}/{}", first["id"].as_str().unwrap());
    let (status, _, _) = call(&app, Method::DELETE, &one, &triager, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body, _) = call(&app, Method::DELETE, &one, &triager, None).await;
    problem((status, body), StatusCode::NOT_FOUND, "not_found");
    app.caught_up().await;
    assert_eq!(
        get_ok(&app, &comments).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.stop().await;
}

async fn notifications_dashboard_compliance_and_audit_answer_from_read_models(app: TestApp) {
    let s = seed(&app).await;
    let reader = key(&app, "default", &[Scope::ScanRead]).await;

    // Notifications: new high finding, expiring certificate, failed scan.
    let listed = get_ok(&app, "/api/v1/notifications").await;
    let items = listed["items"].as_array().unwrap();
    assert!(items.len() >= 3, "{listed}");
    let unread = get_ok(&app, "/api/v1/notifications/unread-count").await["unread"]
        .as_i64()
        .unwrap();
    assert_eq!(unread as usize, items.len());
    let first_id = items[0]["id"].as_str().unwrap().to_owned();
    let (status, read, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/notifications/{first_id}/read"),
        &reader,
        None,
    )
    .await;
    assert_eq!(
        (status, read["read"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    app.caught_up().await;
    let unread_only = get_ok(&app, "/api/v1/notifications?unread_only=true").await;
    assert_eq!(
        unread_only["items"].as_array().unwrap().len(),
        items.len() - 1
    );
    problem(
        send(
            &app,
            Method::PATCH,
            &format!("/api/v1/notifications/{}/read", uuid::Uuid::nil()),
            &reader,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    problem(
        get(&app, "/api/v1/notifications?limit=201", &reader).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, _, _) = call(
        &app,
        Method::PATCH,
        "/api/v1/notifications/read-all",
        &reader,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.caught_up().await;
    assert_eq!(
        get_ok(&app, "/api/v1/notifications/unread-count").await["unread"],
        0
    );

    // Dashboard.
    let stats = get_ok(&app, "/api/v1/dashboard/stats").await;
    assert_eq!(stats["scans_total"], 3);
    assert_eq!(stats["domains"], 1);
    assert_eq!(stats["unread_notifications"], 0);
    let trends = get_ok(&app, "/api/v1/dashboard/trends?days=7").await;
    assert!(!trends["items"].as_array().unwrap().is_empty(), "{trends}");
    let domain_trends = get_ok(&app, &format!("/api/v1/dashboard/trends?domain={DOMAIN}")).await;
    assert_eq!(domain_trends["items"][0]["domain"], DOMAIN);
    problem(
        get(&app, "/api/v1/dashboard/trends?days=0", &reader).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let center = get_ok(&app, "/api/v1/dashboard/command-center").await;
    let health = center["health_score"].as_u64().unwrap();
    assert!((5..100).contains(&health), "{center}");
    assert!(!center["top_priorities"].as_array().unwrap().is_empty());
    // Krafter's period: the last seven days by default, or the dates asked for.
    let from = chrono::DateTime::parse_from_rfc3339(center["date_from"].as_str().unwrap()).unwrap();
    let to = chrono::DateTime::parse_from_rfc3339(center["date_to"].as_str().unwrap()).unwrap();
    assert_eq!(to - from, chrono::Duration::days(7));
    assert!(
        center["period"]["scans_completed"].as_u64().unwrap() >= 1,
        "{center}"
    );
    let long_ago = get_ok(
        &app,
        "/api/v1/dashboard/command-center?date_from=2020-01-01&date_to=2020-02-01T00:00:00Z",
    )
    .await;
    assert_eq!(long_ago["period"]["scans_completed"], 0);
    assert_eq!(long_ago["health_score"], center["health_score"]);
    for bad in [
        "date_from=yesterday",
        "date_from=2020-02-01&date_to=2020-01-01",
        "date_from=2020-01-01&date_to=2022-01-01",
    ] {
        problem(
            get(
                &app,
                &format!("/api/v1/dashboard/command-center?{bad}"),
                &reader,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }

    // Compliance.
    let frameworks = get_ok(&app, "/api/v1/compliance/frameworks").await;
    assert_eq!(frameworks["items"].as_array().unwrap().len(), 5);
    let coverage = get_ok(
        &app,
        &format!("/api/v1/compliance/coverage?scan_id={}", s.first),
    )
    .await;
    assert_eq!(coverage["items"].as_array().unwrap().len(), 5);
    let framework = frameworks["items"][0]["id"].as_str().unwrap();
    let one = get_ok(
        &app,
        &format!(
            "/api/v1/compliance/coverage?scan_id={}&framework={framework}",
            s.first
        ),
    )
    .await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    problem(
        get(
            &app,
            &format!(
                "/api/v1/compliance/coverage?scan_id={}&framework=hipaa",
                s.first
            ),
            &reader,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    problem(
        get(
            &app,
            &format!("/api/v1/compliance/coverage?scan_id={}", uuid::Uuid::nil()),
            &reader,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Audit: needs audit:read; filters; paging; the chain verifies.
    problem(
        get(&app, "/api/v1/audit/events", &reader).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let auditor = key(&app, "default", &[Scope::AuditRead]).await;
    let (status, trail) = get(&app, "/api/v1/audit/events?action=ScanRequested", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(trail["items"].as_array().unwrap().len(), 3);
    assert!(
        trail["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["request_id"].is_string() && e["actor"] == "key-test")
    );
    let (_, page) = get(&app, "/api/v1/audit/events?limit=2", &auditor).await;
    let after = page["next_cursor"].as_u64().unwrap();
    let (_, next) = get(
        &app,
        &format!("/api/v1/audit/events?limit=2&after={after}"),
        &auditor,
    )
    .await;
    assert!(next["items"][0]["position"].as_u64().unwrap() > after);
    let (status, verified) = get(&app, "/api/v1/audit/verify", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["events_checked"].as_u64().unwrap() > 10);
    // The same question asked again after the read models moved gets the new answer, not the one
    // kept from before.
    let around_now = format!(
        "/api/v1/dashboard/command-center?date_from={}&date_to={}",
        from.format("%Y-%m-%d"),
        (to + chrono::Duration::days(1)).format("%Y-%m-%d")
    );
    let before = get_ok(&app, &around_now).await;
    assert_eq!(get_ok(&app, &around_now).await, before);
    history::scan_through_pipeline(
        &app.services.pipeline,
        "default",
        DOMAIN,
        &SiteState::default(),
        None,
    )
    .await;
    app.caught_up().await;
    let after = get_ok(&app, &around_now).await;
    assert_eq!(
        after["period"]["scans_completed"].as_u64().unwrap(),
        before["period"]["scans_completed"].as_u64().unwrap() + 1,
        "{before} then {after}"
    );
    app.stop().await;
}

async fn keys_are_issued_once_listed_without_secrets_and_revoked(app: TestApp) {
    let (status, issued, _) = call(
        &app,
        Method::POST,
        "/api/v1/keys",
        &app.admin_key,
        Some(json!({ "name": "ci", "scopes": ["scan:read", "scan:write"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    let id = issued["id"].as_str().unwrap().to_owned();
    let me = get(&app, "/api/v1/keys/me", &token).await.1;
    assert_eq!(me["id"], id);
    assert_eq!(me["scopes"], json!(["scan:read", "scan:write"]));
    problem(
        get(&app, "/api/v1/keys", &token).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let listed = get_ok(&app, "/api/v1/keys").await;
    let text = listed.to_string();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(
        !text.contains(token.rsplit('_').next().unwrap()),
        "no secret is listed"
    );
    assert!(!text.contains("sha256"), "no secret hash is listed");
    for bad in [
        json!({ "name": "x", "scopes": ["root"] }),
        json!({ "name": "x", "scopes": [] }),
        json!({ "name": "", "scopes": ["scan:read"] }),
        json!({ "scopes": ["scan:read"] }),
    ] {
        let (status, body, _) = call(
            &app,
            Method::POST,
            "/api/v1/keys",
            &app.admin_key,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad} gave {body}"
        );
    }
    // Revoke: 204, then the token no longer works.
    let (status, _, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/keys/{id}"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    problem(
        get(&app, "/api/v1/keys/me", &token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // The last admin key cannot be revoked.
    let admin_id = get_ok(&app, "/api/v1/keys/me").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/keys/{admin_id}"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/keys/{}", uuid::Uuid::nil()),
        &app.admin_key,
        None,
    )
    .await;
    problem((status, body), StatusCode::NOT_FOUND, "not_found");
    app.stop().await;
}

async fn another_tenants_resources_are_not_found(app: TestApp) {
    let s = seed(&app).await;
    let findings = get_ok(&app, &format!("/api/v1/scans/{}/findings", s.first)).await;
    let csp = fingerprint_of(&findings, CSP);
    let notification = get_ok(&app, "/api/v1/notifications").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let own_key_id = get_ok(&app, "/api/v1/keys/me").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rival = key(&app, "rival", &[Scope::Admin]).await;
    for path in [
        format!("/api/v1/scans/{}", s.first),
        format!("/api/v1/scans/{}/status", s.first),
        format!("/api/v1/scans/{}/summary", s.first),
        format!("/api/v1/scans/{}/findings", s.first),
        format!("/api/v1/scans/{}/findings/{csp}", s.first),
        format!("/api/v1/scans/{}/observations", s.first),
        format!("/api/v1/scans/{}/history", s.first),
        format!(
            "/api/v1/scans/compare?scan_a={}&scan_b={}",
            s.first, s.second
        ),
        format!("/api/v1/domains/{DOMAIN}/latest"),
        format!("/api/v1/findings/{csp}"),
        format!("/api/v1/findings/{csp}/comments"),
        format!("/api/v1/compliance/coverage?scan_id={}", s.first),
    ] {
        problem(
            get(&app, &path, &rival).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/v1/scans/{}/cancel", s.first),
            None,
        ),
        (Method::DELETE, format!("/api/v1/scans/{}", s.first), None),
        (
            Method::PATCH,
            format!("/api/v1/findings/{csp}/state"),
            Some(json!({ "state": "fixed" })),
        ),
        (
            Method::PATCH,
            format!("/api/v1/notifications/{notification}/read"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/keys/{own_key_id}"), None),
    ] {
        let (status, problem_body, _) = call(&app, method, &path, &rival, body).await;
        problem((status, problem_body), StatusCode::NOT_FOUND, "not_found");
    }
    // The rival's own lists are empty.
    for path in ["/api/v1/scans", "/api/v1/notifications"] {
        let (_, body) = get(&app, path, &rival).await;
        assert!(
            body["items"].as_array().unwrap().is_empty(),
            "{path}: {body}"
        );
    }
    assert_eq!(
        get(&app, "/api/v1/dashboard/stats", &rival).await.1["scans_total"],
        0
    );
    app.stop().await;
}

async fn scans_are_created_in_batches_and_reused_while_young_enough(app: TestApp) {
    let s = seed(&app).await;
    let post = |path: &'static str, body: Value, idempotency: Option<&'static str>| {
        let app = &app;
        async move {
            let mut request = app
                .client
                .post(app.url(path))
                .bearer_auth(&app.admin_key)
                .json(&body);
            if let Some(key) = idempotency {
                request = request.header("idempotency-key", key);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let replayed = response.headers().contains_key("idempotent-replayed");
            (status, response.json::<Value>().await.unwrap(), replayed)
        }
    };
    // The latest completed scan with the same target and options is reused (the trigger is not an
    // option); other options, or no max_age_seconds, start a new scan.
    let same = json!({ "target": DOMAIN, "ports": [443], "max_age_seconds": 3600 });
    let (status, reused, _) = post("/api/v1/scans", same, None).await;
    assert_eq!(status, StatusCode::OK, "{reused}");
    assert_eq!(reused["id"], s.second.to_string());
    assert_eq!(reused["reused"], true);
    let (status, fresh, _) = post(
        "/api/v1/scans",
        json!({ "target": "example.com", "max_age_seconds": 3600 }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{fresh}");
    assert_eq!(fresh["status"], "queued");
    let (status, invalid, _) = post(
        "/api/v1/scans",
        json!({ "target": "example.com", "max_age_seconds": 0 }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid["errors"][0]["field"], "max_age_seconds");

    // A batch: each item on its own, results in order.
    let batch = json!({ "scans": [
        { "target": "example.com" },
        { "target": "intranet-app.example" },
        { "target": DOMAIN, "ports": [443], "max_age_seconds": 600 },
        { "target": "example.org", "ports": [0] },
    ]});
    let before = app.services.store().head_position().await.unwrap();
    let (status, results, replayed) =
        post("/api/v1/scans/batch", batch.clone(), Some("batch-1")).await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert!(!replayed);
    let statuses: Vec<u64> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![202, 422, 200, 422]);
    assert_eq!(
        (results["accepted"].as_u64(), results["refused"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(results["results"][1]["error"]["code"], "target_refused");
    assert_eq!(results["results"][3]["error"]["code"], "validation_failed");
    assert_eq!(results["results"][2]["scan"]["id"], s.second.to_string());
    // The same batch under the same key is answered again, and nothing more is appended.
    app.caught_up().await;
    let head = app.services.store().head_position().await.unwrap();
    assert!(head > before);
    let (status, again, replayed) = post("/api/v1/scans/batch", batch, Some("batch-1")).await;
    assert_eq!((status, replayed), (StatusCode::OK, true));
    assert_eq!(again, results);
    app.caught_up().await;
    assert_eq!(app.services.store().head_position().await.unwrap(), head);
    for bad in [
        json!({ "scans": [] }),
        json!({ "scans": vec![json!({ "target": "example.com" }); 51] }),
    ] {
        let (status, body, _) = post("/api/v1/scans/batch", bad, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["errors"][0]["field"], "scans");
    }
    app.stop().await;
}

async fn rate_limits_refuse_with_retry_after_per_key(app: TestApp) {
    let other = key(&app, "default", &[Scope::ScanRead, Scope::ScanWrite]).await;
    let response = app
        .client
        .get(app.url("/api/v1/scans"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let header = |r: &reqwest::Response, name: &str| -> u64 {
        r.headers()[name].to_str().unwrap().parse().unwrap()
    };
    assert_eq!(header(&response, "x-ratelimit-limit"), 10);
    assert_eq!(header(&response, "x-ratelimit-remaining"), 9);
    assert!(header(&response, "x-ratelimit-reset") >= 1);

    // Scan creation has a bucket of one.
    let create = |key: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/scans"))
                .bearer_auth(key)
                .json(&json!({ "target": "example.com" }))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        create(app.admin_key.clone()).await.status(),
        StatusCode::ACCEPTED
    );
    let refused = create(app.admin_key.clone()).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&refused, "retry-after") >= 1);
    assert_eq!(header(&refused, "x-ratelimit-remaining"), 0);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Another key has buckets of its own.
    assert_eq!(create(other).await.status(), StatusCode::ACCEPTED);

    // Presenting a real key's id with a wrong secret spends the caller's own (address) bucket, not
    // the key's: a flood of forgeries cannot lock the owner out, nor read the owner's usage.
    let admin_id = app.admin_key.split('_').nth(2).unwrap().to_owned();
    let forged = format!("vtg_default_{admin_id}_{}", "0".repeat(64));
    let mut forged_statuses = Vec::new();
    for _ in 0..30 {
        let r = app
            .client
            .get(app.url("/api/v1/keys/me"))
            .header("x-api-key", &forged)
            .send()
            .await
            .unwrap();
        forged_statuses.push(r.status());
    }
    assert_eq!(forged_statuses[0], StatusCode::UNAUTHORIZED);
    assert!(
        forged_statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{forged_statuses:?}"
    );
    let owner = app
        .client
        .get(app.url("/api/v1/keys/me"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        owner.status(),
        StatusCode::OK,
        "the owner is not locked out"
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vantage_auth_failures_total "))
        .expect("failed authentications are counted")
        .parse()
        .unwrap();
    assert!(failures >= 30, "{failures}");

    // The general bucket runs out too; liveness is never limited.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = app
            .client
            .get(app.url("/api/v1/scans"))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(!health.headers().contains_key("x-ratelimit-limit"));
    app.stop().await;
}

/// Every authenticated operation of the document: 401 without a key; 403 for a key of the right
/// tenant that lacks the operation's scope (sent with the documented request example, so the body is
/// valid and the scope is what is refused); and, where documented, 400 for an unknown query parameter,
/// 415 for a body that is not JSON and 413 for one over the limit. Every reply is checked against the
/// document.
async fn every_operation_refuses_what_it_documents(app: TestApp) {
    let doc: Value = serde_json::from_str(vantage_api::openapi_document()).unwrap();
    let reader = key(&app, "default", &[Scope::ScanRead]).await;
    let auditor = key(&app, "default", &[Scope::AuditRead]).await;
    let admin = app.admin_key.clone();
    let (mut scoped, mut bodies, mut queries, mut tenant_wide) = (0, 0, 0, 0);
    for (method, path, op, body) in documented_operations(&doc) {
        let what = format!("{method} {path}");
        let mut request = app.client.request(method.clone(), app.url(&path));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let anonymous = request.send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{what}");
        let content_type = anonymous.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let problem_body: Value = anonymous.json().await.unwrap();
        vantage_tests::contract::check(method.as_str(), &path, 401, &content_type, &problem_body)
            .unwrap();
        if let Some(scope) = op["x-required-scope"].as_str() {
            let lacking = if scope == "scan:read" {
                &auditor
            } else {
                &reader
            };
            let (status, refused) = send(&app, method.clone(), &path, lacking, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {refused}");
            assert_eq!(refused["code"], "insufficient_scope");
            scoped += 1;
            if op["x-tenant-wide"] == true {
                // The scope it needs, but only for one project: refused, for the answer spans all.
                let limited = project_key(&app, scope.parse().unwrap()).await;
                let (status, refused) =
                    send(&app, method.clone(), &path, &limited, body.clone()).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {refused}");
                assert_eq!(refused["code"], "project_limited", "{what}");
                tenant_wide += 1;
            }
        }
        let documents = |status: &str| op["responses"].get(status).is_some();
        if documents("400")
            && op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["in"] == "query")
        {
            let separator = if path.contains('?') { '&' } else { '?' };
            let bogus = format!("{path}{separator}bogus=1");
            let (status, refused) = send(&app, method.clone(), &bogus, &admin, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {refused}");
            assert_eq!(refused["code"], "invalid_query");
            queries += 1;
        }
        if body.is_some() && documents("415") && documents("413") {
            let (status, refused) = raw(
                &app,
                method.clone(),
                &path,
                &admin,
                "text/plain",
                b"{}".to_vec(),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{what}: {refused}"
            );
            let huge = format!(
                "{{\"pad\": \"{}\"}}",
                "x".repeat(vantage_api::MAX_BODY_BYTES)
            );
            let (status, refused) = raw(
                &app,
                method.clone(),
                &path,
                &admin,
                "application/json",
                huge.into_bytes(),
            )
            .await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{what}: {refused}");
            bodies += 1;
        }
    }
    assert!(scoped >= 30, "only {scoped} operations checked for scope");
    assert!(
        tenant_wide >= 20,
        "only {tenant_wide} operations checked for spanning every project"
    );
    assert!(
        queries >= 10,
        "only {queries} operations checked for their query"
    );
    assert!(
        bodies >= 5,
        "only {bodies} operations checked for their body"
    );
    app.stop().await;
}

/// Once a key's bucket is empty (here it holds one request and refills once a minute), every
/// authenticated operation answers 429 with Retry-After, as each documents.
async fn every_operation_answers_429_once_the_bucket_is_empty(app: TestApp) {
    let doc: Value = serde_json::from_str(vantage_api::openapi_document()).unwrap();
    for _ in 0..2 {
        app.client
            .get(app.url("/api/v1/keys/me"))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
    }
    let operations = documented_operations(&doc);
    for (method, path, _, body) in &operations {
        let (status, refused, headers) =
            call(&app, method.clone(), path, &app.admin_key, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "{method} {path}: {refused}"
        );
        assert!(headers.contains_key("retry-after"), "{method} {path}");
    }
    assert!(operations.len() >= 35);
    app.stop().await;
}

mod limited {
    vantage_tests::app_test_per_store!(spawn_rate_limited; rate_limits_refuse_with_retry_after_per_key);
    use super::rate_limits_refuse_with_retry_after_per_key;
}

mod exhausted {
    vantage_tests::app_test_per_store!(spawn_one_request_a_minute;
        every_operation_answers_429_once_the_bucket_is_empty);
    use super::every_operation_answers_429_once_the_bucket_is_empty;
}

vantage_tests::app_test_per_store!(spawn;
    every_operation_refuses_what_it_documents,
    scans_are_created_in_batches_and_reused_while_young_enough,
    scan_reads_list_filter_page_and_explain,
    scan_commands_cancel_and_delete_with_their_conflicts,
    triage_and_comments_carry_across_scans,
    notifications_dashboard_compliance_and_audit_answer_from_read_models,
    keys_are_issued_once_listed_without_secrets_and_revoked,
    another_tenants_resources_are_not_found,
);
