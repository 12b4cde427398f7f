//! `vantage project`, `vantage projections rebuild` and `vantage replay`: the read side from the
//! command line, with progress on a terminal.

#![allow(clippy::print_stdout, reason = "a CLI prints its results to stdout")]

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use vantage_projections::runtime::{Progress, RebuildOptions};
use vantage_projections::{PROJECTORS, StatusBoard, projector};

use crate::cli::{CliError, RebuildArgs, StoreArgs, open_store, shutdown_signal};
use crate::config::FileConfig;

/// A progress bar over log positions (hidden when stderr is not a terminal).
fn bar(label: &str) -> (ProgressBar, Progress) {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>8} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    let handle = bar.clone();
    let progress: Progress = Arc::new(move |position, head| {
        handle.set_length(head);
        handle.set_position(position);
    });
    (bar, progress)
}

pub(crate) async fn project(args: &StoreArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let opened = open_store(args, file).await?;
    let db = opened.read_db().await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let board = StatusBoard::default();
    let tasks = vantage_projections::start(opened.events.clone(), db, board, stopped);
    println!(
        "projecting the {} event log into the read models; Ctrl-C stops",
        opened.kind
    );
    shutdown_signal().await;
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn rebuild(args: &RebuildArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let names: Vec<&str> = match &args.name {
        Some(name) if PROJECTORS.contains(&name.as_str()) => vec![name.as_str()],
        Some(name) => {
            return Err(CliError(format!(
                "no projector is named {name:?}; choose one of: {}",
                PROJECTORS.join(", ")
            )));
        }
        None => PROJECTORS.to_vec(),
    };
    let opened = open_store(&args.store, file).await?;
    let db = opened.read_db().await?;
    let projectors = names
        .iter()
        .map(|name| projector(name, opened.events.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let label = args.name.as_deref().unwrap_or("all");
    let (bar, progress) = bar(label);
    let started = std::time::Instant::now();
    let options = RebuildOptions {
        restart: args.restart,
        progress: Some(progress),
        ..RebuildOptions::default()
    };
    // Every projector from one read of the log (the same code path for one or all).
    let positions =
        vantage_projections::runtime::rebuild_all(projectors, opened.events.clone(), &db, options)
            .await
            .map_err(|e| CliError(format!("rebuilding {label} failed: {e}")))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    for (name, position) in names.iter().zip(positions) {
        println!(
            "rebuilt {name} up to position {position} in {seconds:.1} s ({:.0} events/s) and swapped it in",
            position as f64 / seconds.max(1e-9)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn replay(args: &StoreArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let opened = open_store(args, file).await?;
    let db = opened.read_db().await?;
    let scratch = tempfile::tempdir()?;
    let (bar, progress) = bar("replay");
    let results = vantage_projections::replay::replay(
        opened.events.clone(),
        &db,
        scratch.path(),
        Some(progress),
    )
    .await
    .map_err(|e| CliError(format!("replay failed: {e}")))?;
    bar.finish_and_clear();
    let mut differ = Vec::new();
    for result in &results {
        let verdict = if result.matches() {
            "equal"
        } else {
            "DIFFERENT"
        };
        println!(
            "{:<8} position {:>10}  live {} rows {}  replayed {} rows {}  {verdict}",
            result.live.projector,
            result.live.position,
            result.live.rows,
            &result.live.digest[..16],
            result.replayed.rows,
            &result.replayed.digest[..16],
        );
        if !result.matches() {
            differ.push(result.live.projector.clone());
        }
    }
    if differ.is_empty() {
        println!("every read model equals a rebuild from the log");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError(format!(
            "the live read models of {} differ from a rebuild from the log",
            differ.join(", ")
        )))
    }
}
