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
    let tenant = TenantId::default_tenant();
    let context = CommandContext::system(tenant.clone());

    let scan_one = |address: std::net::SocketAddr| {
        let services = services.clone();
        let scanner = scanner.clone();
        let context = context.clone();
        let tenant = tenant.clone();
        async move {
            let mut spec = vantage_tests::lab_spec(address.port(), vec![address.port()]);
            spec.target = vantage_domain::target::ScanTarget::parse(&format!("https://{address}/"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            spec.profile = vantage_domain::target::Profile::Standard;
            let started = Instant::now();
            let scan_id = services
                .start_scan(&context, spec.clone())
                .await?
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let job = ScanJob {
                scan_id,
                tenant,
                spec,
            };
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
    Ok(())
}
