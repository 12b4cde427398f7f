//! The scan aggregate (stream `scan-<id>`): its lifecycle `queued → running → finalizing →
//! completed | failed | cancelled`, the worker's observations, cancellation and deletion.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::content::{ContentSampling, SealedBytes, ShredReason};
use crate::domain_events;
use crate::ids::{ObservationId, ScanId};
use crate::project::ProjectId;
use crate::target::{Paths, Ports, Profile, ScanTarget, Trigger, VantagePoint};
use crate::tenant::TenantId;
use crate::{Aggregate, DomainError};

/// Largest observation payload a worker may record, in bytes of JSON.
pub const MAX_OBSERVATION_BYTES: usize = 16 * 1024;
/// Longest failure or cancellation reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 512;
/// Observations one command may carry: a probe's results are recorded together, in one append.
pub const MAX_OBSERVATIONS_PER_COMMAND: usize = 64;

/// Where a scan is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    Queued,
    Running,
    Finalizing,
    Completed,
    Failed,
    Cancelled,
}

impl ScanStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Finalizing => "finalizing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

pub use vantage_observations::{Observation, ProbeKind};

/// Everything a scan request fixes: the target and how to look at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScanSpec {
    pub target: ScanTarget,
    pub ports: Ports,
    pub paths: Paths,
    pub profile: Profile,
    pub trigger: Trigger,
    pub vantage_point: VantagePoint,
    /// Whether capped samples of the fetched pages are kept (sealed), and for how long.
    pub content_sample: Option<ContentSampling>,
    /// The project of the tenant the scan belongs to.
    pub project: ProjectId,
}

domain_events! {
    /// Everything that can happen to a scan.
    pub enum ScanEvent {
        ScanRequested = 4,
        ScanStarted = 1,
        ProbeObserved = 2,
        ProbeFailed = 2,
        ScanFinalizing = 1,
        ScanCompleted = 1,
        ScanFailed = 1,
        ScanCancelled = 1,
        ScanDeleted = 1,
        ContentSampleKept = 1,
        ContentKeyDestroyed = 1,
    }
}

/// A scan was accepted and queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanRequested {
    pub scan_id: ScanId,
    pub tenant: TenantId,
    pub target: ScanTarget,
    pub ports: Ports,
    pub paths: Paths,
    pub profile: Profile,
    pub trigger: Trigger,
    pub vantage_point: VantagePoint,
    /// Content samples asked for (v3; none before).
    pub content_sample: Option<ContentSampling>,
    /// The project it belongs to (v4; `default` before).
    pub project: ProjectId,
}

impl ScanRequested {
    /// The request of scan `scan_id` of `tenant` for `spec`.
    pub fn new(scan_id: ScanId, tenant: TenantId, spec: ScanSpec) -> Self {
        Self {
            scan_id,
            tenant,
            target: spec.target,
            ports: spec.ports,
            paths: spec.paths,
            profile: spec.profile,
            trigger: spec.trigger,
            vantage_point: spec.vantage_point,
            content_sample: spec.content_sample,
            project: spec.project,
        }
    }

    /// What was asked for.
    pub fn spec(&self) -> ScanSpec {
        ScanSpec {
            target: self.target.clone(),
            ports: self.ports.clone(),
            paths: self.paths.clone(),
            profile: self.profile,
            trigger: self.trigger,
            vantage_point: self.vantage_point.clone(),
            content_sample: self.content_sample,
            project: self.project.clone(),
        }
    }
}

/// A worker picked the scan up (again, after a redelivery, with another worker id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanStarted {
    pub worker_id: String,
}

/// One public-safe observation of one probe, typed by the probe that made it.
///
/// Stored as `{observation_id, probe, asset, observation_version, data}`: the kind and version of
/// the observation type beside its data, so an older shape is upcast on read (v1 of this event
/// predates observation versions: its data is version 1 of its type).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeObserved {
    pub observation_id: ObservationId,
    /// What was looked at: `host:port`, a URL, a DNS name.
    pub asset: String,
    pub observation: Observation,
}

impl ProbeObserved {
    /// The probe that made the observation.
    pub fn probe(&self) -> ProbeKind {
        self.observation.kind()
    }
}

/// The stored form of [`ProbeObserved`], for its schema.
#[derive(JsonSchema)]
#[schemars(rename = "ProbeObserved")]
#[allow(dead_code, reason = "only describes the stored JSON")]
struct StoredProbeObserved {
    observation_id: ObservationId,
    probe: ProbeKind,
    /// What was looked at: `host:port`, a URL, a DNS name.
    asset: String,
    /// The version of the observation type `data` is written in.
    observation_version: u32,
    /// The observation, public-safe by construction.
    data: Observation,
}

impl JsonSchema for ProbeObserved {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProbeObserved".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        StoredProbeObserved::json_schema(generator)
    }
}

impl Serialize for ProbeObserved {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut stored = serializer.serialize_struct("ProbeObserved", 5)?;
        stored.serialize_field("observation_id", &self.observation_id)?;
        stored.serialize_field("probe", &self.observation.kind())?;
        stored.serialize_field("asset", &self.asset)?;
        stored.serialize_field("observation_version", &self.observation.version())?;
        stored.serialize_field("data", &self.observation)?;
        stored.end()
    }
}

impl<'de> Deserialize<'de> for ProbeObserved {
    /// Reads the fields in any order. When `probe` and `observation_version` come before `data` (as
    /// they are written), the data is decoded straight into its type; otherwise it is kept as JSON
    /// until both are known.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(
            "ProbeObserved",
            &[
                "observation_id",
                "probe",
                "asset",
                "observation_version",
                "data",
            ],
            ProbeObservedVisitor,
        )
    }
}

struct ProbeObservedVisitor;

/// Decodes `data` once its kind and version are known.
struct ObservationSeed {
    kind: ProbeKind,
    version: u32,
}

impl<'de> serde::de::DeserializeSeed<'de> for ObservationSeed {
    type Value = Observation;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Observation, D::Error> {
        Observation::deserialize_stored(self.kind, self.version, deserializer)
    }
}

impl<'de> serde::de::Visitor<'de> for ProbeObservedVisitor {
    type Value = ProbeObserved;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a ProbeObserved payload")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<ProbeObserved, A::Error> {
        use serde::de::Error;
        let mut observation_id = None;
        let mut probe: Option<ProbeKind> = None;
        let mut asset = None;
        let mut version: Option<u32> = None;
        let mut observation = None;
        let mut pending_data: Option<Value> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "observation_id" => observation_id = Some(map.next_value()?),
                "probe" => probe = Some(map.next_value()?),
                "asset" => asset = Some(map.next_value()?),
                "observation_version" => version = Some(map.next_value()?),
                "data" => match (probe, version) {
                    (Some(kind), Some(version)) => {
                        observation = Some(map.next_value_seed(ObservationSeed { kind, version })?);
                    }
                    _ => pending_data = Some(map.next_value()?),
                },
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let kind = probe.ok_or_else(|| A::Error::missing_field("probe"))?;
        let version = version.ok_or_else(|| A::Error::missing_field("observation_version"))?;
        let observation = match (observation, pending_data) {
            (Some(observation), _) => observation,
            (None, Some(data)) => {
                Observation::decode_value(kind, version, data).map_err(A::Error::custom)?
            }
            (None, None) => return Err(A::Error::missing_field("data")),
        };
        Ok(ProbeObserved {
            observation_id: observation_id
                .ok_or_else(|| A::Error::missing_field("observation_id"))?,
            asset: asset.ok_or_else(|| A::Error::missing_field("asset"))?,
            observation,
        })
    }
}

/// A probe could not run to completion; the scan goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeFailed {
    pub observation_id: ObservationId,
    pub probe: ProbeKind,
    pub asset: String,
    pub reason: String,
}

/// The worker has sent everything; findings are being derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanFinalizing {
    pub observation_count: u32,
}

/// The scan ended normally. Findings are derived with exactly this ruleset version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanCompleted {
    pub ruleset_version: String,
    pub observation_count: u32,
}

/// The scan could not be carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanFailed {
    pub reason: String,
}

/// Somebody cancelled the scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanCancelled {
    pub reason: Option<String>,
}

/// The scan was deleted: read models drop it, the log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanDeleted {}

/// A capped sample of one fetched page's response, sealed with the scan's content key (see
/// [`crate::content`]); readable only while that key exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContentSampleKept {
    /// The page fetched (the URL asked for; the sample is of the response it ended on).
    pub url: String,
    /// The response's status code.
    pub status_code: u16,
    /// The response's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// Bytes of the response read (at most the probe's body cap).
    pub body_bytes: u64,
    /// Bytes kept in the sample (at most 4096).
    pub sample_bytes: u32,
    /// The sample: nonce, ciphertext and tag, base64.
    pub sealed: SealedBytes,
}

/// The scan's content key was destroyed: its samples can no longer be read by anyone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContentKeyDestroyed {
    pub reason: ShredReason,
}

/// What can be asked of a scan.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanCommand {
    Start {
        scan_id: ScanId,
        tenant: TenantId,
        spec: ScanSpec,
    },
    Cancel {
        reason: Option<String>,
    },
    Delete,
    /// Worker: the job was picked up.
    Begin {
        worker_id: String,
    },
    /// Worker: observations of one probe (at most [`MAX_OBSERVATIONS_PER_COMMAND`]), appended
    /// together. Those the scan holds already, and repeats within the batch, are left out.
    Observe(Vec<ProbeObserved>),
    /// Worker: one probe failed.
    ReportProbeFailure(ProbeFailed),
    /// Worker: all observations are in.
    Finalize,
    /// Worker: findings derived with this ruleset.
    Complete {
        ruleset_version: String,
    },
    /// Worker or system: the scan cannot be carried out.
    Fail {
        reason: String,
    },
    /// Worker (through the application, which sealed it): a content sample of one page.
    KeepContentSample(ContentSampleKept),
    /// System: the scan's content key is gone; record why.
    RecordContentKeyDestroyed {
        reason: ShredReason,
    },
}

/// The folded state of one scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    pub requested: Option<ScanRequested>,
    pub status: Option<ScanStatus>,
    pub deleted: bool,
    pub worker_id: Option<String>,
    pub observations: HashSet<ObservationId>,
    /// The URLs whose content sample is kept.
    pub sampled: HashSet<String>,
    /// Why the content key was destroyed, once it was.
    pub content_key_destroyed: Option<ShredReason>,
}

impl Scan {
    fn live_status(&self) -> Result<ScanStatus, DomainError> {
        match self.status {
            Some(status) if !self.deleted => Ok(status),
            _ => Err(DomainError::NotFound("scan")),
        }
    }

    /// The status of a scan that exists and has not ended; an ended scan refuses every change but
    /// deletion.
    fn unfinished_status(&self) -> Result<ScanStatus, DomainError> {
        let status = self.live_status()?;
        if status.is_terminal() {
            return Err(DomainError::ScanTerminal {
                status: status.as_str(),
            });
        }
        Ok(status)
    }

    /// Status check for worker events: only a scan that is running (or queued, for `Begin`) may
    /// receive them; a cancelled or ended scan rejects them all.
    fn require_running(&self, event: &'static str) -> Result<(), DomainError> {
        match self.live_status()? {
            ScanStatus::Running => Ok(()),
            status if status.is_terminal() => Err(DomainError::ScanTerminal {
                status: status.as_str(),
            }),
            status => Err(DomainError::OutOfOrder {
                event,
                status: status.as_str(),
            }),
        }
    }
}

fn bounded_reason(field: &'static str, reason: &str) -> Result<String, DomainError> {
    let trimmed = reason.trim();
    if trimmed.chars().count() > MAX_REASON_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn check_observation_size(data: &Observation) -> Result<(), DomainError> {
    let size = serde_json::to_vec(data).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_OBSERVATION_BYTES {
        return Err(DomainError::invalid(
            "data",
            format!("observation is {size} bytes; at most {MAX_OBSERVATION_BYTES} are kept"),
        ));
    }
    Ok(())
}

impl Aggregate for Scan {
    // A scan's state holds its observations: too large to keep for many scans at once.
    const CACHE_STATE: bool = false;

    type Command = ScanCommand;
    type Event = ScanEvent;

    fn handle(&self, command: ScanCommand) -> Result<Vec<ScanEvent>, DomainError> {
        use ScanCommand as C;
        let event: ScanEvent = match command {
            C::Start {
                scan_id,
                tenant,
                spec,
            } => {
                if self.status.is_some() {
                    return Err(DomainError::AlreadyExists("scan"));
                }
                ScanRequested::new(scan_id, tenant, spec).into()
            }
            C::Cancel { reason } => {
                self.unfinished_status()?;
                let reason = reason.map(|r| bounded_reason("reason", &r)).transpose()?;
                ScanCancelled { reason }.into()
            }
            C::Delete => {
                let status = self.live_status()?;
                if !status.is_terminal() {
                    return Err(DomainError::ScanActive {
                        status: status.as_str(),
                    });
                }
                ScanDeleted {}.into()
            }
            C::Begin { worker_id } => {
                let status = self.unfinished_status()?;
                if status == ScanStatus::Finalizing {
                    return Err(DomainError::OutOfOrder {
                        event: "ScanStarted",
                        status: status.as_str(),
                    });
                }
                if worker_id.is_empty() || worker_id.len() > 128 {
                    return Err(DomainError::invalid("worker_id", "must be 1-128 bytes"));
                }
                // The same worker repeating itself (a retried publish) changes nothing.
                if self.worker_id.as_deref() == Some(worker_id.as_str()) {
                    return Ok(vec![]);
                }
                ScanStarted { worker_id }.into()
            }
            C::Observe(batch) => return self.observe(batch),
            C::ReportProbeFailure(failure) => {
                self.require_running("ProbeFailed")?;
                if self.observations.contains(&failure.observation_id) {
                    return Ok(vec![]);
                }
                let reason = bounded_reason("reason", &failure.reason)?;
                ProbeFailed { reason, ..failure }.into()
            }
            C::Finalize => {
                self.require_running("ScanFinalizing")?;
                ScanFinalizing {
                    observation_count: self.observation_count(),
                }
                .into()
            }
            C::Complete { ruleset_version } => {
                match self.live_status()? {
                    ScanStatus::Running | ScanStatus::Finalizing => {}
                    status if status.is_terminal() => {
                        return Err(DomainError::ScanTerminal {
                            status: status.as_str(),
                        });
                    }
                    status => {
                        return Err(DomainError::OutOfOrder {
                            event: "ScanCompleted",
                            status: status.as_str(),
                        });
                    }
                }
                if ruleset_version.is_empty() {
                    return Err(DomainError::invalid("ruleset_version", "must not be empty"));
                }
                ScanCompleted {
                    ruleset_version,
                    observation_count: self.observation_count(),
                }
                .into()
            }
            C::Fail { reason } => {
                self.unfinished_status()?;
                ScanFailed {
                    reason: bounded_reason("reason", &reason)?,
                }
                .into()
            }
            C::KeepContentSample(sample) => {
                self.require_running("ContentSampleKept")?;
                self.require_content_key()?;
                if self.sampled.contains(&sample.url) {
                    return Ok(vec![]);
                }
                let path = url::Url::parse(&sample.url)
                    .map(|url| url.path().to_owned())
                    .map_err(|_| DomainError::invalid("url", "must be an absolute URL"))?;
                if crate::content::looks_secret(&path) {
                    return Err(DomainError::invalid(
                        "url",
                        "a path that looks like it serves secrets is never sampled",
                    ));
                }
                if sample.sample_bytes as usize > crate::content::MAX_SAMPLE_BYTES {
                    return Err(DomainError::invalid(
                        "sample_bytes",
                        format!(
                            "at most {} bytes are kept",
                            crate::content::MAX_SAMPLE_BYTES
                        ),
                    ));
                }
                sample.into()
            }
            C::RecordContentKeyDestroyed { reason } => {
                if self.status.is_none() {
                    return Err(DomainError::NotFound("scan"));
                }
                if self.content_sampling().is_none() {
                    return Err(DomainError::invalid(
                        "content_sample",
                        "the scan keeps no content samples",
                    ));
                }
                // Destroyed once; a second report (a retried sweep, an erasure) changes nothing.
                if self.content_key_destroyed.is_some() {
                    return Ok(vec![]);
                }
                ContentKeyDestroyed { reason }.into()
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &ScanEvent) {
        match event {
            ScanEvent::ScanRequested(requested) => {
                self.requested = Some(requested.clone());
                self.status = Some(ScanStatus::Queued);
            }
            ScanEvent::ScanStarted(started) => {
                self.status = Some(ScanStatus::Running);
                self.worker_id = Some(started.worker_id.clone());
            }
            ScanEvent::ProbeObserved(observed) => {
                self.observations.insert(observed.observation_id);
            }
            ScanEvent::ProbeFailed(failed) => {
                self.observations.insert(failed.observation_id);
            }
            ScanEvent::ScanFinalizing(_) => self.status = Some(ScanStatus::Finalizing),
            ScanEvent::ScanCompleted(_) => self.status = Some(ScanStatus::Completed),
            ScanEvent::ScanFailed(_) => self.status = Some(ScanStatus::Failed),
            ScanEvent::ScanCancelled(_) => self.status = Some(ScanStatus::Cancelled),
            ScanEvent::ScanDeleted(_) => self.deleted = true,
            ScanEvent::ContentSampleKept(sample) => {
                self.sampled.insert(sample.url.clone());
            }
            ScanEvent::ContentKeyDestroyed(destroyed) => {
                self.content_key_destroyed = Some(destroyed.reason);
            }
        }
    }
}

impl ScanEvent {
    /// Whether the event ends the scan: completed, failed or cancelled.
    pub fn ends_scan(&self) -> bool {
        matches!(
            self,
            Self::ScanCompleted(_) | Self::ScanFailed(_) | Self::ScanCancelled(_)
        )
    }
}

impl Scan {
    /// The content sampling the scan asked for, if any.
    pub fn content_sampling(&self) -> Option<ContentSampling> {
        self.requested.as_ref().and_then(|r| r.content_sample)
    }

    /// Samples may be kept: the scan asked for them and its key still exists.
    fn require_content_key(&self) -> Result<(), DomainError> {
        if self.content_sampling().is_none() {
            return Err(DomainError::invalid(
                "content_sample",
                "the scan did not ask for content samples",
            ));
        }
        if let Some(reason) = self.content_key_destroyed {
            return Err(DomainError::invalid(
                "content_sample",
                format!("the scan's content key was destroyed ({})", reason.as_str()),
            ));
        }
        Ok(())
    }

    /// The events of an `Observe` command: every observation not recorded yet, in order.
    fn observe(&self, batch: Vec<ProbeObserved>) -> Result<Vec<ScanEvent>, DomainError> {
        self.require_running("ProbeObserved")?;
        if batch.len() > MAX_OBSERVATIONS_PER_COMMAND {
            return Err(DomainError::invalid(
                "observations",
                format!("at most {MAX_OBSERVATIONS_PER_COMMAND} per command"),
            ));
        }
        let mut new = HashSet::new();
        let mut events = Vec::with_capacity(batch.len());
        for observation in batch {
            if self.observations.contains(&observation.observation_id)
                || !new.insert(observation.observation_id)
            {
                continue;
            }
            check_observation_size(&observation.observation)?;
            events.push(observation.into());
        }
        Ok(events)
    }

    fn observation_count(&self) -> u32 {
        u32::try_from(self.observations.len()).unwrap_or(u32::MAX)
    }
}
