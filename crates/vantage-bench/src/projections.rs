//! `vantage-bench projections`: a full rebuild of every projection from a big log of realistic scans
//! (findings that come, get fixed and regress), and projection lag under a sustained append load.
//!
//! The log is written with whole-scan atomic appends (`vantage_tests::history`), then every
//! projector is rebuilt through the real shadow-table path (`vantage projections rebuild`: one read
//! of the log for every projector, then each swapped in). Rebuild throughput is log events over the
//! wall time of that rebuild; beside it, the same run reads the whole log once, decoded, as the
//! rebuild reads it (pages of 10,000): the ceiling a rebuild could reach on this machine.
//! The lag run starts the projectors live and appends scans at a fixed event rate, sampling each
//! projector's lag (events behind the head, and the age of the oldest unapplied event).

use std::sync::Arc;
use std::time::{Duration, Instant};

use vantage_projections::runtime::RebuildOptions;
use vantage_projections::{ReadDb, StatusBoard};
use vantage_tests::history::{self, SiteState};

use crate::{close, open};

#[derive(Debug, clap::Args)]
pub struct ProjectionBenchArgs {
    #[command(flatten)]
    stores: crate::Stores,
    /// Events in the log to rebuild from.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Distinct domains the scans cycle over.
    #[arg(long, default_value_t = 500)]
    domains: usize,
    /// Extra HTTP observations per scan (events per scan ≈ 6 + this).
    #[arg(long, default_value_t = 40)]
    pages: usize,
    /// Append rate of the lag measurement, events per second.
    #[arg(long, default_value_t = 5_000)]
    lag_rate: usize,
    /// Duration of the lag measurement.
    #[arg(long, default_value_t = 20.0)]
    lag_seconds: f64,
}

pub async fn run(args: ProjectionBenchArgs) -> anyhow::Result<()> {
    println!(
        "| store | log events | scans | write log (s) | read the log (s) | read events/s | rebuild all (s) | rebuild events/s | rebuild / read | read-model rows | lag at {} events/s: max events behind | max oldest-unapplied age (s) |",
        args.lag_rate
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for backend in &args.stores.backend {
        let opened = open(*backend, &args.stores.database_url).await?;
        let store = opened.store.clone();
        let dir = tempfile::tempdir()?;
        let db = opened.read_models(dir.path(), 8).await?;

        let started = Instant::now();
        opened
            .write_history("bench", args.domains, args.events, args.pages)
            .await?;
        let write_seconds = started.elapsed().as_secs_f64();
        let head = store.head_position().await?;
        // The baseline: one read of the whole log, decoded, as a rebuild reads it.
        let read_seconds = crate::startup::read_whole_log(store.as_ref())
            .await?
            .as_secs_f64();

        let started = Instant::now();
        let projectors = vantage_projections::projectors(store.clone());
        vantage_projections::runtime::rebuild_all(
            projectors,
            store.clone(),
            &db,
            RebuildOptions::default(),
        )
        .await?;
        let rebuild_seconds = started.elapsed().as_secs_f64();
        let scans = db.scalar("SELECT COUNT(*) FROM rm_scans", &[]).await?;
        // What the rebuild left in the read models (each row written at least once).
        let mut rows = 0;
        for table in vantage_projections::all_tables() {
            let count = format!("SELECT COUNT(*) FROM {}", table.name);
            rows += db.scalar(&count, &[]).await?;
        }

        let (max_events, max_age) = lag(&args, store.clone(), &db).await?;
        println!(
            "| {backend:?} | {head} | {scans} | {write_seconds:.1} | {read_seconds:.1} | {:.0} | {rebuild_seconds:.1} | {:.0} | {:.0} % | {rows} | {max_events} | {max_age:.2} |",
            head as f64 / read_seconds,
            head as f64 / rebuild_seconds,
            100.0 * read_seconds / rebuild_seconds,
        );
        close(opened).await?;
    }
    Ok(())
}

/// Appends at `lag_rate` events/s for `lag_seconds` with the projectors running live; returns the
/// largest lag seen (events behind the head, age of the oldest unapplied event).
async fn lag(
    args: &ProjectionBenchArgs,
    store: Arc<dyn vantage_store::EventStore>,
    db: &ReadDb,
) -> anyhow::Result<(u64, f64)> {
    let board = StatusBoard::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = vantage_projections::start(store.clone(), db.clone(), board.clone(), stopped);
    let events_per_scan = 6 + args.pages;
    let scans_per_second = (args.lag_rate as f64 / events_per_scan as f64).max(1.0);
    let interval = Duration::from_secs_f64(1.0 / scans_per_second);
    let writer_store = store.clone();
    let pages = args.pages;
    let until = Instant::now() + Duration::from_secs_f64(args.lag_seconds);
    let writer = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut n = 0usize;
        while Instant::now() < until {
            ticker.tick().await;
            let state = SiteState {
                csp: !n.is_multiple_of(3),
                extra_pages: pages,
                ..SiteState::default()
            };
            history::append_completed_scan(
                writer_store.as_ref(),
                "lag",
                &format!("lag{}.example.com", n % 50),
                &state,
            )
            .await;
            n += 1;
        }
        n
    });
    let (mut max_events, mut max_age) = (0u64, 0f64);
    // Let the projectors start before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while !writer.is_finished() {
        let head = store.head_position().await?;
        for status in board.snapshot() {
            max_events = max_events.max(head.saturating_sub(status.position));
            max_age = max_age.max(status.lag_seconds);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    writer.await?;
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    Ok((max_events, max_age))
}
