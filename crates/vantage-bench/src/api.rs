//! `vantage-bench api`: HTTP throughput and latency of the query API on a big store, measured with
//! `wrk` on loopback against the real router.
//!
//! For each log size it writes a history of realistic scans (`vantage_tests::history`: findings that
//! come, get fixed and regress, each scan delivered to a webhook), rebuilds every projection, starts
//! the server the way `vantage serve` starts it (`Application::build`, with rate limits raised out of
//! the way) on a loopback port (on PostgreSQL after `VACUUM ANALYZE` of the read models, as
//! autovacuum would have done on a server that has been running), and runs `wrk` against
//! `GET /scans/{id}/findings`, `GET /scans/{id}/status` and `GET /dashboard/command-center` with the
//! bootstrap admin key. Repeating one request measures what the read side answers from what it keeps
//! until the scans projector moves; a fourth load asks for every completed scan's findings in turn,
//! more than it keeps, so that those are read from the tables. Comparing sizes shows whether a
//! route's latency grows with the log (it should not: every query is an index lookup on a read model).

use std::num::NonZeroU32;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail};
use sqlx::Connection;
use vantage_projections::runtime::RebuildOptions;

use crate::{Backend, close, open};

#[derive(Debug, clap::Args)]
pub struct ApiBenchArgs {
    #[command(flatten)]
    stores: crate::Stores,
    /// Log sizes to measure, in events (each with 1 scan per 100 events).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    events: Vec<usize>,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Seconds each route is loaded.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// The `wrk` binary.
    #[arg(long, default_value = "wrk")]
    wrk: String,
}

/// What `wrk` measured.
#[derive(Debug, Default)]
struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn millis(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// Parses `wrk --latency` output.
fn parse_wrk(output: &str) -> Load {
    let mut load = Load::default();
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n, ..] => load.requests_per_second = n.parse().unwrap_or(0.0),
            ["50%", t, ..] => load.p50_ms = millis(t).unwrap_or(0.0),
            ["99%", t, ..] => load.p99_ms = millis(t).unwrap_or(0.0),
            ["Non-2xx", "or", "3xx", "responses:", n, ..] => load.non_2xx = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    load
}

/// Loads `base` with requests for `paths`, each connection taking them in turn (through a `wrk`
/// script when there is more than one).
fn run_wrk(
    wrk: &str,
    connections: usize,
    seconds: u64,
    base: &str,
    paths: &[String],
    key: &str,
) -> anyhow::Result<Load> {
    let mut command = Command::new(wrk);
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
        "-H",
        &format!("Authorization: Bearer {key}"),
    ]);
    // The script (when there is one) must outlive the run.
    let script = match paths {
        [path] => {
            command.arg(format!("{base}{path}"));
            None
        }
        _ => {
            let script = tempfile::NamedTempFile::new()?;
            let quoted: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
            std::fs::write(
                script.path(),
                format!(
                    "local paths = {{{}}}\nlocal turn = 0\n\
                     request = function()\n  turn = turn % #paths + 1\n  \
                     return wrk.format(\"GET\", paths[turn])\nend\n",
                    quoted.join(", ")
                ),
            )?;
            command.arg("-s").arg(script.path()).arg(base);
            Some(script)
        }
    };
    let output = command
        .output()
        .with_context(|| format!("running {wrk} (apt-get install wrk)"))?;
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    drop(script);
    Ok(parse_wrk(&String::from_utf8_lossy(&output.stdout)))
}

pub async fn run(args: ApiBenchArgs) -> anyhow::Result<()> {
    println!("| store | log events | scans | route | requests/s | p50 (ms) | p99 (ms) | non-2xx |");
    println!("|---|---|---|---|---|---|---|---|");
    for backend in &args.stores.backend {
        for &events in &args.events {
            measure(&args, *backend, events).await?;
        }
    }
    Ok(())
}

async fn measure(args: &ApiBenchArgs, backend: Backend, events: usize) -> anyhow::Result<()> {
    let opened = open(backend, &args.stores.database_url).await?;
    let store = opened.store.clone();
    let dir = tempfile::tempdir()?;
    let read = opened.read_models(dir.path(), 16).await?;
    // ~100 events a scan: 6 lifecycle events, 1 webhook delivery and 93 pages.
    let written = opened.write_history("default", 500, events, 93).await?;
    let projectors = vantage_projections::projectors(store.clone());
    vantage_projections::runtime::rebuild_all(
        projectors,
        store.clone(),
        &read,
        RebuildOptions::default(),
    )
    .await?;
    // A bulk load leaves PostgreSQL's statistics stale and its visibility maps unset, which a
    // long-running server would have fixed by autovacuum long since, and gigabytes of dirty pages
    // the checkpointer would write in the middle of the first load: measure the steady state.
    if let Some((url, schema)) = &opened.cleanup {
        let mut conn = sqlx::postgres::PgConnection::connect(url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
            .execute(&mut conn)
            .await?;
        for table in vantage_projections::all_tables() {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "VACUUM ANALYZE {}",
                table.name
            )))
            .execute(&mut conn)
            .await?;
        }
        sqlx::query("CHECKPOINT").execute(&mut conn).await?;
    }
    let scans = read.scalar("SELECT COUNT(*) FROM rm_scans", &[]).await?;
    let completed: Vec<serde_json::Value> = read
        .docs(
            "SELECT doc FROM rm_scans WHERE status = 'completed' ORDER BY created_us DESC",
            &[],
        )
        .await?;
    let scan_id = completed
        .first()
        .and_then(|s| s["id"].as_str())
        .context("no completed scan")?
        .to_owned();

    let services = vantage_app::Services::new(
        store.clone(),
        opened.idempotency.clone(),
        Arc::new(vantage_app::SystemClock),
        vantage_tests::offline_guard(),
    );
    let key = services
        .bootstrap_admin_key(&vantage_domain::tenant::TenantId::default_tenant(), None)
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("a fresh store issues a bootstrap key")?
        .token
        .expose();
    let unlimited = NonZeroU32::new(u32::MAX).context("non-zero")?;
    let settings = vantage::application::Settings {
        scan_workers: 0,
        tls_roots: vantage_probes::tls::TlsRoots::web_pki(),
        dnssec: None,
        outbound: None,
        nats: None,
        read_replica: None,
        api: vantage::application::ApiSettings {
            rate_limits: Some(vantage_api::RateLimitConfig {
                requests_per_minute: unlimited,
                scans_per_minute: unlimited,
            }),
            ..Default::default()
        },
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let application =
        vantage::application::Application::build(services, read.clone(), settings, listener);
    let (shutdown, shut) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = shut.await;
    }));

    // Every completed scan's findings in turn: more scans than the read side keeps answers for, so
    // (nearly) every request is read from the tables.
    let every_scan: Vec<String> = completed
        .iter()
        .filter_map(|s| s["id"].as_str())
        .map(|id| format!("/api/v1/scans/{id}/findings"))
        .collect();
    for (route, paths) in [
        (
            "GET /scans/{id}/findings",
            vec![format!("/api/v1/scans/{scan_id}/findings")],
        ),
        ("GET /scans/{id}/findings, every scan in turn", every_scan),
        (
            "GET /scans/{id}/status",
            vec![format!("/api/v1/scans/{scan_id}/status")],
        ),
        (
            "GET /dashboard/command-center",
            vec!["/api/v1/dashboard/command-center".to_owned()],
        ),
    ] {
        let (wrk, connections, seconds) = (args.wrk.clone(), args.connections, args.seconds);
        let (base, key) = (base.clone(), key.clone());
        let load = tokio::task::spawn_blocking(move || {
            run_wrk(&wrk, connections, seconds, &base, &paths, &key)
        })
        .await??;
        println!(
            "| {backend:?} | {written} | {scans} | `{route}` | {:.0} | {:.2} | {:.2} | {} |",
            load.requests_per_second, load.p50_ms, load.p99_ms, load.non_2xx
        );
    }
    let _ = shutdown.send(());
    server.await??;
    drop(read);
    close(opened).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_parsed() {
        let output = "Running 15s test @ http://127.0.0.1:1/x\n  2 threads and 50 connections\n  \
            Latency Distribution\n     50%    3.10ms\n     75%    4.00ms\n     90%    5.2ms\n     \
            99%   12.40ms\n  100000 requests in 15.00s, 1.2GB read\n  Non-2xx or 3xx responses: 7\n\
            Requests/sec:   6666.67\nTransfer/sec:     80.00MB\n";
        let load = parse_wrk(output);
        assert_eq!(load.requests_per_second, 6666.67);
        assert_eq!((load.p50_ms, load.p99_ms, load.non_2xx), (3.1, 12.4, 7));
        assert_eq!(millis("850.00us"), Some(0.85));
        assert_eq!(millis("1.50s"), Some(1500.0));
    }
}
