//! The scans projector: scans and their summaries, findings (derived by the rules at ScanCompleted),
//! fingerprint state across scans with its history, triage and comments, diffs and regressions,
//! domain history (whose last row is the domain's latest scan), trends, compliance coverage, tenant
//! totals and notifications.
//!
//! These read models live in one projector because each is derived from the others within one event:
//! a ScanCompleted's findings decide the diff, which decides regressions, which decide notifications
//! and the tenant's unresolved counts. One projector keeps them consistent at every checkpoint.
//!
//! Findings need the scan's observations. The projector keeps the ProbeObserved events of scans whose
//! ScanRequested it applied in this run; for any other scan (a run that started mid-scan) it reads the
//! scan's stream, taking only events before ScanCompleted. Either way the observations are exactly
//! those the log holds before completion, so the findings are the same.
//!
//! Before a batch is applied, the documents its completed scans will read by key (target, domain,
//! trend rows) are read in a few queries ([`Batch::prefetch`]). What each completed scan's own
//! observations decide (its assessment, analysis and coverage: [`Assessed`]) depends on no other
//! scan, so it is computed for the whole batch on every core, as is the decoding of the batch's
//! events ([`map_on_cores`]); the batch then applies in log order, answered from memory.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vantage_app::{Decode, scan_observations, scan_of};
use vantage_domain::DomainEvent;
use vantage_domain::ids::ScanId;
use vantage_domain::notification::NotificationEvent;
use vantage_domain::scan::{ProbeObserved, ScanEvent, ScanRequested, ScanStatus};
use vantage_domain::triage::{TriageEvent, TriageState};
use vantage_rules::analysis::{Analysis, analyze};
use vantage_rules::compliance::{Coverage, FRAMEWORKS, coverage};
use vantage_rules::{Assessment, Finding, ScanFacts, Severity, SeverityCounts, assess};
use vantage_store::{EventStore, RecordedEvent};

use crate::ProjectionError;
use crate::db::{Batch, Cell, Table};
use crate::model::*;
use crate::parallel::map_on_cores;
use crate::runtime::Projector;

/// Scans whose observations are buffered at most at once; beyond it the oldest are dropped and read
/// back from the log at completion.
const MAX_BUFFERED_SCANS: usize = 10_000;

/// Events a thread decodes at least, when a batch's decoding is spread over the cores.
const DECODES_PER_THREAD: usize = 256;

/// The namespace of notification ids (UUIDv5 of scan, kind and fingerprint: stable across rebuilds).
const NOTIFICATION_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_2a4e_8b7d_4e0a_9c3f_6d2b_1a0e_7c41);

pub struct ScansProjector {
    store: Arc<dyn EventStore>,
    /// Observations of scans whose first event this run applied, in log order.
    observations: HashMap<String, Vec<ProbeObserved>>,
    buffered_order: Vec<String>,
}

impl std::fmt::Debug for ScansProjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScansProjector")
            .field("buffered_scans", &self.observations.len())
            .finish()
    }
}

impl ScansProjector {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            observations: HashMap::new(),
            buffered_order: Vec::new(),
        }
    }
}

/// The scans projector's name, which its checkpoint is kept under.
pub const NAME: &str = "scans";

pub static TABLES: &[&Table] = &[
    &SCANS,
    &FINDINGS,
    &FINGERPRINTS,
    &FINGERPRINT_HISTORY,
    &COMMENTS,
    &DIFFS,
    &TARGETS,
    &DOMAIN_HISTORY,
    &DOMAINS,
    &TRENDS,
    &COVERAGE,
    &TENANTS,
    &NOTIFICATIONS,
    &REOPEN_DUE,
    &CONTENT_DUE,
];

fn is_type<E: DomainEvent>(event_type: &str) -> bool {
    E::CATALOG.iter().any(|info| info.event_type == event_type)
}

#[async_trait]
impl Projector for ScansProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static Table] {
        TABLES
    }

    fn reset(&mut self) {
        self.observations.clear();
        self.buffered_order.clear();
    }

    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        let mut scan_events = map_on_cores(events, DECODES_PER_THREAD, |recorded| {
            let is_scan = is_type::<ScanEvent>(recorded.event.event_type.as_str());
            is_scan
                .then(|| recorded.event.decode::<ScanEvent>())
                .transpose()
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        let targets = prefetch_completions(events, &scan_events, batch).await?;
        let completions = self.gather(events, &mut scan_events, targets).await?;
        let mut assessed: HashMap<usize, Result<Assessed, ProjectionError>> = completions
            .iter()
            .map(|completion| completion.index)
            .zip(map_on_cores(&completions, 1, Completion::assess))
            .collect();
        drop(completions);
        for (index, (recorded, scan_event)) in events.iter().zip(scan_events).enumerate() {
            let event = &recorded.event;
            let ty = event.event_type.as_str();
            if let Some(decoded) = scan_event {
                apply_scan(recorded, decoded, assessed.remove(&index), batch).await?;
            } else if is_type::<TriageEvent>(ty) {
                let decoded = event.decode::<TriageEvent>()?;
                apply_triage(recorded, decoded, batch).await?;
            } else if is_type::<NotificationEvent>(ty) {
                let NotificationEvent::NotificationRead(read) =
                    event.decode::<NotificationEvent>()?;
                let tenant = event.metadata.tenant.as_str();
                if let Some(id) = read.notification_id
                    && let Some(mut doc) = batch
                        .get::<NotificationDoc>(vec![id.to_string().into()])
                        .await?
                    && doc.tenant == tenant
                {
                    doc.read = true;
                    batch.put(doc);
                }
                if let Some(up_to) = read.up_to_position {
                    let stats = stats_of(batch, tenant, WHOLE_TENANT).await?;
                    stats.notifications_read_up_to = stats.notifications_read_up_to.max(up_to);
                }
            }
        }
        Ok(())
    }
}

/// A completed scan of a batch, with what its assessment needs.
struct Completion {
    /// The ScanCompleted's place in the batch.
    index: usize,
    scan_id: String,
    tenant: String,
    target: String,
    ruleset: String,
    observations: Vec<ProbeObserved>,
}

/// What a completed scan's own observations decide, whatever other scans did.
struct Assessed {
    assessment: Assessment,
    analysis: Analysis,
    /// One per framework of [`FRAMEWORKS`], in its order.
    coverage: Vec<Coverage>,
}

impl Completion {
    fn assess(&self) -> Result<Assessed, ProjectionError> {
        let unknown = |e: vantage_rules::UnknownRuleset| {
            ProjectionError::Corrupt(format!("scan {}: {e}", self.scan_id))
        };
        let facts = ScanFacts {
            tenant: &self.tenant,
            target: &self.target,
            observations: &self.observations,
        };
        let assessment = assess(&self.ruleset, &facts).map_err(unknown)?;
        let coverage = FRAMEWORKS
            .iter()
            .map(|framework| coverage(framework, &self.ruleset, &assessment.findings))
            .collect::<Result<_, _>>()
            .map_err(unknown)?;
        Ok(Assessed {
            analysis: analyze(&self.observations),
            assessment,
            coverage,
        })
    }
}

/// The `project` of the tenant-wide totals and trends.
const WHOLE_TENANT: &str = "";

/// The totals a scan counts in: the whole tenant's and its project's.
fn scopes(scan: &ScanDoc) -> [&str; 2] {
    [WHOLE_TENANT, scan.spec.project.as_str()]
}

/// The totals of `tenant` (`project` [`WHOLE_TENANT`]) or of one of its projects, to change in
/// place.
async fn stats_of<'b>(
    batch: &'b mut Batch<'_>,
    tenant: &str,
    project: &str,
) -> Result<&'b mut TenantStatsDoc, ProjectionError> {
    batch
        .get_or_insert(vec![tenant.into(), project.into()], || {
            TenantStatsDoc::new(tenant, project)
        })
        .await
}

/// Moves a scan's status, keeping the tenant's counts by status in step.
async fn set_status(
    batch: &mut Batch<'_>,
    scan: &mut ScanDoc,
    status: ScanStatus,
    at: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    for project in scopes(scan) {
        let stats = stats_of(batch, &scan.tenant, project).await?;
        if let Some(n) = stats.scans_by_status.get_mut(scan.status.as_str()) {
            *n = n.saturating_sub(1);
        }
        *stats
            .scans_by_status
            .entry(status.as_str().to_owned())
            .or_default() += 1;
    }
    scan.status = status;
    scan.updated_at = at;
    if status.is_terminal() {
        scan.finished_at = Some(at);
    }
    Ok(())
}

impl ScansProjector {
    fn buffer_start(&mut self, scan_id: &str) {
        if self.observations.len() >= MAX_BUFFERED_SCANS && !self.buffered_order.is_empty() {
            let oldest = self.buffered_order.remove(0);
            self.observations.remove(&oldest);
        }
        self.observations.insert(scan_id.to_owned(), Vec::new());
        self.buffered_order.push(scan_id.to_owned());
    }

    fn buffer_end(&mut self, scan_id: &str) -> Option<Vec<ProbeObserved>> {
        let taken = self.observations.remove(scan_id);
        if taken.is_some() {
            self.buffered_order.retain(|s| s != scan_id);
        }
        taken
    }

    /// The scan's observations before stream version `before`, from the buffer or the log.
    async fn observations(
        &mut self,
        id: ScanId,
        scan_id: &str,
        before: u64,
    ) -> Result<Vec<ProbeObserved>, ProjectionError> {
        if let Some(buffered) = self.buffer_end(scan_id) {
            return Ok(buffered);
        }
        let observations: Vec<_> =
            scan_observations::<ProjectionError>(self.store.as_ref(), id, Some(before)).await?;
        Ok(observations
            .into_iter()
            .map(|(observed, _)| observed)
            .collect())
    }

    /// Keeps the batch's observations with their scans (taking them out of `scan_events`), and
    /// hands over each completed scan's, with the tenant and target `targets` names for it, as a
    /// [`Completion`]. A completed scan `targets` does not name was deleted: nothing to assess.
    async fn gather(
        &mut self,
        events: &[RecordedEvent],
        scan_events: &mut [Option<ScanEvent>],
        mut targets: HashMap<String, (String, String)>,
    ) -> Result<Vec<Completion>, ProjectionError> {
        let mut completions = Vec::new();
        for (index, (recorded, slot)) in events.iter().zip(scan_events.iter_mut()).enumerate() {
            let (Some(event), Some(id)) = (slot.as_ref(), scan_of(&recorded.event.stream)) else {
                continue;
            };
            let scan_id = id.to_string();
            match event {
                ScanEvent::ScanRequested(_) => self.buffer_start(&scan_id),
                ScanEvent::ProbeObserved(_) => {
                    if let Some(ScanEvent::ProbeObserved(observed)) = slot.take()
                        && let Some(buffer) = self.observations.get_mut(&scan_id)
                    {
                        buffer.push(observed);
                    }
                }
                ScanEvent::ScanCompleted(completed) => {
                    let Some((tenant, target)) = targets.remove(&scan_id) else {
                        self.buffer_end(&scan_id);
                        continue;
                    };
                    let ruleset = completed.ruleset_version.clone();
                    let observations = self
                        .observations(id, &scan_id, recorded.event.stream_version)
                        .await?;
                    completions.push(Completion {
                        index,
                        scan_id,
                        tenant,
                        target,
                        ruleset,
                        observations,
                    });
                }
                ScanEvent::ScanFailed(_)
                | ScanEvent::ScanCancelled(_)
                | ScanEvent::ScanDeleted(_) => {
                    self.buffer_end(&scan_id);
                }
                ScanEvent::ScanStarted(_)
                | ScanEvent::ProbeFailed(_)
                | ScanEvent::ScanFinalizing(_)
                | ScanEvent::ContentSampleKept(_)
                | ScanEvent::ContentKeyDestroyed(_) => {}
            }
        }
        Ok(completions)
    }
}

/// Applies one scan event; a ScanCompleted's `assessed` is what [`Completion::assess`] made of it.
async fn apply_scan(
    recorded: &RecordedEvent,
    event: ScanEvent,
    assessed: Option<Result<Assessed, ProjectionError>>,
    batch: &mut Batch<'_>,
) -> Result<(), ProjectionError> {
    let Some(id) = scan_of(&recorded.event.stream) else {
        return Ok(());
    };
    let scan_id = id.to_string();
    let scan_id = scan_id.as_str();
    let at = recorded.event.recorded_at;
    let position = recorded.global_position;
    if let ScanEvent::ScanRequested(requested) = &event {
        let doc = requested_doc(scan_id, requested, recorded);
        for project in scopes(&doc) {
            let stats = stats_of(batch, &doc.tenant, project).await?;
            stats.scans_total += 1;
            *stats.scans_by_status.entry("queued".into()).or_default() += 1;
            stats.last_scan_at = Some(at);
        }
        batch.put(doc);
        if let Some(sampling) = requested.content_sample {
            batch.put(ContentDueDoc {
                scan_id: scan_id.to_owned(),
                tenant: requested.tenant.as_str().to_owned(),
                expires_at: sampling.expires_at(recorded.event.occurred_at),
            });
        }
        return Ok(());
    }
    if let ScanEvent::ContentKeyDestroyed(_) = event {
        // Also after deletion: the to-do entry goes whatever became of the scan.
        batch.delete::<ContentDueDoc>(vec![scan_id.into()]);
        return Ok(());
    }
    if let ScanEvent::ProbeObserved(_) = event {
        // Kept with its scan by `gather`.
        return Ok(());
    }
    let Some(mut scan) = batch.get::<ScanDoc>(vec![scan_id.into()]).await? else {
        // A deleted scan (or events of a scan this log never requested): nothing to show.
        return Ok(());
    };
    match event {
        ScanEvent::ScanStarted(started) => {
            scan.worker_id = Some(started.worker_id);
            scan.started_at = Some(at);
            set_status(batch, &mut scan, ScanStatus::Running, at).await?;
        }
        ScanEvent::ProbeFailed(_) => {
            scan.failed_probes += 1;
            scan.updated_at = at;
        }
        ScanEvent::ScanFinalizing(finalizing) => {
            scan.observation_count = finalizing.observation_count;
            set_status(batch, &mut scan, ScanStatus::Finalizing, at).await?;
        }
        ScanEvent::ScanCompleted(completed) => {
            let assessed = assessed.ok_or_else(|| {
                ProjectionError::Corrupt(format!("scan {scan_id} completed unassessed"))
            })??;
            scan.observation_count = completed.observation_count;
            scan.ruleset_version = Some(completed.ruleset_version.clone());
            scan.completed_position = Some(position);
            set_status(batch, &mut scan, ScanStatus::Completed, at).await?;
            complete(
                batch,
                &mut scan,
                &completed.ruleset_version,
                assessed,
                recorded,
            )
            .await?;
        }
        ScanEvent::ScanFailed(failed) => {
            scan.failure_reason = Some(failed.reason.clone());
            set_status(batch, &mut scan, ScanStatus::Failed, at).await?;
            notify(
                batch,
                &scan,
                NotificationKind::ScanFailed,
                None,
                recorded,
                format!("Scan of {} failed: {}", scan.domain, failed.reason),
            );
        }
        ScanEvent::ScanCancelled(cancelled) => {
            scan.cancel_reason = cancelled.reason;
            set_status(batch, &mut scan, ScanStatus::Cancelled, at).await?;
        }
        ScanEvent::ScanDeleted(_) => {
            return delete_scan(batch, scan).await;
        }
        ScanEvent::ScanRequested(_)
        | ScanEvent::ProbeObserved(_)
        | ScanEvent::ContentSampleKept(_)
        | ScanEvent::ContentKeyDestroyed(_) => {}
    }
    batch.put(scan);
    Ok(())
}

/// A scan's document as its request makes it.
fn requested_doc(scan_id: &str, requested: &ScanRequested, recorded: &RecordedEvent) -> ScanDoc {
    let at = recorded.event.recorded_at;
    let position = recorded.global_position;
    ScanDoc {
        id: scan_id.to_owned(),
        tenant: requested.tenant.as_str().to_owned(),
        status: ScanStatus::Queued,
        domain: requested.target.host().to_owned(),
        spec: requested.spec(),
        created_at: at,
        updated_at: at,
        started_at: None,
        finished_at: None,
        worker_id: None,
        observation_count: 0,
        failed_probes: 0,
        failure_reason: None,
        cancel_reason: None,
        ruleset_version: None,
        grades: None,
        overall: None,
        findings: None,
        score: None,
        previous_scan_id: None,
        analysis: None,
        requested_position: position,
        completed_position: None,
    }
}

/// The day a trend row counts a scan completed at `at` in.
fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// The key of the target a scan scanned (its last completed scan and fingerprints).
fn target_key(scan: &ScanDoc) -> Vec<Cell> {
    vec![
        scan.tenant.as_str().into(),
        scan.spec.target.as_str().into(),
    ]
}

/// The key of a scan's domain.
fn domain_key(scan: &ScanDoc) -> Vec<Cell> {
    vec![scan.tenant.as_str().into(), scan.domain.as_str().into()]
}

/// The key of a scan's trend row of `day` in `project`: its domain's (`domain`), or the day's sum
/// over domains (`domain` empty).
fn trend_key(scan: &ScanDoc, project: &str, domain: &str, day: &str) -> Vec<Cell> {
    vec![
        scan.tenant.as_str().into(),
        project.into(),
        domain.into(),
        day.into(),
    ]
}

/// Reads, in a few queries, what the batch's completed scans would otherwise read one key at a
/// time: each one's target, domain and trend rows (and the document of a scan requested before the
/// batch). A scan requested in the batch is known from its request. Returns each completed scan's
/// tenant and target by scan id; a deleted scan has none.
async fn prefetch_completions(
    events: &[RecordedEvent],
    scan_events: &[Option<ScanEvent>],
    batch: &mut Batch<'_>,
) -> Result<HashMap<String, (String, String)>, ProjectionError> {
    let mut requested: HashMap<String, ScanDoc> = HashMap::new();
    let mut completed: Vec<(String, DateTime<Utc>)> = Vec::new();
    for (recorded, event) in events.iter().zip(scan_events) {
        let (Some(event), Some(id)) = (event, scan_of(&recorded.event.stream)) else {
            continue;
        };
        let id = id.to_string();
        match event {
            ScanEvent::ScanRequested(request) => {
                let doc = requested_doc(&id, request, recorded);
                requested.insert(id, doc);
            }
            ScanEvent::ScanCompleted(_) => completed.push((id, recorded.event.recorded_at)),
            _ => {}
        }
    }
    let mut named = HashMap::new();
    if completed.is_empty() {
        return Ok(named);
    }
    let earlier: Vec<Vec<Cell>> = completed
        .iter()
        .filter(|(id, _)| !requested.contains_key(id))
        .map(|(id, _)| vec![id.as_str().into()])
        .collect();
    batch.prefetch::<ScanDoc>(earlier).await?;
    let (mut targets, mut domains, mut trends) = (Vec::new(), Vec::new(), Vec::new());
    for (id, at) in &completed {
        let read;
        let scan = match requested.get(id) {
            Some(doc) => doc,
            None => match batch.get::<ScanDoc>(vec![id.as_str().into()]).await? {
                Some(doc) => {
                    read = doc;
                    &read
                }
                None => continue,
            },
        };
        named.insert(
            id.clone(),
            (scan.tenant.clone(), scan.spec.target.as_str().to_owned()),
        );
        targets.push(target_key(scan));
        domains.push(domain_key(scan));
        let day = day_of(*at);
        for project in scopes(scan) {
            trends.push(trend_key(scan, project, &scan.domain, &day));
            trends.push(trend_key(scan, project, "", &day));
        }
    }
    batch.prefetch::<TargetDoc>(targets).await?;
    batch.prefetch::<DomainDoc>(domains).await?;
    batch.prefetch::<TrendDoc>(trends).await?;
    Ok(named)
}

/// A notification with an id stable across rebuilds.
fn notify(
    batch: &mut Batch<'_>,
    scan: &ScanDoc,
    kind: NotificationKind,
    finding: Option<&Finding>,
    recorded: &RecordedEvent,
    title: String,
) {
    let kind_name = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let seed = format!(
        "{}/{kind_name}/{}",
        scan.id,
        finding.map_or("", |f| f.fingerprint.as_str())
    );
    batch.put(NotificationDoc {
        id: Uuid::new_v5(&NOTIFICATION_NAMESPACE, seed.as_bytes()).to_string(),
        tenant: scan.tenant.clone(),
        kind,
        title,
        scan_id: scan.id.clone(),
        domain: scan.domain.clone(),
        fingerprint: finding.map(|f| f.fingerprint.clone()),
        severity: finding.map(|f| f.severity),
        project: scan.spec.project.to_string(),
        created_at: recorded.event.recorded_at,
        position: recorded.global_position,
        read: false,
    })
}

/// Writes a fingerprint, its history row, and the tenant's unresolved counts as they change.
async fn put_fingerprint(
    batch: &mut Batch<'_>,
    before: Option<&FingerprintDoc>,
    after: FingerprintDoc,
) -> Result<(), ProjectionError> {
    let weight =
        |doc: Option<&FingerprintDoc>| doc.filter(|d| d.unresolved()).and_then(|d| d.severity);
    let (old, new) = (weight(before), weight(Some(&after)));
    // The whole tenant's counts, then those of the project it left and of the one it is in.
    let old_project = before.map_or(after.project.as_str(), |b| b.project.as_str());
    let mut moves = vec![(WHOLE_TENANT, old, new)];
    if old_project == after.project {
        moves.push((old_project, old, new));
    } else {
        moves.push((old_project, old, None));
        moves.push((after.project.as_str(), None, new));
    }
    for (project, old, new) in moves {
        if old == new {
            continue;
        }
        let stats = stats_of(batch, &after.tenant, project).await?;
        if let Some(severity) = old {
            stats.unresolved.add(severity, -1);
        }
        if let Some(severity) = new {
            stats.unresolved.add(severity, 1);
        }
    }
    batch.put(FingerprintVersion {
        position: after.position,
        state: after.clone(),
    });
    batch.put(after);
    Ok(())
}

/// Everything a completed scan changes, given what its observations decided.
async fn complete(
    batch: &mut Batch<'_>,
    scan: &mut ScanDoc,
    ruleset: &str,
    assessed: Assessed,
    recorded: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let at = recorded.event.recorded_at;
    let position = recorded.global_position;
    let target = scan.spec.target.as_str().to_owned();
    let Assessed {
        assessment,
        analysis,
        coverage,
    } = assessed;
    let findings = &assessment.findings;
    let counts = assessment.counts;
    let grades = assessment.grades.clone();
    scan.findings = Some(counts);
    scan.score = assessment.overall.score;
    scan.analysis = Some(analysis);
    scan.grades = Some(grades.clone());
    scan.overall = Some(assessment.overall.clone());

    for finding in findings {
        batch.put(FindingDoc {
            scan_id: scan.id.clone(),
            tenant: scan.tenant.clone(),
            finding: finding.clone(),
        });
    }
    for coverage in coverage {
        batch.put(CoverageDoc {
            scan_id: scan.id.clone(),
            tenant: scan.tenant.clone(),
            coverage,
        });
    }

    // Diff against the previous completed scan of the same target.
    let previous = batch.get::<TargetDoc>(target_key(scan)).await?;
    scan.previous_scan_id = previous.as_ref().map(|p| p.latest_scan_id.clone());
    let before: HashSet<&str> = previous
        .as_ref()
        .map(|p| p.fingerprints.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let now: HashSet<&str> = findings.iter().map(|f| f.fingerprint.as_str()).collect();
    let mut diff = DiffDoc {
        scan_id: scan.id.clone(),
        tenant: scan.tenant.clone(),
        previous_scan_id: scan.previous_scan_id.clone(),
        new: Vec::new(),
        fixed: Vec::new(),
        unchanged: Vec::new(),
        regressions: Vec::new(),
    };

    // Every fingerprint this scan touches (seen now, or fixed since the previous scan) in one read.
    let fingerprint_key =
        |fingerprint: &str| -> Vec<Cell> { vec![scan.tenant.as_str().into(), fingerprint.into()] };
    let touched = now
        .union(&before)
        .map(|fingerprint| fingerprint_key(fingerprint));
    batch.prefetch::<FingerprintDoc>(touched.collect()).await?;

    for finding in findings {
        let key = fingerprint_key(&finding.fingerprint);
        let existing = batch.get::<FingerprintDoc>(key).await?;
        let mut state = existing
            .clone()
            .unwrap_or_else(|| FingerprintDoc::new(&scan.tenant, &finding.fingerprint));
        let seen_before = state.first_seen_at.is_some();
        let was_fixed = seen_before && (!state.present || state.triage == TriageState::Fixed);
        if before.contains(finding.fingerprint.as_str()) {
            diff.unchanged.push(finding.fingerprint.clone());
        } else {
            diff.new.push(finding.fingerprint.clone());
        }
        let regression = was_fixed;
        if regression {
            diff.regressions.push(finding.fingerprint.clone());
            state.regressions += 1;
            // Triaged fixed, yet seen again: the triage stays as the log says until the system's
            // reopening (an event, so the stream, these models and the audit trail agree) lands.
            if state.triage == TriageState::Fixed {
                batch.put(ReopenDueDoc {
                    tenant: scan.tenant.clone(),
                    fingerprint: finding.fingerprint.clone(),
                    scan_id: scan.id.clone(),
                    position,
                });
            }
        }
        state.rule_id = Some(finding.rule_id.clone());
        state.title = Some(finding.title.clone());
        state.severity = Some(finding.severity);
        state.priority = finding.priority.score;
        state.asset = Some(finding.asset.clone());
        state.target = Some(target.clone());
        state.domain = Some(scan.domain.clone());
        if state.first_seen_at.is_none() {
            state.first_seen_at = Some(at);
            state.first_scan_id = Some(scan.id.clone());
        }
        state.last_seen_at = Some(at);
        state.last_scan_id = Some(scan.id.clone());
        state.project = scan.spec.project.to_string();
        state.present = true;
        state.fixed_at = None;
        state.times_seen += 1;
        state.position = position;
        put_fingerprint(batch, existing.as_ref(), state).await?;

        let certificate = matches!(
            finding.rule_id.as_str(),
            "tls.certificate-expiring" | "tls.certificate-expired"
        );
        let first_time = !seen_before;
        if certificate && (first_time || regression) {
            notify(
                batch,
                scan,
                NotificationKind::CertificateExpiring,
                Some(finding),
                recorded,
                format!("{} on {}", finding.title, scan.domain),
            );
        } else if regression {
            notify(
                batch,
                scan,
                NotificationKind::Regression,
                Some(finding),
                recorded,
                format!("Regression on {}: {}", scan.domain, finding.title),
            );
        } else if first_time && finding.severity >= Severity::High {
            notify(
                batch,
                scan,
                NotificationKind::NewFinding,
                Some(finding),
                recorded,
                format!(
                    "New {} finding on {}: {}",
                    severity_name(finding.severity),
                    scan.domain,
                    finding.title
                ),
            );
        }
    }
    let mut fixed: Vec<&str> = before.difference(&now).copied().collect();
    fixed.sort_unstable();
    for fingerprint in fixed {
        diff.fixed.push(fingerprint.to_owned());
        if let Some(existing) = batch
            .get::<FingerprintDoc>(fingerprint_key(fingerprint))
            .await?
        {
            let mut state = existing.clone();
            state.present = false;
            state.fixed_at = Some(at);
            state.position = position;
            put_fingerprint(batch, Some(&existing), state).await?;
        }
    }
    diff.new.sort();
    diff.unchanged.sort();
    diff.regressions.sort();
    batch.put(diff);
    batch.put(TargetDoc {
        tenant: scan.tenant.clone(),
        target: target.clone(),
        latest_scan_id: scan.id.clone(),
        fingerprints: findings.iter().map(|f| f.fingerprint.clone()).collect(),
    });

    // Domain history (its last row is the domain's latest scan) and the tenant's domain count.
    let mut domain = batch
        .get::<DomainDoc>(domain_key(scan))
        .await?
        .unwrap_or_else(|| DomainDoc {
            tenant: scan.tenant.clone(),
            domain: scan.domain.clone(),
            completed_scans: 0,
        });
    if domain.completed_scans == 0 {
        stats_of(batch, &scan.tenant, WHOLE_TENANT).await?.domains += 1;
    }
    let project = stats_of(batch, &scan.tenant, scan.spec.project.as_str()).await?;
    if project.project_domains.insert(scan.domain.clone()) {
        project.domains += 1;
    }
    domain.completed_scans += 1;
    batch.put(domain);
    batch.put(DomainScanDoc {
        tenant: scan.tenant.clone(),
        domain: scan.domain.clone(),
        position,
        scan_id: scan.id.clone(),
        target: target.clone(),
        completed_at: at,
        score: assessment.overall.score,
        overall: Some(assessment.overall.clone()),
        findings: counts,
        grades,
        ruleset_version: ruleset.to_owned(),
    });

    // Trends, for the whole tenant and for the scan's project: the domain's day, and the day
    // summing each domain's latest counts.
    let day = day_of(at);
    for project in scopes(scan) {
        let empty = |domain: &str| TrendDoc {
            tenant: scan.tenant.clone(),
            project: project.to_owned(),
            domain: domain.to_owned(),
            day: day.clone(),
            scans: 0,
            score: None,
            findings: SeverityCounts::default(),
            per_domain: Default::default(),
        };
        let key = |domain: &str| trend_key(scan, project, domain, &day);
        let domain_day = batch
            .get_or_insert(key(&scan.domain), || empty(&scan.domain))
            .await?;
        domain_day.scans += 1;
        domain_day.score = assessment.overall.score;
        domain_day.findings = counts;
        let all_day = batch.get_or_insert(key(""), || empty("")).await?;
        all_day.scans += 1;
        all_day.per_domain.insert(scan.domain.clone(), counts);
        let mut total = SeverityCounts::default();
        for counts in all_day.per_domain.values() {
            total.merge(counts);
        }
        all_day.findings = total;
        all_day.score = Some(total.score());
    }
    Ok(())
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Info => "info",
    }
}

/// ScanDeleted: the read models drop the scan (the log keeps it).
async fn delete_scan(batch: &mut Batch<'_>, scan: ScanDoc) -> Result<(), ProjectionError> {
    for project in scopes(&scan) {
        let stats = stats_of(batch, &scan.tenant, project).await?;
        stats.scans_total = stats.scans_total.saturating_sub(1);
        if let Some(n) = stats.scans_by_status.get_mut(scan.status.as_str()) {
            *n = n.saturating_sub(1);
        }
    }
    if scan.completed_position.is_some()
        && let Some(mut domain) = batch.get::<DomainDoc>(domain_key(&scan)).await?
    {
        domain.completed_scans = domain.completed_scans.saturating_sub(1);
        batch.put(domain);
    }
    let id: Cell = scan.id.as_str().into();
    for table in [&FINDINGS, &COVERAGE, &DOMAIN_HISTORY] {
        let name = batch.table(table);
        batch
            .execute(
                &format!("DELETE FROM {name} WHERE scan_id = $1"),
                std::slice::from_ref(&id),
            )
            .await?;
    }
    batch.delete::<DiffDoc>(vec![id.clone()]);
    batch.delete::<ScanDoc>(vec![id]);
    Ok(())
}

async fn apply_triage(
    recorded: &RecordedEvent,
    event: TriageEvent,
    batch: &mut Batch<'_>,
) -> Result<(), ProjectionError> {
    let tenant = recorded.event.metadata.tenant.as_str();
    let at = recorded.event.recorded_at;
    let position = recorded.global_position;
    let fingerprint = match &event {
        TriageEvent::TriageSet(e) => e.fingerprint.as_str(),
        TriageEvent::CommentAdded(e) => e.fingerprint.as_str(),
        TriageEvent::CommentDeleted(e) => e.fingerprint.as_str(),
    }
    .to_owned();
    let key = vec![tenant.into(), fingerprint.as_str().into()];
    let existing = batch.get::<FingerprintDoc>(key).await?;
    let mut state = existing
        .clone()
        .unwrap_or_else(|| FingerprintDoc::new(tenant, &fingerprint));
    match event {
        TriageEvent::TriageSet(set) => {
            state.triage = set.state;
            state.triage_note = set.note;
            state.triage_updated_at = Some(at);
            state.triage_actor = Some(recorded.event.metadata.actor.clone());
            state.triage_reason = set.reason;
            // Any triage decision settles a pending reopening.
            batch.delete::<ReopenDueDoc>(vec![tenant.into(), fingerprint.as_str().into()]);
        }
        TriageEvent::CommentAdded(added) => {
            state.comment_count += 1;
            batch.put(CommentDoc {
                tenant: tenant.to_owned(),
                id: added.comment_id.to_string(),
                fingerprint: fingerprint.clone(),
                body: added.body,
                author: recorded.event.metadata.actor.clone(),
                created_at: at,
                position,
            });
        }
        TriageEvent::CommentDeleted(deleted) => {
            state.comment_count = state.comment_count.saturating_sub(1);
            batch.delete::<CommentDoc>(vec![tenant.into(), deleted.comment_id.to_string().into()]);
        }
    }
    state.position = position;
    put_fingerprint(batch, existing.as_ref(), state).await
}
