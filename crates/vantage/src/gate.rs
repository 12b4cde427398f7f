//! `vantage gate <scan> --server URL`: the release step of a deploy pipeline. It waits for a
//! `post_deploy` scan on a Vantage server to end, prints the summary's gate decision, and exits by
//! it (see [`EXIT_CODES`]).

#![allow(clippy::print_stdout, reason = "a CLI prints its results to stdout")]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::cli::CliError;

/// What `vantage gate` and `vantage scan --fail-on` exit with (shown in `--help`).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  passed: nothing at or above the threshold (or the gate passed)
  1  error: bad input, or the server could not be reached or refused the request
  2  bad command-line usage
  3  failed: a finding at or above the threshold (or the gate failed on findings)
  4  the scan did not complete (it failed or was cancelled)
  5  the scan did not end within --timeout-seconds";

/// The exit code of a release decision.
pub(crate) const PASSED: u8 = 0;
pub(crate) const FINDINGS: u8 = 3;
pub(crate) const NOT_COMPLETED: u8 = 4;
pub(crate) const TIMED_OUT: u8 = 5;

#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// The post_deploy scan's id.
    pub scan: String,
    /// The Vantage server's base URL, e.g. https://vantage.example.com.
    #[arg(long, env = "VANTAGE_SERVER")]
    pub server: String,
    /// An API key with scan:read.
    #[arg(long, env = "VANTAGE_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Give up waiting for the scan to end after this many seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_seconds: u64,
    /// Seconds between two looks at the scan (the server's Retry-After wins when longer).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub poll_seconds: u64,
    /// Print the summary as JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
    /// A PEM file of extra CA certificates to trust for the server (repeatable).
    #[arg(long = "extra-ca", value_delimiter = ',')]
    pub extra_ca: Vec<PathBuf>,
}

/// The fields of `GET /api/v1/scans/{id}/summary` the gate reads.
#[derive(Debug, Deserialize)]
struct Summary {
    status: String,
    target: String,
    grade: Option<String>,
    gate: Option<Gate>,
}

#[derive(Debug, Deserialize)]
struct Gate {
    decision: String,
    policy: String,
    blocking: Vec<String>,
    reason: Option<String>,
}

/// An RFC 9457 problem, as far as the gate reports it.
#[derive(Debug, Deserialize)]
struct Problem {
    detail: Option<String>,
    code: Option<String>,
}

pub(crate) async fn gate(args: GateArgs) -> Result<ExitCode, CliError> {
    let base = url::Url::parse(&args.server)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| CliError(format!("--server {:?} is not an http(s) URL", args.server)))?;
    let scan: uuid::Uuid = args
        .scan
        .parse()
        .map_err(|_| CliError(format!("{:?} is not a scan id", args.scan)))?;
    let url = base
        .join(&format!("api/v1/scans/{scan}/summary"))
        .map_err(|e| CliError(format!("--server: {e}")))?;
    let roots = vantage_probes::tls::TlsRoots::with_pem_files(&args.extra_ca)
        .map_err(|e| CliError(format!("--extra-ca: {e}")))?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(roots.verifying_client_config())
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("vantage-gate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CliError(format!("cannot build the HTTP client: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    let waiting = std::io::stderr().is_terminal();
    loop {
        let response = client
            .get(url.clone())
            .bearer_auth(&args.api_key)
            .send()
            .await
            .map_err(|e| CliError(format!("cannot reach {base}: {e}")))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| CliError(format!("cannot read the server's answer: {e}")))?;
        if !status.is_success() {
            let problem: Option<Problem> = serde_json::from_slice(&body).ok();
            let detail = problem
                .as_ref()
                .and_then(|p| p.detail.clone())
                .unwrap_or_else(|| status.to_string());
            let code = problem.and_then(|p| p.code).unwrap_or_default();
            return Err(CliError(format!(
                "the server answered {status} ({code}): {detail}"
            )));
        }
        let summary: Summary = serde_json::from_slice(&body)
            .map_err(|e| CliError(format!("the server's summary is not readable: {e}")))?;
        let Some(gate) = &summary.gate else {
            return Err(CliError(format!(
                "scan {scan} has no release gate: only scans started with trigger post_deploy have one"
            )));
        };
        if gate.decision != "pending" {
            if args.json {
                println!("{}", String::from_utf8_lossy(&body));
            }
            return Ok(ExitCode::from(decide(&summary, gate, args.json)));
        }
        if Instant::now() >= deadline {
            eprintln!(
                "error: scan {scan} of {} is still {} after {} s",
                summary.target, summary.status, args.timeout_seconds
            );
            return Ok(ExitCode::from(TIMED_OUT));
        }
        if waiting {
            eprintln!(
                "scan {scan} of {} is {}; waiting",
                summary.target, summary.status
            );
        }
        let pause = retry_after.unwrap_or(0).max(args.poll_seconds);
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(Duration::from_secs(pause).min(left)).await;
    }
}

/// Prints the decision (unless JSON was printed) and returns its exit code.
fn decide(summary: &Summary, gate: &Gate, json: bool) -> u8 {
    let grade = summary.grade.as_deref().unwrap_or("none");
    let (code, sentence) = match (gate.decision.as_str(), &gate.reason) {
        ("pass", _) => (
            PASSED,
            format!(
                "gate passed: {} (grade {grade}; {})",
                summary.target, gate.policy
            ),
        ),
        (_, Some(reason)) => (
            NOT_COMPLETED,
            format!("gate failed: {} — {reason}", summary.target),
        ),
        _ => (
            FINDINGS,
            format!(
                "gate failed: {} has {} blocking finding(s) (grade {grade}; {}): {}",
                summary.target,
                gate.blocking.len(),
                gate.policy,
                gate.blocking.join(", ")
            ),
        ),
    };
    if !json {
        println!("{sentence}");
    }
    code
}
