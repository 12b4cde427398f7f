//! Commands, their arguments and what each one does.

#![allow(clippy::print_stdout, reason = "a CLI prints its results to stdout")]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use vantage_app::{CommandContext, Keyring, Services, SteadyClock, SystemClock};
use vantage_domain::project::ProjectId;
use vantage_domain::scope::{Scope, Scopes};
use vantage_domain::tenant::TenantId;
use vantage_probes::dnssec::{DnssecValidator, TrustAnchorChoice};
use vantage_probes::ssrf::{AllowList, ResolverChoice, SsrfGuard, SsrfPolicy};
use vantage_probes::tls::TlsRoots;
use vantage_projections::ReadDb;
use vantage_reports::signing::SigningKey;
use vantage_store::EventStore;
use vantage_store_postgres::{PgEventStore, PgStoreOptions};
use vantage_store_sqlite::SqliteEventStore;
use vantage_worker::nats::NatsTopology;

use crate::application::{ApiSettings, Application, NatsLink, Settings};
use crate::config::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, FileConfig};

/// Vantage: watch an organisation's public web surface from the outside.
#[derive(Debug, Parser)]
#[command(name = "vantage", version, about)]
pub struct Cli {
    /// A TOML configuration file (keys: listen, data_dir, database_url, tenant, log_format,
    /// allow_cidr, resolver, dnssec_trust_anchor, secrets_key_file, signing_key_file).
    #[arg(long, global = true, env = "VANTAGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "VANTAGE_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (embedded SQLite by default; PostgreSQL with --database-url).
    Serve(Box<ServeArgs>),
    /// Create or upgrade the database schema, then exit.
    Migrate(StoreArgs),
    /// Walk the event log's hash chain and report the first break, and check that the log still
    /// holds every signed checkpoint given (non-zero exit on either).
    Verify(crate::checkpoints::VerifyArgs),
    /// Sign the log's head (after verifying the chain) and append it to a checkpoints file kept
    /// outside the database.
    Checkpoint(crate::checkpoints::CheckpointArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Scan one target now, in this process, and print its findings.
    #[command(after_help = crate::scan::EXIT_CODES)]
    Scan(crate::scan::ScanArgs),
    /// Wait for a post_deploy scan on a server and exit by its release gate.
    #[command(after_help = crate::gate::EXIT_CODES)]
    Gate(crate::gate::GateArgs),
    /// Write a signed compliance package of a scan, or of a domain's scans over a period.
    Export(crate::evidence::ExportArgs),
    /// Check a compliance package offline: signature, file hashes, the event chain, and the
    /// findings recomputed from the events (non-zero exit on any difference).
    VerifyPackage(crate::evidence::VerifyPackageArgs),
    /// Take scan jobs from NATS JetStream and run them (distributed mode; needs no database).
    Worker(WorkerArgs),
    /// Run the projectors (read models) without the API, until stopped.
    Project(StoreArgs),
    /// Manage read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Rebuild every read model from the log into a scratch store and prove it equals the live one
    /// (non-zero exit on any difference).
    Replay(StoreArgs),
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuild read models from the log into shadow tables and swap them in atomically (queries
    /// keep answering meanwhile). Resumes an interrupted rebuild unless --restart.
    Rebuild(RebuildArgs),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The projector to rebuild (scans, audit, webhooks, schedules, badges) [default: all].
    pub name: Option<String>,
    /// Discard an interrupted rebuild and start from zero.
    #[arg(long)]
    pub restart: bool,
}

/// Where NATS is.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL (nats://…), or a cluster's, comma-separated (any one that answers will do);
    /// with it, scans run on `vantage worker` processes.
    #[arg(long, env = "VANTAGE_NATS_URL")]
    pub nats_url: Option<String>,
    /// Prefix of Vantage's NATS subjects and streams.
    #[arg(long, env = "VANTAGE_NATS_PREFIX", default_value = "vantage")]
    pub nats_prefix: String,
    /// Copies of each JetStream stream Vantage creates (3 on a three-node cluster); an existing
    /// stream keeps the replicas it was created with.
    #[arg(long, env = "VANTAGE_NATS_REPLICAS", default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=vantage_worker::nats::MAX_STREAM_REPLICAS as u64))]
    pub nats_replicas: usize,
}

impl NatsArgs {
    /// The subjects, streams and stream replicas these flags name.
    pub fn topology(&self) -> Result<NatsTopology, CliError> {
        NatsTopology::new(&self.nats_prefix)
            .and_then(|t| t.with_replicas(self.nats_replicas))
            .map_err(CliError)
    }

    /// Connects to the servers `url` lists (see `--nats-url`).
    pub async fn connect(url: &str) -> Result<async_nats::Client, CliError> {
        let servers: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        async_nats::connect(servers)
            .await
            .map_err(|e| CliError(format!("cannot connect to NATS at {url}: {e}")))
    }
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The worker pool (vantage point) whose jobs to take.
    #[arg(long, env = "VANTAGE_VANTAGE_POINT", default_value = "default")]
    pub vantage_point: String,
    /// This worker's name in the audit trail [default: a new id].
    #[arg(long, env = "VANTAGE_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Seconds without a progress report before a job goes to another worker.
    #[arg(long, default_value_t = 30)]
    pub ack_wait_seconds: u64,
    /// Deliveries of one job before it is dead-lettered and its scan failed.
    #[arg(long, default_value_t = 5)]
    pub max_deliver: i64,
    #[command(flatten)]
    pub scanning: ScanningArgs,
}

/// Where the event log lives.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite database [default: ./vantage-data].
    #[arg(long, env = "VANTAGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…); switches from the embedded store to PostgreSQL.
    #[arg(long, env = "VANTAGE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// KurrentDB connection string (kurrentdb://host:2113?tls=false): keeps the event log there;
    /// read models, idempotency keys and secrets stay in the embedded or PostgreSQL store. Needs a
    /// vantage built with `--features kurrentdb`.
    #[arg(long, env = "VANTAGE_KURRENTDB_URL")]
    pub kurrentdb_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// A PostgreSQL streaming replica of --database-url to answer read-model queries from
    /// (projectors and commands still use the primary); /ready reports how far behind it is.
    #[arg(long, env = "VANTAGE_READ_DATABASE_URL", requires = "database_url")]
    pub read_database_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "VANTAGE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first) instead of
    /// plain HTTP; needs --tls-key.
    #[arg(long, env = "VANTAGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "VANTAGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Tenant whose first admin key is created on first start [default: default].
    #[arg(long, env = "VANTAGE_TENANT")]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub scanning: ScanningArgs,
    /// Scans run at once by in-process workers [default: 4 with the embedded store and no NATS,
    /// else 0].
    #[arg(long, env = "VANTAGE_SCAN_WORKERS")]
    pub scan_workers: Option<usize>,
    /// API requests per minute per key (a bucket holds ten seconds' worth).
    #[arg(long, env = "VANTAGE_RATE_LIMIT_PER_MINUTE", default_value = "1200")]
    pub rate_limit_per_minute: std::num::NonZeroU32,
    /// Scan creations per minute per key, on top of the general limit.
    #[arg(long, env = "VANTAGE_SCAN_RATE_LIMIT_PER_MINUTE", default_value = "60")]
    pub scan_rate_limit_per_minute: std::num::NonZeroU32,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub keys: KeyFiles,
    /// Most connections served at once; more wait in the listen backlog until one ends.
    #[arg(long, env = "VANTAGE_MAX_CONNECTIONS", default_value_t = vantage_api::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// Longest life of one live (SSE) connection, in seconds; clients reconnect and resume.
    #[arg(long, env = "VANTAGE_LIVE_MAX_SECONDS", default_value_t = 1800,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub live_max_seconds: u64,
    #[command(flatten)]
    pub outbound: OutboundArgs,
}

/// The server's key files.
#[derive(Debug, Clone, Args)]
pub struct KeyFiles {
    /// A file holding the secrets key (64 hex digits, e.g. from `openssl rand -hex 32`) that seals
    /// webhook secrets and the keys of personal text and content samples, and signs event tokens; every replica needs the same one [default: with the
    /// embedded store, DATA_DIR/secrets.key, created on first start].
    #[arg(long, env = "VANTAGE_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
    /// A PKCS#8 PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`) that signs
    /// compliance packages [default: with the embedded store, DATA_DIR/signing-key.pem, created on
    /// first start; with PostgreSQL, a key derived from the secrets key, the same on every replica].
    #[arg(long, env = "VANTAGE_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
}

/// Webhook retries and the scheduler's pace.
#[derive(Debug, Clone, clap::Args)]
pub struct OutboundArgs {
    /// Wait after a webhook delivery's first failed attempt, in milliseconds; each later wait
    /// doubles it (± 20 % jitter) up to `--webhook-max-retry-ms`.
    #[arg(long, env = "VANTAGE_WEBHOOK_FIRST_RETRY_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_first_retry_ms: u64,
    /// Longest wait between two attempts of a delivery, in milliseconds.
    #[arg(long, env = "VANTAGE_WEBHOOK_MAX_RETRY_MS", default_value_t = 3_600_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_max_retry_ms: u64,
    /// A delivery failing for this many seconds since its first attempt is given up.
    #[arg(long, env = "VANTAGE_WEBHOOK_GIVE_UP_SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_give_up_seconds: u64,
    /// How often the scheduler looks for due schedules, in milliseconds.
    #[arg(long, env = "VANTAGE_SCHEDULER_POLL_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub scheduler_poll_ms: u64,
}

impl OutboundArgs {
    pub fn settings(
        &self,
        roots: vantage_probes::tls::TlsRoots,
    ) -> vantage_outbound::OutboundSettings {
        use std::time::Duration;
        vantage_outbound::OutboundSettings {
            retry: vantage_outbound::webhooks::RetryPolicy {
                first_retry: Duration::from_millis(self.webhook_first_retry_ms),
                max_retry: Duration::from_millis(self.webhook_max_retry_ms),
                give_up_after: Duration::from_secs(self.webhook_give_up_seconds),
                ..Default::default()
            },
            roots,
            scheduler_every: Duration::from_millis(self.scheduler_poll_ms),
        }
    }
}

/// What the scanner may reach and how it resolves names.
#[derive(Debug, Clone, Args)]
pub struct ScanningArgs {
    /// Non-public CIDRs that may be scanned anyway, for labs (repeatable or comma-separated), e.g.
    /// 127.0.0.0/8. The SSRF guard has no off switch.
    #[arg(long = "allow-cidr", env = "VANTAGE_ALLOW_CIDR", value_delimiter = ',')]
    pub allow_cidr: Vec<String>,
    /// DNS resolver: `system` or IP[:PORT] of one server [default: system].
    #[arg(long, env = "VANTAGE_RESOLVER")]
    pub resolver: Option<String>,
    /// A PEM file of extra CA certificates to trust besides the web PKI (repeatable), for labs.
    #[arg(long = "extra-ca", env = "VANTAGE_EXTRA_CA", value_delimiter = ',')]
    pub extra_ca: Vec<PathBuf>,
    /// What DNSSEC validation trusts: `root` (the root zone's keys) or a file of DNSKEY records,
    /// for labs [default: root].
    #[arg(long = "dnssec-trust-anchor", env = "VANTAGE_DNSSEC_TRUST_ANCHOR")]
    pub dnssec_trust_anchor: Option<String>,
}

/// The TLS trust anchors: the web PKI plus `--extra-ca` files.
pub(crate) fn tls_roots(args: &ScanningArgs) -> Result<TlsRoots, CliError> {
    TlsRoots::with_pem_files(&args.extra_ca).map_err(|e| CliError(format!("--extra-ca: {e}")))
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue an API key and print it once.
    Create(KeysCreateArgs),
}

#[derive(Debug, Args)]
pub struct KeysCreateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    // The key's name is sealed with the tenant's personal-data key, kept sealed by the secrets key.
    #[command(flatten)]
    pub keys: KeyFiles,
    /// Give the key the admin scope (everything).
    #[arg(long)]
    pub admin: bool,
    /// A scope to grant (repeatable): scan:read, scan:write, triage:write, audit:read, content:read, admin.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// A name to recognise the key by.
    #[arg(long, default_value = "cli")]
    pub name: String,
    /// Limit the key to a project (repeatable); without it the key sees every project.
    #[arg(long = "project", value_name = "PROJECT")]
    pub projects: Vec<String>,
    /// The tenant the key belongs to [default: default].
    #[arg(long, env = "VANTAGE_TENANT")]
    pub tenant: Option<String>,
}

/// A failure the user can act on, in one sentence.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

/// Parses the command line, runs the command, and turns failures into one sentence and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider for every TLS client in the process (probes bring their own configuration,
    // but anything else that builds a client relies on the process default).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let file = FileConfig::load(cli.config.as_deref()).map_err(CliError)?;
    let json_logs = cli.log_json || file.log_format.as_deref() == Some("json");
    let _telemetry = crate::telemetry::init(json_logs).map_err(CliError)?;
    match cli.command {
        Command::Serve(args) => serve(*args, &file).await,
        Command::Migrate(args) => {
            let opened = open_store(&args, &file).await?;
            println!("schema of the {} event store is up to date", opened.kind);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => crate::checkpoints::verify(&args, &file).await,
        Command::Checkpoint(args) => crate::checkpoints::checkpoint(&args, &file).await,
        Command::Keys(KeysCommand::Create(args)) => create_key(args, &file).await,
        Command::Worker(args) => worker(args, &file).await,
        Command::Project(args) => crate::read_side::project(&args, &file).await,
        Command::Projections(ProjectionsCommand::Rebuild(args)) => {
            crate::read_side::rebuild(&args, &file).await
        }
        Command::Replay(args) => crate::read_side::replay(&args, &file).await,
        Command::Export(args) => crate::evidence::export(args, &file).await,
        Command::VerifyPackage(args) => crate::evidence::verify_package(&args),
        Command::Gate(args) => crate::gate::gate(args).await,
        Command::Scan(args) => {
            let scanner = scanner(&args.scanning, &file)?;
            crate::scan::scan(args, scanner).await
        }
    }
}

const EMBEDDED: &str = "embedded SQLite";

/// An opened event store, both of its faces, which kind it is, and where its read models live.
pub(crate) struct OpenedStore {
    pub(crate) events: Arc<dyn EventStore>,
    idempotency: Arc<dyn vantage_store::SideStore>,
    pub(crate) kind: &'static str,
    read_models: ReadModels,
    /// The embedded store's directory.
    data_dir: Option<PathBuf>,
}

/// Where the read models live: a SQLite file beside the embedded log, or the PostgreSQL database.
enum ReadModels {
    Sqlite(PathBuf),
    Postgres(String),
}

impl OpenedStore {
    /// The embedded store's directory (none with PostgreSQL).
    pub(crate) fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Opens the read-model database and creates its tables if needed.
    pub(crate) async fn read_db(&self) -> Result<ReadDb, CliError> {
        let db = match &self.read_models {
            ReadModels::Sqlite(path) => ReadDb::open_sqlite(path).await,
            ReadModels::Postgres(url) => ReadDb::connect_postgres(url, None, 8).await,
        }
        .map_err(|e| CliError(format!("cannot open the read models: {e}")))?;
        vantage_projections::migrate(&db)
            .await
            .map_err(|e| CliError(format!("cannot create the read-model tables: {e}")))?;
        Ok(db)
    }
}

/// Opens the event log and its side stores: the SQL store named by the flags (embedded SQLite by
/// default, PostgreSQL with `--database-url`), with its event log replaced by KurrentDB when
/// `--kurrentdb-url` is given.
pub(crate) async fn open_store(
    args: &StoreArgs,
    file: &FileConfig,
) -> Result<OpenedStore, CliError> {
    let mut opened = open_sql_store(args, file).await?;
    let url = args
        .kurrentdb_url
        .clone()
        .or_else(|| file.kurrentdb_url.clone());
    if let Some(url) = url {
        opened.events = kurrentdb_log(&url).await?;
        opened.kind = KURRENTDB;
    }
    Ok(opened)
}

const KURRENTDB: &str = "KurrentDB";

#[cfg(feature = "kurrentdb")]
async fn kurrentdb_log(url: &str) -> Result<Arc<dyn EventStore>, CliError> {
    use vantage_store_kurrentdb::{KurrentEventStore, KurrentStoreOptions};
    let store = KurrentEventStore::connect(KurrentStoreOptions::new(url))
        .await
        .map_err(|e| CliError(format!("cannot open the KurrentDB event log: {e}")))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "kurrentdb"))]
async fn kurrentdb_log(_url: &str) -> Result<Arc<dyn EventStore>, CliError> {
    Err(CliError(
        "--kurrentdb-url needs a vantage built with KurrentDB support \
         (cargo build --release --features kurrentdb)"
            .into(),
    ))
}

/// The SQL store: embedded SQLite in the data directory, or PostgreSQL.
async fn open_sql_store(args: &StoreArgs, file: &FileConfig) -> Result<OpenedStore, CliError> {
    let url = args
        .database_url
        .clone()
        .or_else(|| file.database_url.clone());
    if let Some(url) = url {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(CliError(
                "--database-url must be a postgres:// URL; omit it for the embedded store".into(),
            ));
        }
        let store = PgEventStore::connect(PgStoreOptions::new(url.clone()))
            .await
            .map_err(|e| CliError(format!("cannot open the PostgreSQL event store: {e}")))?;
        return Ok(OpenedStore {
            events: Arc::new(store.clone()),
            idempotency: Arc::new(store),
            kind: "PostgreSQL",
            read_models: ReadModels::Postgres(url),
            data_dir: None,
        });
    }
    let dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    std::fs::create_dir_all(&dir).map_err(|e| {
        CliError(format!(
            "cannot create data directory {}: {e}",
            dir.display()
        ))
    })?;
    let store = SqliteEventStore::open(&dir.join("vantage.db"))
        .await
        .map_err(|e| CliError(format!("cannot open the embedded event store: {e}")))?;
    Ok(OpenedStore {
        events: Arc::new(store.clone()),
        idempotency: Arc::new(store),
        kind: EMBEDDED,
        read_models: ReadModels::Sqlite(dir.join("readmodels.db")),
        data_dir: Some(dir),
    })
}

/// The SSRF guard from flags, environment or file.
fn guard(args: &ScanningArgs, file: &FileConfig) -> Result<SsrfGuard, CliError> {
    let cidrs = if args.allow_cidr.is_empty() {
        file.allow_cidr.clone().unwrap_or_default()
    } else {
        args.allow_cidr.clone()
    };
    let allow =
        AllowList::parse(&cidrs.join(",")).map_err(|e| CliError(format!("--allow-cidr: {e}")))?;
    if !allow.is_empty() {
        tracing::warn!(allow = %allow, "the SSRF guard admits these non-public ranges");
    }
    SsrfGuard::new(SsrfPolicy::new(allow), resolver(args, file)?).map_err(CliError)
}

/// Where DNS questions go, from flags, environment or file.
fn resolver(args: &ScanningArgs, file: &FileConfig) -> Result<ResolverChoice, CliError> {
    let resolver = args
        .resolver
        .as_deref()
        .or(file.resolver.as_deref())
        .unwrap_or("system");
    ResolverChoice::parse(resolver).map_err(CliError)
}

/// The DNSSEC validator: the scanner's resolver, validating against the chosen trust anchors.
fn dnssec(args: &ScanningArgs, file: &FileConfig) -> Result<DnssecValidator, CliError> {
    let anchors = args
        .dnssec_trust_anchor
        .as_deref()
        .or(file.dnssec_trust_anchor.as_deref())
        .unwrap_or("root");
    let anchors = TrustAnchorChoice::parse(anchors)
        .map_err(|e| CliError(format!("--dnssec-trust-anchor: {e}")))?;
    DnssecValidator::new(resolver(args, file)?, &anchors)
        .map_err(|e| CliError(format!("--dnssec-trust-anchor: {e}")))
}

/// Everything a scan is run with: the SSRF guard, the TLS trust anchors, the DNSSEC validator.
fn scanner(args: &ScanningArgs, file: &FileConfig) -> Result<vantage_worker::Scanner, CliError> {
    Ok(
        vantage_worker::Scanner::new(guard(args, file)?, tls_roots(args)?)
            .with_dnssec(dnssec(args, file)?),
    )
}

/// The application over the opened store. Its clock never goes back, not even below the newest
/// event a previous run wrote (a server restarted with its clock behind).
async fn services(opened: &OpenedStore, guard: SsrfGuard) -> Result<Services, CliError> {
    let head = opened.events.head_position().await?;
    let newest = match head {
        0 => None,
        head => opened
            .events
            .read_all(head - 1, 1)
            .await?
            .first()
            .map(|last| last.event.occurred_at.max(last.event.recorded_at)),
    };
    let clock = SteadyClock::new(SystemClock);
    let clock = match newest {
        Some(newest) => clock.not_before(newest),
        None => clock,
    };
    Ok(Services::new(
        opened.events.clone(),
        opened.idempotency.clone(),
        Arc::new(clock),
        guard,
    ))
}

/// The text of the key file `path`, first written there (owner-only) by `make` if it does not exist.
fn create_or_read(
    path: &Path,
    what: &str,
    make: impl FnOnce() -> String,
) -> Result<String, CliError> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(mut out) => {
            use std::io::Write;
            let text = make();
            out.write_all(text.as_bytes()).map_err(|e| {
                CliError(format!("cannot write the {what} {}: {e}", path.display()))
            })?;
            tracing::info!(path = %path.display(), "created the {what}");
            Ok(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path, what),
        Err(e) => Err(CliError(format!(
            "cannot create the {what} {}: {e}",
            path.display()
        ))),
    }
}

fn read_key_file(path: &Path, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("cannot read the {what} {}: {e}", path.display())))
}

/// The secrets key: from `--secrets-key-file` (or the file's `secrets_key_file`), else, embedded,
/// `DATA_DIR/secrets.key`, created (owner-only) on first start. Its contents are never logged.
pub(crate) fn keyring(
    keys: &KeyFiles,
    file: &FileConfig,
    opened: &OpenedStore,
) -> Result<Keyring, CliError> {
    const WHAT: &str = "secrets key";
    let (path, text) = match keys
        .secrets_key_file
        .as_deref()
        .or(file.secrets_key_file.as_deref())
    {
        Some(path) => (path.to_owned(), read_key_file(path, WHAT)?),
        None => {
            let Some(dir) = &opened.data_dir else {
                return Err(CliError(
                    "with PostgreSQL every replica needs the same secrets key: give a file of 64 \
                     hex digits (openssl rand -hex 32) with --secrets-key-file"
                        .into(),
                ));
            };
            let path = dir.join("secrets.key");
            let text = create_or_read(&path, WHAT, || {
                format!("{}\n", Keyring::generate().to_hex())
            })?;
            (path, text)
        }
    };
    Keyring::from_hex(&text)
        .map_err(|e| CliError(format!("the {WHAT} in {} is invalid: {e}", path.display())))
}

/// The key that signs compliance packages: from `--signing-key-file` (or the file's
/// `signing_key_file`), else, embedded, `DATA_DIR/signing-key.pem`, created (owner-only) on first
/// start, else the key derived from the secrets key (the same on every replica).
pub(crate) fn signing_key(
    keys: &KeyFiles,
    file: &FileConfig,
    opened: &OpenedStore,
) -> Result<SigningKey, CliError> {
    const WHAT: &str = "signing key";
    let configured = keys
        .signing_key_file
        .as_deref()
        .or(file.signing_key_file.as_deref());
    let (path, text) = match (configured, &opened.data_dir) {
        (Some(path), _) => (path.to_owned(), read_key_file(path, WHAT)?),
        (None, Some(dir)) => {
            let path = dir.join("signing-key.pem");
            let text = create_or_read(&path, WHAT, || {
                SigningKey::generate(&ring::rand::SystemRandom::new())
                    .map(|k| k.to_pem())
                    .unwrap_or_default()
            })?;
            (path, text)
        }
        (None, None) => {
            let keyring = keyring(keys, file, opened)?;
            return SigningKey::from_seed(&keyring.signing_seed())
                .map_err(|e| CliError(format!("cannot derive the {WHAT}: {e}")));
        }
    };
    SigningKey::from_pem(&text)
        .map_err(|e| CliError(format!("the {WHAT} in {} is invalid: {e}", path.display())))
}

pub(crate) fn tenant(flag: Option<&str>, file: &FileConfig) -> Result<TenantId, CliError> {
    let raw = flag.or(file.tenant.as_deref()).unwrap_or("default");
    TenantId::parse(raw).map_err(|e| CliError(format!("invalid tenant {raw:?}: {e}")))
}

async fn serve(args: ServeArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let guard = guard(&args.scanning, file)?;
    let roots = tls_roots(&args.scanning)?;
    let dnssec = dnssec(&args.scanning, file)?;
    let opened = open_store(&args.store, file).await?;
    let keyring = keyring(&args.keys, file, &opened)?;
    let signing_key = signing_key(&args.keys, file, &opened)?;
    let services = services(&opened, guard)
        .await?
        .with_keyring(keyring)
        .with_signing_key(signing_key);
    let tenant = tenant(args.tenant.as_deref(), file)?;
    let preset = std::env::var("VANTAGE_BOOTSTRAP_ADMIN_KEY").ok();
    match services
        .bootstrap_admin_key(&tenant, preset.as_deref())
        .await
        .map_err(|e| CliError(format!("cannot create the bootstrap admin key: {e}")))?
    {
        Ok(Some(issued)) if preset.is_none() => {
            println!(
                "Bootstrap admin API key for tenant {tenant} (shown once, store it now):\n{}",
                issued.token.expose()
            );
        }
        Ok(Some(_)) => println!(
            "Bootstrap admin API key for tenant {tenant} taken from VANTAGE_BOOTSTRAP_ADMIN_KEY."
        ),
        Ok(None) => {}
        Err(rejected) => return Err(CliError(format!("bootstrap admin key refused: {rejected}"))),
    }
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("default address parses"));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError(format!("cannot listen on {listen}: {e}")))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(server_tls(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let local = listener.local_addr()?;
    tracing::info!(address = %local, store = opened.kind, scheme, "vantage is serving");
    println!(
        "Vantage listening on {scheme}://{local} ({} event store); dashboard at {scheme}://{local}/ui",
        opened.kind
    );
    let nats = match &args.nats.nats_url {
        Some(url) => Some(NatsLink {
            client: NatsArgs::connect(url).await?,
            topology: args.nats.topology()?,
        }),
        None => None,
    };
    // In-process workers by default when this one process is the whole deployment.
    let embedded = opened.data_dir().is_some() && nats.is_none();
    let read_replica = match &args.read_database_url {
        Some(url) => Some(
            ReadDb::connect_postgres(url, None, 8)
                .await
                .map_err(|e| CliError(format!("cannot open the read replica: {e}")))?,
        ),
        None => None,
    };
    let settings = Settings {
        scan_workers: args.scan_workers.unwrap_or(if embedded { 4 } else { 0 }),
        tls_roots: roots.clone(),
        dnssec: Some(dnssec),
        outbound: Some(args.outbound.settings(roots)),
        nats,
        read_replica,
        api: ApiSettings {
            rate_limits: Some(vantage_api::RateLimitConfig {
                requests_per_minute: args.rate_limit_per_minute,
                scans_per_minute: args.scan_rate_limit_per_minute,
            }),
            live_max: Some(std::time::Duration::from_secs(args.live_max_seconds)),
            max_connections: Some(args.max_connections),
            tls,
        },
    };
    let read_db = opened.read_db().await?;
    Application::build(services, read_db, settings, listener)
        .run_until_stopped(shutdown_signal())
        .await
        .map_err(|e| CliError(format!("server failed: {e}")))?;
    tracing::info!("shut down cleanly");
    Ok(ExitCode::SUCCESS)
}

/// The TLS configuration `vantage serve --tls-cert --tls-key` serves with (HTTP/1.1 over ALPN).
fn server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<std::sync::Arc<rustls::ServerConfig>, CliError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            CliError(format!(
                "cannot read the certificate {}: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(CliError(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        CliError(format!(
            "cannot read the private key {}: {e}",
            key.display()
        ))
    })?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            CliError(format!(
                "the certificate {} and the key {} do not make a TLS identity: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

async fn worker(args: WorkerArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let url =
        args.nats.nats_url.clone().ok_or_else(|| {
            CliError("vantage worker needs --nats-url (or VANTAGE_NATS_URL)".into())
        })?;
    let topology = args.nats.topology()?;
    let scanner = scanner(&args.scanning, file)?;
    let worker_id = args
        .worker_id
        .clone()
        .unwrap_or_else(|| format!("nats-{}", vantage_app::new_id().simple()));
    let client = NatsArgs::connect(&url).await?;
    println!(
        "worker {worker_id} taking jobs for vantage point {}",
        args.vantage_point
    );
    let options = vantage_worker::nats::WorkerOptions {
        vantage_point: args.vantage_point.clone(),
        ack_wait: std::time::Duration::from_secs(args.ack_wait_seconds.max(1)),
        max_deliver: args.max_deliver.max(2),
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    // A NATS node restarting, or the cluster away for a while, ends a run with an error: take jobs
    // again once it is back (the client reconnects by itself) instead of exiting. A scan in hand
    // when the stop signal arrives is finished first.
    let mut backoff = std::time::Duration::from_millis(200);
    loop {
        let started = std::time::Instant::now();
        let run = vantage_worker::nats::run_worker(
            client.clone(),
            topology.clone(),
            scanner.clone(),
            worker_id.clone(),
            options.clone(),
            crate::application::until_stopped(stop.clone()),
        )
        .await;
        match run {
            Ok(()) => return Ok(ExitCode::SUCCESS),
            Err(error) if *stop.borrow() => return Err(CliError(error.to_string())),
            Err(error) => {
                tracing::warn!(%error, "taking jobs stopped on an error; starting again");
                if started.elapsed() > std::time::Duration::from_secs(60) {
                    backoff = std::time::Duration::from_millis(200);
                }
                let mut stop = stop.clone();
                let _ = tokio::time::timeout(backoff, stop.wait_for(|s| *s)).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining requests");
}

async fn create_key(args: KeysCreateArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let mut scopes: Vec<Scope> = args
        .scopes
        .iter()
        .map(|raw| raw.parse::<Scope>())
        .collect::<Result<_, _>>()?;
    if args.admin {
        scopes.push(Scope::Admin);
    }
    if scopes.is_empty() {
        return Err(CliError(
            "give the key --admin or at least one --scope".into(),
        ));
    }
    let scopes = Scopes::new(scopes)?;
    let tenant = tenant(args.tenant.as_deref(), file)?;
    let opened = open_store(&args.store, file).await?;
    let context = CommandContext {
        actor: "cli".into(),
        ..CommandContext::system(tenant.clone())
    };
    // Issuing a key scans nothing; the guard is only required to build the services.
    let no_scans = ScanningArgs {
        allow_cidr: vec![],
        resolver: None,
        extra_ca: vec![],
        dnssec_trust_anchor: None,
    };
    let projects = args
        .projects
        .iter()
        .map(|raw| ProjectId::parse(raw).map_err(|e| CliError(format!("--project {raw:?}: {e}"))))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let keyring = keyring(&args.keys, file, &opened)?;
    let services = services(&opened, guard(&no_scans, file)?)
        .await?
        .with_keyring(keyring);
    let issued = if projects.is_empty() {
        services.issue_api_key(&context, &args.name, scopes).await
    } else {
        services
            .issue_project_api_key(&context, &args.name, scopes, projects)
            .await
    }
    .map_err(|e| CliError(format!("cannot issue the key: {e}")))??;
    let scope_list: Vec<&str> = issued.scopes.iter().map(Scope::as_str).collect();
    eprintln!(
        "Issued key {} for tenant {tenant} with scopes {} (the key is shown once):",
        issued.token.key_id,
        scope_list.join(", ")
    );
    println!("{}", issued.token.expose());
    Ok(ExitCode::SUCCESS)
}
