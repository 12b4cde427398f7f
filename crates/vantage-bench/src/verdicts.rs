//! `vantage-bench verdicts`: `vantage scan` of one lab site against Mozilla's HTTP Observatory CLI
//! on the same site, in the same run — wall time and peak memory of each whole process, measured
//! by GNU time (`/usr/bin/time`, Debian package `time`), the two run in turn so that drift of the
//! shared machine affects both alike.
//!
//! The lab is `vantage_tests::lab` (real servers on loopback ports 80 and 443, a test CA, a DNS
//! server), so this must run where the tests run (root, or unprivileged low ports). Nothing leaves
//! the machine: the scanner resolves through the lab's DNS, the Observatory through the lab's
//! resolver hook.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use vantage_tests::lab::{Lab, Posture};

/// `vantage-bench verdicts` arguments.
#[derive(Debug, clap::Args)]
pub struct VerdictsBenchArgs {
    /// The `vantage` binary to measure (a release build).
    #[arg(long, default_value = "target/release/vantage")]
    vantage: PathBuf,
    /// The installed `@mdn/mdn-http-observatory` package (as `.ci/run` installs it).
    #[arg(
        long,
        env = "VANTAGE_OBSERVATORY_DIR",
        default_value = "/var/tmp/vantage-observatory/node_modules/@mdn/mdn-http-observatory"
    )]
    observatory: PathBuf,
    /// Counted runs of each command (after one warm-up each).
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

/// One finished run: wall seconds and peak resident memory (MiB).
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: f64,
    peak_mib: f64,
}

/// Runs `command` under GNU time; fails if it does not exit 0.
fn timed(command: &[String], env: &[(&str, String)], dir: &Path) -> anyhow::Result<Run> {
    let report = tempfile::NamedTempFile::new()?;
    let output = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(report.path())
        .args(command)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()
        .context("cannot run /usr/bin/time (apt-get install time)")?;
    if !output.status.success() {
        bail!(
            "{} failed: {}{}",
            command.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = std::fs::read_to_string(report.path())?;
    let mut fields = text.split_whitespace();
    let wall: f64 = fields.next().context("no wall time")?.parse()?;
    let peak_kib: f64 = fields.next().context("no peak memory")?.parse()?;
    Ok(Run {
        wall,
        peak_mib: peak_kib / 1024.0,
    })
}

fn stats(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    (values[0], median, values[values.len() - 1])
}

pub async fn run(args: VerdictsBenchArgs) -> anyhow::Result<()> {
    if !args.vantage.is_file() {
        bail!(
            "{} is not a file: build it first (cargo build --release -p vantage)",
            args.vantage.display()
        );
    }
    let scan_js = args.observatory.join("src/scan.js");
    if !scan_js.is_file() {
        bail!(
            "Mozilla's Observatory is not at {} (bash .ci/run installs it)",
            args.observatory.display()
        );
    }
    let lab = Lab::start_with(&[Posture::GoodHttps]).await;
    let site = Posture::GoodHttps.name();
    let vantage = std::fs::canonicalize(&args.vantage)?;
    let hook =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/observatory/resolve-lab-hosts.cjs");
    let ours: Vec<String> = vec![
        vantage.display().to_string(),
        "scan".into(),
        site.into(),
        "--profile".into(),
        "quick".into(),
        "--json".into(),
        "--allow-cidr".into(),
        "127.0.0.0/8".into(),
        "--resolver".into(),
        lab.dns.address.to_string(),
        "--extra-ca".into(),
        lab.ca_pem.path().display().to_string(),
    ];
    let theirs: Vec<String> = vec![
        "node".into(),
        "--require".into(),
        std::fs::canonicalize(&hook)?.display().to_string(),
        scan_js.display().to_string(),
        site.into(),
    ];
    let env = [
        (
            "NODE_EXTRA_CA_CERTS",
            lab.ca_pem.path().display().to_string(),
        ),
        ("VANTAGE_LAB_HOSTS", lab.hosts()),
        ("VANTAGE_LOG", "error".to_owned()),
    ];
    let here = std::env::current_dir()?;
    // The commands block; run them off the runtime that serves the lab.
    let measured = tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<Run>, Vec<Run>)> {
        timed(&ours, &env, &here)?;
        timed(&theirs, &env, &here)?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            a.push(timed(&ours, &env, &here)?);
            b.push(timed(&theirs, &env, &here)?);
        }
        Ok((a, b))
    })
    .await??;
    let (ours, theirs) = measured;
    println!(
        "| command ({site}, {} runs each, alternating) | wall s min | median | max | peak MiB min | median | max |",
        ours.len()
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, runs) in [
        ("`vantage scan --profile quick`", &ours),
        ("Mozilla Observatory CLI (`node src/scan.js`)", &theirs),
    ] {
        let (w0, w1, w2) = stats(runs.iter().map(|r| r.wall).collect());
        let (m0, m1, m2) = stats(runs.iter().map(|r| r.peak_mib).collect());
        println!("| {name} | {w0:.3} | {w1:.3} | {w2:.3} | {m0:.1} | {m1:.1} | {m2:.1} |");
    }
    let ratios: Vec<f64> = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| a.wall / b.wall)
        .collect();
    let (r0, r1, r2) = stats(ratios);
    println!(
        "\nwall-time ratio vantage / Observatory, pair by pair: min {r0:.2}, median {r1:.2}, max {r2:.2}"
    );
    Ok(())
}
