//! `soak`: `vantage serve` as a process under a steady mix for a long time — scans of a loopback
//! site run by its own workers, reads of lists, statuses, findings and the command center, triage
//! decisions and comments, and a live subscriber to the tenant's events — sampled at a fixed
//! interval: requests, errors, p99 latency, the server's resident memory and open file descriptors,
//! and projection lag. At the end the server is stopped and `vantage verify` and `vantage replay`
//! run on its store. Embedded (SQLite, the server's own workers) or distributed (PostgreSQL from
//! `DATABASE_URL` — a scratch database — and NATS JetStream from `NATS_URL`, with two `vantage
//! worker` processes). Prints a Markdown table; exits non-zero on any error, on a failed verify or
//! replay, or when memory or descriptors keep growing (CI runs a short one).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

/// How a soak runs.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// The `vantage` binary to run.
    #[arg(long, default_value = "target/release/vantage")]
    vantage: PathBuf,
    /// How long the mix runs, in seconds.
    #[arg(long, default_value_t = 1800)]
    seconds: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 60)]
    sample_seconds: u64,
    /// Reader clients, each sending its next request as soon as the last is answered.
    #[arg(long, default_value_t = 4)]
    readers: usize,
    /// Milliseconds between scans started.
    #[arg(long, default_value_t = 1000)]
    scan_interval_ms: u64,
    /// Embedded SQLite with the server's own workers, or PostgreSQL + NATS with two worker processes.
    #[arg(long, value_enum, default_value = "sqlite")]
    store: crate::Backend,
    /// NATS with JetStream, for `--store postgres`.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
}

/// Where the server keeps its log, and the processes beside it.
struct Deployment {
    data: tempfile::TempDir,
    /// The scratch database (distributed only).
    database: Option<vantage_tests::process::ScratchDatabase>,
    workers: Vec<tokio::process::Child>,
    /// The NATS subject and stream prefix of this run (distributed only), its streams deleted at the end.
    nats_prefix: Option<String>,
}

impl Deployment {
    /// The flags that name the store, for `serve`, `verify` and `replay`.
    fn store_flags(&self) -> Vec<String> {
        match &self.database {
            Some(db) => vec!["--database-url".into(), db.url.clone()],
            None => vec!["--data-dir".into(), self.data.path().display().to_string()],
        }
    }
}

/// Requests answered in the current window.
#[derive(Debug, Default)]
struct Window {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// What every client records into.
#[derive(Debug, Default)]
struct Tally {
    window: Mutex<Window>,
    requests: AtomicU64,
    errors: AtomicU64,
    live_events: AtomicU64,
    live_reconnects: AtomicU64,
}

impl Tally {
    /// Records one answer. Success is a 2xx, or a 409 where the request races others by design.
    fn record(&self, started: Instant, outcome: Result<u16, String>, what: &str) {
        let elapsed = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let error = match outcome {
            Ok(status) if (200..300).contains(&status) || status == 409 => None,
            Ok(status) => Some(format!("{what}: {status}")),
            Err(error) => Some(format!("{what}: {error}")),
        };
        let mut window = lock(&self.window);
        window.latencies_us.push(elapsed);
        if let Some(error) = error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            window.errors += 1;
            window.first_error.get_or_insert(error);
        }
    }

    fn take_window(&self) -> Window {
        std::mem::take(&mut *lock(&self.window))
    }
}

/// What every client of the mix shares (cheap to clone).
#[derive(Clone)]
struct Mix {
    http: reqwest::Client,
    base: String,
    key: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    /// The ids of the scans created so far.
    scans: Arc<Mutex<Vec<String>>>,
}

impl Mix {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// Sends `method path` (with a JSON `body`) as the admin, records the answer as `what` once its
    /// body has arrived, and returns that body (`null` when there is none or it is not JSON).
    async fn call(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        match request.send().await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                let body = answer.json::<Value>().await.unwrap_or_default();
                self.tally.record(started, Ok(status), what);
                body
            }
            Err(error) => {
                self.tally.record(started, Err(error.to_string()), what);
                Value::Null
            }
        }
    }
}

/// A shared list, locked (a panicked holder cannot have left it half-written).
fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the server process looks like now: resident memory (KiB) and open descriptors.
fn process_usage(pid: u32) -> (u64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)] as f64 / 1000.0
}

/// A web site on loopback for the scans: a page with a few headers and a cookie.
async fn lab_site() -> anyhow::Result<u16> {
    let app = axum::Router::new().fallback(|| async {
        (
            [
                ("content-type", "text/html"),
                ("set-cookie", "session=soak; Path=/"),
                ("x-frame-options", "DENY"),
            ],
            "<html><head><title>soak</title></head><body>soak</body></html>",
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(port)
}

/// The running server: its process, address and admin key.
struct Server {
    child: tokio::process::Child,
    base: String,
    key: String,
}

const LAB: [&str; 4] = ["--allow-cidr", "127.0.0.0/8", "--resolver", "127.0.0.1:9"];

async fn deploy(args: &SoakArgs) -> anyhow::Result<Deployment> {
    let data = tempfile::tempdir()?;
    let database = match args.store {
        crate::Backend::Sqlite => None,
        crate::Backend::Postgres => Some(vantage_tests::process::ScratchDatabase::new().await),
    };
    let nats_prefix = database
        .as_ref()
        .map(|_| format!("soak_{}", &uuid::Uuid::now_v7().simple().to_string()[20..]));
    Ok(Deployment {
        data,
        database,
        workers: Vec::new(),
        nats_prefix,
    })
}

async fn start_server(args: &SoakArgs, deployment: &mut Deployment) -> anyhow::Result<Server> {
    use tokio::io::AsyncBufReadExt;
    let key = format!(
        "vtg_default_{}_{}",
        uuid::Uuid::now_v7().simple(),
        "9".repeat(64)
    );
    let mut command = tokio::process::Command::new(&args.vantage);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(deployment.store_flags())
        .args(LAB)
        .args(["--rate-limit-per-minute", "10000000"])
        .args(["--scan-rate-limit-per-minute", "10000000"]);
    if let Some(prefix) = deployment.nats_prefix.clone() {
        let secrets = deployment.data.path().join("secrets.key");
        std::fs::write(&secrets, format!("{}\n", "5a".repeat(32)))?;
        command
            .arg("--secrets-key-file")
            .arg(&secrets)
            .args(["--scan-workers", "0", "--nats-url", &args.nats_url])
            .args(["--nats-prefix", &prefix]);
        for n in 1..=2 {
            let worker = tokio::process::Command::new(&args.vantage)
                .args([
                    "worker",
                    "--nats-url",
                    &args.nats_url,
                    "--nats-prefix",
                    &prefix,
                ])
                .args(["--worker-id", &format!("soak-{n}")])
                .args(LAB)
                .env("VANTAGE_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting a worker")?;
            deployment.workers.push(worker);
        }
    } else {
        command.args(["--scan-workers", "2"]);
    }
    let mut child = command
        .env("VANTAGE_BOOTSTRAP_ADMIN_KEY", &key)
        .env("VANTAGE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", args.vantage.display()))?;
    let stdout = child.stdout.take().context("serve's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix("Vantage listening on ") {
            let base = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            // Keep draining stdout so the server never blocks on it.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(Server { child, base, key });
        }
    }
    bail!("vantage serve exited before it listened")
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let mut deployment = deploy(&args).await?;
    let port = lab_site().await?;
    let mut server = start_server(&args, &mut deployment).await?;
    let pid = server.child.id().context("serve's pid")?;
    let http = vantage_tests::http_client();
    let (base, key) = (server.base.clone(), server.key.clone());
    let mix = Mix {
        http: http.clone(),
        base: base.clone(),
        key: key.clone(),
        tally: Arc::default(),
        stop: Arc::default(),
        scans: Arc::default(),
    };
    let (tally, stop, scans) = (mix.tally.clone(), mix.stop.clone(), mix.scans.clone());
    let mut tasks = Vec::new();

    // Scans of the lab site, one per interval.
    {
        let mix = mix.clone();
        let interval = Duration::from_millis(args.scan_interval_ms);
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            while mix.running() {
                ticks.tick().await;
                let body = json!({
                    "target": format!("http://127.0.0.1:{port}/"),
                    "ports": [port],
                    "profile": "quick",
                });
                let created = mix
                    .call(Method::POST, "/api/v1/scans", Some(body), "create scan")
                    .await;
                if let Some(id) = created["id"].as_str() {
                    lock(&mix.scans).push(id.to_owned());
                }
            }
        }));
    }
    // Readers: lists, statuses, findings, the command center. Statuses and findings are asked of
    // scans a list has shown (the read models know them; a scan just created may not be there yet).
    let listed: Arc<Mutex<Vec<String>>> = Arc::default();
    for reader in 0..args.readers {
        let (mix, listed) = (mix.clone(), listed.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = reader;
            while mix.running() {
                n += 1;
                let latest = {
                    let listed = lock(&listed);
                    listed.get(n % listed.len().max(1)).cloned()
                };
                let path = match (n % 4, latest) {
                    (1, Some(id)) => format!("/api/v1/scans/{id}/status"),
                    (2, Some(id)) => format!("/api/v1/scans/{id}/findings"),
                    (3, _) => "/api/v1/dashboard/command-center".to_owned(),
                    _ => "/api/v1/scans?limit=20".to_owned(),
                };
                let body = mix.call(Method::GET, &path, None, &path).await;
                if path.starts_with("/api/v1/scans?")
                    && let Some(items) = body["items"].as_array()
                {
                    *lock(&listed) = items
                        .iter()
                        .filter_map(|scan| scan["id"].as_str().map(str::to_owned))
                        .collect();
                }
            }
        }));
    }
    // A triager: a decision and a comment on a finding of a recent completed scan, every 2 s.
    {
        let mix = mix.clone();
        tasks.push(tokio::spawn(async move {
            let states = ["acknowledged", "accepted_risk", "false_positive", "open"];
            let mut n = 0usize;
            while mix.running() {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let id = {
                    let scans = lock(&mix.scans);
                    scans.get(scans.len().saturating_sub(10)).cloned()
                };
                let Some(id) = id else { continue };
                // Finding the fingerprint is not part of the measured mix.
                let Ok(answer) = mix
                    .http
                    .get(format!("{}/api/v1/scans/{id}/findings", mix.base))
                    .bearer_auth(&mix.key)
                    .send()
                    .await
                else {
                    continue;
                };
                let Ok(findings) = answer.json::<Value>().await else {
                    continue;
                };
                let Some(fingerprint) = findings["items"][0]["fingerprint"].as_str() else {
                    continue;
                };
                n += 1;
                let decision =
                    json!({ "state": states[n % states.len()], "note": format!("soak {n}") });
                mix.call(
                    Method::PATCH,
                    &format!("/api/v1/findings/{fingerprint}/state"),
                    Some(decision),
                    "triage",
                )
                .await;
                mix.call(
                    Method::POST,
                    &format!("/api/v1/findings/{fingerprint}/comments"),
                    Some(json!({ "body": format!("soak comment {n}") })),
                    "comment",
                )
                .await;
            }
        }));
    }
    // A live subscriber to the tenant's events, reconnecting whenever the server ends the stream.
    {
        let mix = mix.clone();
        tasks.push(tokio::spawn(async move {
            while mix.running() {
                let Ok(answer) = mix
                    .http
                    .get(format!("{}/api/v1/events", mix.base))
                    .bearer_auth(&mix.key)
                    .send()
                    .await
                else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let mut body = answer.bytes_stream();
                while let Some(Ok(chunk)) = body.next().await {
                    let events = chunk
                        .split(|byte| *byte == b'\n')
                        .filter(|line| line.starts_with(b"id:"))
                        .count();
                    mix.tally
                        .live_events
                        .fetch_add(events as u64, Ordering::Relaxed);
                    if !mix.running() {
                        return;
                    }
                }
                mix.tally.live_reconnects.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    println!(
        "| minute | requests | errors | p50 ms | p99 ms | RSS MiB | open fds | max projection lag (events) | live events |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let started = Instant::now();
    let mut samples: Vec<(u64, usize)> = Vec::new();
    let mut first_error = None;
    let mut live_seen = 0;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_secs(args.sample_seconds)).await;
        if let Some(exit) = server.child.try_wait()? {
            bail!("vantage serve exited in the middle of the soak: {exit}");
        }
        for worker in &mut deployment.workers {
            if let Some(exit) = worker.try_wait()? {
                bail!("a vantage worker exited in the middle of the soak: {exit}");
            }
        }
        let mut window = tally.take_window();
        window.latencies_us.sort_unstable();
        let (rss, fds) = process_usage(pid);
        let lag = match http.get(format!("{base}/ready")).send().await {
            Ok(answer) => answer.json::<Value>().await.ok().and_then(|ready| {
                ready["projectors"]
                    .as_array()?
                    .iter()
                    .filter_map(|p| p["lag_events"].as_u64())
                    .max()
            }),
            Err(_) => None,
        };
        let live = tally.live_events.load(Ordering::Relaxed);
        println!(
            "| {:.1} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            started.elapsed().as_secs_f64() / 60.0,
            window.latencies_us.len(),
            window.errors,
            percentile(&window.latencies_us, 0.50),
            percentile(&window.latencies_us, 0.99),
            rss as f64 / 1024.0,
            fds,
            lag.map_or("?".to_owned(), |l| l.to_string()),
            live - live_seen,
        );
        live_seen = live;
        samples.push((rss, fds));
        if first_error.is_none() {
            first_error = window.first_error;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    let requests = tally.requests.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    let scans_started = lock(&scans).len();
    let completed: Value = http
        .get(format!("{base}/api/v1/scans?status=completed&limit=1"))
        .bearer_auth(&key)
        .send()
        .await?
        .json()
        .await?;
    let ended = completed["items"]
        .as_array()
        .is_some_and(|items| !items.is_empty());
    // Stop the server as an operator would, then check its store offline.
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    let exit = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .context("serve did not stop within 30 s of SIGTERM")??;
    let mut checks = Vec::new();
    for command in ["verify", "replay"] {
        let out = tokio::process::Command::new(&args.vantage)
            .arg(command)
            .args(deployment.store_flags())
            .env("VANTAGE_LOG", "error")
            .output()
            .await?;
        checks.push((
            command,
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    for worker in &mut deployment.workers {
        let _ = worker.kill().await;
    }
    if let Some(database) = deployment.database.take() {
        database.drop().await;
    }
    if let Some(prefix) = &deployment.nats_prefix {
        let client = async_nats::connect(&args.nats_url).await?;
        let topology =
            vantage_worker::nats::NatsTopology::new(prefix).map_err(anyhow::Error::msg)?;
        topology
            .delete_streams(&async_nats::jetstream::new(client))
            .await?;
    }
    println!();
    println!(
        "{requests} requests, {errors} errors, {scans_started} scans started, {} live events ({} reconnects); serve exited {exit}; verify {}, replay {}",
        tally.live_events.load(Ordering::Relaxed),
        tally.live_reconnects.load(Ordering::Relaxed),
        if checks[0].1 { "passed" } else { "FAILED" },
        if checks[1].1 { "passed" } else { "FAILED" },
    );
    if errors > 0 {
        bail!(
            "{errors} of {requests} requests failed; the first: {}",
            first_error.unwrap_or_default()
        );
    }
    for (command, passed, stderr) in &checks {
        if !passed {
            bail!("vantage {command} failed: {stderr}");
        }
    }
    if !exit.success() || !ended || tally.live_events.load(Ordering::Relaxed) == 0 {
        bail!("serve exited {exit}, or no scan completed, or the live subscriber heard nothing");
    }
    // Flat over time: the second half's peak within 25% (RSS) and 16 descriptors of the first half's.
    if samples.len() >= 4 {
        let (first, second) = samples.split_at(samples.len() / 2);
        let peak = |s: &[(u64, usize)]| {
            (
                s.iter().map(|x| x.0).max().unwrap_or(0),
                s.iter().map(|x| x.1).max().unwrap_or(0),
            )
        };
        let ((rss1, fds1), (rss2, fds2)) = (peak(first), peak(second));
        if rss2 > rss1 + rss1 / 4 || fds2 > fds1 + 16 {
            bail!(
                "the server keeps growing: peak RSS {rss1} → {rss2} KiB, open descriptors {fds1} → {fds2}"
            );
        }
    }
    Ok(())
}
