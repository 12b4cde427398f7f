//! The one start-up path of the server: [`Application::build`] wires what `vantage serve` runs — the
//! projectors, the regression reopener, the content-key sweep, the in-process scan workers, webhook
//! deliveries and the scheduler, live events (from the log, or over NATS with the scan bridge) and
//! the HTTP API on a listener — and [`Application::run_until_stopped`] serves until a shutdown future
//! resolves, then stops every part and waits for it. `vantage serve`, the test harness and the
//! benchmarks all start the server this way; they differ only in the [`Settings`] and services they
//! pass.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vantage_api::{AppState, RateLimitConfig, ScanDispatch};
use vantage_app::Services;
use vantage_outbound::OutboundSettings;
use vantage_probes::dnssec::DnssecValidator;
use vantage_probes::tls::TlsRoots;
use vantage_projections::{ReadDb, StatusBoard};
use vantage_store::StoreError;
use vantage_worker::ScanJob;
use vantage_worker::embedded::EmbeddedWorkers;
use vantage_worker::feed::{Resume, ResumeSource};
use vantage_worker::nats::{NatsTopology, NatsWorkerPools};

/// How the server runs, besides its stores and services.
#[derive(Debug, Clone)]
pub struct Settings {
    /// In-process scan workers (0: none — scans are run by NATS workers or not at all).
    pub scan_workers: usize,
    /// The trust anchors the in-process workers judge certificates by.
    pub tls_roots: TlsRoots,
    /// What the in-process workers validate DNSSEC and DANE with; `None` observes neither.
    pub dnssec: Option<DnssecValidator>,
    /// Webhook deliveries and the scheduler; `None` runs neither.
    pub outbound: Option<OutboundSettings>,
    /// Distributed mode: scan jobs and results, and live events, over NATS JetStream. Without it
    /// live events are fed from the log in-process.
    pub nats: Option<NatsLink>,
    /// A streaming replica of the read-model database that query routes read (PostgreSQL); the
    /// primary stays the one projectors write and commands decide on.
    pub read_replica: Option<ReadDb>,
    pub api: ApiSettings,
}

/// A NATS connection and the names under which Vantage uses it.
#[derive(Debug, Clone)]
pub struct NatsLink {
    pub client: async_nats::Client,
    pub topology: NatsTopology,
}

/// The HTTP API's limits and transport; `None` keeps the API's default.
#[derive(Debug, Clone, Default)]
pub struct ApiSettings {
    pub rate_limits: Option<RateLimitConfig>,
    /// The longest a live stream stays open.
    pub live_max: Option<Duration>,
    /// Connections served at once.
    pub max_connections: Option<usize>,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The server, wired and running its background parts, ready to serve its listener.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: watch::Sender<bool>,
    background: Vec<(&'static str, JoinHandle<()>)>,
    workers: Option<JoinHandle<Result<(), StoreError>>>,
}

impl Application {
    /// Starts every background part over `services` and `read_db`; the API is served on `listener`
    /// once [`Self::run_until_stopped`] runs.
    pub fn build(
        services: Services,
        read_db: ReadDb,
        settings: Settings,
        listener: TcpListener,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let board = StatusBoard::default();
        let mut background: Vec<(&'static str, JoinHandle<()>)> = Vec::new();
        for projector in vantage_projections::start(
            services.store().clone(),
            read_db.clone(),
            board.clone(),
            stopped.clone(),
        ) {
            background.push(("a projector", projector));
        }
        background.push((
            "the regression reopener",
            tokio::spawn(vantage_app::reopen_regressions(
                services.clone(),
                {
                    let read_db = read_db.clone();
                    move |limit| {
                        let read_db = read_db.clone();
                        async move { read_db.reopen_due(limit).await }
                    }
                },
                stopped.clone(),
            )),
        ));
        // Content samples whose retention ended: their keys are destroyed (every replica may sweep).
        background.push((
            "the content key sweep",
            tokio::spawn(vantage_app::shred_expired_content(
                services.clone(),
                {
                    let read_db = read_db.clone();
                    move |now, limit| {
                        let read_db = read_db.clone();
                        async move { read_db.content_due(now, limit).await }
                    }
                },
                stopped.clone(),
            )),
        ));
        let workers = (settings.scan_workers > 0).then(|| {
            let mut pool = EmbeddedWorkers::new(services.clone(), settings.scan_workers)
                .with_tls_roots(settings.tls_roots.clone())
                .resuming_from(scan_resume(&read_db));
            if let Some(validator) = settings.dnssec.clone() {
                pool = pool.with_dnssec(validator);
            }
            tokio::spawn(pool.run(until_stopped(stopped.clone())))
        });
        // Webhook deliveries and scheduled scans: one process among the replicas does each.
        if let Some(outbound) = settings.outbound {
            for task in vantage_outbound::spawn(
                services.clone(),
                read_db.clone(),
                outbound,
                stopped.clone(),
            ) {
                background.push(("webhook deliveries or the scheduler", task));
            }
        }
        // Live events: without NATS this process follows the log for its SSE clients; with NATS one
        // replica relays the log to it (under a lease) and every replica's clients are fed from it.
        let dispatch = match &settings.nats {
            Some(nats) => ScanDispatch::Nats(Arc::new(NatsWorkerPools::new(
                nats.client.clone(),
                nats.topology.clone(),
            ))),
            None => ScanDispatch::InProcess,
        };
        match settings.nats {
            Some(nats) => spawn_nats(&services, &read_db, nats, &stopped, &mut background),
            None => background.push((
                "the live feeder",
                tokio::spawn(keep_running("the live feeder", stopped.clone(), {
                    let (services, stopped) = (services.clone(), stopped.clone());
                    move || vantage_app::run_log_feeder(services.clone(), stopped.clone())
                })),
            )),
        }
        let mut state = AppState::new(services, board, read_db).with_dispatch(dispatch);
        if let Some(replica) = settings.read_replica {
            state = state.with_read_replica(replica);
        }
        let api = settings.api;
        if let Some(limits) = api.rate_limits {
            state = state.with_rate_limits(limits);
        }
        if let Some(max) = api.live_max {
            state = state.with_live_max(max);
        }
        if let Some(max) = api.max_connections {
            state = state.with_max_connections(max);
        }
        Self {
            listener,
            state,
            tls: api.tls,
            stop,
            background,
            workers,
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Turns true when the application stops, for parts a caller runs beside it.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Serves the API until `shutdown` resolves; then every part stops (the server after draining
    /// its requests) and is waited for. Parts that panicked or failed are logged.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            state,
            tls,
            stop,
            background,
            workers,
        } = self;
        let stopped = stop.subscribe();
        let stop = Arc::new(stop);
        let signal = {
            let stop = stop.clone();
            tokio::spawn(async move {
                shutdown.await;
                let _ = stop.send(true);
            })
        };
        let served = vantage_api::serve(listener, state, tls, until_stopped(stopped)).await;
        // The server can also end on its own (an error): everything else stops with it.
        let _ = stop.send(true);
        signal.abort();
        if let Some(workers) = workers {
            match workers.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "scan workers stopped on an error"),
                Err(error) => tracing::error!(%error, "scan workers panicked"),
            }
        }
        for (name, task) in background {
            if let Err(error) = task.await {
                tracing::error!(task = name, %error, "a background task panicked");
            }
        }
        served
    }
}

/// The scan bridge (jobs out, results in) and the live relay, each run by one replica at a time
/// under a lease, and the live feed; each started again when it fails.
fn spawn_nats(
    services: &Services,
    read_db: &ReadDb,
    nats: NatsLink,
    stopped: &watch::Receiver<bool>,
    background: &mut Vec<(&'static str, JoinHandle<()>)>,
) {
    let NatsLink { client, topology } = nats;
    background.push((
        "the NATS bridge",
        tokio::spawn(vantage_projections::lease::run_exclusively(
            read_db.clone(),
            "scan-bridge",
            stopped.clone(),
            {
                let (services, client, topology) =
                    (services.clone(), client.clone(), topology.clone());
                let resume = scan_resume(read_db);
                move |stop| {
                    vantage_worker::nats::run_bridge(
                        services.clone(),
                        client.clone(),
                        topology.clone(),
                        resume.clone(),
                        until_stopped(stop),
                    )
                }
            },
        )),
    ));
    background.push((
        "the live relay",
        tokio::spawn(vantage_projections::lease::run_exclusively(
            read_db.clone(),
            "live-relay",
            stopped.clone(),
            {
                let (services, client, topology) =
                    (services.clone(), client.clone(), topology.clone());
                move |stop| {
                    vantage_worker::live::run_relay(
                        services.clone(),
                        client.clone(),
                        topology.clone(),
                        stop,
                    )
                }
            },
        )),
    ));
    background.push((
        "the live feed",
        tokio::spawn(keep_running("the live feed", stopped.clone(), {
            let (services, stopped) = (services.clone(), stopped.clone());
            move || {
                vantage_worker::live::run_feed(
                    services.clone(),
                    client.clone(),
                    topology.clone(),
                    stopped.clone(),
                )
            }
        })),
    ));
}

/// Resolves once `stopped` turns true.
pub(crate) async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Where scan dispatchers pick up at start: the scans projection's checkpoint and the scans that had
/// not ended by it.
fn scan_resume(read_db: &ReadDb) -> ResumeSource {
    let read_db = read_db.clone();
    Arc::new(move || {
        let read_db = read_db.clone();
        Box::pin(async move {
            let (position, scans) = read_db
                .unfinished_scans()
                .await
                .map_err(StoreError::backend)?;
            let unfinished = scans
                .into_iter()
                .map(|scan| {
                    let job = ScanJob {
                        scan_id: scan.scan_id,
                        tenant: scan.tenant,
                        spec: scan.spec,
                    };
                    (scan.requested_position, job)
                })
                .collect();
            Ok(Resume {
                position,
                unfinished,
            })
        })
    })
}

/// Runs `task` until `stop` fires, starting it again (after a pause that grows to 5 s) whenever it
/// fails — NATS or the database away for a while must not end a server.
async fn keep_running<F, Fut, E>(name: &'static str, stop: watch::Receiver<bool>, mut task: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(200);
    while !*stop.borrow() {
        let mut stopped = stop.clone();
        let outcome = tokio::select! {
            outcome = task() => outcome,
            // A task busy with an unreachable server is dropped: shutdown does not wait on it.
            _ = stopped.wait_for(|s| *s) => return,
        };
        match outcome {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(task = name, %error, "stopped on an error; starting it again");
                let mut stop = stop.clone();
                let _ = tokio::time::timeout(backoff, stop.changed()).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
