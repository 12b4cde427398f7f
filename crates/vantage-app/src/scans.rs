//! Scan commands and the read of one scan folded from its own stream (read-your-writes for pollers;
//! lists and filters read the scans projection). A scan's view is kept between reads, so a poll
//! costs one indexed read of what was appended since, and a scan is assessed once, when it ends.

use chrono::{DateTime, Utc};
use serde::Serialize;
use vantage_domain::DomainError;
use vantage_domain::content::ShredReason;
use vantage_domain::ids::ScanId;
use vantage_domain::scan::{ProbeObserved, Scan, ScanCommand, ScanEvent, ScanSpec, ScanStatus};
use vantage_domain::tenant::TenantId;
use vantage_store::StreamName;

use vantage_rules::Assessment;

use crate::Services;
use crate::pipeline::{AppError, CommandContext};
use crate::seams::new_id;
use crate::streams::{Decode, scan_stream};

/// One scan as its stream tells it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ScanView {
    pub id: ScanId,
    pub tenant: TenantId,
    pub status: ScanStatus,
    #[serde(flatten)]
    pub spec: ScanSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub observation_count: usize,
    pub failure_reason: Option<String>,
    /// The ruleset the scan was completed with (findings are derived with exactly it).
    pub ruleset_version: Option<String>,
    /// The headers and TLS grades of a completed scan, each naming its algorithm version.
    pub grades: Option<vantage_rules::grade::ScanGrades>,
    /// The overall score and grade of a completed scan under its ruleset.
    pub overall: Option<vantage_rules::Overall>,
    /// What the scan saw, summarised (once it has ended).
    pub analysis: Option<vantage_rules::analysis::Analysis>,
}

/// The pools of workers that take scans over a message broker (distributed mode), as the API asks
/// after them; each pool serves one vantage point.
#[async_trait::async_trait]
pub trait WorkerPools: Send + Sync {
    /// Whether the connection to the broker is up now (scans requested now are dispatched).
    fn connected(&self) -> bool;
    /// Whether some worker of `vantage_point` takes jobs now; `None` when that cannot be told (the
    /// broker unreachable).
    async fn serves(&self, vantage_point: &str) -> Option<bool>;
}

impl Services {
    /// StartScan: the target must pass the SSRF guard (resolved and checked) before anything is
    /// appended; then ScanRequested is recorded.
    pub async fn start_scan(
        &self,
        context: &CommandContext,
        spec: ScanSpec,
    ) -> Result<Result<ScanId, DomainError>, AppError> {
        if let Err(refused) = self.vet_project(&context.tenant, &spec.project).await? {
            return Ok(Err(refused));
        }
        if let Err(refused) = self.vet_host(spec.target.host()).await {
            return Ok(Err(refused));
        }
        let id = ScanId(new_id());
        if spec.content_sample.is_some() {
            self.create_content_key(&context.tenant, id).await?;
        }
        let command = ScanCommand::Start {
            scan_id: id,
            tenant: context.tenant.clone(),
            spec,
        };
        Ok(self
            .pipeline
            .execute::<Scan>(&scan_stream(id), context, command)
            .await?
            .map(|_| id))
    }

    /// Whether the SSRF guard lets `host` be reached; its refusal as a domain error if not.
    pub(crate) async fn vet_host(&self, host: &str) -> Result<(), DomainError> {
        self.guard
            .vet_host(host)
            .await
            .map(|_| ())
            .map_err(|refusal| DomainError::TargetRefused {
                reason: refusal.to_string(),
            })
    }

    /// Any command on an existing scan of the context's tenant (another tenant's scan is not found).
    pub async fn command_scan(
        &self,
        context: &CommandContext,
        id: ScanId,
        command: ScanCommand,
    ) -> Result<Result<(), DomainError>, AppError> {
        if self.scan(&context.tenant, id).await?.is_none() {
            return Ok(Err(DomainError::NotFound("scan")));
        }
        Ok(self
            .pipeline
            .execute::<Scan>(&scan_stream(id), context, command)
            .await?
            .map(|_| ()))
    }

    /// DeleteScan: the scan leaves the read models (the log keeps it); the content key of a scan
    /// that kept samples is destroyed with it.
    pub async fn delete_scan(
        &self,
        context: &CommandContext,
        id: ScanId,
    ) -> Result<Result<(), DomainError>, AppError> {
        let Some(view) = self.scan(&context.tenant, id).await? else {
            return Ok(Err(DomainError::NotFound("scan")));
        };
        if let Err(refused) = self
            .pipeline
            .execute::<Scan>(&scan_stream(id), context, ScanCommand::Delete)
            .await?
        {
            return Ok(Err(refused));
        }
        if view.spec.content_sample.is_none() {
            return Ok(Ok(()));
        }
        Ok(self
            .destroy_content_key(&context.tenant, id, ShredReason::ScanDeleted)
            .await?
            .map(|_| ()))
    }

    /// One scan of `tenant`, or `None` if it does not exist, was deleted, or belongs to another tenant.
    pub async fn scan(&self, tenant: &TenantId, id: ScanId) -> Result<Option<ScanView>, AppError> {
        Ok(self
            .fold_scan(tenant, id, None)
            .await?
            .map(|(view, _)| view))
    }

    /// A completed scan of `tenant` assessed again, from the observations its stream holds, under
    /// `ruleset` (a regrade: nothing is rescanned). `Some((view, None))` for a scan that did not
    /// complete; `None` as for [`Services::scan`].
    pub async fn assess_scan(
        &self,
        tenant: &TenantId,
        id: ScanId,
        ruleset: &str,
    ) -> Result<Option<(ScanView, Option<Assessment>)>, AppError> {
        self.fold_scan(tenant, id, Some(ruleset)).await
    }

    /// The scan events of `stream` after `version`, decoded, each with its record.
    async fn read_scan_events(
        &self,
        stream: &StreamName,
        version: u64,
    ) -> Result<Vec<(ScanEvent, vantage_store::StoredEvent)>, AppError> {
        let mut events = Vec::new();
        for recorded in self.store().read_stream_from(stream, version).await? {
            events.push((recorded.decode::<ScanEvent>()?, recorded));
        }
        Ok(events)
    }

    /// The scan's view, and its assessment under `regrade` when one is asked for. A view is kept
    /// between reads ([`Services`]'s scan views) with the stream version it is folded up to, so a poll
    /// reads only the events appended since — usually none — and a completed scan is assessed once,
    /// when the read that sees it end folds its stream from the start (its observations are needed
    /// then, and only then). A regrade always folds the whole stream.
    async fn fold_scan(
        &self,
        tenant: &TenantId,
        id: ScanId,
        regrade: Option<&str>,
    ) -> Result<Option<(ScanView, Option<Assessment>)>, AppError> {
        let stream = scan_stream(id);
        let kept = match regrade {
            None => self.scan_views.get::<ScanFold>(&stream),
            Some(_) => None,
        };
        let (mut fold, mut version) = kept.unwrap_or_default();
        let mut events = self.read_scan_events(&stream, version).await?;
        if version > 0 && events.iter().any(|(event, _)| event.ends_scan()) {
            (fold, version) = Default::default();
            events = self.read_scan_events(&stream, 0).await?;
        }
        let mut observations = Vec::new();
        let mut assessed = None;
        for (event, recorded) in events {
            if let Some(assessment) =
                fold.apply(id, &event, recorded.occurred_at, &mut observations)?
            {
                assessed = Some(assessment);
            }
            version = recorded.stream_version;
        }
        let regraded = match (regrade, assessed, fold.view.as_ref()) {
            (Some(ruleset), Some(assessment), Some(view))
                if view.ruleset_version.as_deref() == Some(ruleset) =>
            {
                Some(assessment)
            }
            (Some(ruleset), Some(_), Some(view)) => {
                Some(vantage_rules::assess(ruleset, &facts(view, &observations))?)
            }
            _ => None,
        };
        if regrade.is_none() {
            self.scan_views.put(&stream, &fold, version);
        }
        Ok(fold
            .view
            .filter(|v| &v.tenant == tenant && !fold.state.deleted)
            .map(|view| (view, regraded)))
    }
}

/// What [`vantage_rules::assess`] reads of a scan.
fn facts<'a>(
    view: &'a ScanView,
    observations: &'a [ProbeObserved],
) -> vantage_rules::ScanFacts<'a> {
    vantage_rules::ScanFacts {
        tenant: view.tenant.as_str(),
        target: view.spec.target.as_str(),
        observations,
    }
}

/// A scan's view folded from its stream, with the scan's state (the one place its lifecycle is
/// decided: [`Scan`]'s `apply`).
#[derive(Debug, Clone, Default)]
struct ScanFold {
    state: Scan,
    view: Option<ScanView>,
}

impl ScanFold {
    /// Folds one event recorded `at`. `observations` collects the scan's observations as they pass;
    /// when the scan ends they are summarised into its analysis, and a completion is assessed under
    /// its ruleset (the assessment is returned).
    fn apply(
        &mut self,
        id: ScanId,
        event: &ScanEvent,
        at: DateTime<Utc>,
        observations: &mut Vec<ProbeObserved>,
    ) -> Result<Option<Assessment>, AppError> {
        use vantage_domain::Aggregate;
        self.state.apply(event);
        let mut assessed = None;
        match (event, self.view.as_mut()) {
            (ScanEvent::ScanRequested(requested), _) => {
                self.view = Some(ScanView {
                    id,
                    tenant: requested.tenant.clone(),
                    status: ScanStatus::Queued,
                    spec: requested.spec(),
                    created_at: at,
                    updated_at: at,
                    observation_count: 0,
                    failure_reason: None,
                    ruleset_version: None,
                    grades: None,
                    overall: None,
                    analysis: None,
                });
            }
            (ScanEvent::ScanFailed(failed), Some(view)) => {
                view.failure_reason = Some(failed.reason.clone());
            }
            (ScanEvent::ProbeObserved(observed), _) => observations.push(observed.clone()),
            (ScanEvent::ScanCompleted(completed), Some(view)) => {
                view.ruleset_version = Some(completed.ruleset_version.clone());
                let assessment =
                    vantage_rules::assess(&completed.ruleset_version, &facts(view, observations))?;
                view.grades = Some(assessment.grades.clone());
                view.overall = Some(assessment.overall.clone());
                assessed = Some(assessment);
            }
            _ => {}
        }
        if let Some(view) = self.view.as_mut() {
            if event.ends_scan() {
                view.analysis = Some(vantage_rules::analysis::analyze(observations));
            }
            if let Some(status) = self.state.status {
                view.status = status;
                view.updated_at = at;
                view.observation_count = self.state.observations.len();
            }
        }
        Ok(assessed)
    }
}
