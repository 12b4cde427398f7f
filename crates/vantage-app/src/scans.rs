//! Scan commands and the read-back of one scan folded from its stream (the scans projection of a later
//! slice replaces the read for lists and filters).

use chrono::{DateTime, Utc};
use serde::Serialize;
use vantage_domain::DomainError;
use vantage_domain::DomainEvent;
use vantage_domain::content::ShredReason;
use vantage_domain::ids::ScanId;
use vantage_domain::scan::{Scan, ScanCommand, ScanEvent, ScanSpec, ScanStatus};
use vantage_domain::tenant::TenantId;
use vantage_store::StreamName;

use vantage_rules::Assessment;

use crate::Services;
use crate::pipeline::{AppError, CommandContext};
use crate::seams::new_id;

/// The stream of one scan.
pub fn scan_stream(id: ScanId) -> StreamName {
    StreamName::new(format!("scan-{id}")).expect("scan stream names are valid")
}

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

    /// Folds the scan's stream into its view; a completed scan is assessed under the ruleset it
    /// completed with, and also under `regrade` when one is asked for.
    async fn fold_scan(
        &self,
        tenant: &TenantId,
        id: ScanId,
        regrade: Option<&str>,
    ) -> Result<Option<(ScanView, Option<Assessment>)>, AppError> {
        let stored = self.store().read_stream(&scan_stream(id)).await?;
        let mut view: Option<ScanView> = None;
        let mut state = Scan::default();
        let mut observations = Vec::new();
        let mut regraded = None;
        for event in stored {
            let at = event.occurred_at;
            let decoded = ScanEvent::decode(
                &event.event_type,
                event.schema_version,
                event.payload.as_str(),
            )?;
            use vantage_domain::Aggregate;
            state.apply(&decoded);
            match (&decoded, view.as_mut()) {
                (ScanEvent::ScanRequested(requested), _) => {
                    view = Some(ScanView {
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
                    let facts = vantage_rules::ScanFacts {
                        tenant: view.tenant.as_str(),
                        target: view.spec.target.as_str(),
                        observations: &observations,
                    };
                    let assessment = vantage_rules::assess(&completed.ruleset_version, &facts)?;
                    if let Some(ruleset) = regrade {
                        regraded = Some(if ruleset == completed.ruleset_version {
                            assessment.clone()
                        } else {
                            vantage_rules::assess(ruleset, &facts)?
                        });
                    }
                    view.grades = Some(assessment.grades);
                    view.overall = Some(assessment.overall);
                }
                _ => {}
            }
            if let (Some(view), Some(status)) = (view.as_mut(), state.status) {
                view.status = status;
                view.updated_at = at;
                view.observation_count = state.observations.len();
            }
        }
        if let Some(view) = view.as_mut()
            && view.status.is_terminal()
        {
            view.analysis = Some(vantage_rules::analysis::analyze(&observations));
        }
        Ok(view
            .filter(|v| &v.tenant == tenant && !state.deleted)
            .map(|view| (view, regraded)))
    }
}
