//! `vantage-bench scan`: whole scans of local HTTPS targets, through the same code `vantage serve`
//! runs (SSRF guard with a loopback allow-list, every probe, the embedded store), measured three ways:
//! one scan at a time (median and p90), many targets at once (wall time), and peak resident memory.
//!
//! Each target is its own HTTPS server on its own loopback address (127.0.0.2, 127.0.0.3, …) with a
//! certificate from a test CA the scanner trusts; no packet leaves the machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use vantage_app::CommandContext;
use vantage_domain::tenant::TenantId;
use vantage_probes::tls::TlsRoots;
use vantage_store_sqlite::SqliteEventStore;
use vantage_tests::tls::{TestCa, serve_https_on};
use vantage_worker::embedded::PipelineSink;
use vantage_worker::{ScanJob, Scanner, run_scan};

#[derive(Debug, clap::Args)]
pub struct ScanBenchArgs {
    /// Sequential scans of one target, for the median.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Targets scanned at once.
    #[arg(long, default_value_t = 100)]
    targets: usize,
    /// Observation counts whose recording cost is compared (after the lab scans).
    #[arg(long, value_delimiter = ',', default_values_t = [100, 300])]
    observations: Vec<usize>,
}

fn site() -> Router {
    Router::new().route(
        "/",
        get(|| async {
            (
                [
                    ("content-type", "text/html"),
                    ("strict-transport-security", "max-age=31536000"),
                    ("set-cookie", "sid=x; Secure; HttpOnly; SameSite=Lax"),
                ],
                r#"<html><head><script src="https://cdn.example/a.js"></script></head><body><form><input type=password></form></body></html>"#,
            )
        }),
    )
}

/// Peak resident set size of this process, from /proc (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub async fn run(args: ScanBenchArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = TestCa::new();
    let count = args.targets.max(1);
    let mut targets = Vec::with_capacity(count);
    for i in 0..count {
        let ip = std::net::Ipv4Addr::new(
            127,
            0,
            0,
            u8::try_from(2 + i % 250).context("too many targets")?,
        );
        let address = serve_https_on(ip, site(), ca.leaf(&[&ip.to_string()], None)).await;
        targets.push(address);
    }
    let dir = tempfile::tempdir()?;
    let store = SqliteEventStore::open(&dir.path().join("bench.db")).await?;
    let services = vantage_tests::lab_services(store);
    let scanner = Arc::new(Scanner::new(
        services.guard.clone(),
        TlsRoots::with_extra(vec![ca.certificate.clone()]),
    ));
    let context = CommandContext::system(TenantId::default_tenant());

    let scan_one = |address: std::net::SocketAddr| {
        let services = services.clone();
        let scanner = scanner.clone();
        let context = context.clone();
        async move {
            let mut spec = vantage_tests::lab_spec(address.port(), vec![address.port()]);
            spec.target = vantage_domain::target::ScanTarget::parse(&format!("https://{address}/"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            spec.profile = vantage_domain::target::Profile::Standard;
            let started = Instant::now();
            let job = request(&services, &context, spec).await?;
            let scan_id = job.scan_id;
            let sink = PipelineSink::new(services.clone(), "bench");
            let (_cancel, cancelled) = tokio::sync::watch::channel(false);
            run_scan(&job, "bench", &scanner, &sink, cancelled).await?;
            let view = services
                .scan(&job.tenant, scan_id)
                .await?
                .context("scan vanished")?;
            anyhow::ensure!(
                view.status == vantage_domain::scan::ScanStatus::Completed,
                "scan ended {:?}",
                view.status
            );
            anyhow::Ok((started.elapsed(), view.observation_count))
        }
    };

    let mut times: Vec<Duration> = Vec::with_capacity(args.runs);
    let mut observations = 0;
    for _ in 0..args.runs.max(1) {
        let (elapsed, seen) = scan_one(targets[0]).await?;
        times.push(elapsed);
        observations = seen;
    }
    times.sort();
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];

    let started = Instant::now();
    let all = futures::future::join_all(targets.iter().map(|a| scan_one(*a))).await;
    let wall = started.elapsed();
    let completed = all.iter().filter(|r| r.is_ok()).count();
    if let Some(Err(error)) = all.iter().find(|r| r.is_err()) {
        eprintln!("a concurrent scan failed: {error:#}");
    }

    println!("| measurement | result |");
    println!("|---|---:|");
    println!("| observations per scan | {observations} |");
    println!(
        "| single scan, median of {} | {:.0} ms |",
        times.len(),
        median.as_secs_f64() * 1000.0
    );
    println!(
        "| single scan, p90 | {:.0} ms |",
        p90.as_secs_f64() * 1000.0
    );
    println!(
        "| {count} targets at once, wall time | {:.2} s ({completed} completed) |",
        wall.as_secs_f64()
    );
    match peak_rss_mib() {
        Some(rss) => println!("| peak RSS | {rss:.0} MiB |"),
        None => println!("| peak RSS | unavailable |"),
    }
    observation_cost(&args).await
}

/// Requests a scan of `spec` and returns it as the job a worker runs.
async fn request(
    services: &vantage_app::Services,
    context: &CommandContext,
    spec: vantage_domain::scan::ScanSpec,
) -> anyhow::Result<ScanJob> {
    let scan_id = services
        .start_scan(context, spec.clone())
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(ScanJob {
        scan_id,
        tenant: context.tenant.clone(),
        spec,
    })
}

/// What recording a scan's observations costs as their number grows: a scan's whole command path
/// (request, begin, observations as a worker sends them — a probe's together, at most
/// `MAX_OBSERVATIONS_PER_COMMAND` per command — finalize, complete, then one status read) through
/// the worker's sink into a fresh SQLite store, against one append of the same events in the same
/// run (the store's own cost). Also with one observation per command, the worst case of batching.
async fn observation_cost(args: &ScanBenchArgs) -> anyhow::Result<()> {
    use vantage_domain::scan::{MAX_OBSERVATIONS_PER_COMMAND, ScanCommand};
    use vantage_tests::history::{SiteState, observations};
    use vantage_worker::{ScanEventSink, Submitted};

    let runs = args.runs.max(3);
    println!();
    println!(
        "| observations | batched: median scan | one per command: median scan | one append of the same events |"
    );
    println!("|---:|---:|---:|---:|");
    let mut medians = Vec::new();
    for &count in &args.observations {
        let mut batched = Vec::with_capacity(runs);
        let mut single = Vec::with_capacity(runs);
        let mut raw = Vec::with_capacity(runs);
        for run in 0..runs {
            let dir = tempfile::tempdir()?;
            let store = SqliteEventStore::open(&dir.path().join("cost.db")).await?;
            let services = vantage_tests::lab_services(store.clone());
            let context = CommandContext::system(TenantId::default_tenant());
            let state = SiteState {
                extra_pages: count,
                ..SiteState::default()
            };
            for per_command in [MAX_OBSERVATIONS_PER_COMMAND, 1] {
                let spec = vantage_tests::lab_spec(9, vec![9]);
                let seed = (run * 2 + usize::from(per_command == 1)) as u128 + 1;
                let seen: Vec<_> = observations("example.com", &state, seed)
                    .into_iter()
                    .take(count)
                    .collect();
                anyhow::ensure!(
                    seen.len() == count,
                    "the history makes {} observations",
                    seen.len()
                );
                let started = Instant::now();
                let job = request(&services, &context, spec).await?;
                let scan_id = job.scan_id;
                let sink = PipelineSink::new(services.clone(), "bench");
                let mut commands = vec![ScanCommand::Begin {
                    worker_id: "bench".into(),
                }];
                for probe in seen.chunk_by(|a, b| a.probe() == b.probe()) {
                    for batch in probe.chunks(per_command) {
                        commands.push(ScanCommand::Observe(batch.to_vec()));
                    }
                }
                commands.push(ScanCommand::Finalize);
                commands.push(ScanCommand::Complete {
                    ruleset_version: vantage_worker::RULESET_VERSION.into(),
                });
                for command in commands {
                    match sink.submit(&job, command).await? {
                        Submitted::Accepted => {}
                        Submitted::Refused(reason) => anyhow::bail!("refused: {reason}"),
                    }
                }
                let view = services
                    .scan(&job.tenant, scan_id)
                    .await?
                    .context("scan vanished")?;
                anyhow::ensure!(
                    view.observation_count == count,
                    "{} observations",
                    view.observation_count
                );
                let elapsed = started.elapsed();
                if per_command == 1 {
                    single.push(elapsed)
                } else {
                    batched.push(elapsed)
                }
            }
            raw.push(raw_append(&store, count).await?);
        }
        let median = |times: &mut Vec<Duration>| {
            times.sort();
            times[times.len() / 2]
        };
        let (b, s, r) = (median(&mut batched), median(&mut single), median(&mut raw));
        println!(
            "| {count} | {:.1} ms | {:.1} ms | {:.1} ms |",
            b.as_secs_f64() * 1000.0,
            s.as_secs_f64() * 1000.0,
            r.as_secs_f64() * 1000.0
        );
        medians.push((count, b, s));
    }
    if let [(small, b1, s1), .., (large, b2, s2)] = medians.as_slice() {
        println!();
        println!(
            "{large} vs {small} observations: batched {:.2}×, one per command {:.2}× (linear: {:.1}×)",
            b2.as_secs_f64() / b1.as_secs_f64(),
            s2.as_secs_f64() / s1.as_secs_f64(),
            *large as f64 / *small as f64
        );
    }
    Ok(())
}

/// One append of `count` observation events to a stream of their own: what storing them costs the
/// store, with no command path around it.
async fn raw_append(store: &SqliteEventStore, count: usize) -> anyhow::Result<Duration> {
    use vantage_domain::DomainEvent;
    use vantage_domain::scan::ScanEvent;
    use vantage_store::{
        EventMetadata, EventStore, ExpectedVersion, JsonPayload, NewEvent, StreamName,
    };
    let seen = vantage_tests::history::observations(
        "example.com",
        &vantage_tests::history::SiteState {
            extra_pages: count,
            ..Default::default()
        },
        999,
    );
    let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let events = seen
        .into_iter()
        .take(count)
        .map(|observed| {
            let event = ScanEvent::from(observed);
            Ok(NewEvent {
                event_id: vantage_app::new_id(),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                occurred_at: now,
                payload: JsonPayload::from_text(event.payload_json())?,
                metadata: EventMetadata {
                    tenant: "default".into(),
                    actor: "bench".into(),
                    request_id: None,
                    correlation_id: uuid::Uuid::nil(),
                    causation_id: None,
                },
            })
        })
        .collect::<Result<Vec<_>, vantage_store::StoreError>>()?;
    let stream = StreamName::new(format!("raw-{}", vantage_app::new_id().simple()))?;
    let started = Instant::now();
    store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await?;
    Ok(started.elapsed())
}
