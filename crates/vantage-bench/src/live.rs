//! `vantage-bench live`: many concurrent SSE subscribers on one server while events are appended at
//! a fixed rate, measuring append-to-delivery latency, the server's peak memory, and whether any
//! subscriber missed an event.
//!
//! The server is the real application (the router `vantage serve` runs, over a real loopback
//! socket, with the live hub fed from the log in-process on SQLite, or through NATS JetStream on
//! PostgreSQL as with `--nats-url`) in this process; the subscribers run in a child process
//! (`vantage-bench live-clients`, this binary again) so the server's peak RSS is its own. Scans are
//! written the way workers write them: each subscriber follows one of `--scans` running scans
//! (`GET /api/v1/scans/{id}/events`), and `--rate` observations per second are appended, one per
//! command, spread evenly over the scans. Latency is the time from an event's `recorded_at` (stamped
//! when it is appended) to the moment a subscriber has read it off its socket. At the end every scan
//! completes; a subscriber is complete when it saw every observation of its scan, in log order,
//! before the scan's end.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use vantage_tests::TestApp;
use vantage_tests::history::{self, RunningScan, SiteState};
use vantage_tests::sse::SseStream;

use crate::Backend;

#[derive(Debug, clap::Args)]
pub struct LiveBenchArgs {
    /// Which deployment to measure: `sqlite` (embedded: the hub fed from the log in-process) or
    /// `postgres` (PostgreSQL at DATABASE_URL, live events relayed through NATS at NATS_URL).
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// With PostgreSQL, feed the hub from the log in-process (one replica, as `vantage serve`
    /// without `--nats-url`) instead of through NATS.
    #[arg(long)]
    no_nats: bool,
    /// Concurrent SSE subscribers.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Running scans the subscribers are spread over.
    #[arg(long, default_value_t = 1_000)]
    scans: usize,
    /// Events appended per second (one per command).
    #[arg(long, default_value_t = 1_000)]
    rate: usize,
    /// How long events are appended.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Concurrent appenders (the rate is split between them).
    #[arg(long, default_value_t = 8)]
    appenders: usize,
}

/// The subscriber side, run as a child process by `live`.
#[derive(Debug, clap::Args)]
pub struct LiveClientsArgs {
    /// The server, `http://127.0.0.1:<port>`.
    #[arg(long)]
    base: String,
    /// A file of scan ids, one per line.
    #[arg(long)]
    scans_file: PathBuf,
    #[arg(long)]
    subscribers: usize,
    /// Observations every scan will get.
    #[arg(long)]
    events_per_scan: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// The API key (read from the environment so it stays off the process list).
    #[arg(long, env = "VANTAGE_BENCH_KEY", hide_env_values = true)]
    key: String,
}

/// What the subscribers saw.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ClientReport {
    subscribers: usize,
    /// Subscribers that saw every observation of their scan, in order, then its end.
    complete: usize,
    refused: usize,
    overflowed: usize,
    out_of_order: usize,
    missing_events: usize,
    deliveries: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    peak_rss_kib: u64,
}

/// Peak resident set size of this process (`VmHWM`), KiB.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Resident set size of this process now (`VmRSS`), KiB.
fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// A `kB` line of `/proc/self/status`.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

pub async fn run(args: LiveBenchArgs) -> anyhow::Result<()> {
    if args.scans == 0 || args.subscribers < args.scans || args.appenders == 0 {
        bail!("give at least one scan, one appender, and at least one subscriber per scan");
    }
    let events_per_scan = (args.rate * args.seconds as usize / args.scans).max(1);
    let total = events_per_scan * args.scans;
    eprintln!(
        "{:?}: {} subscribers over {} scans, {total} observations at {}/s",
        args.backend, args.subscribers, args.scans, args.rate
    );

    let sqlite = vantage_tests::SqliteTestStore::new().await;
    let pg = match args.backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(vantage_tests::PgTestStore::new().await),
    };
    let app = match &pg {
        None => TestApp::spawn_unthrottled(sqlite.app_stores().await).await,
        Some(pg) if args.no_nats => TestApp::spawn_unthrottled(pg.app_stores().await).await,
        Some(pg) => TestApp::spawn_unthrottled_over_nats(pg.app_stores().await).await,
    };
    let store = app.stores.events.clone();

    eprintln!(
        "server RSS before scans and subscribers: {} MiB",
        rss_kib() / 1024
    );
    let mut scans = Vec::with_capacity(args.scans);
    for n in 0..args.scans {
        scans.push(
            RunningScan::start(store.as_ref(), "default", &format!("live{n}.example.com")).await,
        );
    }
    app.caught_up().await;
    let dir = tempfile::tempdir()?;
    let scans_file = dir.path().join("scans");
    std::fs::write(
        &scans_file,
        scans
            .iter()
            .map(|s| format!("{}\n", s.id))
            .collect::<String>(),
    )?;

    let mut clients = Command::new(std::env::current_exe()?)
        .arg("live-clients")
        .args(["--base", &app.base])
        .arg("--scans-file")
        .arg(&scans_file)
        .args(["--subscribers", &args.subscribers.to_string()])
        .args(["--events-per-scan", &events_per_scan.to_string()])
        .env("VANTAGE_BENCH_KEY", &app.admin_key)
        .stdout(Stdio::piped())
        .spawn()
        .context("start the subscriber process")?;
    let mut lines = BufReader::new(clients.stdout.take().context("subscriber stdout")?).lines();
    let connecting = Instant::now();
    let ready = tokio::task::spawn_blocking(move || {
        let line = lines.next();
        (line, lines)
    })
    .await?;
    let (Some(Ok(line)), mut lines) = ready else {
        bail!("the subscriber process ended before its subscribers were ready");
    };
    if line != "ready" {
        bail!("the subscriber process said {line:?}");
    }
    eprintln!(
        "{} subscribers connected in {:.1} s; server RSS {} MiB (peak {} MiB)",
        args.subscribers,
        connecting.elapsed().as_secs_f64(),
        rss_kib() / 1024,
        peak_rss_kib() / 1024
    );

    // The appenders: scan n is appender (n % appenders)'s.
    let mut groups: Vec<Vec<RunningScan>> = (0..args.appenders).map(|_| Vec::new()).collect();
    for (n, scan) in scans.into_iter().enumerate() {
        groups[n % args.appenders].push(scan);
    }
    let appending = Instant::now();
    let mut tasks = Vec::new();
    for (g, mut group) in groups.into_iter().enumerate() {
        let store = store.clone();
        // Each group's share of the rate is its share of the scans.
        let period = Duration::from_secs_f64(args.scans as f64 / (args.rate * group.len()) as f64);
        tasks.push(tokio::spawn(async move {
            let site = SiteState {
                extra_pages: events_per_scan,
                ..SiteState::default()
            };
            let mut pending: Vec<_> = group
                .iter()
                .enumerate()
                .map(|(i, scan)| {
                    let seed = (g * 1_000_000 + i) as u128;
                    let domain = format!("live{}.example.com", scan.id);
                    history::observations(&domain, &site, seed)
                        .into_iter()
                        .take(events_per_scan)
                        .collect::<std::collections::VecDeque<_>>()
                })
                .collect();
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for _ in 0..events_per_scan {
                for (scan, observations) in group.iter_mut().zip(&mut pending) {
                    ticker.tick().await;
                    let observation = observations.pop_front().expect("one per round");
                    scan.observe(store.as_ref(), observation).await;
                }
            }
            group
        }));
    }
    let mut finished = Vec::new();
    for task in tasks {
        finished.extend(task.await?);
    }
    let append_seconds = appending.elapsed().as_secs_f64();
    for scan in finished {
        scan.complete(store.as_ref()).await;
    }
    let server_rss = peak_rss_kib();

    let report = tokio::task::spawn_blocking(move || lines.next()).await?;
    let Some(Ok(report)) = report else {
        bail!("the subscriber process ended without a report");
    };
    let report: ClientReport = serde_json::from_str(&report)?;
    let status = clients.wait()?;
    if !status.success() {
        bail!("the subscriber process failed: {status}");
    }
    println!(
        "| backend | subscribers | scans | appended | achieved events/s | deliveries | p50 ms | p99 ms | max ms | server peak RSS MiB | complete subscribers | missing events | overflowed | refused | subscriber-process peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {:?} | {} | {} | {total} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {} | {:.0} |",
        args.backend,
        report.subscribers,
        args.scans,
        total as f64 / append_seconds,
        report.deliveries,
        report.p50_ms,
        report.p99_ms,
        report.max_ms,
        server_rss as f64 / 1024.0,
        report.complete,
        report.missing_events,
        report.overflowed,
        report.refused,
        report.peak_rss_kib as f64 / 1024.0,
    );
    app.stop().await;
    if let Some(pg) = pg {
        pg.drop_schema().await;
    }
    Ok(())
}

/// What one subscriber saw.
#[derive(Debug, Default)]
struct Seen {
    refused: bool,
    complete: bool,
    overflowed: bool,
    out_of_order: bool,
    observed: usize,
    latencies_ms: Vec<f64>,
}

/// `recorded_at` of an event's JSON, without parsing the rest.
fn recorded_at(data: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let start = data.find("\"recorded_at\":\"")? + "\"recorded_at\":\"".len();
    let end = start + data[start..].find('"')?;
    chrono::DateTime::parse_from_rfc3339(&data[start..end])
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

async fn subscribe(
    client: reqwest::Client,
    url: String,
    key: Arc<str>,
    connect: Arc<tokio::sync::Semaphore>,
    ready: tokio::sync::mpsc::Sender<()>,
    expected: usize,
) -> Seen {
    let mut seen = Seen::default();
    let permit = connect.acquire_owned().await;
    let response = match client.get(&url).bearer_auth(&*key).send().await {
        Ok(r) if r.status() == 200 => r,
        _ => {
            seen.refused = true;
            let _ = ready.send(()).await;
            return seen;
        }
    };
    let mut stream = SseStream::new(response);
    let mut last = 0;
    let mut ready = Some(ready);
    let mut permit = Some(permit);
    while let Some(event) = stream.next(Duration::from_secs(600)).await {
        if event.position() <= last && event.id.is_some() {
            seen.out_of_order = true;
        }
        last = last.max(event.position());
        match event.event.as_deref() {
            Some("ScanStarted") => {
                drop(permit.take());
                if let Some(ready) = ready.take() {
                    let _ = ready.send(()).await;
                }
            }
            Some("ProbeObserved") => {
                let now = chrono::Utc::now();
                seen.observed += 1;
                if let Some(at) = recorded_at(&event.data) {
                    seen.latencies_ms
                        .push((now - at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                }
            }
            Some("ScanCompleted") => {
                seen.complete = seen.observed == expected && !seen.out_of_order;
                break;
            }
            Some("overflow") => {
                seen.overflowed = true;
                break;
            }
            _ => {}
        }
    }
    if let Some(ready) = ready {
        let _ = ready.send(()).await;
    }
    seen
}

/// The subscriber process: connects, says `ready` once every subscriber follows its scan live,
/// and prints its report as one JSON line when every scan has ended.
pub async fn clients(args: LiveClientsArgs) -> anyhow::Result<()> {
    let scans: Vec<String> = std::fs::read_to_string(&args.scans_file)?
        .lines()
        .map(str::to_owned)
        .collect();
    if scans.is_empty() {
        bail!("no scans in {}", args.scans_file.display());
    }
    let client = vantage_tests::http_client();
    let key: Arc<str> = args.key.into();
    let connect = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency));
    let (ready, mut readies) = tokio::sync::mpsc::channel(args.subscribers);
    let subscribers: Vec<_> = (0..args.subscribers)
        .map(|n| {
            let url = format!(
                "{}/api/v1/scans/{}/events",
                args.base,
                scans[n % scans.len()]
            );
            tokio::spawn(subscribe(
                client.clone(),
                url,
                key.clone(),
                connect.clone(),
                ready.clone(),
                args.events_per_scan,
            ))
        })
        .collect();
    drop(ready);
    for _ in 0..args.subscribers {
        readies.recv().await.context("a subscriber ended early")?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);

    let mut report = ClientReport {
        subscribers: args.subscribers,
        ..ClientReport::default()
    };
    let mut latencies = Vec::new();
    for subscriber in subscribers {
        let seen = subscriber.await?;
        report.complete += usize::from(seen.complete);
        report.refused += usize::from(seen.refused);
        report.overflowed += usize::from(seen.overflowed);
        report.out_of_order += usize::from(seen.out_of_order);
        report.missing_events += args.events_per_scan.saturating_sub(seen.observed);
        report.deliveries += seen.observed;
        latencies.extend(seen.latencies_ms);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    report.p50_ms = at(0.50);
    report.p99_ms = at(0.99);
    report.max_ms = latencies.last().copied().unwrap_or(f64::NAN);
    report.peak_rss_kib = peak_rss_kib();
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
