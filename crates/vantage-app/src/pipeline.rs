//! The command pipeline. A store failure is `Err(AppError)`; a command the domain refused is
//! `Ok(Err(DomainError))` — callers can never mistake one for the other.

use std::sync::Arc;
use std::time::Duration;

use vantage_domain::{Aggregate, DomainError, DomainEvent, UpcastError};
use vantage_store::{
    EventMetadata, EventStore, ExpectedVersion, JsonPayload, NewEvent, StoreError, StreamName,
};

use crate::personal::PersonalVault;
use crate::seams::{Clock, new_id};
use crate::state_cache::StateCache;

/// How often a command is re-decided after losing a version race before the conflict is reported.
const CONFLICT_RETRIES: u32 = 10;
/// Upper bound of the first back-off before deciding again; it doubles per retry (full jitter).
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
/// Longest back-off between two decisions.
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// A random wait in `[0, min(MAX_BACKOFF, FIRST_BACKOFF · 2^attempt))` ("full jitter"), so commands
/// that lost a race do not collide again in lock-step.
fn backoff(attempt: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF);
    let micros = u64::try_from(ceiling.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_micros(crate::seams::random_in(0..micros))
}

/// A technical failure of the application layer.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream kept changing under the command; the client may retry.
    #[error("stream {0} kept changing concurrently; retry the request")]
    Contention(String),
    /// A stored event could not be decoded.
    #[error("stored event cannot be decoded: {0}")]
    Decode(#[from] UpcastError),
    /// A stored scan names a ruleset this build does not know.
    #[error("stored scan cannot be assessed: {0}")]
    Ruleset(#[from] vantage_rules::UnknownRuleset),
    /// A key kept sealed beside the log does not open with this server's secrets key.
    #[error("sealed data cannot be opened with this server's secrets key: {0}")]
    Unsealable(String),
}

/// Who runs a command, and the ids that tie its events to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    pub tenant: vantage_domain::tenant::TenantId,
    pub actor: String,
    pub request_id: Option<String>,
    pub correlation_id: uuid::Uuid,
    pub causation_id: Option<uuid::Uuid>,
}

impl CommandContext {
    pub fn system(tenant: vantage_domain::tenant::TenantId) -> Self {
        Self {
            tenant,
            actor: "system".into(),
            request_id: None,
            correlation_id: new_id(),
            causation_id: None,
        }
    }

    fn metadata(&self) -> EventMetadata {
        EventMetadata {
            tenant: self.tenant.to_string(),
            actor: self.actor.clone(),
            request_id: self.request_id.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
        }
    }
}

/// What an accepted command did.
#[derive(Debug, Clone)]
pub struct Executed<A: Aggregate> {
    pub events: Vec<A::Event>,
    /// The state after the new events.
    pub state: A,
    pub stream_version: u64,
}

/// An aggregate's state folded from its stream up to `version` (0: nothing read yet).
#[derive(Debug, Clone, Default)]
pub struct Folded<A> {
    pub state: A,
    pub version: u64,
}

/// Runs commands against the event log.
#[derive(Clone)]
pub struct Pipeline {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    states: Arc<StateCache>,
    /// Seals personal text before it is appended and opens it on a fold.
    vault: PersonalVault,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").finish_non_exhaustive()
    }
}

impl Pipeline {
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>, vault: PersonalVault) -> Self {
        Self {
            store,
            clock,
            states: Arc::default(),
            vault,
        }
    }

    /// Forgets the folded states kept between commands; the next command of each stream folds it
    /// from the log again.
    pub(crate) fn forget_states(&self) {
        self.states.clear();
    }

    /// Seals and opens personal text (see [`crate::personal`]).
    pub fn vault(&self) -> &PersonalVault {
        &self.vault
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The aggregate's state folded from its stream, up to the stream's version: the state kept from
    /// an earlier fold (if any) and the events appended since.
    pub async fn load<A: Aggregate>(&self, stream: &StreamName) -> Result<Folded<A>, AppError> {
        let kept = A::CACHE_STATE
            .then(|| self.states.get::<A>(stream))
            .flatten();
        let (state, version) = kept.unwrap_or_default();
        let mut folded = Folded { state, version };
        if self.catch_up(stream, &mut folded).await? && A::CACHE_STATE {
            self.states.put(stream, &folded.state, folded.version);
        }
        Ok(folded)
    }

    /// Folds the events appended to `stream` after `folded.version` onto `folded`; whether there
    /// were any.
    async fn catch_up<A: Aggregate>(
        &self,
        stream: &StreamName,
        folded: &mut Folded<A>,
    ) -> Result<bool, AppError> {
        let kept = folded.version;
        for event in self.store.read_stream_from(stream, folded.version).await? {
            let payload = self
                .vault
                .open_payload(
                    &event.metadata.tenant,
                    &event.event_type,
                    event.payload.as_str(),
                )
                .await?;
            let decoded = A::Event::decode(&event.event_type, event.schema_version, &payload)?;
            folded.state.apply(&decoded);
            folded.version = event.stream_version;
        }
        Ok(folded.version != kept)
    }

    /// Load → fold → decide → append with the expected version. On a version conflict the command is
    /// decided again against the new state after a jittered back-off, up to [`CONFLICT_RETRIES`]
    /// times; then the conflict is reported as [`AppError::Contention`]. Nothing is ever lost: a
    /// command either lands exactly once or its caller is told it did not.
    pub async fn execute<A: Aggregate>(
        &self,
        stream: &StreamName,
        context: &CommandContext,
        command: A::Command,
    ) -> Result<Result<Executed<A>, DomainError>, AppError>
    where
        A::Command: Clone,
    {
        let mut folded = self.load::<A>(stream).await?;
        let decided = self
            .execute_on(stream, context, command, &mut folded)
            .await?;
        Ok(decided.map(|events| Executed {
            events,
            state: folded.state,
            stream_version: folded.version,
        }))
    }

    /// [`Pipeline::execute`] against a state its caller keeps between commands (a worker keeps its
    /// scan's), so a command reads only what others appended since, not the whole stream again. The
    /// kept state may be behind: the append's expected version finds out, and a refusal is decided
    /// again once what was missed is folded. On return `folded` includes the new events.
    pub async fn execute_on<A: Aggregate>(
        &self,
        stream: &StreamName,
        context: &CommandContext,
        command: A::Command,
        folded: &mut Folded<A>,
    ) -> Result<Result<Vec<A::Event>, DomainError>, AppError>
    where
        A::Command: Clone,
    {
        for attempt in 0..=CONFLICT_RETRIES {
            let events = match folded.state.handle(command.clone()) {
                Ok(events) => events,
                Err(rejected) => {
                    if self.catch_up(stream, folded).await? {
                        continue;
                    }
                    return Ok(Err(rejected));
                }
            };
            if events.is_empty() {
                return Ok(Ok(events));
            }
            let expected = if folded.version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(folded.version)
            };
            let now = self.clock.now();
            let metadata = context.metadata();
            let mut new_events = Vec::with_capacity(events.len());
            for event in &events {
                let payload = self
                    .vault
                    .seal_payload(
                        context.tenant.as_str(),
                        event.event_type(),
                        event.payload_json(),
                    )
                    .await?;
                new_events.push(NewEvent {
                    event_id: new_id(),
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    occurred_at: now,
                    payload: JsonPayload::from_text(payload)?,
                    metadata: metadata.clone(),
                });
            }
            match self.store.append(stream, expected, new_events).await {
                Ok(outcome) => {
                    for event in &events {
                        folded.state.apply(event);
                    }
                    folded.version = outcome.stream_version;
                    if A::CACHE_STATE {
                        self.states.put(stream, &folded.state, folded.version);
                    }
                    return Ok(Ok(events));
                }
                Err(error) if error.is_conflict() => {
                    tracing::debug!(%stream, attempt, "version conflict; deciding again");
                    tokio::time::sleep(backoff(attempt)).await;
                    self.catch_up(stream, folded).await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Contention(stream.to_string()))
    }
}
