//! What a scan concluded, as the read side holds it: the summary with its release gate, its
//! findings (one or all, regraded on request), its observations, and how it compares with another
//! scan and with its domain's history.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_app::scan_stream;
use vantage_domain::ids::{ObservationId, ScanId};
use vantage_domain::scan::{Observation, ProbeKind, ProbeObserved, ScanStatus};
use vantage_domain::target::{ScanTarget, Trigger};
use vantage_domain::triage::TriageState;
use vantage_projections::model::{FindingDoc, ScanDoc};
use vantage_projections::query::{FindingFilter, FindingView};
use vantage_rules::grade::ScanGrades;
use vantage_rules::{Overall, Severity, SeverityCounts};

use crate::AppState;
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::extract::{QueryParams, as_of};

use super::{regrade, scan_at, scan_doc, visible_scan, visible_scan_id};

/// A release decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateDecision {
    Pass,
    Fail,
    /// The scan has not ended yet.
    Pending,
}

/// The release gate of a `post_deploy` scan.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({
    "decision": "fail", "policy": "fail on any open or acknowledged critical or high finding",
    "blocking": ["5b0c8f3e1d2a4c6b9e7f0a1b2c3d4e5f"]
}))]
pub struct Gate {
    pub decision: GateDecision,
    pub policy: &'static str,
    /// Fingerprints of the findings that fail the gate.
    pub blocking: Vec<String>,
    /// Why a scan that did not complete fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

const GATE_POLICY: &str = "fail on any open or acknowledged critical or high finding";

/// The release decision of a `post_deploy` scan: it fails on any critical or high finding that is not
/// triaged away (false positive, accepted risk, fixed), and on a scan that failed or was cancelled.
fn gate(scan: &ScanDoc, findings: &[FindingView]) -> Option<Gate> {
    if scan.spec.trigger != Trigger::PostDeploy {
        return None;
    }
    let mut gate = Gate {
        decision: GateDecision::Pending,
        policy: GATE_POLICY,
        blocking: Vec::new(),
        reason: None,
    };
    if !scan.status.is_terminal() {
        return Some(gate);
    }
    if scan.status != ScanStatus::Completed {
        gate.decision = GateDecision::Fail;
        gate.reason = Some(format!("the scan {}", scan.status.as_str()));
        return Some(gate);
    }
    gate.blocking = findings
        .iter()
        .filter(|f| vantage_reports::blocks_release(&f.finding.finding, f.triage, Severity::High))
        .map(|f| f.finding.finding.fingerprint.clone())
        .collect();
    gate.decision = if gate.blocking.is_empty() {
        GateDecision::Pass
    } else {
        GateDecision::Fail
    };
    Some(gate)
}

/// How a completed scan differs from the previous scan of its target.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DiffCounts {
    pub new: usize,
    pub fixed: usize,
    pub unchanged: usize,
    pub regressions: usize,
}

/// Query of `GET /api/v1/scans/{id}/summary`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// Regrade the scan's stored observations under this ruleset (a released version such as `2`,
    /// or `latest`) instead of the one it completed with. Nothing is rescanned.
    pub ruleset: Option<String>,
}

/// A scan's summary.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScanSummary {
    pub id: String,
    pub status: ScanStatus,
    pub target: ScanTarget,
    pub trigger: Trigger,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// 0-100 (completed scans that reached their target).
    pub score: Option<u32>,
    /// The overall grade: A+ … F, or T / M for a certificate that is not trusted / does not cover
    /// the name (completed scans that reached their target).
    pub grade: Option<String>,
    /// How the overall score and grade were reached, and what capped them.
    pub overall: Option<Overall>,
    pub grades: Option<ScanGrades>,
    pub findings: Option<SeverityCounts>,
    /// The ruleset that produced this summary's findings, grades and verdict.
    pub ruleset_version: Option<String>,
    /// The ruleset the scan completed with (differs from `ruleset_version` when regraded).
    pub completed_with_ruleset: Option<String>,
    pub previous_scan_id: Option<String>,
    /// Against the previous scan of the target, under the ruleset the scan completed with (absent
    /// when regraded).
    pub diff: Option<DiffCounts>,
    /// `post_deploy` scans only.
    pub gate: Option<Gate>,
}

/// `GET /api/v1/scans/{id}/summary`: status, counts, score and letter grade, grades, the diff against
/// the previous scan, and the release `gate` of `post_deploy` scans; `ruleset=` regrades.
pub(crate) async fn scan_summary(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<SummaryQuery>,
) -> Result<Json<ScanSummary>, ApiError> {
    let principal = caller.principal();
    let tenant = principal.tenant.as_str();
    let read = scan_at(&state, principal, &id).await?;
    // The stored verdict (with the diff against the previous scan), or the regraded one.
    let (ruleset_version, overall, grades, counts, findings, diff) =
        match regrade(&read.doc, query.ruleset.as_deref())? {
            None => {
                let findings = state
                    .read
                    .findings_of(&read, &FindingFilter::default(), None)
                    .await?;
                let scan = &read.doc;
                let diff = state.read.diff(tenant, &scan.id).await?;
                (
                    scan.ruleset_version.clone(),
                    scan.overall.clone(),
                    scan.grades.clone(),
                    scan.findings,
                    findings,
                    diff,
                )
            }
            Some(ruleset) => {
                let assessment = regraded(&state, principal, &read.doc.id, &ruleset).await?;
                let docs = finding_docs(&read.doc, assessment.as_ref());
                let findings = state
                    .read
                    .triaged(tenant, docs, &FindingFilter::default(), None)
                    .await?;
                let (overall, grades, counts) = match assessment {
                    Some(a) => (Some(a.overall), Some(a.grades), Some(a.counts)),
                    None => (None, None, None),
                };
                (Some(ruleset), overall, grades, counts, findings, None)
            }
        };
    let scan = read.doc;
    let gate = gate(&scan, &findings);
    Ok(Json(ScanSummary {
        score: overall.as_ref().and_then(|o| o.score),
        grade: overall.as_ref().and_then(|o| o.grade.clone()),
        overall,
        grades,
        findings: counts,
        diff: diff.map(|d| DiffCounts {
            new: d.new.len(),
            fixed: d.fixed.len(),
            unchanged: d.unchanged.len(),
            regressions: d.regressions.len(),
        }),
        gate,
        id: scan.id,
        status: scan.status,
        target: scan.spec.target,
        trigger: scan.spec.trigger,
        created_at: scan.created_at,
        finished_at: scan.finished_at,
        completed_with_ruleset: scan.ruleset_version,
        ruleset_version,
        previous_scan_id: scan.previous_scan_id,
    }))
}

/// A completed scan regraded under `ruleset` from its stored observations (`None` when it did not
/// complete).
async fn regraded(
    state: &AppState,
    principal: &vantage_app::Principal,
    id: &str,
    ruleset: &str,
) -> Result<Option<vantage_rules::Assessment>, ApiError> {
    let id = visible_scan_id(state, principal, id).await?;
    let (_, assessment) = state
        .services
        .assess_scan(&principal.tenant, id, ruleset)
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))?;
    Ok(assessment)
}

/// An assessment's findings as findings of `scan`.
fn finding_docs(scan: &ScanDoc, assessment: Option<&vantage_rules::Assessment>) -> Vec<FindingDoc> {
    assessment
        .map(|a| {
            a.findings
                .iter()
                .map(|finding| FindingDoc {
                    scan_id: scan.id.clone(),
                    tenant: scan.tenant.clone(),
                    finding: finding.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Query of `GET /api/v1/scans/{id}/observations`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservationsQuery {
    /// Only this probe's observations.
    pub probe: Option<ProbeKind>,
}

/// What one probe saw of one asset (public-safe by construction: no bodies, no cookie values).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ObservationView {
    pub id: ObservationId,
    pub probe: ProbeKind,
    pub asset: String,
    pub observed_at: DateTime<Utc>,
    /// The version of the observation type `data` is in (older ones are shown upcast to it).
    pub observation_version: u32,
    pub data: Observation,
}

/// A scan's observations, in log order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Observations {
    pub scan_id: ScanId,
    pub items: Vec<ObservationView>,
}

/// `GET /api/v1/scans/{id}/observations`: what each probe saw, in the order the log recorded it.
pub(crate) async fn scan_observations(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ObservationsQuery>,
) -> Result<Json<Observations>, ApiError> {
    let principal = caller.principal();
    let id = visible_scan(&state, principal, &id).await?.id;
    let items = observed(&state, id)
        .await?
        .into_iter()
        .filter(|(observed, _)| query.probe.is_none_or(|p| p == observed.probe()))
        .map(|(observed, observed_at)| ObservationView {
            id: observed.observation_id,
            probe: observed.probe(),
            asset: observed.asset,
            observed_at,
            observation_version: observed.observation.version(),
            data: observed.observation,
        })
        .collect();
    Ok(Json(Observations { scan_id: id, items }))
}

/// Every observation of a scan, in log order, with when it was made.
pub(crate) async fn observed(
    state: &AppState,
    id: ScanId,
) -> Result<Vec<(ProbeObserved, DateTime<Utc>)>, ApiError> {
    let observations = vantage_app::scan_observations::<vantage_app::AppError>(
        state.services.store().as_ref(),
        id,
        None,
    )
    .await?;
    Ok(observations)
}

/// Query of `GET /api/v1/scans/{id}/findings`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    pub severity: Option<Severity>,
    /// `tls`, `headers`, `cookies`, `dns`, `exposure`, `email` or `availability`.
    pub category: Option<String>,
    /// A compliance control id or its prefix, e.g. `OWASP-ASVS-4.0.3`.
    pub compliance: Option<String>,
    pub triage: Option<TriageState>,
    /// As it stood then: a log position or an RFC 3339 time.
    pub as_of: Option<String>,
    /// Regrade the scan's stored observations under this ruleset (a released version such as `2`,
    /// or `latest`) instead of the one it completed with. Nothing is rescanned.
    pub ruleset: Option<String>,
}

/// A scan's findings, highest priority first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Findings {
    pub scan_id: String,
    /// The ruleset that derived these findings (absent while the scan has not completed).
    pub ruleset_version: Option<String>,
    pub count: usize,
    pub items: Vec<FindingView>,
}

/// `GET /api/v1/scans/{id}/findings`: highest priority first, with each fingerprint's triage (as of
/// `as_of` when given).
pub(crate) async fn scan_findings(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<FindingsQuery>,
) -> Result<Json<Findings>, ApiError> {
    let principal = caller.principal();
    let read = scan_at(&state, principal, &id).await?;
    let as_of = as_of(query.as_of.as_deref())?;
    let filter = FindingFilter {
        severity: query.severity,
        category: query.category,
        compliance: query.compliance,
        triage: query.triage,
    };
    let (ruleset_version, items) = match regrade(&read.doc, query.ruleset.as_deref())? {
        None => {
            let items = state.read.findings_of(&read, &filter, as_of).await?;
            (read.doc.ruleset_version.clone(), items)
        }
        Some(ruleset) => {
            let assessment = regraded(&state, principal, &read.doc.id, &ruleset).await?;
            let completed = assessment.is_some();
            let docs = finding_docs(&read.doc, assessment.as_ref());
            let items = state
                .read
                .triaged(principal.tenant.as_str(), docs, &filter, as_of)
                .await?;
            (completed.then_some(ruleset), items)
        }
    };
    Ok(Json(Findings {
        scan_id: read.doc.id,
        ruleset_version,
        count: items.len(),
        items,
    }))
}

/// `GET /api/v1/scans/{id}/findings/{finding_id}` (a finding's id is its fingerprint).
pub(crate) async fn scan_finding(
    State(state): State<AppState>,
    caller: Authorized,
    Path((id, finding_id)): Path<(String, String)>,
) -> Result<Json<FindingView>, ApiError> {
    let principal = caller.principal();
    let id = visible_scan_id(&state, principal, &id).await?.to_string();
    state
        .read
        .findings(
            principal.tenant.as_str(),
            &id,
            &FindingFilter::default(),
            None,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))?
        .into_iter()
        .find(|f| f.finding.finding.fingerprint == finding_id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("finding"))
}

/// Query of `GET /api/v1/scans/compare`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    /// The earlier scan.
    pub scan_a: String,
    /// The later scan.
    pub scan_b: String,
}

/// How many findings are new, fixed and unchanged.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CompareCounts {
    pub new: usize,
    pub fixed: usize,
    pub unchanged: usize,
}

/// Two scans compared by fingerprint.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScanComparison {
    pub scan_a: String,
    pub scan_b: String,
    pub same_target: bool,
    pub summary: CompareCounts,
    /// In b, not in a.
    pub new: Vec<FindingDoc>,
    /// In a, not in b.
    pub fixed: Vec<FindingDoc>,
    pub unchanged: Vec<FindingDoc>,
}

/// `GET /api/v1/scans/compare?scan_a&scan_b`: what is new in b, fixed since a, and unchanged.
pub(crate) async fn compare_scans(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<CompareQuery>,
) -> Result<Json<ScanComparison>, ApiError> {
    let principal = caller.principal();
    let a = scan_doc(&state, principal, &query.scan_a).await?;
    let b = scan_doc(&state, principal, &query.scan_b).await?;
    let comparison = state
        .read
        .compare(principal.tenant.as_str(), &a.id, &b.id)
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))?;
    Ok(Json(ScanComparison {
        same_target: a.spec.target == b.spec.target,
        summary: CompareCounts {
            new: comparison.new.len(),
            fixed: comparison.fixed.len(),
            unchanged: comparison.unchanged.len(),
        },
        scan_a: comparison.scan_a,
        scan_b: comparison.scan_b,
        new: comparison.new,
        fixed: comparison.fixed,
        unchanged: comparison.unchanged,
    }))
}

/// One lifecycle event of a scan.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScanHistoryEntry {
    pub stream_version: u64,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub request_id: Option<String>,
}

/// A scan's lifecycle.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScanHistory {
    pub scan_id: ScanId,
    pub items: Vec<ScanHistoryEntry>,
}

/// `GET /api/v1/scans/{id}/history`: the scan's lifecycle as the log recorded it — every event but the
/// observations (which `/observations` lists), with who and when.
pub(crate) async fn scan_history(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<Json<ScanHistory>, ApiError> {
    let principal = caller.principal();
    let id = visible_scan_id(&state, principal, &id).await?;
    let events = state.services.store().read_stream(&scan_stream(id)).await?;
    if events
        .first()
        .is_none_or(|e| e.metadata.tenant != principal.tenant.as_str())
    {
        return Err(ApiError::not_found("scan"));
    }
    let items = events
        .into_iter()
        .filter(|e| e.event_type != "ProbeObserved")
        .map(|e| ScanHistoryEntry {
            stream_version: e.stream_version,
            event_type: e.event_type,
            occurred_at: e.occurred_at,
            actor: e.metadata.actor,
            request_id: e.metadata.request_id,
        })
        .collect();
    Ok(Json(ScanHistory { scan_id: id, items }))
}
