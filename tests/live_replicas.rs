//! Live events across replicas: two real `vantage serve` processes on one PostgreSQL database and a
//! NATS server of this test's own, with a real `vantage worker`. A client on replica B sees a scan
//! started through replica A, every event in log order, delivered over NATS; with NATS stopped for
//! a while and started again, it still gets every event (the log fills in meanwhile), and the NATS
//! stream itself ends up holding every committed event once, in order.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use vantage_store::EventStore;
use vantage_tests::process::{Deployment, OwnNats, ServeProcess, eventually, vantage_binary};
use vantage_tests::sse::{SseEvent, SseStream};

const WITHIN: Duration = Duration::from_secs(30);

/// A counter or gauge of `serve`'s `/metrics`.
async fn metric(serve: &ServeProcess, line: &str) -> u64 {
    let text = vantage_tests::http_client()
        .get(serve.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in {text}"))
}

async fn fanout(serve: &ServeProcess) -> u64 {
    metric(
        serve,
        "vantage_live_events_published_total{source=\"fanout\"}",
    )
    .await
}

async fn from_log(serve: &ServeProcess) -> u64 {
    metric(serve, "vantage_live_events_published_total{source=\"log\"}").await
}

/// `POST path` (with `body` as JSON, if any); the JSON of a successful answer.
async fn post(serve: &ServeProcess, key: &str, path: &str, body: Option<Value>) -> Value {
    let mut request = vantage_tests::http_client()
        .post(serve.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "POST {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Reads `stream` until the `ScanCompleted` of scan `id`.
async fn until_completed(stream: &mut SseStream, id: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    loop {
        let event = stream.next(WITHIN).await.expect("the firehose ended");
        let done = event.event.as_deref() == Some("ScanCompleted")
            && event.json()["stream"] == format!("scan-{id}");
        events.push(event);
        if done {
            return events;
        }
    }
}

/// The (position, type) of every event of the log in `(after, up_to]`.
async fn logged(store: &dyn EventStore, after: u64, up_to: u64) -> Vec<(u64, String)> {
    store
        .read_all(after, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.global_position <= up_to)
        .map(|e| (e.global_position, e.event.event_type))
        .collect()
}

fn seen(events: &[SseEvent]) -> Vec<(u64, String)> {
    events
        .iter()
        .map(|e| (e.position(), e.event.clone().unwrap_or_default()))
        .collect()
}

fn worker(nats: &OwnNats, prefix: &str) -> Child {
    Command::new(vantage_binary())
        .args(["worker", "--nats-url", &nats.url(), "--nats-prefix", prefix])
        .args(["--worker-id", "replicas-worker", "--ack-wait-seconds", "5"])
        .args(["--allow-cidr", "127.0.0.0/8", "--resolver", "127.0.0.1:9"])
        .env("VANTAGE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Every position the live stream holds, in stream order.
async fn relayed_positions(nats: &OwnNats, prefix: &str) -> Vec<u64> {
    use async_nats::jetstream::consumer::pull;
    use futures::StreamExt;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(format!("{prefix}_live")).await.unwrap();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    let consumer = stream
        .create_consumer(pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut positions = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        let value: Value = serde_json::from_slice(&message.payload).unwrap();
        positions.push(value["event"]["position"].as_u64().unwrap());
        if message.info().unwrap().stream_sequence >= last {
            break;
        }
    }
    positions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_one_replica_sees_every_event_committed_through_another() {
    let mut deployment = Deployment::new().await;
    let (admin, prefix) = (deployment.admin.clone(), deployment.prefix.clone());
    // Warnings go to the test's stderr, which the test runner shows when the test fails.
    let a = deployment.serve(&[], "warn", Stdio::inherit()).await;
    let b = deployment.serve(&[], "warn", Stdio::inherit()).await;
    let mut scan_worker = worker(&deployment.nats, &prefix);
    let site = vantage_tests::serve_http(axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            ([("content-security-policy", "default-src 'self'")], "ok")
        }),
    ))
    .await;
    let log = vantage_store_postgres::PgEventStore::connect(
        vantage_store_postgres::PgStoreOptions::new(deployment.db.url.clone()),
    )
    .await
    .unwrap();

    // Wait until B's clients are fed over NATS: the relay runs and B's feed reads the stream.
    let mut warm_ups = 0;
    eventually("replica B receives events over NATS", || {
        warm_ups += 1;
        let (a, b, admin) = (&a, &b, &admin);
        async move {
            post(
                a,
                admin,
                "/api/v1/keys",
                Some(json!({ "name": format!("warm-up-{warm_ups}"), "scopes": ["scan:read"] })),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(400)).await;
            fanout(b).await > 0
        }
    })
    .await;
    let head = log.head_position().await.unwrap();
    eventually("replica B has passed on the warm-up", || async {
        metric(&b, "vantage_live_position").await >= head
    })
    .await;
    let (fanout_before, log_before) = (fanout(&b).await, from_log(&b).await);

    // A client on B follows the firehose; a scan starts through A.
    let client = vantage_tests::http_client();
    let firehose = client
        .get(b.url("/api/v1/events"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(firehose.status(), 200);
    let mut firehose = SseStream::new(firehose);
    let target = format!("http://{site}/");
    let ports = [site.port()];
    let first = post(
        &a,
        &admin,
        "/api/v1/scans",
        Some(json!({ "target": target, "ports": ports, "profile": "quick" })),
    )
    .await;
    let first = first["id"].as_str().unwrap().to_owned();
    let events = until_completed(&mut firehose, &first).await;
    let end = events.last().unwrap().position();
    assert_eq!(
        seen(&events),
        logged(&log, head, end).await,
        "every event, in log order"
    );
    assert!(
        events
            .iter()
            .any(|e| e.event.as_deref() == Some("ProbeObserved"))
    );
    let completed = events.last().unwrap().json();
    assert!(completed["verdict"]["findings"].is_object(), "{completed}");
    assert_eq!(
        fanout(&b).await - fanout_before,
        events.len() as u64,
        "replica B got them over NATS"
    );
    assert_eq!(
        from_log(&b).await,
        log_before,
        "none had to be filled from the log"
    );

    // An event token minted by A opens the scan's stream on B (the replicas share the key).
    let minted = post(
        &a,
        &admin,
        &format!("/api/v1/scans/{first}/event-token"),
        None,
    )
    .await;
    let through_b = client
        .get(b.url(minted["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(through_b.status(), 200);

    // NATS goes away; A goes on committing; NATS comes back.
    deployment.nats.pause().await;
    post(
        &a,
        &admin,
        "/api/v1/keys",
        Some(json!({ "name": "during-outage", "scopes": ["scan:read"] })),
    )
    .await;
    let second = post(
        &a,
        &admin,
        "/api/v1/scans",
        Some(json!({ "target": target, "ports": ports, "profile": "quick" })),
    )
    .await;
    let second = second["id"].as_str().unwrap().to_owned();
    let during = [
        firehose.next(WITHIN).await.unwrap(),
        firehose.next(WITHIN).await.unwrap(),
    ];
    assert_eq!(
        during[0].event.as_deref(),
        Some("ApiKeyIssued"),
        "the log fills in while NATS is away"
    );
    assert_eq!(during[1].event.as_deref(), Some("ScanRequested"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    deployment.nats.resume().await;
    let mut after = during.to_vec();
    after.extend(until_completed(&mut firehose, &second).await);
    let last = after.last().unwrap().position();
    assert_eq!(
        seen(&after),
        logged(&log, end, last).await,
        "every event, in log order, none twice"
    );

    // The outbox: what was committed while NATS was down was published after, in log order.
    let committed: Vec<u64> = logged(&log, 0, last)
        .await
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    eventually(
        "the relay publishes what was committed meanwhile",
        || async { relayed_positions(&deployment.nats, &prefix).await.last() == Some(&last) },
    )
    .await;
    let relayed = relayed_positions(&deployment.nats, &prefix).await;
    assert!(
        relayed.windows(2).all(|w| w[0] < w[1]),
        "in log order, each once: {relayed:?}"
    );
    let from = committed.iter().position(|p| *p == relayed[0]).unwrap();
    assert_eq!(
        relayed,
        committed[from..].to_vec(),
        "every event from the relay's start on"
    );

    drop(firehose);
    scan_worker.kill().unwrap();
    scan_worker.wait().unwrap();
    a.stop().await;
    b.stop().await;
    drop(log);
    deployment.drop().await;
}
