//! `vantage export` and `vantage verify-package`: signed compliance packages from the command line.
//! Export reads the log and the read models directly (no server needed; the read models are first
//! brought up to the log's head) and signs with the same key as `vantage serve`; verification is
//! offline and needs nothing but the file (and, to pin the signer, its public key).

#![allow(clippy::print_stdout, reason = "a CLI prints its results to stdout")]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use vantage_domain::ids::ScanId;
use vantage_domain::scan::ScanStatus;
use vantage_reports::package::{self, PackageInput, Subject};
use vantage_reports::signing::PublicKey;

use crate::cli::{CliError, KeyFiles, StoreArgs, open_store, signing_key, tenant};
use crate::config::FileConfig;

/// Largest package `verify-package` reads (compressed).
const MAX_PACKAGE_BYTES: u64 = 2 << 30;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub keys: KeyFiles,
    /// The completed scan to package (its id).
    #[arg(required_unless_present = "domain")]
    pub scan: Option<String>,
    /// Package every completed scan of this domain over a period instead (with --since, --until).
    #[arg(long, conflicts_with = "scan", requires_all = ["since", "until"])]
    pub domain: Option<String>,
    /// Start of the period: an RFC 3339 time or a date (YYYY-MM-DD, midnight UTC), inclusive.
    #[arg(long, value_parser = parse_moment, requires = "domain")]
    pub since: Option<DateTime<Utc>>,
    /// End of the period: an RFC 3339 time or a date (YYYY-MM-DD, midnight UTC), exclusive.
    #[arg(long, value_parser = parse_moment, requires = "domain")]
    pub until: Option<DateTime<Utc>>,
    /// The framework whose controls coverage.json assesses (owasp-asvs, pci-dss, nist-sp-800-52,
    /// iso-27001, soc2) [default: all of them].
    #[arg(long)]
    pub framework: Option<String>,
    /// Where to write the package [default: vantage-<scan or domain>.tar.gz here].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The tenant whose scans to package [default: default].
    #[arg(long, env = "VANTAGE_TENANT")]
    pub tenant: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyPackageArgs {
    /// The package (.tar.gz) to verify.
    pub file: PathBuf,
    /// The signer's public key (PEM, from GET /api/v1/compliance/signing-key): the package must be
    /// signed by it. Without it, the package's own key is checked and its fingerprint printed.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
}

/// An RFC 3339 time, or a date meaning its midnight UTC.
fn parse_moment(raw: &str) -> Result<DateTime<Utc>, String> {
    vantage_projections::query::parse_moment(raw)
        .ok_or_else(|| format!("{raw:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"))
}

fn spinner(message: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar
}

/// Writes `bytes` to `path` through a temporary file beside it, so a failed export leaves no
/// half-written package.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| CliError(format!("cannot write in {}: {e}", dir.display())))?;
    temp.write_all(bytes)
        .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
    temp.persist(path)
        .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

pub(crate) async fn export(args: ExportArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let frameworks = package::frameworks(args.framework.as_deref())
        .map_err(|e| CliError(format!("--framework: {e}")))?;
    let tenant = tenant(args.tenant.as_deref(), file)?;
    let opened = open_store(&args.store, file).await?;
    let key = signing_key(&args.keys, file, &opened)?;
    let db = opened.read_db().await?;
    vantage_projections::catch_up(opened.events.clone(), &db)
        .await
        .map_err(|e| CliError(format!("cannot bring the read models up to date: {e}")))?;
    let now = vantage_app::Clock::now(&vantage_app::SystemClock);

    let (subject, scan_ids, default_name) = match (&args.scan, &args.domain) {
        (Some(raw), _) => {
            let id: ScanId = raw
                .parse()
                .map_err(|_| CliError(format!("{raw:?} is not a scan id")))?;
            let subject = Subject::Scan {
                scan_id: id.to_string(),
            };
            (subject, vec![id], format!("vantage-{id}.tar.gz"))
        }
        (None, Some(raw)) => {
            let domain = vantage_domain::badge::badge_domain(raw)
                .map_err(|e| CliError(format!("--domain: {e}")))?;
            let (Some(since), Some(until)) = (args.since, args.until) else {
                return Err(CliError("--domain needs --since and --until".into()));
            };
            if since >= until {
                return Err(CliError("--since must be before --until".into()));
            }
            let scans = db
                .domain_scans_between(tenant.as_str(), &domain, since, until)
                .await
                .map_err(|e| CliError(e.to_string()))?;
            let ids = scans
                .iter()
                .filter_map(|s| s.scan_id.parse::<ScanId>().ok())
                .collect();
            let name = format!(
                "vantage-{domain}-{}-{}.tar.gz",
                since.format("%Y%m%d"),
                until.format("%Y%m%d")
            );
            (
                Subject::Domain {
                    domain,
                    since,
                    until,
                },
                ids,
                name,
            )
        }
        (None, None) => return Err(CliError("name a scan, or --domain with a period".into())),
    };
    if scan_ids.is_empty() {
        return Err(CliError(
            "no completed scan of that domain in that period".into(),
        ));
    }

    let progress = spinner("collecting scans");
    progress.set_length(scan_ids.len() as u64);
    let mut evidence = Vec::with_capacity(scan_ids.len());
    let mut last_report = None;
    for id in &scan_ids {
        let report = db
            .report(tenant.as_str(), &id.to_string(), now)
            .await
            .map_err(|e| CliError(e.to_string()))?
            .ok_or_else(|| CliError(format!("tenant {tenant} has no scan {id}")))?;
        if report.status != ScanStatus::Completed {
            return Err(CliError(format!(
                "scan {id} is {}; only a completed scan can be packaged",
                report.status.as_str()
            )));
        }
        evidence.push(
            vantage_projections::reporting::scan_evidence(
                opened.events.as_ref(),
                &vantage_app::scan_stream(*id),
            )
            .await
            .map_err(|e| CliError(e.to_string()))?,
        );
        last_report = Some(report);
        progress.inc(1);
    }
    progress.finish_and_clear();
    let report = last_report.expect("at least one scan was collected");
    let events: usize = evidence.iter().map(|e| e.events.len()).sum();
    let archive = package::build(PackageInput {
        tenant: tenant.as_str().to_owned(),
        subject,
        frameworks,
        scans: evidence,
        report_html: vantage_reports::html::render(&report),
        created_at: now,
        key: &key,
    })
    .map_err(|e| CliError(format!("cannot make the package: {e}")))?;
    let output = args.output.unwrap_or_else(|| PathBuf::from(default_name));
    write_atomically(&output, &archive)?;
    println!(
        "wrote {} ({} scans, {events} events, {} bytes), signed by key {}",
        output.display(),
        scan_ids.len(),
        archive.len(),
        key.public_key().fingerprint()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn verify_package(args: &VerifyPackageArgs) -> Result<ExitCode, CliError> {
    let expected = match &args.public_key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
            Some(
                PublicKey::from_pem(&text)
                    .map_err(|e| CliError(format!("{}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    let size = std::fs::metadata(&args.file)
        .map_err(|e| CliError(format!("cannot read {}: {e}", args.file.display())))?
        .len();
    if size > MAX_PACKAGE_BYTES {
        return Err(CliError(format!(
            "{} is {size} bytes; packages are at most {MAX_PACKAGE_BYTES}",
            args.file.display()
        )));
    }
    let bytes = std::fs::read(&args.file)
        .map_err(|e| CliError(format!("cannot read {}: {e}", args.file.display())))?;
    match package::verify(&bytes, expected.as_ref()) {
        Ok(verified) => {
            println!(
                "{}: verified: signature by key {}{}, {} files, {} events in {} chain segments, {} findings recomputed with ruleset {}",
                args.file.display(),
                verified.public_key.fingerprint(),
                if expected.is_some() {
                    " (the expected key)"
                } else {
                    " (the package's own key; pin it with --public-key)"
                },
                verified.manifest.files.len() + 3,
                verified.events,
                verified.manifest.segments.len(),
                verified.findings,
                verified.manifest.rulesets.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            eprintln!(
                "error: {} does not verify: {}",
                args.file.display(),
                failure.problems.first().map_or("", String::as_str)
            );
            for problem in failure.problems.iter().skip(1) {
                eprintln!("  also: {problem}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
