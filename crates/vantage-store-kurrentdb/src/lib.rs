//! The event log on KurrentDB (formerly EventStoreDB): the [`EventStore`] contract over KurrentDB's
//! gRPC client, the `kurrentdb` crate. Built only with the `kurrentdb` cargo feature of `vantage`.
//!
//! KurrentDB gives each stream optimistic concurrency and orders every write in `$all`, but Vantage's
//! log also needs gapless global positions and a hash chain. So streams are plain KurrentDB streams
//! (appended with the expected revision the caller names), and a sequencer ([`sequencer`]) copies
//! their events, in `$all` order, into one log stream whose revision is the global position, each
//! with its chain link. The log stream is itself appended with an expected revision, so any number of
//! processes may run the sequencer and exactly one wins each step. `read_all` and subscriptions read
//! the log stream; `read_stream` reads the stream itself. [`wire`] holds the layout.
//!
//! Every call is bounded (10 s): KurrentDB's client retries a lost connection on its own, and an
//! unreachable server must become an error (`/ready` not ready, a CLI exit) rather than a hang.

mod sequencer;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use kurrentdb::{AppendToStreamOptions, Client, ClientSettings, ReadStreamOptions, StreamPosition};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use vantage_store::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StoredEvent,
    StreamName,
};

use crate::wire::{EventBody, LogEntry, LogTail, Names, SourcePosition};

/// How long one call to KurrentDB may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times an `ExpectedVersion::Any` append is retried when a concurrent writer took its version.
const ANY_VERSION_RETRIES: usize = 16;

/// How to reach KurrentDB.
#[derive(Debug, Clone)]
pub struct KurrentStoreOptions {
    /// A KurrentDB connection string (`kurrentdb://host:2113?tls=false`, `esdb://…`).
    pub url: String,
    /// Prefix of every stream this store writes, so several deployments (or test runs) can share a
    /// server: 1–40 ASCII letters, digits, `-` or `_` [default: `vantage`].
    pub namespace: String,
}

impl KurrentStoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: "vantage".into(),
        }
    }
}

/// Aborts the sequencer when the last clone of the store goes away.
#[derive(Debug)]
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The KurrentDB event store. Cheap to clone.
#[derive(Clone)]
pub struct KurrentEventStore {
    log: LogReader,
    wake: watch::Sender<u64>,
    appended: Arc<Notify>,
    _tasks: Arc<Tasks>,
}

impl std::fmt::Debug for KurrentEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KurrentEventStore")
            .field("log", &self.log.names.log())
            .finish_non_exhaustive()
    }
}

fn backend(error: kurrentdb::Error) -> StoreError {
    StoreError::Backend(format!("KurrentDB: {error}"))
}

/// Runs one call to KurrentDB, failing it after [`CALL_TIMEOUT`].
pub(crate) async fn bounded<T>(
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Backend(format!(
                "KurrentDB did not answer within {} s",
                CALL_TIMEOUT.as_secs()
            )))
        })
}

/// Every event a KurrentDB read returns (none when the stream does not exist).
pub(crate) async fn collect(
    read: kurrentdb::Result<kurrentdb::ReadStream>,
) -> Result<Vec<kurrentdb::RecordedEvent>, StoreError> {
    let mut read = match read {
        Ok(read) => read,
        Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
        Err(error) => return Err(backend(error)),
    };
    let mut events = Vec::new();
    loop {
        match read.next().await {
            Ok(Some(resolved)) => {
                if let Some(event) = resolved.event {
                    events.push(event);
                }
            }
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(events),
            Err(error) => return Err(backend(error)),
        }
    }
}

/// Reads the log stream and the Vantage streams of one namespace.
#[derive(Clone)]
pub(crate) struct LogReader {
    pub(crate) client: Client,
    pub(crate) names: Arc<Names>,
}

/// Reads the last event of a stream only.
fn last_event() -> ReadStreamOptions {
    ReadStreamOptions::default()
        .backwards()
        .position(StreamPosition::End)
        .max_count(1)
}

impl LogReader {
    /// The events of KurrentDB stream `stream` that `options` select (none if it does not exist).
    async fn read(
        &self,
        stream: String,
        options: &ReadStreamOptions,
    ) -> Result<Vec<kurrentdb::RecordedEvent>, StoreError> {
        bounded(async { collect(self.client.read_stream(stream, options).await).await }).await
    }

    /// Appends `data` to KurrentDB stream `stream` if it holds exactly `version` events; otherwise
    /// [`StoreError::Conflict`], naming `label` and `expected` as the caller knows them.
    pub(crate) async fn append(
        &self,
        stream: String,
        version: u64,
        data: Vec<kurrentdb::EventData>,
        label: &str,
        expected: &str,
    ) -> Result<(), StoreError> {
        let options = AppendToStreamOptions::default().stream_state(wire::stream_state(version));
        bounded(async {
            self.client
                .append_to_stream(stream, &options, data)
                .await
                .map(|_| ())
                .map_err(|error| match error {
                    kurrentdb::Error::WrongExpectedVersion { current, .. } => {
                        StoreError::Conflict {
                            stream: label.to_owned(),
                            expected: expected.to_owned(),
                            actual: wire::version_of(current),
                        }
                    }
                    other => backend(other),
                })
        })
        .await
    }

    /// Up to `limit` log entries from revision `from` (global position `from + 1`) on.
    pub(crate) async fn read_forward(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(SourcePosition, RecordedEvent)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from))
            .max_count(limit);
        self.read(self.names.log(), &options)
            .await?
            .iter()
            .map(|event| LogEntry::decode(event.revision, &event.data))
            .collect()
    }

    /// Where the log ends now.
    pub(crate) async fn tail(&self) -> Result<LogTail, StoreError> {
        let raw = self.read(self.names.log(), &last_event()).await?;
        let Some(last) = raw.first() else {
            return Ok(LogTail::empty());
        };
        let (source, recorded) = LogEntry::decode(last.revision, &last.data)?;
        Ok(LogTail {
            head: recorded.global_position,
            hash: recorded.hash,
            source: Some(source),
        })
    }

    /// The events of Vantage stream `stream` with a stream version above `version`.
    async fn stream_after_version(
        &self,
        stream: &StreamName,
        version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(version));
        self.read(self.names.stream(stream.as_str()), &options)
            .await?
            .iter()
            .map(|event| wire::decode_event(stream.as_str(), event))
            .collect()
    }

    /// The number of events in Vantage stream `stream`.
    async fn version(&self, stream: &StreamName) -> Result<u64, StoreError> {
        let raw = self
            .read(self.names.stream(stream.as_str()), &last_event())
            .await?;
        Ok(raw.first().map_or(0, |event| event.revision + 1))
    }
}

impl KurrentEventStore {
    /// Connects, checks the server answers (reading where the log ends) and starts the sequencer.
    pub async fn connect(options: KurrentStoreOptions) -> Result<Self, StoreError> {
        let names = Names::new(&options.namespace)?;
        let settings: ClientSettings = options
            .url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid KurrentDB URL: {e}")))?;
        let client = Client::new(settings)
            .map_err(|e| StoreError::Backend(format!("KurrentDB client: {e}")))?;
        let log = LogReader {
            client,
            names: Arc::new(names),
        };
        let tail = log.tail().await?;
        let (wake, _) = watch::channel(tail.head);
        let appended = Arc::new(Notify::new());
        let task = tokio::spawn(sequencer::run(log.clone(), appended.clone(), wake.clone()));
        Ok(Self {
            log,
            wake,
            appended,
            _tasks: Arc::new(Tasks(vec![task])),
        })
    }

    /// Orders whatever stream events are waiting, now, instead of waiting for the sequencer task.
    /// Returns how many were ordered (0 if another process ordered them first).
    pub async fn sequence_now(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let (ordered, head) = sequencer::step(&self.log).await?;
            if ordered == 0 {
                return Ok(total);
            }
            total += ordered;
            self.wake.send_replace(head);
        }
    }

    /// Appends at a known base version: the events become versions `base + 1 …`.
    async fn append_at(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        base: u64,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        #[allow(
            clippy::disallowed_methods,
            reason = "the store stamps recorded_at when it writes"
        )]
        let recorded_at = Utc::now();
        let mut data = Vec::with_capacity(events.len());
        for (offset, event) in events.iter().enumerate() {
            let stored =
                event
                    .clone()
                    .into_stored(stream, base + offset as u64 + 1, recorded_at)?;
            let body = EventBody::of(&stored);
            data.push(
                kurrentdb::EventData::json(&stored.event_type, &body)
                    .map_err(|e| StoreError::Invalid(format!("encoding an event: {e}")))?
                    .id(stored.event_id),
            );
        }
        self.log
            .append(
                self.log.names.stream(stream.as_str()),
                base,
                data,
                stream.as_str(),
                &expected.to_string(),
            )
            .await?;
        self.appended.notify_one();
        Ok(AppendOutcome {
            stream_version: base + events.len() as u64,
            first_position: None,
        })
    }
}

#[async_trait]
impl EventStore for KurrentEventStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Invalid(
                "an append needs at least one event".into(),
            ));
        }
        if let Some(base) = wire::known_base(expected) {
            return self.append_at(stream, expected, base, &events).await;
        }
        let mut attempt = 0;
        loop {
            let base = self.log.version(stream).await?;
            match self
                .append_at(stream, ExpectedVersion::Exact(base), base, &events)
                .await
            {
                Err(error) if error.is_conflict() && attempt < ANY_VERSION_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    async fn read_stream_from(
        &self,
        stream: &StreamName,
        version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.log.stream_after_version(stream, version).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .log
            .read_forward(after, limit)
            .await?
            .into_iter()
            .map(|(_, event)| event)
            .collect())
    }

    /// Scans the log after `after` and keeps this stream's events: KurrentDB has no index from a
    /// stream to its log entries, so this costs what reading the log's tail costs.
    async fn read_stream_after(
        &self,
        stream: &StreamName,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        const BATCH: usize = 1000;
        let mut found = Vec::new();
        let mut from = after;
        loop {
            let batch = self.log.read_forward(from, BATCH).await?;
            let done = batch.len() < BATCH;
            from += batch.len() as u64;
            found.extend(
                batch
                    .into_iter()
                    .map(|(_, event)| event)
                    .filter(|event| event.event.stream == stream.as_str()),
            );
            if done {
                return Ok(found);
            }
        }
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        Ok(self.log.tail().await?.head)
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.log.tail().await.map(|_| ())
    }
}
