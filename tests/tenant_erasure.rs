//! Erasing a tenant, end to end over a real socket: what its people wrote (a triage note, a comment,
//! a key's name) and its content samples are sealed from the start, so nothing stored — log, read
//! models, the raw database — ever holds them in the clear; `DELETE /api/v1/tenant` takes a
//! confirmation token, then destroys the tenant's keys, after which its text and samples open to
//! nothing, its API keys authenticate nothing, another tenant's data is untouched, and the chain and
//! a replay of the read models still check out.

use reqwest::StatusCode;
use serde_json::json;
use vantage_app::{ContentRead, ERASED_TEXT, SEALED_PREFIX};
use vantage_domain::content::ShredReason;
use vantage_domain::tenant::TenantId;
use vantage_tests::TestApp;
use vantage_tests::lab::{Lab, Posture};

const NOTE: &str = "Alice Example accepted this, call 555-0100";
const COMMENT: &str = "Bob Example's private remark";
const KEY_NAME: &str = "Carol Example laptop";
const OTHER_COMMENT: &str = "the other tenant's remark";
const OTHER_KEY_NAME: &str = "Dave Other workstation";

/// What one tenant holds: a completed scan that kept samples, a triaged finding with a comment, a
/// named key, a webhook and a schedule.
struct Holdings {
    scan: String,
    fingerprint: String,
}

async fn write_as(
    app: &TestApp,
    admin: &str,
    lab: &Lab,
    comment: &str,
    key_name: &str,
) -> Holdings {
    use reqwest::Method;
    let site = lab.site(Posture::PlainHttp).name();
    let (status, named) = app
        .call(
            Method::POST,
            "/api/v1/keys",
            admin,
            Some(json!({ "name": key_name, "scopes": ["scan:read"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{named}");
    let (status, created) = app
        .call(
            Method::POST,
            "/api/v1/scans",
            admin,
            Some(json!({ "target": site, "profile": "quick", "include_content_sample": true })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let scan = created["id"].as_str().unwrap().to_owned();
    let scan_path = format!("/api/v1/scans/{scan}");
    vantage_tests::process::eventually("the scan completes", || {
        let scan_path = scan_path.clone();
        let admin = admin.to_owned();
        async move {
            let (_, view) = app.call(Method::GET, &scan_path, &admin, None).await;
            view["status"] == "completed"
        }
    })
    .await;
    app.caught_up().await;
    let (_, findings) = app
        .call(
            Method::GET,
            &format!("/api/v1/scans/{scan}/findings"),
            admin,
            None,
        )
        .await;
    let fingerprint = findings["items"][0]["fingerprint"]
        .as_str()
        .unwrap_or_else(|| panic!("the plain-HTTP site has findings: {findings}"))
        .to_owned();
    let (status, set) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/findings/{fingerprint}/state"),
            admin,
            Some(json!({ "state": "accepted_risk", "note": NOTE })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let (status, added) = app
        .call(
            Method::POST,
            &format!("/api/v1/findings/{fingerprint}/comments"),
            admin,
            Some(json!({ "body": comment })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let (status, hook) = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            admin,
            Some(
                json!({ "url": format!("http://{site}/hook"), "event_filter": ["scan.completed"] }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, schedule) = app
        .call(
            Method::POST,
            "/api/v1/schedules",
            admin,
            Some(json!({ "target": site, "cron": "0 3 1 1 *", "timezone": "UTC" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    app.caught_up().await;
    Holdings { scan, fingerprint }
}

fn assert_absent(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for needle in [
        NOTE,
        COMMENT,
        KEY_NAME,
        OTHER_COMMENT,
        OTHER_KEY_NAME,
        "<p>lab site</p>",
    ] {
        assert!(!text.contains(needle), "{what} holds {needle:?}");
    }
}

async fn erasing_a_tenant_shreds_what_it_wrote(
    app: TestApp,
    lab: &Lab,
    files: Option<&std::path::Path>,
    pg_schema: Option<&str>,
) -> TestApp {
    use reqwest::Method;
    let tenant = TenantId::default_tenant();
    let admin = app.admin_key.clone();
    let ours = write_as(&app, &admin, lab, COMMENT, KEY_NAME).await;
    let other = TenantId::parse("other-org").unwrap();
    let other_admin = app
        .services
        .bootstrap_admin_key(&other, None)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .token
        .expose();
    let theirs = write_as(&app, &other_admin, lab, OTHER_COMMENT, OTHER_KEY_NAME).await;

    // Before: each tenant reads its own text in the clear; nothing stored holds it so.
    let (_, state) = app
        .call(
            Method::GET,
            &format!("/api/v1/findings/{}", ours.fingerprint),
            &admin,
            None,
        )
        .await;
    assert_eq!(state["triage_note"], NOTE, "{state}");
    let comments_path = |h: &Holdings| format!("/api/v1/findings/{}/comments", h.fingerprint);
    let (_, comments) = app
        .call(Method::GET, &comments_path(&ours), &admin, None)
        .await;
    assert_eq!(comments["items"][0]["body"], COMMENT, "{comments}");
    let (_, keys) = app.call(Method::GET, "/api/v1/keys", &admin, None).await;
    assert!(keys.to_string().contains(KEY_NAME), "{keys}");
    for (name, bytes) in vantage_tests::raw_dump(files, pg_schema) {
        assert_absent(&name, &bytes);
    }
    let (_, audit) = app
        .call(Method::GET, "/api/v1/audit/events?limit=200", &admin, None)
        .await;
    assert_absent("the audit trail", audit.to_string().as_bytes());

    // Erasing takes a confirmation token, issued to the asking key only, and a non-admin key
    // cannot ask at all.
    let (status, problem) = app
        .call(Method::DELETE, "/api/v1/tenant", &admin, None)
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{problem}");
    assert_eq!(problem["code"], "confirmation_required");
    let token = problem["confirmation_token"].as_str().unwrap().to_owned();
    assert!(problem["confirmation_expires_at"].is_string(), "{problem}");
    let (status, problem) = app
        .call(
            Method::DELETE,
            "/api/v1/tenant?confirm=vtx_1.forged",
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("not issued"));
    let (status, second_admin) = app
        .call(
            Method::POST,
            "/api/v1/keys",
            &admin,
            Some(json!({ "name": "second admin", "scopes": ["admin"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let second_admin = second_admin["token"].as_str().unwrap().to_owned();
    let with_token = format!("/api/v1/tenant?confirm={token}");
    let (status, _) = app
        .call(Method::DELETE, &with_token, &second_admin, None)
        .await;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_REQUIRED,
        "another key's token"
    );
    let (_, reader) = app
        .call(
            Method::POST,
            "/api/v1/keys",
            &admin,
            Some(json!({ "name": "reader", "scopes": ["scan:read"] })),
        )
        .await;
    let reader = reader["token"].as_str().unwrap().to_owned();
    let (status, _) = app.call(Method::DELETE, &with_token, &reader, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An expired token is refused too, with a fresh one.
    app.clock.advance(chrono::Duration::minutes(6));
    let (status, problem) = app.call(Method::DELETE, &with_token, &admin, None).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("expired"));
    let token = problem["confirmation_token"].as_str().unwrap().to_owned();

    let (status, erased) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tenant?confirm={token}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["tenant"], "default");
    assert_eq!(erased["content_keys_destroyed"], 1, "{erased}");
    assert_eq!(erased["webhooks_deleted"], 1, "{erased}");
    assert_eq!(erased["schedules_deleted"], 1, "{erased}");
    // The bootstrap admin key, the named key, the second admin, the reader.
    assert_eq!(erased["api_keys_revoked"], 4, "{erased}");
    // The personal-data key, the content key, the webhook's secret.
    assert_eq!(erased["secrets_destroyed"], 3, "{erased}");
    assert!(
        erased["idempotency_records_forgotten"].as_u64().unwrap() >= 2,
        "{erased}"
    );
    app.caught_up().await;

    // After: no key of the tenant authenticates.
    for key in [&admin, &second_admin, &reader] {
        let (status, _) = app.call(Method::GET, "/api/v1/keys/me", key, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // What it wrote opens to nothing, in the read models and through the application.
    let vault = app.services.pipeline.vault();
    let doc = app
        .stores
        .read
        .fingerprint(tenant.as_str(), &ours.fingerprint, None)
        .await
        .unwrap()
        .unwrap();
    let sealed_note = doc.triage_note.unwrap();
    assert!(sealed_note.starts_with(SEALED_PREFIX));
    assert_eq!(
        vault
            .open_text(tenant.as_str(), &sealed_note)
            .await
            .unwrap(),
        ERASED_TEXT
    );
    let comments = app
        .stores
        .read
        .comments(tenant.as_str(), &ours.fingerprint)
        .await
        .unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(
        vault
            .open_text(tenant.as_str(), &comments[0].body)
            .await
            .unwrap(),
        ERASED_TEXT
    );
    let keys = app.services.api_keys(&tenant).await.unwrap();
    assert!(
        keys.iter().all(|k| k.revoked && k.name == ERASED_TEXT),
        "{keys:?}"
    );
    assert!(matches!(
        app.services
            .content_samples(&tenant, ours.scan.parse().unwrap())
            .await
            .unwrap(),
        ContentRead::Destroyed {
            reason: Some(ShredReason::TenantErased),
            ..
        }
    ));
    // Nothing can recreate the key: a tombstone is all the secrets table keeps of the tenant.
    assert_eq!(
        app.services
            .secrets
            .secret(tenant.as_str(), "personal-default")
            .await
            .unwrap(),
        Some(Vec::new())
    );
    // A key cannot be issued for the tenant again.
    let refused = app
        .services
        .bootstrap_admin_key(&tenant, None)
        .await
        .unwrap()
        .unwrap();
    assert!(refused.is_none(), "no bootstrap key for an erased tenant");

    // The other tenant is untouched.
    let (_, comments) = app
        .call(Method::GET, &comments_path(&theirs), &other_admin, None)
        .await;
    assert_eq!(comments["items"][0]["body"], OTHER_COMMENT, "{comments}");
    let (_, state) = app
        .call(
            Method::GET,
            &format!("/api/v1/findings/{}", theirs.fingerprint),
            &other_admin,
            None,
        )
        .await;
    assert_eq!(state["triage_note"], NOTE);
    let (_, keys) = app
        .call(Method::GET, "/api/v1/keys", &other_admin, None)
        .await;
    assert!(keys.to_string().contains(OTHER_KEY_NAME), "{keys}");
    let (_, webhooks) = app
        .call(Method::GET, "/api/v1/webhooks", &other_admin, None)
        .await;
    assert_eq!(webhooks["items"].as_array().unwrap().len(), 1, "{webhooks}");
    let content_reader = app
        .services
        .issue_api_key(
            &vantage_app::CommandContext::system(other.clone()),
            "content reader",
            vantage_domain::scope::Scopes::new(vec![vantage_domain::scope::Scope::ContentRead])
                .unwrap(),
        )
        .await
        .unwrap()
        .unwrap()
        .token
        .expose();
    let (status, samples) = app
        .call(
            Method::GET,
            &format!("/api/v1/scans/{}/content-samples", theirs.scan),
            &content_reader,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{samples}");

    // The log is unchanged but for the new events: the chain is whole, and nothing stored holds
    // the text.
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
async fn sqlite_erasing_a_tenant_shreds_what_it_wrote() {
    let lab = Lab::start_with(&[Posture::PlainHttp]).await;
    let t = vantage_tests::SqliteTestStore::new().await;
    let files = t.path().parent().unwrap().to_owned();
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    let app = erasing_a_tenant_shreds_what_it_wrote(app, &lab, Some(&files), None).await;
    app.stop().await;
    vantage_tests::process::assert_verify_and_replay_pass(&files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_erasing_a_tenant_shreds_what_it_wrote() {
    let lab = Lab::start_with(&[Posture::PlainHttp]).await;
    let t = vantage_tests::PgTestStore::new().await;
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    let app = erasing_a_tenant_shreds_what_it_wrote(app, &lab, None, Some(&t.schema)).await;
    app.assert_replay_matches().await;
    app.stop().await;
    t.drop_schema().await;
}
