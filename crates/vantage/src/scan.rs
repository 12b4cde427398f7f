//! `vantage scan <target>`: one scan, in this process, against a throw-away store; then the findings.

#![allow(clippy::print_stdout, reason = "a CLI prints its results to stdout")]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use indicatif::{ProgressBar, ProgressStyle};
use vantage_app::{CommandContext, PlainSample, Services, SystemClock};
use vantage_domain::DomainError;
use vantage_domain::scan::ScanStatus;
use vantage_domain::scan::{ProbeObserved, ScanCommand, ScanSpec};
use vantage_domain::target::{Paths, Ports, Profile, ScanTarget, Trigger, VantagePoint};
use vantage_domain::tenant::TenantId;
use vantage_domain::triage::TriageState;
use vantage_reports::{Report, ReportFinding};
use vantage_rules::{Assessment, Finding, RULESET_VERSION, ScanFacts, Severity, assess};
use vantage_store_sqlite::SqliteEventStore;
use vantage_worker::embedded::PipelineSink;
use vantage_worker::{ScanEventSink, ScanJob, Scanner, Submitted, WorkerError, run_scan};

use crate::cli::CliError;

/// What to scan and how.
#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    /// A URL (http:// or https://) or a domain name.
    pub target: String,
    /// Ports to probe (comma-separated) [default: 80,443].
    #[arg(long, value_delimiter = ',')]
    pub ports: Vec<u16>,
    /// Paths to fetch (comma-separated) [default: /].
    #[arg(long, value_delimiter = ',')]
    pub paths: Vec<String>,
    /// quick, standard or deep.
    #[arg(long, value_enum, default_value = "standard")]
    pub profile: ProfileArg,
    /// How to print the result: table, json, sarif (SARIF 2.1.0) or junit (JUnit XML).
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Exit with code 3 when a finding at or above this severity is present (for CI); JUnit test
    /// cases fail at it too [default for JUnit: high].
    #[arg(long, value_enum)]
    pub fail_on: Option<Threshold>,
    #[command(flatten)]
    pub scanning: crate::cli::ScanningArgs,
}

/// How `vantage scan` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Sarif,
    Junit,
}

/// The severity at which `--fail-on` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Threshold {
    Critical,
    High,
    Medium,
    Low,
}

impl From<Threshold> for Severity {
    fn from(threshold: Threshold) -> Self {
        match threshold {
            Threshold::Critical => Severity::Critical,
            Threshold::High => Severity::High,
            Threshold::Medium => Severity::Medium,
            Threshold::Low => Severity::Low,
        }
    }
}

pub use crate::gate::EXIT_CODES;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ProfileArg {
    Quick,
    Standard,
    Deep,
}

impl From<ProfileArg> for Profile {
    fn from(profile: ProfileArg) -> Self {
        match profile {
            ProfileArg::Quick => Profile::Quick,
            ProfileArg::Standard => Profile::Standard,
            ProfileArg::Deep => Profile::Deep,
        }
    }
}

/// Counts observations for the progress line, then passes commands on.
struct Progress {
    inner: PipelineSink,
    bar: ProgressBar,
    observations: AtomicUsize,
}

#[async_trait]
impl ScanEventSink for Progress {
    async fn submit(&self, job: &ScanJob, command: ScanCommand) -> Result<Submitted, WorkerError> {
        let message = match &command {
            ScanCommand::Observe(observed) => observed.last().map(|last| {
                let n = self
                    .observations
                    .fetch_add(observed.len(), Ordering::Relaxed)
                    + observed.len();
                format!(
                    "{n} observations (last: {} {})",
                    last.probe().as_str(),
                    last.asset
                )
            }),
            ScanCommand::Finalize => Some("deriving findings".to_owned()),
            _ => None,
        };
        if let Some(message) = message {
            self.bar.set_message(message);
        }
        self.inner.submit(job, command).await
    }

    async fn keep_sample(&self, job: &ScanJob, sample: PlainSample) -> Result<(), WorkerError> {
        self.inner.keep_sample(job, sample).await
    }
}

fn spec(args: &ScanArgs) -> Result<ScanSpec, DomainError> {
    Ok(ScanSpec {
        target: ScanTarget::parse(&args.target)?,
        ports: if args.ports.is_empty() {
            Ports::default()
        } else {
            Ports::new(args.ports.clone())?
        },
        paths: if args.paths.is_empty() {
            Paths::default()
        } else {
            Paths::new(args.paths.clone())?
        },
        profile: args.profile.into(),
        trigger: Trigger::Manual,
        vantage_point: VantagePoint::default(),
        content_sample: None,
        project: vantage_domain::project::ProjectId::default_project(),
    })
}

pub async fn scan(args: ScanArgs, scanner: Scanner) -> Result<ExitCode, CliError> {
    let spec = spec(&args).map_err(|e| CliError(format!("invalid scan request: {e}")))?;
    let dir = tempfile::tempdir()
        .map_err(|e| CliError(format!("cannot create a scratch directory: {e}")))?;
    let store = SqliteEventStore::open(&dir.path().join("scan.db")).await?;
    let services = Services::new(
        Arc::new(store.clone()),
        Arc::new(store),
        Arc::new(SystemClock),
        scanner.guard.clone(),
    );
    let tenant = TenantId::default_tenant();
    let context = CommandContext {
        actor: "cli".into(),
        ..CommandContext::system(tenant.clone())
    };
    let scan_id = services
        .start_scan(&context, spec.clone())
        .await?
        .map_err(|refused| CliError(refused.to_string()))?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("scanning {}", spec.target));
    let sink = Progress {
        inner: PipelineSink::new(services.clone(), "cli"),
        bar: bar.clone(),
        observations: AtomicUsize::new(0),
    };
    let job = ScanJob {
        scan_id,
        tenant: tenant.clone(),
        spec: spec.clone(),
    };
    let (_cancel, cancelled) = tokio::sync::watch::channel(false);
    run_scan(&job, "cli", &scanner, &sink, cancelled).await?;
    bar.finish_and_clear();

    let view = services
        .scan(&tenant, scan_id)
        .await?
        .ok_or_else(|| CliError("the scan disappeared".into()))?;
    let observations: Vec<ProbeObserved> = vantage_app::scan_observations::<vantage_app::AppError>(
        services.store().as_ref(),
        scan_id,
        None,
    )
    .await?
    .into_iter()
    .map(|(observed, _)| observed)
    .collect();
    let facts = ScanFacts {
        tenant: tenant.as_str(),
        target: spec.target.as_str(),
        observations: &observations,
    };
    let Assessment {
        ruleset,
        mut findings,
        counts,
        grades,
        overall,
    } = assess(RULESET_VERSION, &facts).map_err(|e| CliError(e.to_string()))?;
    findings.sort_by(vantage_rules::by_priority);
    let format = if args.json {
        OutputFormat::Json
    } else {
        args.format
    };
    let threshold = args.fail_on.map(Severity::from);
    let report = Report {
        scan_id: scan_id.to_string(),
        target: spec.target.as_str().to_owned(),
        domain: spec.target.host().to_owned(),
        status: view.status,
        trigger: spec.trigger,
        created_at: view.created_at,
        finished_at: view.status.is_terminal().then_some(view.updated_at),
        failure_reason: view.failure_reason.clone(),
        ruleset_version: Some(ruleset.clone()),
        overall: Some(overall.clone()),
        grades: Some(grades.clone()),
        analysis: Some(vantage_rules::analysis::analyze(&observations)),
        counts,
        findings: findings
            .iter()
            .map(|finding| ReportFinding {
                finding: finding.clone(),
                triage: TriageState::Open,
                change: None,
            })
            .collect(),
        diff: None,
        trend: Vec::new(),
        generated_at: vantage_app::Clock::now(&SystemClock),
    };
    let rules = vantage_rules::rule_catalog(&ruleset).unwrap_or_default();
    match format {
        OutputFormat::Json => {
            let json = serde_json::json!({
                "scan_id": scan_id,
                "target": spec.target,
                "status": view.status,
                "failure_reason": view.failure_reason,
                "ruleset_version": ruleset,
                "overall": overall,
                "headers_grade": grades.headers,
                "tls_grade": grades.tls,
                "counts": counts,
                "observations": observations,
                "findings": findings,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        OutputFormat::Sarif => println!(
            "{}",
            serde_json::to_string_pretty(&vantage_reports::sarif::render(&report, &rules))
                .unwrap_or_default()
        ),
        OutputFormat::Junit => print!(
            "{}",
            vantage_reports::junit::render(&report, &rules, threshold.unwrap_or(Severity::High))
        ),
        OutputFormat::Table => {
            print_verdict(&overall, &grades, &ruleset);
            print_table(&spec, &view, observations.len(), &ruleset, &findings);
        }
    }
    Ok(ExitCode::from(exit_code(&report, threshold)))
}

/// The exit code of a finished scan under `--fail-on` (see [`EXIT_CODES`]).
fn exit_code(report: &Report, threshold: Option<Severity>) -> u8 {
    let Some(threshold) = threshold else {
        return crate::gate::PASSED;
    };
    if report.status != ScanStatus::Completed {
        return crate::gate::NOT_COMPLETED;
    }
    let blocking = report.blocking(threshold).count();
    if blocking > 0 {
        eprintln!(
            "{blocking} finding(s) at or above {}: failing (--fail-on)",
            threshold.as_str()
        );
        crate::gate::FINDINGS
    } else {
        crate::gate::PASSED
    }
}

fn print_verdict(
    overall: &vantage_rules::Overall,
    grades: &vantage_rules::grade::ScanGrades,
    ruleset: &str,
) {
    match (&overall.grade, &overall.unreachable) {
        (Some(grade), _) => println!(
            "overall grade: {grade} ({} / 100, ruleset {ruleset}, {})",
            overall.score.unwrap_or_default(),
            overall.method
        ),
        (None, Some(why)) => println!("no overall grade: {why}"),
        (None, None) => {}
    }
    for cap in &overall.caps {
        println!("  - {cap}");
    }
    if let Some(grade) = &grades.tls {
        println!("TLS grade: {} ({})", grade.grade, grade.algorithm);
        for cap in &grade.caps {
            println!("  - {cap}");
        }
    }
    if let Some(grade) = &grades.headers {
        println!(
            "headers grade: {} ({} / 100, {})",
            grade.grade, grade.score, grade.algorithm
        );
    }
}

fn print_table(
    spec: &ScanSpec,
    view: &vantage_app::ScanView,
    observations: usize,
    ruleset: &str,
    findings: &[Finding],
) {
    println!(
        "{}: {} ({} observations, {} findings, ruleset {ruleset})",
        spec.target,
        view.status.as_str(),
        observations,
        findings.len()
    );
    if let Some(reason) = &view.failure_reason {
        println!("failed: {reason}");
    }
    if findings.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<9} {:>5}  {:<36} {:<40} TITLE",
        "SEVERITY", "SCORE", "RULE", "ASSET"
    );
    for finding in findings {
        let severity = serde_json::to_value(finding.severity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let asset: String = finding.asset.chars().take(40).collect();
        println!(
            "{:<9} {:>5}  {:<36} {:<40} {}",
            severity, finding.priority.score, finding.rule_id, asset, finding.title
        );
    }
}
