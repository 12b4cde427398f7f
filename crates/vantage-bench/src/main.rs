//! `vantage-bench`: the benchmarks behind BENCHMARKS.md. `store` measures the event store — append
//! throughput at 1, 10 and 200 events per command with 1 and 8 concurrent writers beside a raw
//! multi-row INSERT of the same rows into a copy of the table, and `read_all`
//! throughput (events fully deserialised) beside the driver's ceiling (the same query's rows in the
//! same pages, each column copied out, nothing decoded into events) — on the embedded SQLite store
//! and on PostgreSQL; `scan`
//! (in `scan.rs`) measures whole scans of local HTTPS targets; `projections` (in `projections.rs`)
//! full rebuilds and projection lag; `api` (in `api.rs`) HTTP throughput of query routes with wrk;
//! `verdicts` (in `verdicts.rs`) `vantage scan` of a lab site beside Mozilla's Observatory CLI;
//! `live` (in `live.rs`) concurrent SSE subscribers while events are appended; `webhooks` (in
//! `webhooks.rs`) webhook delivery throughput; `reports` (in `reports.rs`) compliance package export
//! and verification of a big scan, and report generation per format; `startup` (in `startup.rs`)
//! `vantage serve` started on a big log; `soak` (in `soak.rs`) `vantage serve` under a steady mix
//! for a long time.
//! Each prints a Markdown table.
//!
//! Every store run uses a fresh store (a temporary SQLite file; a new PostgreSQL schema, dropped
//! afterwards) and sends traffic only to the database URL given, which must be on loopback.

#![allow(
    clippy::print_stdout,
    clippy::disallowed_methods,
    reason = "a benchmark prints its table and stamps its own events"
)]

use std::sync::Arc;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;
use uuid::Uuid;
use vantage_store::{
    EventMetadata, EventStore, ExpectedVersion, JsonPayload, NewEvent, RecordedEvent, StreamName,
};
use vantage_store_postgres::{EventColumns, PgEventStore, PgStoreOptions};
use vantage_store_sqlite::SqliteEventStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

mod api;
mod live;
mod projections;
mod reports;
mod scan;
mod soak;
mod startup;
mod verdicts;
mod webhooks;

/// Benchmarks behind BENCHMARKS.md.
#[derive(Debug, Parser)]
enum Bench {
    /// Event store append and read throughput.
    Store(Args),
    /// Scans of local HTTPS targets end to end.
    Scan(scan::ScanBenchArgs),
    /// Full rebuild of every projection from a big log, and projection lag under load.
    Projections(projections::ProjectionBenchArgs),
    /// HTTP throughput and latency of query routes on a big store, with wrk.
    Api(api::ApiBenchArgs),
    /// `vantage scan` of a lab site against Mozilla's Observatory CLI on the same site.
    Verdicts(verdicts::VerdictsBenchArgs),
    /// Concurrent SSE subscribers while events are appended: latency, memory, completeness.
    Live(live::LiveBenchArgs),
    /// Webhook delivery throughput to a loopback receiver, beside plain POSTs.
    Webhooks(webhooks::WebhookBenchArgs),
    /// `vantage export` and `vantage verify-package` of a big scan, and its report in every format.
    Reports(reports::ReportsBenchArgs),
    /// `vantage serve` started on a big log: `/ready`, and a queued scan dispatched, after the spawn.
    Startup(startup::StartupBenchArgs),
    /// `vantage serve` under a steady mix for a long time: errors, latency, memory, descriptors,
    /// projection lag over time, then `verify` and `replay`.
    Soak(soak::SoakArgs),
    /// The subscriber side of `live`, run by it as a child process.
    #[command(hide = true)]
    LiveClients(live::LiveClientsArgs),
}

/// Which stores a benchmark measures.
#[derive(Debug, clap::Args)]
struct Stores {
    /// Which stores to measure.
    #[arg(long, value_enum, num_args = 1.., default_values = ["sqlite", "postgres"])]
    backend: Vec<Backend>,
    /// PostgreSQL URL (loopback only).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
}

/// Event store throughput benchmark.
#[derive(Debug, clap::Args)]
struct Args {
    #[command(flatten)]
    stores: crate::Stores,
    /// Events per command to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,10,200")]
    events_per_command: Vec<usize>,
    /// Concurrent writers to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    writers: Vec<usize>,
    /// How long each append measurement runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// How many events the read measurement reads (appended first if the log is shorter).
    #[arg(long, default_value_t = 200_000)]
    read_events: usize,
    /// How many times the read measurement reads the log from the start.
    #[arg(long, default_value_t = 1)]
    read_passes: usize,
}

fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "ProbeObserved".into(),
        schema_version: 1,
        occurred_at: chrono::Utc::now(),
        // About the size of a real observation.
        payload: JsonPayload::from_value(&json!({
            "observation_id": Uuid::now_v7(),
            "probe": "http",
            "asset": format!("https://bench-{n}.example.com/"),
            "data": {
                "status": 200, "http_version": "HTTP/1.1", "content_type": "text/html",
                "headers": { "server": "nginx", "strict-transport-security": "max-age=63072000" },
                "redirects": [], "elapsed_ms": 42
            }
        }))
        .expect("a JSON object is a valid payload"),
        metadata: EventMetadata {
            tenant: "bench".into(),
            actor: "worker:bench".into(),
            request_id: None,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
        },
    }
}

struct Opened {
    store: Arc<dyn EventStore>,
    idempotency: Arc<dyn vantage_store::SideStore>,
    sqlite: Option<SqliteEventStore>,
    postgres: Option<PgEventStore>,
    cleanup: Option<(String, String)>,
    dir: Option<tempfile::TempDir>,
}

impl Opened {
    /// Migrated read models beside this store: a SQLite file in `dir`, or this store's PostgreSQL
    /// schema with a pool of `connections`.
    async fn read_models(
        &self,
        dir: &std::path::Path,
        connections: u32,
    ) -> anyhow::Result<vantage_projections::ReadDb> {
        let read = match &self.cleanup {
            None => vantage_projections::ReadDb::open_sqlite(&dir.join("readmodels.db")).await?,
            Some((url, schema)) => {
                vantage_projections::ReadDb::connect_postgres(url, Some(schema), connections)
                    .await?
            }
        };
        vantage_projections::migrate(&read).await?;
        Ok(read)
    }

    /// Writes a history of realistic scans (`vantage_tests::history::append_history`) and waits
    /// until all of it is ordered; returns how many events it wrote.
    async fn write_history(
        &self,
        tenant: &str,
        domains: usize,
        events: usize,
        pages: usize,
    ) -> anyhow::Result<u64> {
        let written = vantage_tests::history::append_history(
            self.store.as_ref(),
            tenant,
            domains,
            events,
            pages,
        )
        .await as u64;
        if let Some(pg) = &self.postgres {
            while self.store.head_position().await? < written {
                pg.sequence_now().await?;
            }
        }
        Ok(written)
    }
}

async fn open(backend: Backend, url: &str) -> anyhow::Result<Opened> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let store = SqliteEventStore::open(&dir.path().join("bench.db")).await?;
            Ok(Opened {
                store: Arc::new(store.clone()),
                idempotency: Arc::new(store.clone()),
                sqlite: Some(store),
                postgres: None,
                cleanup: None,
                dir: Some(dir),
            })
        }
        Backend::Postgres => {
            let schema = format!("vantage_bench_{}", Uuid::now_v7().simple());
            let admin = sqlx::PgPool::connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&admin)
                .await?;
            admin.close().await;
            let mut options = PgStoreOptions::new(url);
            options.schema = Some(schema.clone());
            options.max_connections = 24;
            let store = PgEventStore::connect(options).await?;
            Ok(Opened {
                store: Arc::new(store.clone()),
                idempotency: Arc::new(store.clone()),
                sqlite: None,
                postgres: Some(store),
                cleanup: Some((url.to_owned(), schema)),
                dir: None,
            })
        }
    }
}

async fn close(opened: Opened) -> anyhow::Result<()> {
    if let Some(pg) = &opened.postgres {
        pg.pool().close().await;
    }
    if let Some((url, schema)) = opened.cleanup {
        let admin = sqlx::PgPool::connect(&url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await?;
    }
    Ok(())
}

/// Appends for `seconds` with `writers` tasks; returns (events, elapsed, time until all were ordered).
async fn measure_append(
    opened: &Opened,
    writers: usize,
    per_command: usize,
    seconds: f64,
) -> anyhow::Result<(usize, Duration, Duration)> {
    let start_head = opened.store.head_position().await?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = opened.store.clone();
            tokio::spawn(async move {
                // The events are made once per writer, and each command copies them with fresh
                // ids (counted up from a random v7 id), so what is timed is the store, not the
                // making of test data.
                let templates: Vec<NewEvent> = (0..per_command).map(event).collect();
                let first_id = Uuid::now_v7().as_u128();
                let mut written = 0usize;
                let mut command = 0usize;
                while Instant::now() < deadline {
                    let batch: Vec<NewEvent> = templates
                        .iter()
                        .enumerate()
                        .map(|(i, template)| NewEvent {
                            event_id: Uuid::from_u128(first_id + (written + i) as u128),
                            ..template.clone()
                        })
                        .collect();
                    let stream = StreamName::new(format!("bench-{w}-{}", Uuid::now_v7().simple()))?;
                    store
                        .append(&stream, ExpectedVersion::NoStream, batch)
                        .await?;
                    written += per_command;
                    command += 1;
                }
                anyhow::Ok((written, command))
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??.0;
    }
    let elapsed = start.elapsed();
    // Wait until every appended event is readable in the global order.
    let target = start_head + total as u64;
    while opened.store.head_position().await? < target {
        if let Some(pg) = &opened.postgres {
            pg.sequence_now().await?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok((total, elapsed, start.elapsed()))
}

/// The baseline of [`measure_append`]: the rows it appended, read back, inserted again into a copy
/// of the `events` table (same columns, keys and unique indexes) with the store's own multi-row
/// INSERT, `per_command` rows per statement and transaction — what the database and the driver take
/// for those rows, without the store's version check, chain hashing and encoding (and, on
/// PostgreSQL, the sequencer). SQLite has one writer; on PostgreSQL `writers` connections insert side
/// by side, as the measurement's writers appended. Returns the rows inserted and the time taken.
async fn measure_raw_append(
    opened: &Opened,
    after: u64,
    per_command: usize,
    writers: usize,
) -> anyhow::Result<(usize, Duration)> {
    let mut rows = Vec::new();
    let mut from = after;
    loop {
        let page = opened.store.read_all(from, 10_000).await?;
        let Some(last) = page.last() else { break };
        from = last.global_position;
        rows.extend(page);
    }
    let elapsed = match (&opened.sqlite, &opened.postgres) {
        (Some(sqlite), _) => raw_append_sqlite(sqlite, &rows, per_command).await?,
        (_, Some(postgres)) => raw_append_postgres(postgres, &rows, per_command, writers).await?,
        (None, None) => bail!("a store of neither kind"),
    };
    Ok((rows.len(), elapsed))
}

async fn raw_append_sqlite(
    sqlite: &SqliteEventStore,
    rows: &[RecordedEvent],
    per_command: usize,
) -> anyhow::Result<Duration> {
    let pool = sqlite.writer_pool();
    let ddl: String = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'",
    )
    .fetch_one(pool)
    .await?;
    let ddl = ddl.replacen("CREATE TABLE events", "CREATE TABLE bench_raw_events", 1);
    sqlx::query("DROP TABLE IF EXISTS bench_raw_events")
        .execute(pool)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(pool).await?;
    let start = Instant::now();
    for chunk in rows.chunks(per_command.max(1)) {
        let mut tx = pool.begin().await?;
        let mut insert = vantage_store_sqlite::insert_events("bench_raw_events", chunk);
        insert.build().execute(&mut *tx).await?;
        tx.commit().await?;
    }
    let elapsed = start.elapsed();
    sqlx::query("DROP TABLE bench_raw_events")
        .execute(pool)
        .await?;
    Ok(elapsed)
}

async fn raw_append_postgres(
    postgres: &PgEventStore,
    rows: &[RecordedEvent],
    per_command: usize,
    writers: usize,
) -> anyhow::Result<Duration> {
    let pool = postgres.pool();
    sqlx::query("DROP TABLE IF EXISTS bench_raw_events")
        .execute(pool)
        .await?;
    sqlx::query("CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    // The column arrays are made before the clock starts (an append makes them from the events it
    // is given): what is timed is the statement and the commit.
    let writers = writers.max(1);
    let mut commands: Vec<Vec<EventColumns>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, chunk) in rows.chunks(per_command.max(1)).enumerate() {
        let mut columns = EventColumns::default();
        for row in chunk {
            columns.push(row.event.clone())?;
        }
        commands[i % writers].push(columns);
    }
    let start = Instant::now();
    let tasks: Vec<_> = commands
        .into_iter()
        .map(|commands| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for columns in commands {
                    let mut tx = pool.begin().await?;
                    columns.insert_into(&mut tx, "bench_raw_events").await?;
                    tx.commit().await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed();
    sqlx::query("DROP TABLE bench_raw_events")
        .execute(pool)
        .await?;
    Ok(elapsed)
}

async fn measure_read(
    opened: &Opened,
    events: usize,
    passes: usize,
) -> anyhow::Result<(usize, Duration)> {
    let head = opened.store.head_position().await? as usize;
    if head < events {
        let missing = events - head;
        let per_command = 200;
        for chunk in 0..missing.div_ceil(per_command) {
            let n = per_command.min(missing - chunk * per_command);
            let stream = StreamName::new(format!("fill-{}", Uuid::now_v7().simple()))?;
            opened
                .store
                .append(
                    &stream,
                    ExpectedVersion::NoStream,
                    (0..n).map(event).collect(),
                )
                .await?;
        }
        while (opened.store.head_position().await? as usize) < events {
            if let Some(pg) = &opened.postgres {
                pg.sequence_now().await?;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let start = Instant::now();
    let mut read = 0usize;
    for _ in 0..passes {
        let mut position = 0u64;
        let mut this_pass = 0usize;
        while this_pass < events {
            let batch = opened.store.read_all(position, 1000).await?;
            let Some(last) = batch.last() else { break };
            position = last.global_position;
            this_pass += batch.len();
        }
        read += this_pass;
    }
    Ok((read, start.elapsed()))
}

/// The baseline of `read_all` on each store: its rows one per event (the SQLite store's column
/// list, which it asked for one row per event until it asked for a page as one value; the
/// PostgreSQL store's join of the log and the events, as it sends it).
const SQLITE_READ_ALL: &str = "SELECT global_position, event_id, stream, stream_version, event_type, \
     schema_version, occurred_at, recorded_at, tenant, actor, request_id, correlation_id, \
     causation_id, payload, content_hash, prev_hash, hash \
     FROM events WHERE global_position > ? ORDER BY global_position LIMIT ?";
const POSTGRES_READ_ALL: &str = "SELECT l.global_position, l.prev_hash, l.hash, e.event_id, \
     e.stream, e.stream_version, e.event_type, e.schema_version, e.occurred_at, e.recorded_at, \
     e.tenant, e.actor, e.request_id, e.correlation_id, e.causation_id, e.payload::text AS payload, \
     e.content_hash \
     FROM event_log l JOIN events e ON e.id = l.event_row \
     WHERE l.global_position > $1 ORDER BY l.global_position LIMIT $2";

/// The baseline of [`measure_read`]: the same events as rows of one event each (`sql`), in the same
/// pages of 1,000, every column of every row copied out of the driver (`ValueRef::to_owned`) and
/// nothing decoded into an event — on PostgreSQL the driver's ceiling for `read_all`'s own query.
async fn measure_raw_read<DB>(
    pool: &sqlx::Pool<DB>,
    sql: &'static str,
    events: usize,
    passes: usize,
) -> anyhow::Result<(usize, Duration)>
where
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    use sqlx::{Row, ValueRef};
    let start = Instant::now();
    let mut read = 0usize;
    for _ in 0..passes {
        let mut position = 0i64;
        let mut this_pass = 0usize;
        while this_pass < events {
            let rows = sqlx::query::<DB>(sql)
                .bind(position)
                .bind(1000i64)
                .fetch_all(pool)
                .await?;
            let Some(last) = rows.last() else { break };
            position = last.try_get::<i64, usize>(0)?;
            for row in &rows {
                for column in 0..row.columns().len() {
                    std::hint::black_box(row.try_get_raw(column)?.to_owned());
                }
            }
            this_pass += rows.len();
        }
        read += this_pass;
    }
    Ok((read, start.elapsed()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Bench::parse() {
        Bench::Store(args) => store(args).await,
        Bench::Scan(args) => scan::run(args).await,
        Bench::Projections(args) => projections::run(args).await,
        Bench::Api(args) => api::run(args).await,
        Bench::Verdicts(args) => verdicts::run(args).await,
        Bench::Live(args) => live::run(args).await,
        Bench::LiveClients(args) => live::clients(args).await,
        Bench::Webhooks(args) => webhooks::run(args).await,
        Bench::Reports(args) => reports::run(args).await,
        Bench::Startup(args) => startup::run(args).await,
        Bench::Soak(args) => soak::run(args).await,
    }
}

async fn store(args: Args) -> anyhow::Result<()> {
    let host = args
        .stores
        .database_url
        .split('@')
        .nth(1)
        .unwrap_or(&args.stores.database_url);
    if args.stores.backend.contains(&Backend::Postgres)
        && !(host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]"))
    {
        bail!("the benchmark only talks to a PostgreSQL on loopback");
    }
    println!(
        "| store | events/command | writers | events | seconds | appended events/s | ordered events/s | the same rows, raw multi-row INSERT, events/s | append ÷ that |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut reads = Vec::new();
    for &backend in &args.stores.backend {
        for &per_command in &args.events_per_command {
            for &writers in &args.writers {
                let opened = open(backend, &args.stores.database_url).await?;
                let start_head = opened.store.head_position().await?;
                let (events, elapsed, ordered) =
                    measure_append(&opened, writers, per_command, args.seconds).await?;
                let rate = events as f64 / elapsed.as_secs_f64();
                let (rows, raw_elapsed) =
                    measure_raw_append(&opened, start_head, per_command, writers).await?;
                let raw_rate = rows as f64 / raw_elapsed.as_secs_f64();
                let raw = format!("{raw_rate:.0} | {:.0} %", 100.0 * rate / raw_rate);
                println!(
                    "| {backend:?} | {per_command} | {writers} | {events} | {:.1} | {rate:.0} | {:.0} | {raw} |",
                    elapsed.as_secs_f64(),
                    events as f64 / ordered.as_secs_f64(),
                );
                close(opened).await?;
            }
        }
        let opened = open(backend, &args.stores.database_url).await?;
        let (read, elapsed) = measure_read(&opened, args.read_events, args.read_passes).await?;
        let (events, passes) = (args.read_events, args.read_passes);
        let (raw, raw_elapsed) = match (&opened.sqlite, &opened.postgres) {
            (Some(_), _) => {
                // The rows one per event, as `read_all` read them before it asked for a page as
                // one value, with the row buffer its reader pool had then.
                let dir = opened
                    .dir
                    .as_ref()
                    .context("the SQLite store's directory")?;
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(
                        sqlx::sqlite::SqliteConnectOptions::new()
                            .filename(dir.path().join("bench.db"))
                            .read_only(true)
                            .row_buffer_size(2048),
                    )
                    .await?;
                let measured = measure_raw_read(&pool, SQLITE_READ_ALL, events, passes).await?;
                pool.close().await;
                measured
            }
            (_, Some(postgres)) => {
                measure_raw_read(postgres.pool(), POSTGRES_READ_ALL, events, passes).await?
            }
            (None, None) => bail!("a store of neither kind"),
        };
        reads.push((backend, read, elapsed, raw, raw_elapsed));
        close(opened).await?;
    }
    println!();
    println!(
        "| store | read_all events | seconds | events/s (deserialised) | the same rows, one per event, columns copied out, events/s | read_all ÷ that |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (backend, read, elapsed, raw, raw_elapsed) in reads {
        let rate = read as f64 / elapsed.as_secs_f64();
        let raw_rate = raw as f64 / raw_elapsed.as_secs_f64();
        println!(
            "| {backend:?} | {read} | {:.2} | {rate:.0} | {raw_rate:.0} | {:.0} % |",
            elapsed.as_secs_f64(),
            100.0 * rate / raw_rate
        );
    }
    Ok(())
}
