//! Test support shared by every module of the one test binary: real stores on a temporary SQLite file
//! or a fresh PostgreSQL schema, event builders, and the real application served on a loopback port.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    reason = "test support makes its own ids and times, and fails loudly"
)]

pub mod browser;
pub mod contract;
pub mod dns;
pub mod history;
pub mod lab;
pub mod netns;
pub mod process;
pub mod smtp;
pub mod sse;
pub mod tarpit;
pub mod tls;

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;
use vantage_store::{EventMetadata, EventStore, NewEvent};
use vantage_store_postgres::{PgEventStore, PgStoreOptions};
use vantage_store_sqlite::SqliteEventStore;

/// The PostgreSQL server the tests use (`DATABASE_URL`, default: the machine's own on loopback).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A SQLite store in a temporary directory that lives as long as this value.
#[derive(Debug)]
pub struct SqliteTestStore {
    pub store: SqliteEventStore,
    pub dir: tempfile::TempDir,
}

impl SqliteTestStore {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteEventStore::open(&dir.path().join("vantage.db"))
            .await
            .expect("open SQLite store");
        Self { store, dir }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("vantage.db")
    }
}

/// A PostgreSQL store in a schema of its own, dropped by [`PgTestStore::drop_schema`].
#[derive(Debug)]
pub struct PgTestStore {
    pub store: PgEventStore,
    pub schema: String,
}

impl PgTestStore {
    pub async fn new() -> Self {
        let schema = format!("vt_{}", Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&database_url())
            .await
            .expect("PostgreSQL must be reachable at DATABASE_URL for the store tests");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .expect("create test schema");
        admin.close().await;
        let mut options = PgStoreOptions::new(database_url());
        options.schema = Some(schema.clone());
        let store = PgEventStore::connect(options)
            .await
            .expect("connect PostgreSQL store");
        Self { store, schema }
    }

    /// Drops the schema (call at the end of a test; a failed test leaves it for inspection).
    pub async fn drop_schema(self) {
        let schema = self.schema.clone();
        self.store.pool().close().await;
        drop(self.store);
        let admin = sqlx::PgPool::connect(&database_url())
            .await
            .expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await
            .expect("drop test schema");
        admin.close().await;
    }
}

pub fn metadata() -> EventMetadata {
    EventMetadata {
        tenant: "default".into(),
        actor: "test".into(),
        request_id: Some("req-1".into()),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
    }
}

/// `n` events of type `TestEvent`, numbered from `start` in their payload.
pub fn events(start: usize, n: usize) -> Vec<NewEvent> {
    let meta = metadata();
    (start..start + n)
        .map(|i| NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "TestEvent".into(),
            schema_version: 1,
            occurred_at: Utc::now(),
            payload: vantage_store::JsonPayload::from_value(
                &json!({ "n": i, "text": format!("event number {i}"), "nested": { "b": 1, "a": [1, 2.5, null] } }),
            )
            .unwrap(),
            metadata: meta.clone(),
        })
        .collect()
}

pub fn shared(store: impl EventStore) -> Arc<dyn EventStore> {
    Arc::new(store)
}

/// Everything an app under test stores into: the log, the idempotency table and the read models (and,
/// on PostgreSQL, the store itself, so tests can make the sequencer order what was appended now).
#[derive(Clone)]
pub struct AppStores {
    pub events: Arc<dyn EventStore>,
    pub idempotency: Arc<dyn vantage_store::SideStore>,
    pub read: vantage_projections::ReadDb,
    pub pg: Option<PgEventStore>,
}

impl std::fmt::Debug for AppStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppStores").finish_non_exhaustive()
    }
}

impl SqliteTestStore {
    /// This store with read models in a SQLite file beside it.
    pub async fn app_stores(&self) -> AppStores {
        let read = vantage_projections::ReadDb::open_sqlite(&self.dir.path().join("readmodels.db"))
            .await
            .unwrap();
        vantage_projections::migrate(&read).await.unwrap();
        AppStores {
            events: Arc::new(self.store.clone()),
            idempotency: Arc::new(self.store.clone()),
            read,
            pg: None,
        }
    }
}

impl PgTestStore {
    /// This store with read models in its schema.
    pub async fn app_stores(&self) -> AppStores {
        let read =
            vantage_projections::ReadDb::connect_postgres(&database_url(), Some(&self.schema), 4)
                .await
                .unwrap();
        vantage_projections::migrate(&read).await.unwrap();
        AppStores {
            events: Arc::new(self.store.clone()),
            idempotency: Arc::new(self.store.clone()),
            read,
            pg: Some(self.store.clone()),
        }
    }
}

/// How a test app's API differs from the default (rate limits, connection limit).
type Tuning = vantage::application::ApiSettings;

/// Rate limits too high to matter.
fn unthrottled() -> Tuning {
    let many = std::num::NonZeroU32::new(u32::MAX).unwrap();
    limited(vantage_api::RateLimitConfig {
        requests_per_minute: many,
        scans_per_minute: many,
    })
}

fn limited(limits: vantage_api::RateLimitConfig) -> Tuning {
    Tuning {
        rate_limits: Some(limits),
        ..Tuning::default()
    }
}

/// The real application served on a loopback port, with its bootstrap admin key.
pub struct TestApp {
    pub base: String,
    /// Answers the names the tests scan (`example.com`, `example.org` → public addresses,
    /// `intranet-app.example` → 10.20.30.40; nothing is ever sent to these addresses), unless the
    /// app scans a [`lab::Lab`], whose DNS answers instead.
    pub dns: Option<dns::TestDns>,
    pub admin_key: String,
    pub services: vantage_app::Services,
    pub stores: AppStores,
    pub client: reqwest::Client,
    /// The application's clock: the system's, moved on by [`TestClock::advance`].
    pub clock: Arc<TestClock>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The application, running until `shutdown`.
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Turns true when the application stops.
    stopped: tokio::sync::watch::Receiver<bool>,
    /// Parts a test started beside the application (webhook deliveries, the scheduler).
    extra: Vec<tokio::task::JoinHandle<()>>,
    /// The NATS streams of an app whose live events go over NATS, deleted when it stops.
    nats: Option<(async_nats::Client, vantage_worker::nats::NatsTopology)>,
}

/// The system clock moved on by what a test asks (retention periods, grace periods), or stepped back
/// as a misbehaving wall clock would be (the application's clock does not follow it back).
#[derive(Debug, Default)]
pub struct TestClock {
    ahead_seconds: std::sync::atomic::AtomicI64,
}

impl TestClock {
    /// Moves the clock `by` into the future.
    pub fn advance(&self, by: chrono::Duration) {
        self.ahead_seconds
            .fetch_add(by.num_seconds(), std::sync::atomic::Ordering::SeqCst);
    }

    /// Steps the wall clock `by` into the past.
    pub fn step_back(&self, by: chrono::Duration) {
        self.ahead_seconds
            .fetch_sub(by.num_seconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl vantage_app::Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
            + chrono::Duration::seconds(
                self.ahead_seconds.load(std::sync::atomic::Ordering::SeqCst),
            )
    }
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp").field("base", &self.base).finish()
    }
}

impl TestApp {
    /// A key of `tenant` named `name` with `scopes`, issued through the application: its token.
    pub async fn issue_key(
        &self,
        tenant: &str,
        name: &str,
        scopes: &[vantage_domain::scope::Scope],
    ) -> String {
        let tenant = vantage_domain::tenant::TenantId::parse(tenant).expect("a valid tenant");
        self.services
            .issue_api_key(
                &vantage_app::CommandContext::system(tenant),
                name,
                vantage_domain::scope::Scopes::new(scopes.iter().copied()).expect("valid scopes"),
            )
            .await
            .expect("the store answers")
            .expect("the key is issued")
            .token
            .expose()
    }

    /// Serves the real router over a real socket on top of `stores`, with the projectors running live.
    pub async fn spawn(stores: AppStores) -> Self {
        Self::spawn_with(stores, "", false).await
    }

    /// Loopback is allow-listed (for webhook receivers and scan targets on this machine), and no scan
    /// workers run.
    pub async fn spawn_loopback(stores: AppStores) -> Self {
        Self::spawn_with(stores, "127.0.0.0/8", false).await
    }

    /// Starts the webhook delivery engine (with `policy`) and the scheduler (every `every`), as
    /// `vantage serve` does, until the app stops.
    pub fn start_outbound(
        &mut self,
        policy: vantage_outbound::webhooks::RetryPolicy,
        every: std::time::Duration,
    ) {
        self.extra.extend(vantage_outbound::spawn(
            self.services.clone(),
            self.stores.read.clone(),
            vantage_outbound::OutboundSettings {
                retry: policy,
                roots: vantage_probes::tls::TlsRoots::web_pki(),
                scheduler_every: every,
            },
            self.stopped.clone(),
        ));
    }

    /// A lab: loopback is allow-listed for scanning and in-process scan workers run.
    pub async fn spawn_lab(stores: AppStores) -> Self {
        Self::spawn_with(stores, "127.0.0.0/8", true).await
    }

    /// [`TestApp::spawn`] with tight rate limits: 60 requests a minute per key (a bucket of 10) and
    /// 6 scan creations a minute (a bucket of 1).
    pub async fn spawn_rate_limited(stores: AppStores) -> Self {
        let limits = vantage_api::RateLimitConfig {
            requests_per_minute: std::num::NonZeroU32::new(60).unwrap(),
            scans_per_minute: std::num::NonZeroU32::new(6).unwrap(),
        };
        Self::spawn_configured(stores, "", false, limited(limits)).await
    }

    /// [`TestApp::spawn`] with a bucket of one request a minute per key (refilled once a minute), so a
    /// test can empty it and see every route refuse.
    pub async fn spawn_one_request_a_minute(stores: AppStores) -> Self {
        let one = std::num::NonZeroU32::new(1).unwrap();
        let limits = vantage_api::RateLimitConfig {
            requests_per_minute: one,
            scans_per_minute: one,
        };
        Self::spawn_configured(stores, "", false, limited(limits)).await
    }

    async fn spawn_with(stores: AppStores, allow: &str, workers: bool) -> Self {
        Self::spawn_configured(stores, allow, workers, Tuning::default()).await
    }

    /// [`TestApp::spawn`] serving at most `connections` connections at once.
    pub async fn spawn_with_connection_limit(stores: AppStores, connections: usize) -> Self {
        let tune = Tuning {
            max_connections: Some(connections),
            ..Tuning::default()
        };
        Self::spawn_configured(stores, "", false, tune).await
    }

    /// An app whose in-process workers scan `lab` (its DNS, its CA, loopback allowed).
    pub async fn spawn_on_lab(stores: AppStores, lab: &lab::Lab) -> Self {
        Self::spawn_scanning(
            stores,
            lab.guard(),
            None,
            Some(lab.tls_roots()),
            Tuning::default(),
            None,
        )
        .await
    }

    /// [`TestApp::spawn`] in distributed mode over the test NATS server (`NATS_URL`), as `vantage
    /// serve --nats-url` runs: the scan bridge, and live events fanned out as replicas do — the relay
    /// (under its lease) publishes the log to a stream of this app's own prefix, and the app's hub is
    /// fed from it.
    pub async fn spawn_over_nats(stores: AppStores) -> Self {
        Self::spawn_tuned_over_nats(stores, Tuning::default()).await
    }

    /// [`TestApp::spawn_over_nats`] with no rate limits to speak of (for load benchmarks).
    pub async fn spawn_unthrottled_over_nats(stores: AppStores) -> Self {
        Self::spawn_tuned_over_nats(stores, unthrottled()).await
    }

    async fn spawn_tuned_over_nats(stores: AppStores, tune: Tuning) -> Self {
        let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        let client = async_nats::connect(url)
            .await
            .expect("NATS JetStream must be reachable at NATS_URL for these tests");
        let prefix = format!("vl{}", &Uuid::new_v4().simple().to_string()[..12]);
        let topology = vantage_worker::nats::NatsTopology::new(&prefix).unwrap();
        let nats = vantage::application::NatsLink { client, topology };
        Self::spawn_configured_with(stores, "", false, tune, Some(nats)).await
    }

    /// The app with no rate limits to speak of (for load benchmarks).
    pub async fn spawn_unthrottled(stores: AppStores) -> Self {
        Self::spawn_configured(stores, "", false, unthrottled()).await
    }

    async fn spawn_configured(stores: AppStores, allow: &str, workers: bool, tune: Tuning) -> Self {
        Self::spawn_configured_with(stores, allow, workers, tune, None).await
    }

    async fn spawn_configured_with(
        stores: AppStores,
        allow: &str,
        workers: bool,
        tune: Tuning,
        nats: Option<vantage::application::NatsLink>,
    ) -> Self {
        use hickory_proto::rr::RData;
        use hickory_proto::rr::rdata::A;
        let dns = dns::TestDns::start(vec![
            ("example.com", RData::A(A([93, 184, 215, 14].into()))),
            ("example.org", RData::A(A([93, 184, 215, 15].into()))),
            ("intranet-app.example", RData::A(A([10, 20, 30, 40].into()))),
            ("hooks.example.net", RData::A(A([127, 0, 0, 1].into()))),
        ])
        .await;
        let guard = vantage_probes::ssrf::SsrfGuard::new(
            vantage_probes::ssrf::SsrfPolicy::new(
                vantage_probes::ssrf::AllowList::parse(allow).unwrap(),
            ),
            vantage_probes::ssrf::ResolverChoice::Named(dns.address),
        )
        .unwrap();
        let roots = workers.then(vantage_probes::tls::TlsRoots::web_pki);
        Self::spawn_scanning(stores, guard, Some(dns), roots, tune, nats).await
    }

    /// The app over `stores`, vetting targets with `guard`; with `roots`, in-process scan workers
    /// run and trust them.
    async fn spawn_scanning(
        stores: AppStores,
        guard: vantage_probes::ssrf::SsrfGuard,
        dns: Option<dns::TestDns>,
        roots: Option<vantage_probes::tls::TlsRoots>,
        tune: Tuning,
        nats: Option<vantage::application::NatsLink>,
    ) -> Self {
        let clock = Arc::new(TestClock::default());
        // As `vantage serve` does: the application's clock never goes back, whatever the wall
        // clock (here the test's) does.
        let services = vantage_app::Services::new(
            stores.events.clone(),
            stores.idempotency.clone(),
            Arc::new(vantage_app::SteadyClock::new(clock.clone())),
            guard,
        );
        let admin_key = services
            .bootstrap_admin_key(&vantage_domain::tenant::TenantId::default_tenant(), None)
            .await
            .unwrap()
            .unwrap()
            .expect("a fresh store issues a bootstrap key")
            .token
            .expose();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cleanup = nats
            .as_ref()
            .map(|nats| (nats.client.clone(), nats.topology.clone()));
        // The start-up path `vantage serve` takes.
        let settings = vantage::application::Settings {
            scan_workers: if roots.is_some() { 4 } else { 0 },
            tls_roots: roots.unwrap_or_else(vantage_probes::tls::TlsRoots::web_pki),
            dnssec: None,
            outbound: None,
            nats,
            read_replica: None,
            api: tune,
        };
        let application = vantage::application::Application::build(
            services.clone(),
            stores.read.clone(),
            settings,
            listener,
        );
        let stopped = application.stopped();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until_stopped(async {
            let _ = stop.await;
        }));
        Self {
            base,
            dns,
            admin_key,
            services,
            stores,
            client: http_client(),
            clock,
            shutdown: Some(shutdown),
            server: Some(server),
            stopped,
            extra: Vec::new(),
            nats: cleanup,
        }
    }

    /// Waits until every projector has applied everything appended so far (on PostgreSQL, after the
    /// sequencer has ordered it), so a query sees the effect of every command that returned.
    pub async fn caught_up(&self) {
        if let Some(pg) = &self.stores.pg {
            settle(pg).await;
        }
        projectors_caught_up(
            self.stores.events.as_ref(),
            &self.stores.read,
            std::time::Duration::from_secs(30),
        )
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as `key` (with a fresh `Idempotency-Key`): the status and the JSON answer (`Null`
    /// when there is none), which is checked against the OpenAPI document.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let method_name = method.to_string();
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(key)
            .header("Idempotency-Key", Uuid::now_v7().to_string());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        contract::check(&method_name, path, status.as_u16(), &content_type, &body).unwrap_or_else(
            |mismatch| panic!("the response breaks the OpenAPI contract: {mismatch}"),
        );
        (status, body)
    }

    /// Read models rebuilt from the log equal the live ones (a scratch rebuild beside them).
    pub async fn assert_replay_matches(&self) {
        let scratch = tempfile::tempdir().unwrap();
        let replayed = vantage_projections::replay::replay(
            self.stores.events.clone(),
            &self.stores.read,
            scratch.path(),
            None,
        )
        .await
        .unwrap();
        assert!(replayed.iter().all(|r| r.matches()), "{replayed:?}");
    }

    /// `GET path` with the admin key; the JSON body of a successful response.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Polls `GET /api/v1/scans/{id}` until the scan is in one of `states` (at most 20 s).
    pub async fn wait_for_scan(&self, id: &str, states: &[&str]) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let scan = self.get_json(&format!("/api/v1/scans/{id}")).await;
            if states.contains(&scan["status"].as_str().unwrap_or_default()) {
                return scan;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "scan stuck in {}",
                scan["status"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The key that signs packages and checkpoints, as `GET /api/v1/compliance/signing-key`
    /// publishes it (no API key needed); checks that its fingerprint is the one published beside it.
    pub async fn published_signing_key(&self) -> vantage_reports::signing::PublicKey {
        let published: serde_json::Value = self
            .client
            .get(self.url("/api/v1/compliance/signing-key"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = vantage_reports::signing::PublicKey::from_pem(
            published["public_key_pem"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(published["sha256"], key.fingerprint());
        key
    }

    /// Starts a quick scan of `target` with `trigger` and waits until it completes (failing the test
    /// if it fails or is cancelled); returns its id.
    pub async fn completed_scan(&self, target: &str, trigger: &str) -> String {
        let created: serde_json::Value = self
            .client
            .post(self.url("/api/v1/scans"))
            .bearer_auth(&self.admin_key)
            .json(&serde_json::json!({ "target": target, "profile": "quick", "trigger": trigger }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        let done = self
            .wait_for_scan(&id, &["completed", "failed", "cancelled"])
            .await;
        assert_eq!(done["status"], "completed", "{done}");
        id
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        for task in std::mem::take(&mut self.extra) {
            task.await.unwrap();
        }
        if let Some((client, topology)) = self.nats.take() {
            let js = async_nats::jetstream::new(client);
            topology.delete_streams(&js).await.unwrap();
        }
    }
}

/// Checks that every `(file name, schema)` generated from the Rust types is the committed file in
/// `dir`; with `VANTAGE_UPDATE_SCHEMAS` set, writes them instead.
pub fn assert_committed_schemas(
    dir: &std::path::Path,
    generated: impl IntoIterator<Item = (String, schemars::Schema)>,
) {
    let update = std::env::var_os("VANTAGE_UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (file, schema) in generated {
        let path = dir.join(file);
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "schemas out of date (run with VANTAGE_UPDATE_SCHEMAS=1): {stale:?}"
    );
}

/// Requests a scan of `spec` and runs it right here with `scanner` (no dispatcher), through the real
/// pipeline; returns its id once the worker is done.
pub async fn scan_directly(
    services: &vantage_app::Services,
    spec: vantage_domain::scan::ScanSpec,
    scanner: &vantage_worker::Scanner,
) -> vantage_domain::ids::ScanId {
    let tenant = vantage_domain::tenant::TenantId::default_tenant();
    let context = vantage_app::CommandContext::system(tenant.clone());
    let scan_id = services
        .start_scan(&context, spec.clone())
        .await
        .unwrap()
        .unwrap();
    let job = vantage_worker::ScanJob {
        scan_id,
        tenant,
        spec,
    };
    let sink = vantage_worker::embedded::PipelineSink::new(services.clone(), "w-direct");
    let (_cancel, cancelled) = tokio::sync::watch::channel(false);
    vantage_worker::run_scan(&job, "w-direct", scanner, &sink, cancelled)
        .await
        .unwrap();
    scan_id
}

/// Makes every event committed to `store` readable now: PostgreSQL orders events in the background,
/// and this runs the sequencer until it has ordered them all.
pub async fn settle(store: &PgEventStore) {
    let committed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while (store.head_position().await.unwrap() as i64) < committed {
        assert!(
            std::time::Instant::now() < deadline,
            "the sequencer did not catch up"
        );
        store.sequence_now().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Waits, at most `within`, until every projector's checkpoint in `read` has reached the head of
/// `store`.
pub async fn projectors_caught_up(
    store: &dyn EventStore,
    read: &vantage_projections::ReadDb,
    within: std::time::Duration,
) {
    let deadline = std::time::Instant::now() + within;
    let head = store.head_position().await.unwrap();
    for name in vantage_projections::PROJECTORS {
        while read.checkpoint(name).await.unwrap() < head {
            assert!(
                std::time::Instant::now() < deadline,
                "projector {name} did not reach position {head} within {within:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// A guard for tests that start no scans: its resolver is a closed loopback port, so no DNS question
/// can ever leave the machine.
pub fn offline_guard() -> vantage_probes::ssrf::SsrfGuard {
    vantage_probes::ssrf::SsrfGuard::new(
        vantage_probes::ssrf::SsrfPolicy::default(),
        vantage_probes::ssrf::ResolverChoice::Named("127.0.0.1:9".parse().unwrap()),
    )
    .unwrap()
}

/// A guard that admits loopback (a lab) and resolves nothing off the machine (its resolver is a
/// closed loopback port).
pub fn lab_guard() -> vantage_probes::ssrf::SsrfGuard {
    vantage_probes::ssrf::SsrfGuard::new(
        vantage_probes::ssrf::SsrfPolicy::new(
            vantage_probes::ssrf::AllowList::parse("127.0.0.0/8").unwrap(),
        ),
        vantage_probes::ssrf::ResolverChoice::Named("127.0.0.1:9".parse().unwrap()),
    )
    .unwrap()
}

/// Services over `store` whose guard admits loopback (a lab) and resolves nothing off the machine.
pub fn lab_services<S>(store: S) -> vantage_app::Services
where
    S: EventStore + vantage_store::SideStore + Clone,
{
    lab_services_with_dns(store, "127.0.0.1:9".parse().unwrap())
}

/// Lab services that resolve names through the test DNS server at `dns`.
pub fn lab_services_with_dns<S>(store: S, dns: std::net::SocketAddr) -> vantage_app::Services
where
    S: EventStore + vantage_store::SideStore + Clone,
{
    let guard = vantage_probes::ssrf::SsrfGuard::new(
        vantage_probes::ssrf::SsrfPolicy::new(
            vantage_probes::ssrf::AllowList::parse("127.0.0.0/8").unwrap(),
        ),
        vantage_probes::ssrf::ResolverChoice::Named(dns),
    )
    .unwrap();
    vantage_app::Services::new(
        Arc::new(store.clone()),
        Arc::new(store),
        Arc::new(vantage_app::SystemClock),
        guard,
    )
}

/// A scan spec for the loopback lab target `http://127.0.0.1:<target_port>/`.
pub fn lab_spec(target_port: u16, ports: Vec<u16>) -> vantage_domain::scan::ScanSpec {
    use vantage_domain::target::{Paths, Ports, Profile, ScanTarget, Trigger, VantagePoint};
    vantage_domain::scan::ScanSpec {
        target: ScanTarget::parse(&format!("http://127.0.0.1:{target_port}/")).unwrap(),
        ports: Ports::new(ports).unwrap(),
        paths: Paths::default(),
        profile: Profile::Quick,
        trigger: Trigger::Manual,
        vantage_point: VantagePoint::default(),
        content_sample: None,
        project: Default::default(),
    }
}

/// Serves `router` on a loopback port for as long as the test runs; returns its address.
pub async fn serve_http(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// An HTTP client for tests. Installs the process-wide rustls provider first (reqwest is built
/// without one, as the binary installs ring at start).
pub fn http_client() -> reqwest::Client {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::new()
}

/// Declares each `async fn name(app: TestApp)` test twice, in `mod sqlite` and `mod postgres`, with
/// the app built by `TestApp::$constructor` on a fresh store of each kind.
#[macro_export]
macro_rules! app_test_per_store {
    ($constructor:ident; $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let t = $crate::SqliteTestStore::new().await;
                let app = $crate::TestApp::$constructor(t.app_stores().await).await;
                super::$name(app).await;
            })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let t = $crate::PgTestStore::new().await;
                let app = $crate::TestApp::$constructor(t.app_stores().await).await;
                super::$name(app).await;
                t.drop_schema().await;
            })+
        }
    };
}

/// An observation on `asset`, as a worker would record it (id from `n`).
pub fn observation(
    n: u128,
    asset: &str,
    data: impl Into<vantage_domain::scan::Observation>,
) -> vantage_domain::scan::ProbeObserved {
    vantage_domain::scan::ProbeObserved {
        observation_id: vantage_domain::ids::ObservationId(Uuid::from_u128(n)),
        asset: asset.to_owned(),
        observation: data.into(),
    }
}

/// The rule ids `ruleset` derives from `observations` of `target` (tenant `acme`), sorted.
pub fn rule_ids(
    ruleset: &str,
    target: &str,
    observations: &[vantage_domain::scan::ProbeObserved],
) -> Vec<String> {
    let facts = vantage_rules::ScanFacts {
        tenant: "acme",
        target,
        observations,
    };
    let mut ids: Vec<String> = vantage_rules::assess(ruleset, &facts)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| f.rule_id)
        .collect();
    ids.sort();
    ids
}

/// Everything an app stored, raw: the SQLite files in `files` byte for byte, or a data-only
/// `pg_dump` of `pg_schema` — to show that something is not stored in the clear anywhere.
pub fn raw_dump(
    files: Option<&std::path::Path>,
    pg_schema: Option<&str>,
) -> Vec<(String, Vec<u8>)> {
    if let Some(dir) = files {
        return std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".db"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
    }
    let schema = pg_schema.expect("a SQLite directory or a PostgreSQL schema");
    let pg_dump = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .map(|v| v.unwrap().path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .max()
        .expect("pg_dump from PostgreSQL's packages");
    let out = process::succeeded(
        std::process::Command::new(pg_dump).args([
            "--schema",
            schema,
            "--data-only",
            &database_url(),
        ]),
        "pg_dump",
    );
    assert!(out.stdout.len() > 1000, "the dump holds the data");
    vec![(format!("pg_dump of {schema}"), out.stdout)]
}
