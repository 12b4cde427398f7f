//! `vantage-bench startup`: how long `vantage serve` takes to start on a big log, as a process, the
//! way an operator restarts it. For each store it writes a history of realistic scans, brings the
//! read models up to it (a server that ran before left them there), requests one scan the server
//! has not seen (as a previous process would have left queued), then starts `vantage serve` on that
//! store several times and measures, from the spawn: `/ready` answering 200, and the queued scan
//! started by the server's scan workers — which needs the scan dispatcher to know what is
//! unfinished, the part of start-up that used to read the whole log. Beside it, in the same run, the
//! time to read and decode the whole log once (what start-up would cost if it read it).
//!
//! PostgreSQL runs use a database of their own, dropped afterwards; the scan's target is a closed
//! port on loopback (allow-listed), so no traffic leaves the machine.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use vantage_app::CommandContext;
use vantage_domain::tenant::TenantId;
use vantage_projections::runtime::RebuildOptions;
use vantage_store::EventStore;
use vantage_store_postgres::{PgEventStore, PgStoreOptions};
use vantage_store_sqlite::SqliteEventStore;

use crate::Backend;

#[derive(Debug, clap::Args)]
pub struct StartupBenchArgs {
    #[command(flatten)]
    stores: crate::Stores,
    /// Events in the log.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Starts measured per store.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The `vantage` binary to start.
    #[arg(long, default_value = "target/release/vantage")]
    vantage: std::path::PathBuf,
}

/// Where a measured server keeps its log and read models, and how it is told so.
struct Site {
    /// Services over the measured store that may scan loopback (to request the queued scan).
    services: vantage_app::Services,
    read: vantage_projections::ReadDb,
    serve_args: Vec<String>,
    _dir: tempfile::TempDir,
    /// PostgreSQL: the admin URL and the database to drop.
    drop_database: Option<(String, String)>,
}

pub async fn run(args: StartupBenchArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    anyhow::ensure!(
        args.vantage.exists(),
        "{} does not exist: build it with cargo build --release --bin vantage",
        args.vantage.display()
    );
    println!(
        "| store | events | read + decode the whole log | `/ready` 200 after spawn (median of {}) | queued scan started after spawn (median) |",
        args.runs
    );
    println!("|---|---:|---:|---:|---:|");
    for backend in &args.stores.backend {
        let site = open(*backend, &args.stores.database_url).await?;
        let written = write(&site, args.events).await?;
        let read_all = read_whole_log(site.services.store().as_ref()).await?;
        let mut ready = Vec::new();
        let mut dispatched = Vec::new();
        for _ in 0..args.runs.max(1) {
            let (r, d) = start_once(&args, &site).await?;
            ready.push(r);
            dispatched.push(d);
        }
        ready.sort();
        dispatched.sort();
        println!(
            "| {backend:?} | {written} | {:.2} s | {:.0} ms | {:.0} ms |",
            read_all.as_secs_f64(),
            ready[ready.len() / 2].as_secs_f64() * 1000.0,
            dispatched[dispatched.len() / 2].as_secs_f64() * 1000.0,
        );
        close(site).await?;
    }
    Ok(())
}

async fn open(backend: Backend, url: &str) -> anyhow::Result<Site> {
    let dir = tempfile::tempdir()?;
    match backend {
        Backend::Sqlite => {
            let store = SqliteEventStore::open(&dir.path().join("vantage.db")).await?;
            let read =
                vantage_projections::ReadDb::open_sqlite(&dir.path().join("readmodels.db")).await?;
            let data_dir = dir.path().display().to_string();
            let services = vantage_tests::lab_services(store);
            Ok(Site {
                services,
                read,
                serve_args: vec!["--data-dir".into(), data_dir],
                _dir: dir,
                drop_database: None,
            })
        }
        Backend::Postgres => {
            let name = format!("vantage_startup_{}", vantage_app::new_id().simple());
            let admin = sqlx::PgPool::connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await?;
            admin.close().await;
            let (base, _) = url
                .rsplit_once('/')
                .context("a database URL names a database")?;
            let own = format!("{base}/{name}");
            let store = PgEventStore::connect(PgStoreOptions::new(own.clone())).await?;
            let read = vantage_projections::ReadDb::connect_postgres(&own, None, 8).await?;
            // Replicas on PostgreSQL share a secrets key from a file.
            let key_file = dir.path().join("secrets.key");
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&key_file)?;
                writeln!(file, "{}", vantage_app::Keyring::generate().to_hex())?;
            }
            let services = vantage_tests::lab_services(store);
            Ok(Site {
                services,
                read,
                serve_args: vec![
                    "--database-url".into(),
                    own,
                    "--secrets-key-file".into(),
                    key_file.display().to_string(),
                ],
                _dir: dir,
                drop_database: Some((url.to_owned(), name)),
            })
        }
    }
}

/// The history, every read model rebuilt up to it: the state a previous server left.
async fn write(site: &Site, events: usize) -> anyhow::Result<u64> {
    vantage_projections::migrate(&site.read).await?;
    let written = vantage_tests::history::append_history(
        site.services.store().as_ref(),
        "default",
        500,
        events,
        93,
    )
    .await as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while site.services.store().head_position().await? < written {
        anyhow::ensure!(Instant::now() < deadline, "the log was not ordered in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let projectors = vantage_projections::projectors(site.services.store().clone());
    vantage_projections::runtime::rebuild_all(
        projectors,
        site.services.store().clone(),
        &site.read,
        RebuildOptions::default(),
    )
    .await?;
    Ok(written)
}

/// Reads every event of the log from the start, decoded: what a start-up that read the log would
/// cost.
pub(crate) async fn read_whole_log(store: &dyn EventStore) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut after = 0;
    loop {
        let batch = store.read_all(after, 10_000).await?;
        let Some(last) = batch.last() else { break };
        after = last.global_position;
    }
    Ok(started.elapsed())
}

/// One start: requests a scan the server has not seen, spawns `vantage serve`, and returns the
/// times from the spawn until `/ready` answered 200 and until the scan was started.
async fn start_once(args: &StartupBenchArgs, site: &Site) -> anyhow::Result<(Duration, Duration)> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let context = CommandContext::system(TenantId::default_tenant());
    let scan = site
        .services
        .start_scan(&context, vantage_tests::lab_spec(closed, vec![closed]))
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stream = vantage_app::scan_stream(scan);

    let started = Instant::now();
    let mut child = tokio::process::Command::new(&args.vantage)
        .arg("serve")
        .args(&site.serve_args)
        .args(["--listen", "127.0.0.1:0", "--allow-cidr", "127.0.0.0/8"])
        .args(["--scan-workers", "2"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting vantage serve")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines
            .next_line()
            .await?
            .context("vantage serve ended before it listened")?;
        if let Some(rest) = line.strip_prefix("Vantage listening on http://") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    let client = reqwest::Client::new();
    let ready_url = format!("http://{address}/ready");
    let deadline = started + Duration::from_secs(120);
    let ready = loop {
        anyhow::ensure!(Instant::now() < deadline, "not ready within 120 s");
        if let Ok(response) = client.get(&ready_url).send().await
            && response.status() == reqwest::StatusCode::OK
        {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let dispatched = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the scan was not started within 120 s"
        );
        if site.services.store().read_stream(&stream).await?.len() > 1 {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.kill().await?;
    // Let the scan end before the next start, so each start finds exactly one new queued scan.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok((ready, dispatched))
}

async fn close(site: Site) -> anyhow::Result<()> {
    let Site {
        services,
        read,
        drop_database,
        ..
    } = site;
    drop((services, read));
    if let Some((url, name)) = drop_database {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let admin = sqlx::PgPool::connect(&url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await?;
    }
    Ok(())
}
