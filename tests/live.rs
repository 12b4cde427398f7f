//! Live events over server-sent events, through the real router on a real socket, on both stores:
//! a client that disconnects and resumes with `Last-Event-ID` gets exactly what it missed, in log
//! order, while the scan goes on; a scan's stream ends with the verdict; event tokens open their own
//! scan's stream only and not after they expire; the firehose filters by type and tenant; a client
//! that does not read is cut off with a last event saying so instead of being buffered.

use std::time::Duration;

use serde_json::{Value, json};
use vantage_app::{CommandContext, EventGrant, Follow, LiveItem};
use vantage_domain::ids::ScanId;
use vantage_domain::scan::{Scan, ScanCommand};
use vantage_domain::tenant::TenantId;
use vantage_tests::TestApp;
use vantage_tests::history::{self, SiteState};
use vantage_tests::sse::{SseEvent, SseStream};

const WITHIN: Duration = Duration::from_secs(20);

/// A scan of `example.com` requested through the API (no workers run: it stays queued until the test
/// drives it).
async fn request_scan(app: &TestApp) -> ScanId {
    let created: Value = app
        .client
        .post(app.url("/api/v1/scans"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "target": "example.com", "profile": "quick" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().parse().unwrap()
}

/// Runs `commands` on scan `id` as its worker would, one command at a time.
async fn drive(services: &vantage_app::Services, id: ScanId, commands: Vec<ScanCommand>) {
    let context = CommandContext {
        actor: "worker-live".into(),
        ..CommandContext::system(TenantId::default_tenant())
    };
    let stream = vantage_app::scan_stream(id);
    for command in commands {
        services
            .pipeline
            .execute::<Scan>(&stream, &context, command)
            .await
            .unwrap()
            .unwrap();
    }
}

/// `n` observations of pages of `example.com` (distinct ids from `seed`).
fn observe(n: usize, seed: u128) -> Vec<ScanCommand> {
    let state = SiteState {
        extra_pages: n,
        ..SiteState::default()
    };
    history::observations("example.com", &state, seed)
        .into_iter()
        .take(n)
        .map(|observed| ScanCommand::Observe(vec![observed]))
        .collect()
}

/// Opens `path` as an event stream with `headers`; asserts it is one.
async fn open(app: &TestApp, path: &str, headers: &[(&str, String)]) -> SseStream {
    let mut request = app.client.get(app.url(path)).bearer_auth(&app.admin_key);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    SseStream::new(response)
}

/// Everything the stream sends until the server ends it.
async fn read_to_end(stream: &mut SseStream) -> Vec<SseEvent> {
    let mut events = Vec::new();
    while let Some(event) = stream.next(WITHIN).await {
        events.push(event);
    }
    events
}

/// The positions and types of scan `id`'s events in the log.
async fn logged(app: &TestApp, id: ScanId) -> Vec<(u64, String)> {
    app.caught_up().await;
    app.stores
        .events
        .read_stream_after(&vantage_app::scan_stream(id), 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.global_position, e.event.event_type))
        .collect()
}

fn positions_and_types(events: &[SseEvent]) -> Vec<(u64, String)> {
    events
        .iter()
        .map(|e| (e.position(), e.event.clone().unwrap_or_default()))
        .collect()
}

async fn a_client_that_reconnects_gets_exactly_what_it_missed(app: TestApp) {
    let id = request_scan(&app).await;
    let mut first = vec![ScanCommand::Begin {
        worker_id: "worker-live".into(),
    }];
    first.extend(observe(12, 1));
    drive(&app.services, id, first).await;

    // Ten events, then the client goes away.
    let path = format!("/api/v1/scans/{id}/events");
    let mut stream = open(&app, &path, &[]).await;
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(
            stream
                .next(WITHIN)
                .await
                .expect("the scan is still running"),
        );
    }
    drop(stream);
    assert_eq!(seen[0].event.as_deref(), Some("ScanRequested"));
    assert_eq!(seen[1].event.as_deref(), Some("ScanStarted"));
    let observed = &seen[2].json();
    assert_eq!(observed["event_type"], "ProbeObserved");
    assert_eq!(observed["data"]["probe"], "http", "{observed}");
    assert!(
        observed["data"].get("data").is_none(),
        "observations are summarised, not sent whole: {observed}"
    );
    let last_seen = seen[9].position();

    // The scan goes on while the client reconnects.
    let driver = {
        let services = app.services.clone();
        tokio::spawn(async move {
            let mut rest = observe(6, 2);
            rest.push(ScanCommand::Finalize);
            rest.push(ScanCommand::Complete {
                ruleset_version: vantage_rules::RULESET_VERSION.into(),
            });
            for command in rest {
                drive(&services, id, vec![command]).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut resumed = open(&app, &path, &[("last-event-id", last_seen.to_string())]).await;
    let rest = read_to_end(&mut resumed).await;
    driver.await.unwrap();

    let log = logged(&app, id).await;
    let missed: Vec<_> = log
        .iter()
        .filter(|(p, _)| *p > last_seen)
        .cloned()
        .collect();
    assert_eq!(
        positions_and_types(&rest),
        missed,
        "exactly the missing events, in log order"
    );
    assert_eq!(
        positions_and_types(&seen),
        log[..10].to_vec(),
        "the first ten were the log's first ten"
    );
    let completed = rest.last().unwrap().json();
    assert_eq!(completed["event_type"], "ScanCompleted");
    assert_eq!(
        completed["verdict"]["ruleset_version"],
        vantage_rules::RULESET_VERSION
    );
    assert!(completed["verdict"]["grade"].is_string(), "{completed}");
    assert!(
        completed["verdict"]["findings"]["high"].is_u64(),
        "{completed}"
    );

    // `?last_event_id=` resumes the same way, and a finished scan's stream ends after its events.
    let middle = log[13].0;
    let mut again = open(&app, &format!("{path}?last_event_id={middle}"), &[]).await;
    assert_eq!(
        positions_and_types(&read_to_end(&mut again).await),
        log[14..].to_vec()
    );

    // Bad positions and unknown scans are refused plainly.
    let bad = app
        .client
        .get(app.url(&path))
        .bearer_auth(&app.admin_key)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let unknown = app
        .client
        .get(app.url(&format!(
            "/api/v1/scans/{}/events",
            ScanId(uuid::Uuid::now_v7())
        )))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    app.stop().await;
}

async fn event_tokens_open_their_own_scan_only_and_expire(app: TestApp) {
    let mine = request_scan(&app).await;
    let other = request_scan(&app).await;
    let minted = app
        .client
        .post(app.url(&format!("/api/v1/scans/{mine}/event-token")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 201);
    let minted: Value = minted.json().await.unwrap();
    let token = minted["token"].as_str().unwrap().to_owned();
    let expires_at: chrono::DateTime<chrono::Utc> =
        minted["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = expires_at - chrono::Utc::now();
    assert!(
        lifetime <= chrono::Duration::minutes(5) && lifetime > chrono::Duration::minutes(4),
        "short-lived: {lifetime}"
    );
    assert_eq!(
        minted["url"],
        format!("/api/v1/scans/{mine}/events?event_token={token}")
    );

    // No API key: the token alone opens its scan's stream.
    let status = |path: String| {
        let client = app.client.clone();
        let url = app.url(&path);
        async move { client.get(url).send().await.unwrap() }
    };
    let response = status(format!("/api/v1/scans/{mine}/events?event_token={token}")).await;
    assert_eq!(response.status(), 200);
    let mut stream = SseStream::new(response);
    let first = stream.next(WITHIN).await.unwrap();
    assert_eq!(first.event.as_deref(), Some("ScanRequested"));
    drop(stream);

    // Not another scan's, not the firehose, not a forged or expired one.
    let other_scan = status(format!("/api/v1/scans/{other}/events?event_token={token}")).await;
    assert_eq!(other_scan.status(), 401);
    let firehose = status(format!("/api/v1/events?event_token={token}")).await;
    assert!(
        firehose.status() == 400 || firehose.status() == 401,
        "{}",
        firehose.status()
    );
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let forged = status(format!("/api/v1/scans/{mine}/events?event_token={forged}")).await;
    assert_eq!(forged.status(), 401);
    let expired = app.services.keyring.mint_event_token(&EventGrant {
        tenant: TenantId::default_tenant(),
        scan_id: mine,
        expires_at: chrono::Utc::now() - chrono::Duration::seconds(1),
    });
    let expired = status(format!("/api/v1/scans/{mine}/events?event_token={expired}")).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(
        expired.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let none = status(format!("/api/v1/scans/{mine}/events")).await;
    assert_eq!(none.status(), 401);
    app.stop().await;
}

async fn the_firehose_sends_the_tenants_events_of_the_asked_types_from_now(app: TestApp) {
    // Before the client connects: not sent (the firehose starts now).
    let before = request_scan(&app).await;
    app.caught_up().await;
    let mut stream = open(
        &app,
        "/api/v1/events?types=ScanRequested,ScanCompleted",
        &[],
    )
    .await;
    // Another tenant's scan, then one of ours.
    let others = history::scan_through_pipeline(
        &app.services.pipeline,
        "other-tenant",
        "example.org",
        &SiteState::default(),
        None,
    )
    .await;
    let ours = history::scan_through_pipeline(
        &app.services.pipeline,
        TenantId::default_tenant().as_str(),
        "example.com",
        &SiteState::default(),
        None,
    )
    .await;
    let requested = stream.next(WITHIN).await.unwrap().json();
    let completed = stream.next(WITHIN).await.unwrap().json();
    for event in [&requested, &completed] {
        assert_eq!(event["stream"], format!("scan-{ours}"), "{event}");
        assert_ne!(event["stream"], format!("scan-{others}"));
        assert_ne!(event["stream"], format!("scan-{before}"));
    }
    assert_eq!(requested["event_type"], "ScanRequested");
    assert_eq!(completed["event_type"], "ScanCompleted");
    assert!(completed["verdict"]["findings"].is_object(), "{completed}");
    drop(stream);

    // From a position, the firehose catches up from the log first.
    let since = requested["position"].as_u64().unwrap() - 1;
    let mut replay = open(&app, &format!("/api/v1/events?last_event_id={since}"), &[]).await;
    let first = replay.next(WITHIN).await.unwrap();
    assert_eq!(first.position(), since + 1);
    assert_eq!(first.event.as_deref(), Some("ScanRequested"));
    let second = replay.next(WITHIN).await.unwrap();
    assert_eq!(second.event.as_deref(), Some("ScanStarted"));
    drop(replay);

    // The firehose is for keys that may read the audit trail.
    let reader = app
        .client
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "name": "reader", "scopes": ["scan:read"] }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let forbidden = app
        .client
        .get(app.url("/api/v1/events"))
        .bearer_auth(reader["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    app.stop().await;
}

vantage_tests::app_test_per_store!(spawn;
    a_client_that_reconnects_gets_exactly_what_it_missed,
    event_tokens_open_their_own_scan_only_and_expire,
    the_firehose_sends_the_tenants_events_of_the_asked_types_from_now,
);

/// A client that never reads gets at most a queue's worth of events and then one saying it was cut
/// off — the server does not buffer for it without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_cut_off_with_a_last_item_saying_so() {
    let t = vantage_tests::SqliteTestStore::new().await;
    let store = t.app_stores().await.events;
    let state = SiteState {
        extra_pages: 40,
        ..SiteState::default()
    };
    let mut appended = 0;
    while appended <= vantage_app::CLIENT_QUEUE {
        appended +=
            history::append_completed_scan(store.as_ref(), "default", "example.com", &state).await;
    }
    let services = vantage_tests::lab_services(t.store.clone());
    let mut queue = vantage_app::follow(
        services,
        Follow::Tenant {
            tenant: TenantId::default_tenant(),
            types: None,
        },
        0,
    );
    // Nothing is read until the follower has filled the queue.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut items = Vec::new();
    while let Some(item) = tokio::time::timeout(WITHIN, queue.recv()).await.unwrap() {
        items.push(item);
    }
    assert_eq!(items.len(), vantage_app::CLIENT_QUEUE, "a queue's worth");
    assert_eq!(items.last(), Some(&LiveItem::Overflow));
    let positions: Vec<u64> = items
        .iter()
        .filter_map(|i| match i {
            LiveItem::Event(e) => Some(e.position),
            LiveItem::Overflow => None,
        })
        .collect();
    assert_eq!(
        positions,
        (1..vantage_app::CLIENT_QUEUE as u64).collect::<Vec<_>>(),
        "in order, from the start, up to where it was cut off"
    );
}

/// Distributed mode: the same on PostgreSQL, with the app's live events carried over NATS.
mod over_nats {
    /// `/ready` says scans go through NATS, and that they are dispatched now (the server is up); a
    /// scan for a vantage point no worker serves says so in its status.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ready_and_status_report_dispatch_through_nats() {
        let t = vantage_tests::PgTestStore::new().await;
        let app = vantage_tests::TestApp::spawn_over_nats(t.app_stores().await).await;
        let ready = app.get_json("/ready").await;
        assert_eq!(ready["dispatch"]["via"], "nats", "{ready}");
        assert_eq!(ready["dispatch"]["ready"], true, "{ready}");
        // No worker runs here: a queued scan's status says whose worker it waits for.
        let (status, created) = app
            .call(
                reqwest::Method::POST,
                "/api/v1/scans",
                &app.admin_key,
                Some(serde_json::json!({
                    "target": "example.com", "profile": "quick", "vantage_point": "nowhere"
                })),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{created}");
        let id = created["id"].as_str().unwrap();
        let path = format!("/api/v1/scans/{id}/status");
        let (status, progress) = app
            .call(reqwest::Method::GET, &path, &app.admin_key, None)
            .await;
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_eq!(progress["status"], "queued", "{progress}");
        let waiting = progress["waiting_for"].as_str().unwrap_or_default();
        assert!(
            waiting.contains("no worker of vantage point nowhere"),
            "{progress}"
        );
        app.stop().await;
        t.drop_schema().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_reconnects_gets_exactly_what_it_missed() {
        let t = vantage_tests::PgTestStore::new().await;
        let app = vantage_tests::TestApp::spawn_over_nats(t.app_stores().await).await;
        super::a_client_that_reconnects_gets_exactly_what_it_missed(app).await;
        t.drop_schema().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn event_tokens_open_their_own_scan_only_and_expire() {
        let t = vantage_tests::PgTestStore::new().await;
        let app = vantage_tests::TestApp::spawn_over_nats(t.app_stores().await).await;
        super::event_tokens_open_their_own_scan_only_and_expire(app).await;
        t.drop_schema().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_firehose_sends_the_tenants_events_of_the_asked_types_from_now() {
        let t = vantage_tests::PgTestStore::new().await;
        let app = vantage_tests::TestApp::spawn_over_nats(t.app_stores().await).await;
        super::the_firehose_sends_the_tenants_events_of_the_asked_types_from_now(app).await;
        t.drop_schema().await;
    }
}
