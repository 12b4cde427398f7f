//! Scan routes: create (single and batch, with create-or-reuse and idempotency keys), read one (folded
//! from its stream, so it is never behind the log), list, status, cancel, delete and content samples;
//! who may see a scan. What a scan concluded — summary with the release gate, observations,
//! findings, compare and history — is in [`verdict`]. Lists, summaries and findings read the scans
//! read model.

mod verdict;

pub use verdict::{
    CompareQuery, Findings, FindingsQuery, Observations, ObservationsQuery, ScanComparison,
    ScanHistory, ScanSummary, SummaryQuery,
};
pub(crate) use verdict::{
    compare_scans, observed, scan_finding, scan_findings, scan_history, scan_observations,
    scan_summary,
};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vantage_app::{ContentRead, ScanView};
use vantage_domain::DomainError;
use vantage_domain::content::ContentSampling;
use vantage_domain::ids::ScanId;
use vantage_domain::project::ProjectId;
use vantage_domain::scan::{ScanCommand, ScanSpec, ScanStatus};
use vantage_domain::target::{
    Paths, Ports, Profile, ScanTarget, TargetKind, Trigger, VantagePoint,
};
use vantage_projections::model::{ScanDoc, wire_name};
use vantage_projections::query::{Page, ScanAt, ScanFilter};

use crate::auth::{Authorized, command_context};
use crate::domains::domain_name;
use crate::error::{ApiError, FieldError};
use crate::extract::{JsonBody, OptionalJsonBody, QueryParams, invalid_field, page_limit};
use crate::idempotency::{POLL_AFTER_SECONDS, Replayable};
use crate::request_id::RequestId;
use crate::{AppState, MAX_PAGE, ScanDispatch};

/// The body of `POST /api/v1/scans` (and of each item of a batch).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({
    "target": "https://example.com/", "ports": [443], "paths": ["/", "/login"],
    "profile": "standard", "trigger": "post_deploy", "max_age_seconds": 3600
}))]
pub struct CreateScanRequest {
    /// A domain (`example.com`) or an http(s) URL.
    pub target: String,
    /// TCP ports to probe (default 80 and 443; at most 32).
    pub ports: Option<Vec<u16>>,
    /// HTTP paths to fetch (default `/`; at most 32).
    pub paths: Option<Vec<String>>,
    pub profile: Option<Profile>,
    /// Default `api`.
    pub trigger: Option<Trigger>,
    /// The worker pool to run on (default `default`).
    pub vantage_point: Option<String>,
    /// Create-or-reuse: a completed scan of the same target and options that finished at most this
    /// many seconds ago is returned (200) instead of starting a new one (202). At most 30 days.
    pub max_age_seconds: Option<u64>,
    /// Keep a sample (the first 4 KiB) of each fetched page's response, sealed, readable with the
    /// `content:read` scope until the retention ends, then destroyed. Never for paths that look like
    /// they serve secrets (`.env`, keys). Default false.
    pub include_content_sample: Option<bool>,
    /// Days to keep the samples (7–30, default 7); only with `include_content_sample`.
    pub content_retention_days: Option<u16>,
    /// The project the scan belongs to (default: `default`, or for a key limited to some projects
    /// the first of them).
    pub project: Option<String>,
}

/// Longest `max_age_seconds` accepted.
const MAX_REUSE_AGE_SECONDS: u64 = 30 * 24 * 3600;

impl CreateScanRequest {
    /// Validates every field and reports all invalid ones at once; the project must be one the
    /// caller may see.
    pub(crate) fn into_spec(
        self,
        principal: &vantage_app::Principal,
    ) -> Result<ScanSpec, ApiError> {
        let mut errors = Vec::new();
        if self
            .max_age_seconds
            .is_some_and(|s| s == 0 || s > MAX_REUSE_AGE_SECONDS)
        {
            errors.push(FieldError {
                field: "max_age_seconds".into(),
                reason: format!("must be between 1 and {MAX_REUSE_AGE_SECONDS}"),
            });
        }
        let mut check = |result: Result<(), DomainError>| {
            if let Err(DomainError::Invalid { field, reason }) = result {
                errors.push(FieldError {
                    field: field.to_owned(),
                    reason,
                });
            }
        };
        let target = ScanTarget::parse(&self.target);
        check(target.as_ref().map(|_| ()).map_err(Clone::clone));
        let ports = self.ports.map_or(Ok(Ports::default()), Ports::new);
        check(ports.as_ref().map(|_| ()).map_err(Clone::clone));
        let paths = self.paths.map_or(Ok(Paths::default()), Paths::new);
        check(paths.as_ref().map(|_| ()).map_err(Clone::clone));
        let vantage_point = self
            .vantage_point
            .as_deref()
            .map_or(Ok(VantagePoint::default()), VantagePoint::parse);
        check(vantage_point.as_ref().map(|_| ()).map_err(Clone::clone));
        let content_sample = match (self.include_content_sample, self.content_retention_days) {
            (Some(true), None) => Ok(Some(ContentSampling::default_retention())),
            (Some(true), Some(days)) => ContentSampling::new(days).map(Some),
            (_, None) => Ok(None),
            (_, Some(_)) => Err(DomainError::Invalid {
                field: "content_retention_days",
                reason: "is only accepted with include_content_sample: true".into(),
            }),
        };
        check(content_sample.as_ref().map(|_| ()).map_err(Clone::clone));
        let project = project_for(principal, self.project.as_deref());
        check(project.as_ref().map(|_| ()).map_err(Clone::clone));
        match (target, ports, paths, vantage_point, content_sample, project) {
            (
                Ok(target),
                Ok(ports),
                Ok(paths),
                Ok(vantage_point),
                Ok(content_sample),
                Ok(project),
            ) if errors.is_empty() => Ok(ScanSpec {
                target,
                ports,
                paths,
                profile: self.profile.unwrap_or_default(),
                trigger: self.trigger.unwrap_or(Trigger::Api),
                vantage_point,
                content_sample,
                project,
            }),
            _ => Err(ApiError::Unprocessable {
                code: "validation_failed",
                detail: "the scan request is invalid".into(),
                errors,
            }),
        }
    }
}

/// The project a new resource goes to: the one asked for, if the caller may see it (one it may
/// not see is refused as if it did not exist); else `default`, or for a key limited to some
/// projects the first of them. Whether it exists is the application's check.
pub(crate) fn project_for(
    principal: &vantage_app::Principal,
    asked: Option<&str>,
) -> Result<ProjectId, DomainError> {
    let unknown = |project: &str| DomainError::Invalid {
        field: "project",
        reason: format!("tenant {} has no project {project}", principal.tenant),
    };
    match (asked, principal.projects.limited_to()) {
        (Some(raw), _) => {
            let project = ProjectId::parse(raw)?;
            if principal.projects.allows(project.as_str()) {
                Ok(project)
            } else {
                Err(unknown(raw))
            }
        }
        (None, Some(only)) => only.iter().next().cloned().ok_or_else(|| unknown("")),
        (None, None) => Ok(ProjectId::default_project()),
    }
}

/// Links of a scan resource.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanLinks {
    #[serde(rename = "self")]
    pub this: String,
}

/// One scan as its own stream tells it (never behind the log).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanResource {
    #[serde(flatten)]
    pub view: ScanView,
    pub kind: TargetKind,
    pub links: ScanLinks,
    /// Present, and true, when `max_age_seconds` reused an earlier scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused: Option<bool>,
}

impl ScanResource {
    fn of(view: ScanView) -> Self {
        Self {
            kind: view.spec.target.kind(),
            links: ScanLinks {
                this: format!("/api/v1/scans/{}", view.id),
            },
            view,
            reused: None,
        }
    }
}

/// A response type as JSON (stored responses are replayed as they were).
pub(crate) fn to_json(body: &impl Serialize) -> Value {
    serde_json::to_value(body).unwrap_or(Value::Null)
}

/// `POST /api/v1/scans`: validate, then reuse a young enough completed scan (200, with
/// `max_age_seconds`) or append ScanRequested (202 with `Location` and `Retry-After`).
pub(crate) async fn create_scan(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    body: JsonBody<CreateScanRequest>,
) -> Result<Replayable, ApiError> {
    let principal = caller.principal();
    let max_age = body.value.max_age_seconds;
    let spec = body.value.into_spec(principal)?;
    create_one(&state, principal, &request_id, spec, max_age).await
}

/// One scan creation (or reuse) of a valid request.
async fn create_one(
    state: &AppState,
    principal: &vantage_app::Principal,
    request_id: &RequestId,
    spec: ScanSpec,
    max_age_seconds: Option<u64>,
) -> Result<Replayable, ApiError> {
    if let Some(max_age) = max_age_seconds {
        let now = state.services.pipeline.clock().now();
        let not_before = now - chrono::Duration::seconds(i64::try_from(max_age).unwrap_or(0));
        if let Some(reused) = state
            .read
            .reusable_scan(principal.tenant.as_str(), &spec, not_before)
            .await?
            && let Ok(id) = reused.id.parse::<ScanId>()
            && let Some(view) = state.services.scan(&principal.tenant, id).await?
        {
            let mut body = ScanResource::of(view);
            body.reused = Some(true);
            return Ok(
                Replayable::new(StatusCode::OK, to_json(&body)).at(format!("/api/v1/scans/{id}"))
            );
        }
    }
    let context = command_context(principal, request_id);
    let id = state.services.start_scan(&context, spec).await??;
    let view = state
        .services
        .scan(&principal.tenant, id)
        .await?
        .ok_or(ApiError::Internal)?;
    Ok(
        Replayable::new(StatusCode::ACCEPTED, to_json(&ScanResource::of(view)))
            .at(format!("/api/v1/scans/{id}")),
    )
}

/// Most scans one batch request may create.
pub const MAX_BATCH: usize = 50;
/// Batch items vetted and created at once.
const BATCH_CONCURRENCY: usize = 8;

/// The body of `POST /api/v1/scans/batch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({ "scans": [
    { "target": "example.com" },
    { "target": "https://example.org/", "ports": [443], "max_age_seconds": 86400 }
]}))]
pub struct BatchCreateRequest {
    /// 1 to 50 scan requests.
    pub scans: Vec<CreateScanRequest>,
}

/// The problem of one refused batch item (the batch's request id is in its header).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ItemProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One item's outcome in a batch.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchItem {
    /// The item's position in the request.
    pub index: usize,
    /// 202 (started), 200 (reused) or the item's error status.
    pub status: u16,
    /// The scan, when started or reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<ScanResource>")]
    pub scan: Option<Value>,
    /// Why the item was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<ItemProblem>")]
    pub error: Option<Value>,
}

/// The answer to a batch: one result per item, in order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchResult {
    pub accepted: usize,
    pub refused: usize,
    pub results: Vec<BatchItem>,
}

/// `POST /api/v1/scans/batch`: up to 50 scan requests, each validated and created (or reused) on its
/// own; 200 with one result per item.
pub(crate) async fn create_batch(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    body: JsonBody<BatchCreateRequest>,
) -> Result<Replayable, ApiError> {
    let principal = caller.principal();
    let items = body.value.scans;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(invalid_field(
            "scans",
            format!("send between 1 and {MAX_BATCH} scan requests"),
        ));
    }
    // Items are vetted and created concurrently (a slow DNS answer for one does not hold up
    // the rest), at most BATCH_CONCURRENCY at once, and reported in request order.
    let outcomes: Vec<(usize, Result<Replayable, ApiError>)> =
        futures::stream::iter(items.into_iter().enumerate())
            .map(|(index, item)| {
                let (state, request_id) = (&state, &request_id);
                async move {
                    let max_age = item.max_age_seconds;
                    let outcome = match item.into_spec(principal) {
                        Ok(spec) => create_one(state, principal, request_id, spec, max_age).await,
                        Err(invalid) => Err(invalid),
                    };
                    (index, outcome)
                }
            })
            .buffered(BATCH_CONCURRENCY)
            .collect()
            .await;
    let mut results = Vec::with_capacity(outcomes.len());
    let mut accepted = 0;
    for (index, outcome) in outcomes {
        results.push(match outcome {
            Ok(done) => {
                accepted += 1;
                BatchItem {
                    index,
                    status: done.status.as_u16(),
                    scan: Some(done.body),
                    error: None,
                }
            }
            Err(ApiError::Internal) => return Err(ApiError::Internal),
            Err(refused) => BatchItem {
                index,
                status: refused.status().as_u16(),
                scan: None,
                error: Some(refused.problem()),
            },
        });
    }
    let refused = results.len() - accepted;
    let result = BatchResult {
        accepted,
        refused,
        results,
    };
    Ok(Replayable::new(StatusCode::OK, to_json(&result)))
}

/// `GET /api/v1/scans/{id}`.
pub(crate) async fn get_scan(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<Json<ScanResource>, ApiError> {
    let principal = caller.principal();
    let view = visible_scan(&state, principal, &id).await?;
    Ok(Json(ScanResource::of(view)))
}

/// A scan of the caller's tenant from the scans read model, or 404.
pub(super) async fn scan_doc(
    state: &AppState,
    principal: &vantage_app::Principal,
    id: &str,
) -> Result<ScanDoc, ApiError> {
    Ok(scan_at(state, principal, id).await?.doc)
}

/// [`scan_doc`] with the checkpoint it was read at, for handlers that also read its findings.
pub(super) async fn scan_at(
    state: &AppState,
    principal: &vantage_app::Principal,
    id: &str,
) -> Result<ScanAt, ApiError> {
    let id = visible_scan_id(state, principal, id).await?;
    state
        .read
        .scan_at(principal.tenant.as_str(), &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))
}

/// The ruleset a `ruleset=` query asks to regrade `scan` with, unless it is the one the scan
/// completed with (then the stored verdict answers).
pub(super) fn regrade(scan: &ScanDoc, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    Ok(asked
        .map(ruleset_choice)
        .transpose()?
        .filter(|ruleset| scan.ruleset_version.as_deref() != Some(ruleset.as_str())))
}

/// A `ruleset=` query value: a ruleset this build knows, or `latest` (the current one).
fn ruleset_choice(raw: &str) -> Result<String, ApiError> {
    if raw == "latest" {
        return Ok(vantage_rules::RULESET_VERSION.to_owned());
    }
    if vantage_rules::RULESETS.contains(&raw) {
        return Ok(raw.to_owned());
    }
    Err(DomainError::Invalid {
        field: "ruleset",
        reason: format!(
            "ruleset {raw:?} is not known; use one of {} or latest",
            vantage_rules::RULESETS.join(", ")
        ),
    }
    .into())
}

pub(crate) fn parse_scan_id(raw: &str) -> Result<ScanId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("scan"))
}

/// The scan in a path, as its stream tells it, when the caller may see it: not found for an id
/// that does not parse, another tenant's or a deleted scan, and, for a key limited to some
/// projects, a scan of another project.
pub(crate) async fn visible_scan(
    state: &AppState,
    principal: &vantage_app::Principal,
    raw: &str,
) -> Result<ScanView, ApiError> {
    let id = parse_scan_id(raw)?;
    state
        .services
        .scan(&principal.tenant, id)
        .await?
        .filter(|view| principal.projects.allows(view.spec.project.as_str()))
        .ok_or_else(|| ApiError::not_found("scan"))
}

/// The scan id in a path, when the caller may see that scan: an id that does not parse is not
/// found, and so is, for a key limited to some projects, a scan of another project (the stream is
/// read only then). Whether the scan exists in the caller's tenant at all is the handler's question.
pub(crate) async fn visible_scan_id(
    state: &AppState,
    principal: &vantage_app::Principal,
    raw: &str,
) -> Result<ScanId, ApiError> {
    if principal.projects.limited_to().is_none() {
        return parse_scan_id(raw);
    }
    Ok(visible_scan(state, principal, raw).await?.id)
}

/// Query of `GET /api/v1/scans`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListScansQuery {
    pub status: Option<ScanStatus>,
    /// The target's host, e.g. `example.com`.
    pub domain: Option<String>,
    pub trigger: Option<Trigger>,
    /// Page size, 1-100 (default 20).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only this project's scans.
    pub project: Option<String>,
}

/// `GET /api/v1/scans`: newest first, filtered, cursor-paginated (`limit` ≤ 100).
pub(crate) async fn list_scans(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<ListScansQuery>,
) -> Result<Json<Page<ScanDoc>>, ApiError> {
    let principal = caller.principal();
    let limit = page_limit(query.limit, 20, MAX_PAGE)?;
    let filter = ScanFilter {
        status: query.status.map(|s| s.as_str().to_owned()),
        domain: query.domain.as_deref().map(domain_name),
        trigger: query.trigger.map(|t| wire_name(&t)),
        projects: match (&query.project, principal.projects.limited_to()) {
            (Some(project), Some(only)) => Some(
                only.iter()
                    .filter(|p| p.as_str() == project)
                    .map(|p| p.as_str().to_owned())
                    .collect(),
            ),
            (Some(project), None) => Some(vec![project.clone()]),
            (None, Some(only)) => Some(only.iter().map(|p| p.as_str().to_owned()).collect()),
            (None, None) => None,
        },
    };
    let page = state
        .read
        .scans(
            principal.tenant.as_str(),
            &filter,
            query.cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(Json(page))
}

/// Where a scan is in its lifecycle.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({
    "id": "0192f3a4-5b6c-7d8e-9f01-23456789abcd", "status": "running", "terminal": false,
    "updated_at": "2026-12-01T12:00:03Z", "observation_count": 7, "failure_reason": null
}))]
pub struct ScanProgress {
    pub id: ScanId,
    pub status: ScanStatus,
    /// Completed, failed or cancelled: nothing will change any more.
    pub terminal: bool,
    pub updated_at: DateTime<Utc>,
    pub observation_count: usize,
    pub failure_reason: Option<String>,
    /// Why a queued scan has not started, when that is known: no worker of its vantage point is
    /// taking jobs (distributed mode). The scan waits until one starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

/// Why a queued scan waits, if no worker takes its vantage point's jobs now.
async fn waiting_for(state: &AppState, view: &ScanView) -> Option<String> {
    let ScanDispatch::Nats(pools) = &state.dispatch else {
        return None;
    };
    if view.status != ScanStatus::Queued {
        return None;
    }
    let point = view.spec.vantage_point.as_str();
    (pools.serves(point).await == Some(false)).then(|| {
        format!("no worker of vantage point {point} is taking jobs; the scan starts when one does")
    })
}

/// `GET /api/v1/scans/{id}/status`: where the scan is; `Retry-After` while it is not finished.
pub(crate) async fn scan_status(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.principal();
    let view = visible_scan(&state, principal, &id).await?;
    let terminal = view.status.is_terminal();
    let waiting_for = waiting_for(&state, &view).await;
    let mut response = Json(ScanProgress {
        id: view.id,
        status: view.status,
        terminal,
        updated_at: view.updated_at,
        observation_count: view.observation_count,
        failure_reason: view.failure_reason,
        waiting_for,
    })
    .into_response();
    if !terminal {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(POLL_AFTER_SECONDS),
        );
    }
    Ok(response)
}

/// The optional body of `POST /api/v1/scans/{id}/cancel`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelScanRequest {
    /// Why (kept in the log; at most 500 characters).
    pub reason: Option<String>,
}

/// `POST /api/v1/scans/{id}/cancel`: 409 when the scan has already ended.
pub(crate) async fn cancel_scan(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
    body: OptionalJsonBody<CancelScanRequest>,
) -> Result<Replayable, ApiError> {
    let principal = caller.principal();
    let id = visible_scan_id(&state, principal, &id).await?;
    let reason = body.value.and_then(|b| b.reason);
    let context = command_context(principal, &request_id);
    state
        .services
        .command_scan(&context, id, ScanCommand::Cancel { reason })
        .await??;
    let view = state
        .services
        .scan(&principal.tenant, id)
        .await?
        .ok_or(ApiError::Internal)?;
    Ok(Replayable::new(
        StatusCode::OK,
        to_json(&ScanResource::of(view)),
    ))
}

/// `DELETE /api/v1/scans/{id}`: 204; 409 while the scan is queued or running.
pub(crate) async fn delete_scan(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.principal();
    let context = command_context(principal, &request_id);
    state
        .services
        .delete_scan(&context, visible_scan_id(&state, principal, &id).await?)
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/scans/{id}/content-samples`: the samples a scan kept, opened, while its content key
/// exists; 410 once it was destroyed; 404 for a scan that kept none.
pub(crate) async fn content_samples(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.principal();
    let id = visible_scan_id(&state, principal, &id).await?;
    match state
        .services
        .content_samples(&principal.tenant, id)
        .await?
    {
        ContentRead::NotFound => Err(ApiError::not_found("scan")),
        ContentRead::NotKept => Err(ApiError::NotFound {
            detail: format!(
                "scan {id} kept no content samples (include_content_sample was not set)"
            ),
        }),
        ContentRead::Destroyed { reason, at } => Err(ApiError::Gone {
            code: "content_destroyed",
            detail: match (reason, at) {
                (Some(reason), Some(at)) => format!(
                    "the content samples of scan {id} were destroyed at {} ({}); they cannot be read any more",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    reason.as_str()
                ),
                _ => format!(
                    "the content samples of scan {id} were destroyed; they cannot be read any more"
                ),
            },
        }),
        ContentRead::Samples(samples) => Ok((crate::NO_STORE, Json(samples)).into_response()),
    }
}
