//! Distributed mode: scan jobs and worker events over NATS JetStream.
//!
//! - **Jobs**: stream `<prefix>_jobs` (work-queue retention) on `<prefix>.jobs.<vantage point>`. The
//!   core's bridge publishes each requested scan with the scan id as message id, so a job is enqueued
//!   once. Workers pull from the durable consumer `workers-<vantage point>` with explicit acks and an
//!   ack wait they extend with progress acks while scanning. A worker counts a job's deliveries: the
//!   last one it allows (`max_deliver`) is not run but dead-lettered (kept on
//!   `<prefix>.dead.<scan id>`) and the scan failed with a reason.
//! - **Fail-over**: every publish waits for the stream's acknowledgement and tries again through a
//!   NATS fail-over (message ids make that safe), so a node restarting, or a stream's leader moving,
//!   delays jobs and results without failing scans or losing them.
//! - **Results**: stream `<prefix>_results` on `<prefix>.results.<scan id>`: every command a worker
//!   issues, with a deterministic message id (a batch of observations is named by its observation
//!   ids). A probe's observations travel together, in messages of at most 256 KiB. The bridge applies
//!   them through the command pipeline, against the scan's state it keeps between messages, where
//!   redelivered observations change nothing.
//! - **Cancellation**: plain NATS `<prefix>.cancel.<scan id>`, heard by every worker.
//!
//! A worker needs only NATS: no database credentials ever reach it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull, stream};
use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;
use vantage_app::{CommandContext, PlainSample, Services, WorkerPools};
use vantage_domain::ids::ScanId;
use vantage_domain::scan::{ProbeFailed, ProbeObserved, ScanCommand};
use vantage_domain::tenant::TenantId;

use crate::feed::{Dispatch, ResumeSource, ScanFeed};
use crate::run::{ScanEventSink, ScanJob, Scanner, Submitted, WorkerError, run_scan};
use crate::scan_states::ScanStates;

/// A NATS failure.
#[derive(Debug, thiserror::Error)]
#[error("NATS: {0}")]
pub struct NatsError(pub String);

pub(crate) fn nats(error: impl std::fmt::Display) -> NatsError {
    NatsError(error.to_string())
}

/// Subject and stream names under one prefix (so several installations or test runs share a server),
/// and how many copies of each stream a cluster keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsTopology {
    prefix: String,
    replicas: usize,
}

/// Most copies of a stream JetStream keeps (its own limit).
pub const MAX_STREAM_REPLICAS: usize = 5;

impl NatsTopology {
    /// `prefix`: 1–32 characters of `a-z`, `0-9`, `_`.
    pub fn new(prefix: &str) -> Result<Self, String> {
        let ok = (1..=32).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self {
                prefix: prefix.to_owned(),
                replicas: 1,
            })
        } else {
            Err(format!(
                "NATS prefix {prefix:?} must be 1-32 characters of a-z, 0-9 and _"
            ))
        }
    }

    /// Streams this topology creates keep `replicas` copies (1 on a single server; 3 on a
    /// three-node cluster, so losing a node loses no job or result). Only a stream's creation uses
    /// it: an existing stream keeps the replicas it was made with.
    pub fn with_replicas(self, replicas: usize) -> Result<Self, String> {
        if (1..=MAX_STREAM_REPLICAS).contains(&replicas) {
            Ok(Self { replicas, ..self })
        } else {
            Err(format!(
                "NATS stream replicas must be 1 to {MAX_STREAM_REPLICAS}, not {replicas}"
            ))
        }
    }

    pub fn jobs_stream(&self) -> String {
        format!("{}_jobs", self.prefix)
    }

    pub fn results_stream(&self) -> String {
        format!("{}_results", self.prefix)
    }

    pub fn live_stream(&self) -> String {
        format!("{}_live", self.prefix)
    }

    /// The subjects of live events start with this.
    pub(crate) fn live_prefix(&self) -> String {
        format!("{}.live", self.prefix)
    }

    /// `<prefix>.live.<tenant>.<stream>`, each name as one subject token (see [`subject_token`]).
    pub(crate) fn live_subject(&self, tenant: &str, stream: &str) -> String {
        format!(
            "{}.{}.{}",
            self.live_prefix(),
            subject_token(tenant),
            subject_token(stream)
        )
    }

    fn jobs_subject(&self, vantage_point: &str) -> String {
        format!("{}.jobs.{vantage_point}", self.prefix)
    }

    fn results_subject(&self, scan: ScanId) -> String {
        format!("{}.results.{scan}", self.prefix)
    }

    fn dead_subject(&self, scan: ScanId) -> String {
        format!("{}.dead.{scan}", self.prefix)
    }

    fn cancel_subject(&self, scan: ScanId) -> String {
        format!("{}.cancel.{scan}", self.prefix)
    }

    /// Creates the streams if they do not exist.
    pub async fn ensure_streams(&self, js: &jetstream::Context) -> Result<(), NatsError> {
        js.get_or_create_stream(stream::Config {
            name: self.jobs_stream(),
            subjects: vec![format!("{}.jobs.>", self.prefix)],
            retention: stream::RetentionPolicy::WorkQueue,
            duplicate_window: Duration::from_secs(24 * 3600),
            num_replicas: self.replicas,
            ..Default::default()
        })
        .await
        .map_err(nats)?;
        js.get_or_create_stream(stream::Config {
            name: self.results_stream(),
            subjects: vec![
                format!("{}.results.>", self.prefix),
                format!("{}.dead.>", self.prefix),
            ],
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(2 * 3600),
            num_replicas: self.replicas,
            ..Default::default()
        })
        .await
        .map_err(nats)?;
        // Live fan-out only: a replica that was away catches up from the log, not from here.
        js.get_or_create_stream(stream::Config {
            name: self.live_stream(),
            subjects: vec![format!("{}.>", self.live_prefix())],
            max_age: Duration::from_secs(3600),
            max_bytes: 1 << 30,
            duplicate_window: Duration::from_secs(10 * 60),
            num_replicas: self.replicas,
            ..Default::default()
        })
        .await
        .map_err(nats)?;
        Ok(())
    }
}

/// `name` as one NATS subject token: ASCII letters, digits and `-` as they are, every other byte as
/// `_` and two hex digits (so `.`, `*`, `>` and `_` itself cannot change the subject's shape), and
/// the empty name as `_`.
pub(crate) fn subject_token(name: &str) -> String {
    use std::fmt::Write;
    if name.is_empty() {
        return "_".into();
    }
    name.bytes()
        .fold(String::with_capacity(name.len()), |mut out, b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "_{b:02x}");
            }
            out
        })
}

impl NatsTopology {
    /// Deletes the streams (and what they hold) of this prefix, as a test does after itself.
    pub async fn delete_streams(&self, js: &jetstream::Context) -> Result<(), NatsError> {
        for name in [
            self.jobs_stream(),
            self.results_stream(),
            self.live_stream(),
        ] {
            match js.delete_stream(&name).await {
                Ok(_) => {}
                Err(error)
                    if matches!(error.kind(),
                        jetstream::context::DeleteStreamErrorKind::JetStream(e)
                            if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) => {}
                Err(error) => return Err(nats(error)),
            }
        }
        Ok(())
    }
}

/// A worker's command on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireCommand {
    Begin,
    /// One observation: what workers sent before they recorded a probe's results together; read still,
    /// so a worker of the previous release can finish its scans during an upgrade.
    Observe {
        observation: Box<ProbeObserved>,
    },
    /// Observations of one probe, recorded together.
    Observations {
        observations: Vec<ProbeObserved>,
    },
    ProbeFailed {
        failure: ProbeFailed,
    },
    Finalize,
    Complete {
        ruleset_version: String,
    },
    Fail {
        reason: String,
    },
    /// A content sample, in the clear on its way to be sealed by the core (ARCHITECTURE.md, "Content
    /// samples: crypto-shredding": NATS connections carry it, so they should use TLS).
    Sample {
        sample: PlainSample,
    },
}

/// What a worker sends about one scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WorkerMessage {
    scan_id: ScanId,
    tenant: TenantId,
    worker_id: String,
    command: WireCommand,
}

impl WireCommand {
    fn from_command(command: ScanCommand) -> Option<Self> {
        Some(match command {
            ScanCommand::Begin { .. } => Self::Begin,
            ScanCommand::Observe(observations) => Self::Observations { observations },
            ScanCommand::ReportProbeFailure(failure) => Self::ProbeFailed { failure },
            ScanCommand::Finalize => Self::Finalize,
            ScanCommand::Complete { ruleset_version } => Self::Complete { ruleset_version },
            ScanCommand::Fail { reason } => Self::Fail { reason },
            ScanCommand::Start { .. }
            | ScanCommand::Cancel { .. }
            | ScanCommand::Delete
            | ScanCommand::KeepContentSample(_)
            | ScanCommand::RecordContentKeyDestroyed { .. } => {
                return None;
            }
        })
    }

    /// The scan command this message carries; `Err` with the sample for a content sample, which the
    /// core seals before it becomes a command.
    fn into_command(self, worker_id: &str) -> Result<ScanCommand, PlainSample> {
        Ok(match self {
            Self::Begin => ScanCommand::Begin {
                worker_id: worker_id.to_owned(),
            },
            Self::Observe { observation } => ScanCommand::Observe(vec![*observation]),
            Self::Observations { observations } => ScanCommand::Observe(observations),
            Self::ProbeFailed { failure } => ScanCommand::ReportProbeFailure(failure),
            Self::Finalize => ScanCommand::Finalize,
            Self::Complete { ruleset_version } => ScanCommand::Complete { ruleset_version },
            Self::Fail { reason } => ScanCommand::Fail { reason },
            Self::Sample { sample } => return Err(sample),
        })
    }

    /// A message id that is the same for the same fact, so JetStream drops repeats.
    fn message_id(&self, scan: ScanId, worker_id: &str) -> String {
        match self {
            Self::Observe { observation } => observation.observation_id.to_string(),
            Self::Observations { observations } => {
                let ids: Vec<u8> = observations
                    .iter()
                    .flat_map(|o| o.observation_id.0.into_bytes())
                    .collect();
                format!(
                    "{scan}:observations:{}",
                    Uuid::new_v5(&scan.as_uuid(), &ids)
                )
            }
            Self::ProbeFailed { failure } => failure.observation_id.to_string(),
            Self::Begin => format!("{scan}:begin:{worker_id}"),
            Self::Finalize => format!("{scan}:finalize:{worker_id}"),
            Self::Complete { .. } => format!("{scan}:complete:{worker_id}"),
            Self::Fail { .. } => format!("{scan}:fail:{worker_id}"),
            Self::Sample { sample } => format!("{scan}:sample:{}", sample.url),
        }
    }
}

/// How long a publish keeps trying through a NATS fail-over (a stream's leader moving to another
/// node, a node or the whole cluster restarting) before it reports the failure.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(30);
/// Longest wait for one publish's acknowledgement.
const PUBLISH_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes `payload` with message id `id` and waits for the stream's acknowledgement, trying again
/// (for up to [`PUBLISH_PATIENCE`]) when it fails. Trying again is safe: the stream drops a message
/// whose id it already holds, and acknowledges it as a duplicate.
pub(crate) async fn publish(
    js: &jetstream::Context,
    subject: String,
    id: String,
    payload: Vec<u8>,
) -> Result<(), NatsError> {
    let payload = bytes::Bytes::from(payload);
    let deadline = tokio::time::Instant::now() + PUBLISH_PATIENCE;
    let mut pause = Duration::from_millis(100);
    loop {
        let attempt = async {
            js.send_publish(
                subject.clone(),
                jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(id.clone()),
            )
            .await
            .map_err(nats)?
            .await
            .map_err(nats)
        };
        // Each attempt is bounded too: a publish sent through a node that died must not wait on
        // an answer that cannot come.
        let attempt = tokio::time::timeout(PUBLISH_ATTEMPT_TIMEOUT, attempt)
            .await
            .unwrap_or_else(|_| Err(NatsError("no acknowledgement in time".into())));
        match attempt {
            Ok(_) => return Ok(()),
            Err(error) if tokio::time::Instant::now() + pause < deadline => {
                tracing::debug!(%subject, %error, "publish failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(error) => return Err(error),
        }
    }
}

/// Worker side: commands become messages on the results stream.
struct NatsSink {
    js: jetstream::Context,
    topology: NatsTopology,
    worker_id: String,
}

impl NatsSink {
    async fn send(&self, job: &ScanJob, command: WireCommand) -> Result<(), WorkerError> {
        let id = command.message_id(job.scan_id, &self.worker_id);
        let message = WorkerMessage {
            scan_id: job.scan_id,
            tenant: job.tenant.clone(),
            worker_id: self.worker_id.clone(),
            command,
        };
        let payload = serde_json::to_vec(&message).map_err(|e| WorkerError::Sink(e.to_string()))?;
        publish(
            &self.js,
            self.topology.results_subject(job.scan_id),
            id,
            payload,
        )
        .await
        .map_err(|e| WorkerError::Sink(e.to_string()))
    }
}

#[async_trait]
impl ScanEventSink for NatsSink {
    async fn submit(&self, job: &ScanJob, command: ScanCommand) -> Result<Submitted, WorkerError> {
        let Some(command) = WireCommand::from_command(command) else {
            return Err(WorkerError::Sink("not a worker command".into()));
        };
        match command {
            WireCommand::Observations { observations } => {
                for observations in within_message_size(observations) {
                    self.send(job, WireCommand::Observations { observations })
                        .await?;
                }
            }
            command => self.send(job, command).await?,
        }
        // The worker cannot see the log; a scan that ended meanwhile is told by a cancel message.
        Ok(Submitted::Accepted)
    }

    async fn keep_sample(&self, job: &ScanJob, sample: PlainSample) -> Result<(), WorkerError> {
        self.send(job, WireCommand::Sample { sample }).await
    }
}

/// Encoded observations one results message carries at most, well under NATS's default 1 MiB
/// message limit.
const MAX_OBSERVATIONS_MESSAGE_BYTES: usize = 256 * 1024;

/// `observations` in runs, in order, whose encodings together stay within
/// [`MAX_OBSERVATIONS_MESSAGE_BYTES`] (one larger observation travels alone).
fn within_message_size(observations: Vec<ProbeObserved>) -> Vec<Vec<ProbeObserved>> {
    let mut runs: Vec<Vec<ProbeObserved>> = Vec::new();
    let mut bytes = 0;
    for observation in observations {
        let size = serde_json::to_vec(&observation).map_or(0, |encoded| encoded.len());
        match runs.last_mut() {
            Some(run) if bytes + size <= MAX_OBSERVATIONS_MESSAGE_BYTES => run.push(observation),
            _ => {
                runs.push(vec![observation]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    runs
}

/// How a worker takes jobs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub vantage_point: String,
    pub ack_wait: Duration,
    pub max_deliver: i64,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            vantage_point: "default".into(),
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
        }
    }
}

type Cancels = Arc<Mutex<HashMap<ScanId, watch::Sender<bool>>>>;

/// `vantage worker`: takes jobs of one vantage point until `shutdown`, one scan at a time.
pub async fn run_worker(
    client: async_nats::Client,
    topology: NatsTopology,
    scanner: Scanner,
    worker_id: String,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NatsError> {
    let js = jetstream::new(client.clone());
    topology.ensure_streams(&js).await?;
    let jobs = js.get_stream(topology.jobs_stream()).await.map_err(nats)?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = jobs
        .create_consumer(pull::Config {
            durable_name: Some(format!("workers-{}", options.vantage_point)),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: options.ack_wait,
            // Unlimited: the worker counts deliveries itself and dead-letters the last one
            // (`WorkerOptions::max_deliver`), so a last delivery whose dead-lettering fails
            // (NATS away) comes back to be tried again instead of being dropped.
            max_deliver: -1,
            filter_subject: topology.jobs_subject(&options.vantage_point),
            ..Default::default()
        })
        .await
        .map_err(nats)?;
    let cancels: Cancels = Arc::default();
    let mut cancel_messages = client
        .subscribe(format!("{}.cancel.>", topology.prefix))
        .await
        .map_err(nats)?;
    let listener = {
        let cancels = cancels.clone();
        tokio::spawn(async move {
            while let Some(message) = cancel_messages.next().await {
                let scan = message
                    .subject
                    .rsplit('.')
                    .next()
                    .and_then(|id| id.parse::<ScanId>().ok());
                if let Some(scan) = scan
                    && let Ok(cancels) = cancels.lock()
                    && let Some(cancel) = cancels.get(&scan)
                {
                    let _ = cancel.send(true);
                }
            }
        })
    };
    let sink = NatsSink {
        js: js.clone(),
        topology: topology.clone(),
        worker_id: worker_id.clone(),
    };
    let mut messages = consumer.messages().await.map_err(nats)?;
    tokio::pin!(shutdown);
    tracing::info!(worker = %worker_id, vantage_point = %options.vantage_point, "NATS worker started");
    let outcome = loop {
        let message = tokio::select! {
            message = messages.next() => message,
            () = &mut shutdown => break Ok(()),
        };
        let Some(message) = message else {
            break Err(NatsError("the job subscription ended".into()));
        };
        let message = Arc::new(message.map_err(nats)?);
        let Ok(job) = serde_json::from_slice::<ScanJob>(&message.payload) else {
            tracing::warn!("dropping an unreadable job");
            let _ = message.ack_with(AckKind::Term).await;
            continue;
        };
        let delivered = message.info().map_or(1, |info| info.delivered);
        if delivered >= options.max_deliver {
            // The last delivery: no worker finished it before. Dead-letter it and fail the scan;
            // the job is acknowledged only once both are stored, else it comes back later.
            let reason = format!(
                "no worker completed the scan in {} attempts",
                options.max_deliver - 1
            );
            let dead_lettered = async {
                publish(
                    &js,
                    topology.dead_subject(job.scan_id),
                    job.scan_id.to_string(),
                    message.payload.to_vec(),
                )
                .await
                .map_err(|e| WorkerError::Sink(e.to_string()))?;
                sink.submit(&job, ScanCommand::Fail { reason }).await
            };
            match dead_lettered.await {
                Ok(_) => {
                    let _ = message.ack().await;
                }
                Err(error) => {
                    tracing::warn!(scan = %job.scan_id, %error, "cannot fail the scan yet; its job comes back");
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                        .await;
                }
            }
            continue;
        }
        let (cancel, cancelled) = watch::channel(false);
        if let Ok(mut cancels) = cancels.lock() {
            cancels.insert(job.scan_id, cancel);
        }
        // Keep the job ours while it runs.
        let ticker = {
            let message = message.clone();
            let every = options.ack_wait / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let _ = message.ack_with(AckKind::Progress).await;
                }
            })
        };
        let result = run_scan(&job, &worker_id, &scanner, &sink, cancelled).await;
        ticker.abort();
        if let Ok(mut cancels) = cancels.lock() {
            cancels.remove(&job.scan_id);
        }
        match result {
            Ok(()) => {
                let _ = message.double_ack().await;
            }
            Err(error) => {
                tracing::warn!(scan = %job.scan_id, %error, "scan interrupted; it will be redelivered");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
        }
    };
    listener.abort();
    outcome
}

/// Whether a vantage point's workers take jobs, as the API asks it of NATS: a worker waiting for a
/// job keeps a pull request open on its point's consumer, and a busy one holds a job unacknowledged.
/// Answers are kept for [`POOL_ANSWER_TTL`], so pollers of a queued scan do not each ask NATS.
#[derive(Debug)]
pub struct NatsWorkerPools {
    client: async_nats::Client,
    js: jetstream::Context,
    topology: NatsTopology,
    answers: Mutex<HashMap<String, (tokio::time::Instant, bool)>>,
}

/// How long [`NatsWorkerPools`] keeps an answer.
pub const POOL_ANSWER_TTL: Duration = Duration::from_secs(5);

impl NatsWorkerPools {
    pub fn new(client: async_nats::Client, topology: NatsTopology) -> Self {
        Self {
            js: jetstream::new(client.clone()),
            client,
            topology,
            answers: Mutex::default(),
        }
    }

    /// Asks NATS about the consumer of `vantage_point`'s workers.
    async fn ask(&self, vantage_point: &str) -> Option<bool> {
        let jobs = self.js.get_stream(self.topology.jobs_stream()).await.ok()?;
        match jobs.consumer_info(format!("workers-{vantage_point}")).await {
            Ok(info) => Some(info.num_waiting > 0 || info.num_ack_pending > 0),
            // No worker of this point ever started: it has no consumer.
            Err(error)
                if matches!(
                    error.kind(),
                    jetstream::context::ConsumerInfoErrorKind::NotFound
                ) =>
            {
                Some(false)
            }
            Err(_) => None,
        }
    }
}

#[async_trait]
impl WorkerPools for NatsWorkerPools {
    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    async fn serves(&self, vantage_point: &str) -> Option<bool> {
        let now = tokio::time::Instant::now();
        if let Ok(answers) = self.answers.lock()
            && let Some((at, served)) = answers.get(vantage_point)
            && now.duration_since(*at) < POOL_ANSWER_TTL
        {
            return Some(*served);
        }
        let served = self.ask(vantage_point).await?;
        if let Ok(mut answers) = self.answers.lock() {
            answers.insert(vantage_point.to_owned(), (now, served));
        }
        Some(served)
    }
}

/// Worker results the bridge holds at once (delivered, not yet applied and acknowledged).
const MAX_RESULTS_IN_FLIGHT: i64 = 256;
/// How long a delivered result may go unacknowledged before NATS delivers it again; a result
/// waiting in its lane, or being retried, is kept by progress acknowledgements meanwhile.
const RESULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// A lane with nothing to apply for this long ends (its scan has most likely ended).
const LANE_IDLE: Duration = Duration::from_secs(10);

type Lane = tokio::sync::mpsc::UnboundedSender<(WorkerMessage, jetstream::Message)>;

/// One lane per scan: a scan's results are applied one after another in the order they were
/// delivered (its completion never overtakes its finalizing or its last observations), while
/// different scans' results are applied side by side. A result that cannot be applied yet (the
/// store away) is retried in its place, kept from redelivery by progress acknowledgements, so
/// nothing behind it in its lane goes first. After a crash NATS delivers the unacknowledged results
/// again, in order; applying one twice changes nothing.
struct ResultLanes {
    services: Services,
    states: Arc<ScanStates>,
    lanes: Arc<Mutex<HashMap<ScanId, Lane>>>,
    tasks: tokio::task::JoinSet<()>,
}

impl ResultLanes {
    fn new(services: Services) -> Self {
        Self {
            services,
            states: Arc::default(),
            lanes: Arc::default(),
            tasks: tokio::task::JoinSet::new(),
        }
    }

    /// Hands `message` to its scan's lane, opening one if none is open. (Lanes are unbounded
    /// queues, bounded together by the consumer's [`MAX_RESULTS_IN_FLIGHT`].)
    fn route(&mut self, result: WorkerMessage, message: jetstream::Message) {
        let scan = result.scan_id;
        let mut item = (result, message);
        loop {
            let lane = self
                .lanes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&scan)
                .cloned();
            let lane = match lane {
                Some(lane) => lane,
                None => self.open(scan),
            };
            match lane.send(item) {
                Ok(()) => return,
                // The lane ended between the look-up and the send: open another.
                Err(tokio::sync::mpsc::error::SendError(back)) => {
                    close_lane(&self.lanes, scan, &lane);
                    item = back;
                }
            }
        }
    }

    fn open(&mut self, scan: ScanId) -> Lane {
        while self.tasks.try_join_next().is_some() {}
        let (lane, mut queue) = tokio::sync::mpsc::unbounded_channel();
        self.lanes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scan, lane.clone());
        let (services, states, lanes) = (
            self.services.clone(),
            self.states.clone(),
            self.lanes.clone(),
        );
        let own = lane.clone();
        self.tasks.spawn(async move {
            let apply = |(result, message): (WorkerMessage, jetstream::Message)| {
                let (services, states) = (&services, &states);
                async move {
                    apply_result(services, states, result, &message).await;
                    let _ = message.ack().await;
                }
            };
            while let Ok(Some(item)) = tokio::time::timeout(LANE_IDLE, queue.recv()).await {
                apply(item).await;
            }
            // Idle: close the lane, then apply what arrived meanwhile, in order.
            close_lane(&lanes, scan, &own);
            queue.close();
            while let Some(item) = queue.recv().await {
                apply(item).await;
            }
        });
        lane
    }
}

/// Removes `lane` from the open lanes if it is still the one open for `scan`.
fn close_lane(lanes: &Mutex<HashMap<ScanId, Lane>>, scan: ScanId, lane: &Lane) {
    let mut open = lanes.lock().unwrap_or_else(|e| e.into_inner());
    if open.get(&scan).is_some_and(|l| l.same_channel(lane)) {
        open.remove(&scan);
    }
}

/// Applies one worker result through the pipeline, trying again until the store takes it; a result
/// the scan refuses (it ended, or was cancelled) counts as applied.
async fn apply_result(
    services: &Services,
    states: &ScanStates,
    result: WorkerMessage,
    message: &jetstream::Message,
) {
    let context = CommandContext {
        tenant: result.tenant.clone(),
        actor: format!("worker:{}", result.worker_id),
        request_id: None,
        correlation_id: result.scan_id.as_uuid(),
        causation_id: None,
    };
    let command = result.command.into_command(&result.worker_id);
    let mut pause = Duration::from_millis(200);
    loop {
        let applied = match &command {
            Ok(command) => states
                .execute(services, result.scan_id, &context, command.clone())
                .await
                .map(|_| ()),
            Err(sample) => services
                .keep_content_sample(&context, result.scan_id, sample.clone())
                .await
                .map(|_| ()),
        };
        match applied {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(scan = %result.scan_id, %error, "cannot apply a worker result yet; retrying");
                let _ = message.ack_with(AckKind::Progress).await;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Core side (`vantage serve --nats-url`): publishes jobs and cancellations from the log, and applies
/// the workers' results through the pipeline, each scan's in order. Which scans are unfinished at
/// start comes from `resume`. Runs until `shutdown`. One process at a time runs it (the caller holds
/// a lease): a scan's results applied by two processes at once could be applied out of order.
pub async fn run_bridge(
    services: Services,
    client: async_nats::Client,
    topology: NatsTopology,
    resume: ResumeSource,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NatsError> {
    let js = jetstream::new(client.clone());
    topology.ensure_streams(&js).await?;
    let results = js
        .get_stream(topology.results_stream())
        .await
        .map_err(nats)?;
    // A scan's results are applied in the order its worker sent them, scans side by side
    // ([`ResultLanes`]). Created or updated, so an older installation's consumer gets this too.
    let consumer: jetstream::consumer::Consumer<pull::Config> = results
        .create_consumer(pull::Config {
            durable_name: Some("core".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            filter_subject: format!("{}.results.>", topology.prefix),
            max_ack_pending: MAX_RESULTS_IN_FLIGHT,
            ack_wait: RESULT_ACK_WAIT,
            ..Default::default()
        })
        .await
        .map_err(nats)?;
    let publisher = {
        let services = services.clone();
        let js = js.clone();
        let client = client.clone();
        let topology = topology.clone();
        async move {
            let resume = resume().await.map_err(nats)?;
            let mut feed = ScanFeed::start(services.store().clone(), resume)
                .await
                .map_err(nats)?;
            loop {
                match feed.next().await.map_err(nats)? {
                    Dispatch::Run(job) => {
                        let payload = serde_json::to_vec(&job).map_err(nats)?;
                        let subject = topology.jobs_subject(job.spec.vantage_point.as_str());
                        publish(&js, subject, job.scan_id.to_string(), payload).await?;
                    }
                    Dispatch::Stop(scan) => {
                        client
                            .publish(topology.cancel_subject(scan), Vec::new().into())
                            .await
                            .map_err(nats)?;
                    }
                    Dispatch::Ended(_) => {}
                }
            }
            #[allow(unreachable_code, reason = "the loop only ends on an error")]
            Ok::<(), NatsError>(())
        }
    };
    let applier = async move {
        let mut lanes = ResultLanes::new(services);
        let mut messages = consumer.messages().await.map_err(nats)?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(nats)?;
            let Ok(result) = serde_json::from_slice::<WorkerMessage>(&message.payload) else {
                tracing::warn!("dropping an unreadable worker message");
                let _ = message.ack_with(AckKind::Term).await;
                continue;
            };
            lanes.route(result, message);
        }
        Ok::<(), NatsError>(())
    };
    tokio::select! {
        outcome = publisher => outcome,
        outcome = applier => outcome,
        () = shutdown => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_replicas_are_one_to_five() {
        let topology = NatsTopology::new("vantage").unwrap();
        assert_eq!(topology.replicas, 1, "one copy unless asked");
        assert_eq!(topology.clone().with_replicas(3).unwrap().replicas, 3);
        assert_eq!(topology.clone().with_replicas(5).unwrap().replicas, 5);
        for refused in [0, 6] {
            let error = topology.clone().with_replicas(refused).unwrap_err();
            assert!(error.contains(&refused.to_string()), "{error}");
        }
    }
    use vantage_domain::ids::ObservationId;
    use vantage_domain::scan::Observation;
    use vantage_observations::dns::{DnsObservation, DnsStatus};

    fn dns(n: u128, bytes: usize) -> ProbeObserved {
        ProbeObserved {
            observation_id: ObservationId(Uuid::from_u128(n)),
            asset: format!("n{n} TXT"),
            observation: Observation::Dns(DnsObservation {
                name: format!("n{n}"),
                record_type: "TXT".into(),
                status: DnsStatus::Ok,
                records: vec!["x".repeat(bytes)],
                truncated: false,
            }),
        }
    }

    #[test]
    fn observations_are_split_into_messages_in_order_within_the_size_limit() {
        let batch: Vec<_> = (0..64).map(|n| dns(n, 15_000)).collect();
        let runs = within_message_size(batch.clone());
        assert!(runs.len() > 1, "64 × 15 kB must not fit one message");
        for run in &runs {
            let bytes: usize = run
                .iter()
                .map(|o| serde_json::to_vec(o).unwrap().len())
                .sum();
            assert!(bytes <= MAX_OBSERVATIONS_MESSAGE_BYTES, "{bytes}");
        }
        assert_eq!(runs.concat(), batch);
        assert_eq!(within_message_size(vec![dns(1, 10)]).len(), 1);
        assert!(within_message_size(Vec::new()).is_empty());
    }

    #[test]
    fn a_batch_is_named_by_its_observations() {
        let scan = ScanId(Uuid::from_u128(7));
        let name = |ids: &[u128]| {
            WireCommand::Observations {
                observations: ids.iter().map(|n| dns(*n, 1)).collect(),
            }
            .message_id(scan, "w")
        };
        assert_eq!(name(&[1, 2]), name(&[1, 2]));
        assert_ne!(name(&[1, 2]), name(&[1, 3]));
        assert_ne!(name(&[1, 2]), name(&[1]));
    }

    #[test]
    fn any_name_is_one_subject_token_and_distinct_names_stay_distinct() {
        assert_eq!(subject_token("scan-0192f3a4"), "scan-0192f3a4");
        assert_eq!(subject_token(""), "_");
        assert_eq!(subject_token("a.b*c>d_e f"), "a_2eb_2ac_3ed_5fe_20f");
        let names = ["a.b", "a_2eb", "a_b", "a b", "a-b"];
        let tokens: std::collections::HashSet<_> = names.iter().map(|n| subject_token(n)).collect();
        assert_eq!(tokens.len(), names.len());
        for name in names {
            let token = subject_token(name);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{token}"
            );
        }
    }
}
