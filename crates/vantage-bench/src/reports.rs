//! `vantage-bench reports`: the compliance package of a scan of `--events` events — `vantage export`
//! and `vantage verify-package` as whole processes — and the report of that scan in every format.
//!
//! The scan is written into an embedded data directory the way a worker writes one (one append per
//! observation), with a second scan's observations interleaved so the package's chain segment spans
//! as many events of another stream (`chain.jsonl`). Export runs once to bring the read models up to
//! date, then `--runs` times; verification `--runs` times. The baseline, in the same run, is the
//! byte-level part of the work done by standard tools: `tar -xzf` of the same package and
//! `sha256sum` of its files. Report formats are timed in process, from the read models to the bytes.

#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use vantage_store::EventStore;
use vantage_store_sqlite::SqliteEventStore;
use vantage_tests::history::{self, RunningScan, SiteState};

/// `vantage-bench reports` arguments.
#[derive(Debug, clap::Args)]
pub struct ReportsBenchArgs {
    /// The `vantage` binary to measure (a release build).
    #[arg(long, default_value = "target/release/vantage")]
    vantage: PathBuf,
    /// Events of the packaged scan.
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    /// Counted runs of each command.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn seconds(command: &mut Command) -> anyhow::Result<f64> {
    let started = Instant::now();
    let output = command.output().context("cannot run the command")?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(started.elapsed().as_secs_f64())
}

fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
    )
}

/// Writes the packaged scan (and the interleaved one) into `dir`; returns the packaged scan's id.
async fn write_scans(dir: &Path, events: usize) -> anyhow::Result<String> {
    let store: Arc<dyn EventStore> =
        Arc::new(SqliteEventStore::open(&dir.join("vantage.db")).await?);
    let observations = events.saturating_sub(4).max(1);
    let state = SiteState {
        csp: false,
        git_exposed: true,
        cert_days_left: 10,
        extra_pages: observations,
    };
    let packaged = history::observations("bench-report.example", &state, 1);
    let other = history::observations("bench-other.example", &state, 2);
    let mut scan = RunningScan::start(store.as_ref(), "default", "bench-report.example").await;
    let mut neighbour = RunningScan::start(store.as_ref(), "default", "bench-other.example").await;
    for (mine, theirs) in packaged.into_iter().take(observations).zip(other) {
        scan.observe(store.as_ref(), mine).await;
        neighbour.observe(store.as_ref(), theirs).await;
    }
    let id = scan.id.to_string();
    scan.complete(store.as_ref()).await;
    neighbour.complete(store.as_ref()).await;
    Ok(id)
}

pub async fn run(args: ReportsBenchArgs) -> anyhow::Result<()> {
    if !args.vantage.is_file() {
        bail!(
            "{} is not a file: build it first (cargo build --release -p vantage)",
            args.vantage.display()
        );
    }
    let vantage = std::fs::canonicalize(&args.vantage)?;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let scan = write_scans(dir.path(), args.events).await?;
    eprintln!(
        "wrote a scan of {} events (and as many of another scan between them) in {:.1} s",
        args.events,
        started.elapsed().as_secs_f64()
    );
    let package = dir.path().join("package.tar.gz");
    let export = || {
        let mut command = Command::new(&vantage);
        command
            .args(["export", &scan, "--data-dir"])
            .arg(dir.path())
            .arg("-o")
            .arg(&package)
            .env("VANTAGE_LOG", "error");
        command
    };
    let first = seconds(&mut export())?;
    eprintln!("first export (read models brought up to date): {first:.2} s");
    let exports = (0..args.runs)
        .map(|_| seconds(&mut export()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let verifies = (0..args.runs)
        .map(|_| {
            seconds(
                Command::new(&vantage)
                    .arg("verify-package")
                    .arg(&package)
                    .env("VANTAGE_LOG", "error"),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked)?;
    let baselines = (0..args.runs)
        .map(|_| {
            seconds(
                Command::new("sh")
                    .arg("-c")
                    .arg("tar -xzf \"$1\" -C \"$2\" && sha256sum \"$2\"/* >/dev/null")
                    .arg("sh")
                    .arg(&package)
                    .arg(&unpacked),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let size = std::fs::metadata(&package)?.len();
    let events_jsonl = std::fs::metadata(unpacked.join("events.jsonl"))?.len();

    println!(
        "| {} events (+{} of another stream in the segment), package {:.1} MiB (events.jsonl {:.1} MiB) | min | median | max |",
        args.events,
        args.events,
        size as f64 / 1_048_576.0,
        events_jsonl as f64 / 1_048_576.0
    );
    println!("|---|---|---|---|");
    for (what, values) in [
        ("`vantage export` (whole process)", exports),
        ("`vantage verify-package` (whole process)", verifies),
        ("baseline: `tar -xzf` + `sha256sum` of the files", baselines),
    ] {
        let (min, mid, max) = median(values);
        println!("| {what} | {min:.3} s | {mid:.3} s | {max:.3} s |");
    }

    // Report generation, in process: the read models' report, then each format's bytes.
    let db = vantage_projections::ReadDb::open_sqlite(&dir.path().join("readmodels.db")).await?;
    let now = chrono::Utc::now();
    let started = Instant::now();
    let report = db
        .report("default", &scan, now)
        .await?
        .context("the scan is in the read models")?;
    let gather = started.elapsed().as_secs_f64();
    let rules = vantage_rules::rule_catalog(report.ruleset_version.as_deref().unwrap_or("3"))?;
    println!();
    println!(
        "| report of that scan ({} findings) | time | bytes |",
        report.findings.len()
    );
    println!("|---|---|---|");
    println!(
        "| gather from the read models | {:.1} ms | |",
        gather * 1000.0
    );
    time_formats(&report, &rules, args.runs);

    // The renderers' cost as findings grow: the same report with 1,000 findings.
    let mut big = report.clone();
    let template = big
        .findings
        .first()
        .cloned()
        .context("the scan has findings")?;
    big.findings = (0..1_000)
        .map(|i| {
            let mut finding = template.clone();
            finding.finding.fingerprint = format!("{i:064x}");
            finding.finding.asset = format!("https://bench-report.example/page/{i}");
            finding
        })
        .collect();
    println!();
    println!("| a report of 1,000 findings | time | bytes |");
    println!("|---|---|---|");
    time_formats(&big, &rules, args.runs);
    Ok(())
}

/// Renders `report` in each format `runs` times; prints the median time and the size.
fn time_formats(report: &vantage_reports::Report, rules: &[vantage_rules::RuleInfo], runs: usize) {
    for name in ["html", "pdf", "json", "sarif", "junit"] {
        let render = || -> Vec<u8> {
            match name {
                "html" => vantage_reports::html::render(report).into_bytes(),
                "pdf" => vantage_reports::pdf::render(report),
                "json" => serde_json::to_vec(report).unwrap_or_default(),
                "sarif" => serde_json::to_vec(&vantage_reports::sarif::render(report, rules))
                    .unwrap_or_default(),
                _ => vantage_reports::junit::render(report, rules, vantage_rules::Severity::High)
                    .into_bytes(),
            }
        };
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..runs {
            let started = Instant::now();
            bytes = render().len();
            times.push(started.elapsed().as_secs_f64());
        }
        let (_, mid, _) = median(times);
        println!("| {name} | {:.2} ms | {bytes} |", mid * 1000.0);
    }
}
