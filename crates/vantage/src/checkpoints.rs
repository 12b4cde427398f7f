//! `vantage verify` and `vantage checkpoint`: the hash chain checked end to end, and the log's head
//! anchored outside the database. A chain can be made consistent again by someone who rewrites an
//! event and every hash after it, or deletes the newest events; a signed checkpoint taken before
//! (by `vantage checkpoint` or `GET /api/v1/audit/checkpoint`) says which hash the log had at which
//! position, and `verify --checkpoints` fails when the log no longer has it.

#![allow(clippy::print_stdout, reason = "a CLI prints its results to stdout")]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use vantage_reports::checkpoint::SignedCheckpoint;
use vantage_reports::signing::PublicKey;
use vantage_store::{EventStore, GENESIS_HASH, VerifyReport, verify_chain};

use crate::cli::{CliError, KeyFiles, StoreArgs, open_store, signing_key};
use crate::config::FileConfig;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// A file of signed checkpoints (one per line, from `vantage checkpoint` or
    /// `GET /api/v1/audit/checkpoint`): the log must still hold each one's head.
    #[arg(long)]
    pub checkpoints: Option<PathBuf>,
    /// The public key (PEM) the checkpoints must be signed by [default: this server's signing key].
    #[arg(long, requires = "checkpoints")]
    pub public_key: Option<PathBuf>,
    #[command(flatten)]
    pub keys: KeyFiles,
}

#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub keys: KeyFiles,
    /// The checkpoints file to append to [default: DATA_DIR/checkpoints.jsonl with the embedded
    /// store; required with PostgreSQL]. Keep a copy where whoever can write the database cannot.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Walks the chain with a progress line on a terminal.
async fn walk(store: &dyn EventStore) -> Result<VerifyReport, CliError> {
    let head = store.head_position().await?;
    let show_progress = head > 0 && std::io::stderr().is_terminal();
    let report = verify_chain(store, |checked| {
        if show_progress {
            eprint!("\rverifying: {checked}/{head} events");
        }
    })
    .await
    .map_err(|e| CliError(format!("cannot read the event log: {e}")))?;
    if show_progress {
        eprintln!();
    }
    Ok(report)
}

/// The chain hash at `position` (the genesis hash at 0), if the log reaches it.
async fn hash_at(store: &dyn EventStore, position: u64) -> Result<Option<String>, CliError> {
    if position == 0 {
        return Ok(Some(GENESIS_HASH.to_owned()));
    }
    Ok(store
        .read_all(position - 1, 1)
        .await?
        .into_iter()
        .next()
        .filter(|e| e.global_position == position)
        .map(|e| e.hash))
}

pub(crate) async fn verify(args: &VerifyArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let opened = open_store(&args.store, file).await?;
    let store = opened.events.as_ref();
    let report = walk(store).await?;
    if let Some(chain_break) = report.first_break {
        eprintln!("error: the event log has been tampered with at {chain_break}");
        println!(
            "broken: {} events verified before {}",
            report.events_checked, chain_break.event_id
        );
        return Ok(ExitCode::FAILURE);
    }
    let Some(path) = &args.checkpoints else {
        println!(
            "ok: {} events verified; chain head {}",
            report.events_checked, report.head_hash
        );
        return Ok(ExitCode::SUCCESS);
    };
    let key = match &args.public_key {
        Some(pem) => {
            let text = std::fs::read_to_string(pem)
                .map_err(|e| CliError(format!("cannot read {}: {e}", pem.display())))?;
            PublicKey::from_pem(&text).map_err(|e| CliError(format!("{}: {e}", pem.display())))?
        }
        None => signing_key(&args.keys, file, &opened)?.public_key(),
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
    let mut held = 0;
    let mut problems = Vec::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let place = format!("{} line {}", path.display(), number + 1);
        let checkpoint = match SignedCheckpoint::from_line(line).and_then(|c| c.verify(&key)) {
            Ok(checkpoint) => checkpoint,
            Err(e) => {
                problems.push(format!("{place}: {e}"));
                continue;
            }
        };
        match hash_at(store, checkpoint.position).await? {
            None => problems.push(format!(
                "{place}: the log ends at position {}, but held position {} on {}: events were \
                 removed from the log",
                report.events_checked, checkpoint.position, checkpoint.created_at
            )),
            Some(hash) if hash != checkpoint.head_hash => problems.push(format!(
                "{place}: the chain hash at position {} is {hash}, but was {} on {}: the log was \
                 rewritten at or before that position",
                checkpoint.position, checkpoint.head_hash, checkpoint.created_at
            )),
            Some(_) => held += 1,
        }
    }
    if problems.is_empty() {
        println!(
            "ok: {} events verified; chain head {}; {held} checkpoints hold",
            report.events_checked, report.head_hash
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

pub(crate) async fn checkpoint(
    args: &CheckpointArgs,
    file: &FileConfig,
) -> Result<ExitCode, CliError> {
    let opened = open_store(&args.store, file).await?;
    let output = match (&args.output, opened.data_dir()) {
        (Some(path), _) => path.clone(),
        (None, Some(dir)) => dir.join("checkpoints.jsonl"),
        (None, None) => {
            return Err(CliError(
                "with PostgreSQL, name the checkpoints file with --output".into(),
            ));
        }
    };
    let key = signing_key(&args.keys, file, &opened)?;
    let report = walk(opened.events.as_ref()).await?;
    if let Some(chain_break) = report.first_break {
        return Err(CliError(format!(
            "the event log is broken at {chain_break}; a checkpoint of it would attest nothing"
        )));
    }
    let now = vantage_app::Clock::now(&vantage_app::SystemClock);
    let signed = SignedCheckpoint::sign(&key, report.events_checked, &report.head_hash, now);
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&output)
        .map_err(|e| CliError(format!("cannot open {}: {e}", output.display())))?;
    writeln!(out, "{}", signed.to_line())
        .and_then(|()| out.sync_all())
        .map_err(|e| CliError(format!("cannot write {}: {e}", output.display())))?;
    println!(
        "checkpoint: position {} head {} appended to {}",
        report.events_checked,
        report.head_hash,
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}
