//! The `vantage` binary as users run it: exit codes, one-sentence errors, `keys create`, `verify`
//! catching a tampered event and naming it.

use std::path::Path;
use std::process::{Command, Output};

use vantage_tests::process::{ScratchDatabase, ServeProcess, eventually, vantage_binary};

fn vantage(args: &[&str], data_dir: &Path) -> Output {
    Command::new(vantage_binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("VANTAGE_DATABASE_URL")
        .env("VANTAGE_LOG", "error")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn verify_fails_and_names_the_event_that_was_edited() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["first", "second", "third"] {
        let out = vantage(&["keys", "create", "--admin", "--name", name], dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).trim().starts_with("vtg_default_"));
    }
    let ok = vantage(&["verify"], dir.path());
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("ok: 3 events verified"));

    // Tamper: edit the second event's payload directly in the database file.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("vantage.db").display()
    ))
    .await
    .unwrap();
    let victim: String =
        sqlx::query_scalar("SELECT event_id FROM events WHERE global_position = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("DROP TRIGGER events_are_append_only_update")
        .execute(&pool)
        .await
        .unwrap();
    // Key names are sealed: demote the key instead (its scope list is in the clear).
    sqlx::query(
        "UPDATE events SET payload = replace(payload, '\"admin\"', '\"audit:read\"') \
         WHERE global_position = 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let broken = vantage(&["verify"], dir.path());
    assert_eq!(broken.status.code(), Some(1));
    let stderr = text(&broken.stderr);
    assert!(
        stderr.contains(&victim),
        "verify must name {victim}: {stderr}"
    );
    assert!(stderr.contains("global position 2"), "{stderr}");
}

#[test]
fn bad_input_exits_non_zero_with_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["keys", "create"],
            "give the key --admin or at least one --scope",
        ),
        (&["keys", "create", "--scope", "root"], "unknown scope"),
        (
            &["keys", "create", "--admin", "--tenant", "Bad_Tenant"],
            "invalid tenant",
        ),
        (
            &["migrate", "--database-url", "mysql://localhost/x"],
            "must be a postgres:// URL",
        ),
        // The test binary is built without the `kurrentdb` feature.
        (
            &[
                "verify",
                "--kurrentdb-url",
                "kurrentdb://127.0.0.1:9?tls=false",
            ],
            "needs a vantage built with KurrentDB support",
        ),
    ];
    for (args, expected) in cases {
        let out = vantage(args, dir.path());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
    let usage = vantage(&["serve", "--listen", "not-an-address"], dir.path());
    assert_eq!(
        usage.status.code(),
        Some(2),
        "clap reports usage errors with 2"
    );
}

#[test]
fn configuration_file_is_read_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vantage.toml");
    std::fs::write(&config, "tenant = \"acme\"\n").unwrap();
    let out = Command::new(vantage_binary())
        .args(["keys", "create", "--admin", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("vtg_acme_"),
        "the file's tenant is used"
    );
    std::fs::write(&config, "tennant = \"acme\"\n").unwrap();
    let typo = Command::new(vantage_binary())
        .args(["migrate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(1));
    assert!(text(&typo.stderr).contains("unknown field"));
}

/// Starts `vantage serve` on `data_dir` as a lab would (loopback allowed explicitly, a resolver no
/// question can leave through), with `args` and `env` besides.
async fn start_serve(
    data_dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stderr: impl Into<std::process::Stdio>,
) -> ServeProcess {
    let dir = data_dir.to_str().unwrap();
    let mut all = vec![
        "--allow-cidr",
        "127.0.0.0/8",
        "--resolver",
        "127.0.0.1:9",
        "--data-dir",
        dir,
    ];
    all.extend_from_slice(args);
    ServeProcess::start(&all, env, stderr).await
}

/// `vantage serve` end to end as a process: prints its bootstrap key and address, serves, exports
/// traces over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and on SIGTERM drains and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_traces_and_shuts_down_gracefully() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // A stand-in OTLP collector on loopback that counts trace exports.
    let exports = Arc::new(AtomicUsize::new(0));
    let counter = exports.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                if !body.is_empty() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let dir = tempfile::tempdir().unwrap();
    let serve = start_serve(
        dir.path(),
        &[],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
        std::process::Stdio::null(),
    )
    .await;
    let (key, address) = (serve.key.clone(), serve.base.clone());
    let key = key.expect("a fresh data directory prints its bootstrap key");

    let created = vantage_tests::http_client()
        .post(format!("{address}/api/v1/scans"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "target": "http://127.0.0.1:9/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::ACCEPTED);
    let refused = vantage_tests::http_client()
        .post(format!("{address}/api/v1/scans"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "target": "http://10.0.0.1/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);

    // The projectors run inside serve: /ready reports each with its lag, /metrics exports it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready: serde_json::Value = vantage_tests::http_client()
            .get(format!("{address}/ready"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let projectors = ready["projectors"].as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = projectors
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        let caught_up = projectors
            .iter()
            .all(|p| p["lag_events"] == 0 && p["position"] == ready["head_position"]);
        if names == ["audit", "badges", "scans", "schedules", "webhooks"] && caught_up {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "projectors never caught up: {ready}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let metrics = vantage_tests::http_client()
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vantage_projection_lag_events{projector=\"scans\"} "),
        "{metrics}"
    );
    assert!(metrics.contains("vantage_log_head_position "), "{metrics}");

    serve.stop().await;
    assert!(
        exports.load(Ordering::SeqCst) > 0,
        "no trace export reached the OTLP endpoint"
    );

    // The log holds the bootstrap key, the scan and whatever its worker recorded before the stop
    // (one refused request appended nothing), and its chain verifies.
    let again = Command::new(vantage_binary())
        .args(["verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let verified: u64 = text(&again.stdout)
        .strip_prefix("ok: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("verify reports a count");
    assert!(verified >= 2, "{verified} events");

    // Replay proves the read models equal a rebuild; a rebuild swaps in equal tables.
    let replay = vantage(&["replay"], dir.path());
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    assert!(text(&replay.stdout).contains("every read model equals a rebuild"));
    let rebuild = vantage(&["projections", "rebuild"], dir.path());
    assert!(rebuild.status.success(), "{}", text(&rebuild.stderr));
    assert!(text(&rebuild.stdout).contains("rebuilt scans up to position"));
    let unknown = vantage(&["projections", "rebuild", "nope"], dir.path());
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("no projector is named"));
    // One altered read-model row fails replay with one sentence naming the projector.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("readmodels.db").display()
    ))
    .await
    .unwrap();
    let altered = sqlx::query("UPDATE rm_audit SET actor = 'mallory' WHERE position = 1")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(altered.rows_affected(), 1);
    pool.close().await;
    let replay = vantage(&["replay"], dir.path());
    assert!(!replay.status.success());
    let stderr = text(&replay.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("audit differ"), "{stderr}");
}

/// The secrets key of an embedded `serve` is created once, owner-only, and kept: an event token
/// minted before a restart opens its stream after it. Event tokens never reach the log output, and
/// a live connection ends after `--live-max-seconds`. With PostgreSQL the key must be given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_its_secrets_key_and_never_logs_event_tokens() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = |n: usize| std::fs::File::create(logs.path().join(format!("serve-{n}.log"))).unwrap();
    let debug = [("VANTAGE_LOG", "debug")];
    let live_max = ["--live-max-seconds", "1"];
    let serve = start_serve(dir.path(), &live_max, &debug, log(1)).await;
    let (key, address) = (serve.key.clone().unwrap(), serve.base.clone());
    let client = vantage_tests::http_client();
    let created: serde_json::Value = client
        .post(format!("{address}/api/v1/scans"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "target": "http://127.0.0.1:9/" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scan = created["id"].as_str().unwrap().to_owned();
    let minted: serde_json::Value = client
        .post(format!("{address}/api/v1/scans/{scan}/event-token"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["token"].as_str().unwrap().to_owned();
    let url = minted["url"].as_str().unwrap().to_owned();
    let opened = client.get(format!("{address}{url}")).send().await.unwrap();
    assert_eq!(opened.status(), 200);
    let first = vantage_tests::sse::SseStream::new(opened)
        .next(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(first.event.as_deref(), Some("ScanRequested"));

    // Once the scan has ended, the firehose has nothing to say, and the connection ends after a
    // second.
    let ended = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status: serde_json::Value = client
            .get(format!("{address}/api/v1/scans/{scan}/status"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if matches!(
            status["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            break;
        }
        assert!(
            std::time::Instant::now() < ended,
            "the scan did not end: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let firehose = client
        .get(format!("{address}/api/v1/events"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut firehose = vantage_tests::sse::SseStream::new(firehose);
    assert_eq!(
        firehose.next(std::time::Duration::from_secs(10)).await,
        None
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));

    let key_file = dir.path().join("secrets.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the secrets key is the owner's only");
    let kept = std::fs::read_to_string(&key_file).unwrap();
    serve.stop().await;

    let serve = start_serve(dir.path(), &[], &debug, log(2)).await;
    let address = serve.base.clone();
    assert_eq!(
        serve.key, None,
        "the bootstrap key is printed on the first start only"
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), kept);
    let reopened = client.get(format!("{address}{url}")).send().await.unwrap();
    assert_eq!(reopened.status(), 200, "the token outlives the restart");
    serve.stop().await;
    for n in 1..=2 {
        let text = std::fs::read_to_string(logs.path().join(format!("serve-{n}.log"))).unwrap();
        assert!(text.contains("/events"), "the requests are logged: {text}");
        assert!(!text.contains(&token), "the event token is in the log");
        assert!(!text.contains(kept.trim()), "the secrets key is in the log");
    }

    // PostgreSQL: every replica needs the same key, so none is made up.
    let out = Command::new(vantage_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(vantage_tests::database_url())
        .env("VANTAGE_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--secrets-key-file"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let bad_key = logs.path().join("bad.key");
    std::fs::write(&bad_key, "not hex").unwrap();
    let out = Command::new(vantage_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--secrets-key-file"])
        .arg(&bad_key)
        .arg("--data-dir")
        .arg(dir.path())
        .env("VANTAGE_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is invalid"),
        "{}",
        text(&out.stderr)
    );

    // A malformed preset admin key is refused, naming the format it must have.
    let fresh = tempfile::tempdir().unwrap();
    let out = Command::new(vantage_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(fresh.path())
        .env("VANTAGE_BOOTSTRAP_ADMIN_KEY", "vtg_default_short_secret")
        .env("VANTAGE_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("VANTAGE_BOOTSTRAP_ADMIN_KEY") && stderr.contains("expected vtg_<tenant>_"),
        "{stderr}"
    );
}

/// `vantage scan` against a real server on loopback: findings as JSON, and a refused target as one
/// sentence with exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_prints_findings_and_refuses_private_targets() {
    let site = vantage_tests::serve_http(axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            (
                [
                    ("content-type", "text/html"),
                    ("server", "Apache/2.4.41"),
                    ("set-cookie", "sid=abc123secret; Path=/"),
                ],
                "<html></html>",
            )
        }),
    ))
    .await;
    let target = format!("http://{site}/");
    let port = site.port().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(vantage_binary())
            .args([
                "scan",
                &target,
                "--ports",
                &port,
                "--json",
                "--allow-cidr",
                "127.0.0.0/8",
            ])
            .args(["--resolver", "127.0.0.1:9", "--profile", "quick"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["ruleset_version"], vantage_rules::RULESET_VERSION);
    // No CSP (-25), no HTTPS redirect (-20), no HTTPS so no HSTS (-20), no framing protection (-20),
    // no nosniff (-5), a session cookie without Secure (-40): floored at 0.
    assert_eq!(report["headers_grade"]["grade"], "F");
    assert_eq!(report["headers_grade"]["score"], 0);
    assert_eq!(
        report["headers_grade"]["algorithm"],
        vantage_rules::OBSERVATORY_ALGORITHM
    );
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    for expected in [
        "http.csp-missing",
        "http.version-disclosure",
        "cookies.secure-missing",
        "cookies.httponly-missing",
    ] {
        assert!(
            rules.contains(&expected),
            "{expected} missing from {rules:?}"
        );
    }
    let scores: Vec<u64> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["priority"]["score"].as_u64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "sorted by priority: {scores:?}"
    );
    assert!(
        !text(&output.stdout).contains("abc123secret"),
        "a cookie value leaked"
    );

    let refused = Command::new(vantage_binary())
        .args(["scan", "http://10.1.2.3/", "--resolver", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: target refused: 10.1.2.3 is a private (RFC 1918) address"
    );
}

/// Advisory locks granted in `db`: one per projector that some process runs.
async fn granted_leases(db: &ScratchDatabase) -> i64 {
    // Projector leases are one-key (bigint) advisory locks, `objsubid` 1; the sequencer's brief
    // transaction lock is a two-key one (2) and must not be counted as a lease.
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = $1)",
    )
    .bind(&db.name)
    .fetch_one(&db.admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn two_project_processes_run_each_projector_once_and_fail_over_when_one_dies() {
    let db = ScratchDatabase::new().await;
    let keys = tempfile::tempdir().unwrap();
    let secrets_key = keys.path().join("secrets.key");
    std::fs::write(&secrets_key, format!("{}\n", "ab".repeat(32))).unwrap();
    let run = |args: &[&str]| {
        let mut command = Command::new(vantage_binary());
        command.args(args).args(["--database-url", &db.url]);
        if args[0] == "keys" {
            // A key's name is sealed with a key that the secrets key seals in turn.
            command.arg("--secrets-key-file").arg(&secrets_key);
        }
        let out = command.env("VANTAGE_LOG", "error").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    let spawn = || {
        Command::new(vantage_binary())
            .args(["project", "--database-url", &db.url])
            .env("VANTAGE_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    run(&["migrate"]);
    let projectors = vantage_projections::PROJECTORS.len() as i64;
    let read = sqlx::PgPool::connect(&db.url).await.unwrap();
    let audited = || {
        let read = read.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rm_audit")
                .fetch_one(&read)
                .await
                .unwrap_or(-1)
        }
    };

    let mut first = spawn();
    eventually("the first process takes every lease", || async {
        granted_leases(&db).await == projectors
    })
    .await;
    let mut second = spawn();
    // The second process tries every 2 s; give it two tries to (wrongly) take a lease too.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(
        granted_leases(&db).await,
        projectors,
        "a projector runs in exactly one process"
    );
    run(&["keys", "create", "--admin", "--name", "first"]);
    eventually("the first process projects the key", || async {
        audited().await == 1
    })
    .await;

    first.kill().unwrap();
    first.wait().unwrap();
    run(&["keys", "create", "--admin", "--name", "second"]);
    eventually(
        "the standby takes over and projects the next key",
        || async { audited().await == 2 },
    )
    .await;
    assert_eq!(granted_leases(&db).await, projectors);

    second.kill().unwrap();
    second.wait().unwrap();
    read.close().await;
    db.drop().await;
}

/// A preset admin key for a tenant that has keys already is ignored, and `serve` says so instead of
/// keeping quiet; the tenant's real key keeps working.
#[test]
fn an_ignored_bootstrap_key_is_reported() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let out = vantage(
        &["keys", "create", "--admin", "--name", "first"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let preset = format!("vtg_default_{}_{}", "1".repeat(32), "2".repeat(64));
    let mut serve = Command::new(vantage_binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--scan-workers",
            "0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("VANTAGE_BOOTSTRAP_ADMIN_KEY", &preset)
        .env("VANTAGE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = serve.stderr.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let warned = (0..100).any(|_| {
        seen.recv_timeout(std::time::Duration::from_millis(100))
            .is_ok_and(|line| line.contains("VANTAGE_BOOTSTRAP_ADMIN_KEY is ignored"))
    });
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(warned, "serve warns that the preset key is ignored");
}

/// Deleting the newest events, or rewriting one and recomputing every hash after it, leaves a chain
/// that verifies on its own; a signed checkpoint kept from before does not let either pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_catch_a_truncated_or_rewritten_log() {
    use vantage_store::EventStore;
    let dir = tempfile::tempdir().unwrap();
    for name in ["first", "second", "third"] {
        let out = vantage(&["keys", "create", "--admin", "--name", name], dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let checkpoint = || vantage(&["checkpoint"], dir.path());
    let out = checkpoint();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("checkpoint: position 3 head "));
    let out = vantage(
        &["keys", "create", "--admin", "--name", "fourth"],
        dir.path(),
    );
    assert!(out.status.success());
    assert!(checkpoint().status.success());
    let checkpoints = dir.path().join("checkpoints.jsonl");
    let cp = checkpoints.to_str().unwrap().to_owned();
    let verify = || vantage(&["verify", "--checkpoints", &cp], dir.path());
    let out = verify();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 checkpoints hold"),
        "{}",
        text(&out.stdout)
    );

    // Truncation: the newest event deleted. The chain alone still verifies; the checkpoint does not.
    let url = format!("sqlite://{}", dir.path().join("vantage.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for drop in [
        "DROP TRIGGER events_are_append_only_update",
        "DROP TRIGGER events_are_append_only_delete",
    ] {
        sqlx::query(drop).execute(&pool).await.unwrap();
    }
    sqlx::query("DELETE FROM events WHERE global_position = 4")
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        vantage(&["verify"], dir.path()).status.success(),
        "undetectable without a checkpoint"
    );
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("events were removed from the log"),
        "{}",
        text(&out.stderr)
    );

    // A rewrite: event 2's payload edited, and its content hash and every chain hash after it
    // recomputed, so the chain is consistent again.
    let store = vantage_store_sqlite::SqliteEventStore::open(&dir.path().join("vantage.db"))
        .await
        .unwrap();
    let events = store.read_all(0, 10).await.unwrap();
    let mut prev = vantage_store::GENESIS_HASH.to_owned();
    for mut recorded in events {
        if recorded.global_position == 2 {
            // Key names are sealed: the key is demoted instead.
            let text = recorded
                .event
                .payload
                .as_str()
                .replace("\"admin\"", "\"audit:read\"");
            recorded.event.payload = vantage_store::JsonPayload::from_text(text).unwrap();
            recorded.event.content_hash = vantage_store::content_hash(&recorded.event);
        }
        let hash = vantage_store::chain_hash(
            &prev,
            recorded.global_position,
            &recorded.event.content_hash,
        );
        sqlx::query(
            "UPDATE events SET payload = $1, content_hash = $2, prev_hash = $3, hash = $4 \
             WHERE global_position = $5",
        )
        .bind(recorded.event.payload.as_str())
        .bind(&recorded.event.content_hash)
        .bind(&prev)
        .bind(&hash)
        .bind(recorded.global_position as i64)
        .execute(&pool)
        .await
        .unwrap();
        prev = hash;
    }
    pool.close().await;
    assert!(
        vantage(&["verify"], dir.path()).status.success(),
        "the rewritten chain is consistent"
    );
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 1") && stderr.contains("rewritten"),
        "{stderr}"
    );

    // A checkpoint signed by another key is refused, naming the key.
    let other = tempfile::NamedTempFile::new().unwrap();
    let pem = vantage_reports::signing::SigningKey::from_seed(&[5; 32])
        .unwrap()
        .public_key()
        .to_pem();
    std::fs::write(other.path(), pem).unwrap();
    let out = vantage(
        &[
            "verify",
            "--checkpoints",
            &cp,
            "--public-key",
            other.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not by the expected key"),
        "{}",
        text(&out.stderr)
    );
}

/// A key revoked through one `serve` process is refused by another on the same database within
/// the key registry's cache time (`REGISTRY_TTL`), and by the first at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_replica_is_refused_by_the_other() {
    let deployment = vantage_tests::process::Deployment::new().await;
    let admin = deployment.admin.clone();
    let a = deployment
        .serve(&[], "warn", std::process::Stdio::null())
        .await;
    let b = deployment
        .serve(&[], "warn", std::process::Stdio::null())
        .await;
    let http = vantage_tests::http_client();
    let issued: serde_json::Value = http
        .post(a.url("/api/v1/keys"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "name": "short-lived", "scopes": ["scan:read"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (
        issued["id"].as_str().unwrap().to_owned(),
        issued["token"].as_str().unwrap().to_owned(),
    );
    let me = |server: &ServeProcess| {
        let (http, url, token) = (http.clone(), server.url("/api/v1/keys/me"), token.clone());
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(&b).await, 200, "the other replica knows the new key");
    let revoked = http
        .delete(a.url(&format!("/api/v1/keys/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    assert_eq!(
        me(&a).await,
        401,
        "the replica that revoked it refuses it at once"
    );
    let revoked_at = std::time::Instant::now();
    vantage_tests::process::eventually_within(
        "the other replica refuses the revoked key",
        vantage_app::REGISTRY_TTL + std::time::Duration::from_secs(2),
        || async { me(&b).await == 401 },
    )
    .await;
    assert!(
        revoked_at.elapsed() <= vantage_app::REGISTRY_TTL + std::time::Duration::from_secs(2),
        "refused within the registry's cache time"
    );
    a.stop().await;
    b.stop().await;
    deployment.drop().await;
}
