//! `vantage serve` killed with SIGKILL in the middle of concurrent command streams, on the embedded
//! store and on PostgreSQL, several times over: after each restart every command a client was told
//! succeeded (2xx) is in the log, the chain verifies, the read models equal a rebuild from the log
//! (projectors resumed without skipping or repeating an event), and the next run goes on from there.
//! And killed while its own worker runs a scan: after the restart the scan ends exactly once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use vantage_tests::process::{ScratchDatabase, ServeProcess, vantage_binary};

/// Clients sending commands at once.
const CLIENTS: usize = 8;
/// Kills per store.
const KILLS: usize = 3;
/// How long the clients send before the kill.
const LOAD: Duration = Duration::from_millis(1500);

/// Where the server keeps its log: the flags `serve`, `verify` and `replay` take to find it.
fn store_flags(store: &Store) -> Vec<String> {
    match store {
        Store::Embedded(dir) => vec!["--data-dir".into(), dir.path().display().to_string()],
        Store::Postgres(db, _) => vec!["--database-url".into(), db.url.clone()],
    }
}

enum Store {
    Embedded(tempfile::TempDir),
    /// The database, and a directory holding the secrets key every PostgreSQL server needs.
    Postgres(ScratchDatabase, tempfile::TempDir),
}

/// What the clients were told succeeded: scans created (each a stream of its own) and API keys
/// issued (all on the tenant's one key stream, so the clients race for it).
#[derive(Default)]
struct Acknowledged {
    scans: Vec<String>,
    keys: Vec<String>,
}

/// One client: creates scans and issues keys until the server stops answering.
async fn client(
    base: String,
    key: String,
    n: usize,
    acknowledged: Arc<Mutex<Acknowledged>>,
) -> usize {
    vantage_tests::http_client(); // installs the TLS provider reqwest needs
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut sent = 0;
    loop {
        sent += 1;
        let (path, body) = if sent % 3 == 0 {
            (
                "/api/v1/keys".to_owned(),
                json!({ "name": format!("client {n} key {sent}"), "scopes": ["scan:read"] }),
            )
        } else {
            (
                "/api/v1/scans".to_owned(),
                json!({ "target": format!("http://93.184.215.{}/", n + 1), "ports": [80] }),
            )
        };
        let answer = http
            .post(format!("{base}{path}"))
            .bearer_auth(&key)
            .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
            .json(&body)
            .send()
            .await;
        let Ok(answer) = answer else {
            return sent;
        };
        if !answer.status().is_success() {
            continue;
        }
        let Ok(created) = answer.json::<Value>().await else {
            // The server died between its answer's status line and its body: not acknowledged.
            return sent;
        };
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        let mut acknowledged = acknowledged.lock().unwrap();
        if path.ends_with("keys") {
            acknowledged.keys.push(id);
        } else {
            acknowledged.scans.push(id);
        }
    }
}

async fn start(store: &Store, key: &str) -> ServeProcess {
    start_with(store, key, &["--scan-workers", "0"]).await
}

async fn start_with(store: &Store, key: &str, extra: &[&str]) -> ServeProcess {
    let mut flags = store_flags(store);
    if let Store::Postgres(_, keys) = store {
        flags.push("--secrets-key-file".into());
        flags.push(keys.path().join("secrets.key").display().to_string());
    }
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(extra);
    args.extend(["--rate-limit-per-minute", "1000000"]);
    args.extend(["--scan-rate-limit-per-minute", "1000000"]);
    ServeProcess::start(
        &args,
        &[
            ("VANTAGE_BOOTSTRAP_ADMIN_KEY", key),
            ("VANTAGE_LOG", "warn"),
        ],
        std::process::Stdio::null(),
    )
    .await
}

async fn get(base: &str, key: &str, path: &str) -> (reqwest::StatusCode, Value) {
    let answer = vantage_tests::http_client()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Runs `vantage <command>` against the store (no server running) and expects success.
fn offline(command: &str, store: &Store) {
    let out = std::process::Command::new(vantage_binary())
        .args(command.split(' '))
        .args(store_flags(store))
        .env("VANTAGE_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vantage {command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn kill_under_load(store: Store) {
    let key = format!(
        "vtg_default_{}_{}",
        uuid::Uuid::now_v7().simple(),
        "7".repeat(64)
    );
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let mut sent = 0;
    for _ in 0..KILLS {
        let server = start(&store, &key).await;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|n| {
                tokio::spawn(client(
                    server.base.clone(),
                    key.clone(),
                    n,
                    acknowledged.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(LOAD).await;
        server.kill().await;
        for client in clients {
            sent += client.await.unwrap();
        }
    }
    // Offline, straight after the last kill: the chain is whole and a rebuild equals what the
    // projectors had committed (so a batch was never half applied).
    offline("verify", &store);
    let server = start(&store, &key).await;
    let (scans, keys) = {
        let acknowledged = acknowledged.lock().unwrap();
        (acknowledged.scans.clone(), acknowledged.keys.clone())
    };
    assert!(
        scans.len() > 50 && keys.len() > 10,
        "the load was real: {} scans and {} keys acknowledged of {sent} requests",
        scans.len(),
        keys.len()
    );
    eprintln!(
        "{} scans and {} keys acknowledged of {sent} requests over {KILLS} kills",
        scans.len(),
        keys.len()
    );
    for id in &scans {
        let (status, scan) = get(&server.base, &key, &format!("/api/v1/scans/{id}")).await;
        assert_eq!(status, 200, "acknowledged scan {id} is in the log: {scan}");
    }
    // The projectors resumed where they were: the read model lists every scan the log holds once.
    let (_, ready) = get(&server.base, &key, "/ready").await;
    let head = ready["head_position"].as_u64().unwrap();
    vantage_tests::process::eventually("the projectors catch up after the restart", || async {
        let (_, ready) = get(&server.base, &key, "/ready").await;
        ready["projectors"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["position"].as_u64() >= Some(head)))
    })
    .await;
    let mut listed = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/scans?limit=100&cursor={c}"),
            None => "/api/v1/scans?limit=100".to_owned(),
        };
        let (_, page) = get(&server.base, &key, &path).await;
        for item in page["items"].as_array().unwrap() {
            assert!(
                listed.insert(item["id"].as_str().unwrap().to_owned()),
                "a scan listed twice: {item}"
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    for id in &scans {
        assert!(
            listed.contains(id),
            "acknowledged scan {id} is in the read model"
        );
    }
    let (status, issued) = get(&server.base, &key, "/api/v1/keys").await;
    assert_eq!(status, 200);
    let issued: std::collections::HashSet<&str> = issued["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["id"].as_str())
        .collect();
    for id in &keys {
        assert!(
            issued.contains(id.as_str()),
            "acknowledged key {id} is in the log"
        );
    }
    server.stop().await;
    offline("replay", &store);
    if let Store::Postgres(db, _) = store {
        db.drop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sigkill_mid_command_streams_loses_no_acknowledged_write() {
    kill_under_load(Store::Embedded(tempfile::tempdir().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_mid_command_streams_loses_no_acknowledged_write() {
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(
        keys.path().join("secrets.key"),
        format!("{}\n", "cd".repeat(32)),
    )
    .unwrap();
    kill_under_load(Store::Postgres(ScratchDatabase::new().await, keys)).await;
}

/// A web site on loopback that answers every request after `delay`: a scan of it stays running.
async fn slow_site(delay: Duration) -> u16 {
    let app = axum::Router::new().fallback(move || async move {
        tokio::time::sleep(delay).await;
        "slow"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// `serve` killed while its own worker runs a scan (the probe waiting on a slow site): after the
/// restart the scan ends exactly once — run again from the start, or failed with its reason —
/// nothing follows its end, and the log and read models are whole.
async fn kill_mid_scan(store: Store) {
    let key = format!(
        "vtg_default_{}_{}",
        uuid::Uuid::now_v7().simple(),
        "5".repeat(64)
    );
    let port = slow_site(Duration::from_secs(3)).await;
    let lab = [
        "--scan-workers",
        "1",
        "--allow-cidr",
        "127.0.0.0/8",
        "--resolver",
        "127.0.0.1:9",
    ];
    let server = start_with(&store, &key, &lab).await;
    let created = vantage_tests::http_client()
        .post(server.url("/api/v1/scans"))
        .bearer_auth(&key)
        .json(&json!({
            "target": format!("http://127.0.0.1:{port}/"),
            "ports": [port],
            "profile": "quick",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = |base: String| {
        let (key, id) = (key.clone(), id.clone());
        async move {
            let (_, scan) = get(&base, &key, &format!("/api/v1/scans/{id}/status")).await;
            scan["status"].as_str().unwrap_or_default().to_owned()
        }
    };
    vantage_tests::process::eventually("the scan to be running", || {
        let status = status(server.base.clone());
        async move { status.await == "running" }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().await;

    let server = start_with(&store, &key, &lab).await;
    vantage_tests::process::eventually_within(
        "the scan to end after the restart",
        Duration::from_secs(60),
        || {
            let status = status(server.base.clone());
            async move { matches!(status.await.as_str(), "completed" | "failed") }
        },
    )
    .await;
    let (_, history) = get(&server.base, &key, &format!("/api/v1/scans/{id}/history")).await;
    let types: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    let ends: Vec<usize> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(**t, "ScanCompleted" | "ScanFailed" | "ScanCancelled"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(ends, [types.len() - 1], "one end, last: {types:?}");
    assert!(
        types.iter().filter(|t| **t == "ScanStarted").count() >= 1,
        "{types:?}"
    );
    if types.last() == Some(&"ScanFailed") {
        let (_, scan) = get(&server.base, &key, &format!("/api/v1/scans/{id}")).await;
        assert!(
            scan["failure_reason"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "a failed scan says why: {scan}"
        );
    }
    eprintln!("the killed scan's lifecycle: {types:?}");
    server.stop().await;
    offline("verify", &store);
    offline("replay", &store);
    if let Store::Postgres(db, _) = store {
        db.drop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sigkill_mid_scan_ends_the_scan_exactly_once() {
    kill_mid_scan(Store::Embedded(tempfile::tempdir().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_mid_scan_ends_the_scan_exactly_once() {
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(
        keys.path().join("secrets.key"),
        format!("{}\n", "ab".repeat(32)),
    )
    .unwrap();
    kill_mid_scan(Store::Postgres(ScratchDatabase::new().await, keys)).await;
}

/// `events` events of history (scans of 20 domains, their webhook deliveries) written straight into
/// the store, as a log a server would have.
async fn write_history(store: &Store, events: usize) -> usize {
    match store {
        Store::Embedded(dir) => {
            let log = vantage_store_sqlite::SqliteEventStore::open(&dir.path().join("vantage.db"))
                .await
                .unwrap();
            vantage_tests::history::append_history(&log, "default", 20, events, 0).await
        }
        Store::Postgres(db, _) => {
            let log = vantage_store_postgres::PgEventStore::connect(
                vantage_store_postgres::PgStoreOptions::new(db.url.clone()),
            )
            .await
            .unwrap();
            let written =
                vantage_tests::history::append_history(&log, "default", 20, events, 0).await;
            vantage_tests::settle(&log).await;
            written
        }
    }
}

/// Starts `vantage <args>` on the store (output kept for the assertion messages).
fn spawn(store: &Store, args: &[&str]) -> std::process::Child {
    std::process::Command::new(vantage_binary())
        .args(args)
        .args(store_flags(store))
        .env("VANTAGE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILLs `child` once `after` has passed, asserting it was still at work.
async fn kill_while_running(mut child: std::process::Child, after: Duration, what: &str) {
    tokio::time::sleep(after).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "{what} finished within {after:?}: the log is too small to kill it mid-way"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The read side killed mid-way, twice: `vantage projections rebuild` SIGKILLed while it rebuilds
/// from the log, then `vantage project` (the projectors as a process of their own) SIGKILLed
/// mid-batch. After each kill the read models equal a rebuild from the log at their checkpoints
/// (`vantage replay`: no batch half applied); the rebuild, run again, resumes and finishes; the
/// projectors, started again, reach the log's head; the chain verifies.
async fn kill_the_read_side(store: Store) {
    let mut head = write_history(&store, 20_000).await as u64;
    kill_while_running(
        spawn(&store, &["projections", "rebuild"]),
        Duration::from_millis(700),
        "the rebuild",
    )
    .await;
    offline("replay", &store);
    offline("projections rebuild", &store);

    // More history, then the projectors as their own process, killed mid-way through it.
    head += write_history(&store, 10_000).await as u64;
    kill_while_running(
        spawn(&store, &["project"]),
        Duration::from_millis(700),
        "the projectors",
    )
    .await;
    offline("replay", &store);
    // Started again (here inside `serve`), the projectors finish what the killed process left.
    let key = format!(
        "vtg_default_{}_{}",
        uuid::Uuid::now_v7().simple(),
        "3".repeat(64)
    );
    let server = start(&store, &key).await;
    vantage_tests::process::eventually_within(
        "the projectors to reach the log's head",
        Duration::from_secs(120),
        || async {
            // The log's head now: the history, and what `serve` appended at start (its admin key).
            let (_, ready) = get(&server.base, &key, "/ready").await;
            let now = ready["head_position"].as_u64().unwrap_or(0);
            now >= head
                && ready["projectors"].as_array().is_some_and(|projectors| {
                    projectors
                        .iter()
                        .all(|p| p["position"].as_u64() == Some(now))
                })
        },
    )
    .await;
    server.stop().await;
    offline("replay", &store);
    offline("verify", &store);
    if let Store::Postgres(db, _) = store {
        db.drop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_read_side_killed_mid_rebuild_and_mid_batch_resumes_whole() {
    kill_the_read_side(Store::Embedded(tempfile::tempdir().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_side_killed_mid_rebuild_and_mid_batch_resumes_whole() {
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(
        keys.path().join("secrets.key"),
        format!("{}\n", "ef".repeat(32)),
    )
    .unwrap();
    kill_the_read_side(Store::Postgres(ScratchDatabase::new().await, keys)).await;
}
