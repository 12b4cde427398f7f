//! Scan routes: create (with idempotency keys), read one (folded from its stream, so it is never
//! behind), list, status, cancel, delete, summary with the release gate, observations, findings,
//! compare and history. Lists and findings read the scans read model.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use vantage_app::ScanView;
use vantage_app::scan_stream;
use vantage_domain::DomainError;
use vantage_domain::DomainEvent;
use vantage_domain::ids::ScanId;
use vantage_domain::scan::{ProbeKind, ScanCommand, ScanEvent, ScanSpec, ScanStatus};
use vantage_domain::scope::Scope;
use vantage_domain::target::{Paths, Ports, Profile, ScanTarget, Trigger, VantagePoint};
use vantage_domain::triage::TriageState;
use vantage_projections::model::ScanDoc;
use vantage_projections::query::{FindingFilter, FindingView, ScanFilter};
use vantage_rules::Severity;
use vantage_rules::grade::letter;

use crate::auth::{Authenticated, command_context};
use crate::error::{ApiError, FieldError};
use crate::extract::{JsonBody, OptionalJsonBody, QueryParams, as_of, page_limit};
use crate::idempotency::{self, POLL_AFTER_SECONDS, Replayable};
use crate::request_id::RequestId;
use crate::{AppState, MAX_PAGE};

/// The body of `POST /api/v1/scans`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateScanRequest {
    pub target: String,
    pub ports: Option<Vec<u16>>,
    pub paths: Option<Vec<String>>,
    pub profile: Option<Profile>,
    pub trigger: Option<Trigger>,
    pub vantage_point: Option<String>,
    /// Create-or-reuse: a completed scan of the same target and options that finished at most this
    /// many seconds ago is returned (200) instead of starting a new one (202). At most 30 days.
    pub max_age_seconds: Option<u64>,
}

/// Longest `max_age_seconds` accepted.
const MAX_REUSE_AGE_SECONDS: u64 = 30 * 24 * 3600;

impl CreateScanRequest {
    /// Validates every field and reports all invalid ones at once.
    fn into_spec(self) -> Result<ScanSpec, ApiError> {
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
        match (target, ports, paths, vantage_point) {
            (Ok(target), Ok(ports), Ok(paths), Ok(vantage_point)) if errors.is_empty() => {
                Ok(ScanSpec {
                    target,
                    ports,
                    paths,
                    profile: self.profile.unwrap_or_default(),
                    trigger: self.trigger.unwrap_or(Trigger::Api),
                    vantage_point,
                })
            }
            _ => Err(ApiError::Unprocessable {
                code: "validation_failed",
                detail: "the scan request is invalid".into(),
                errors,
            }),
        }
    }
}

fn scan_json(view: &ScanView) -> Value {
    let mut body = serde_json::to_value(view).unwrap_or_default();
    body["kind"] = json!(view.spec.target.kind());
    body["links"] = json!({
        "self": format!("/api/v1/scans/{}", view.id),
    });
    body
}

/// `POST /api/v1/scans`: validate, then reuse a young enough completed scan (200, with
/// `max_age_seconds`) or append ScanRequested (202 with `Location` and `Retry-After`).
pub(crate) async fn create_scan(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authenticated,
    headers: HeaderMap,
    body: JsonBody<CreateScanRequest>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Scope::ScanWrite)?;
    let max_age = body.value.max_age_seconds;
    let spec = body.value.into_spec()?;
    idempotency::once(
        &state,
        principal.tenant.as_str(),
        &headers,
        "/api/v1/scans",
        &body.raw,
        || create_one(&state, principal, &request_id, spec, max_age),
    )
    .await
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
            let mut body = scan_json(&view);
            body["reused"] = json!(true);
            return Ok(Replayable::new(StatusCode::OK, body).at(format!("/api/v1/scans/{id}")));
        }
    }
    let context = command_context(principal, request_id);
    let id = state.services.start_scan(&context, spec).await??;
    let view = state
        .services
        .scan(&principal.tenant, id)
        .await?
        .ok_or(ApiError::Internal)?;
    Ok(Replayable::new(StatusCode::ACCEPTED, scan_json(&view)).at(format!("/api/v1/scans/{id}")))
}

/// Most scans one batch request may create.
pub const MAX_BATCH: usize = 50;

/// The body of `POST /api/v1/scans/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchCreateRequest {
    pub scans: Vec<CreateScanRequest>,
}

/// `POST /api/v1/scans/batch`: up to 50 scan requests, each validated and created (or reused) on its
/// own; 200 with one result per item, in order: `status` 202/200 and the scan, or the item's problem.
pub(crate) async fn create_batch(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authenticated,
    headers: HeaderMap,
    body: JsonBody<BatchCreateRequest>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Scope::ScanWrite)?;
    let items = body.value.scans;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(crate::extract::invalid_field(
            "scans",
            format!("send between 1 and {MAX_BATCH} scan requests"),
        ));
    }
    idempotency::once(
        &state,
        principal.tenant.as_str(),
        &headers,
        "/api/v1/scans/batch",
        &body.raw,
        || async {
            let mut results = Vec::with_capacity(items.len());
            let mut accepted = 0;
            for (index, item) in items.into_iter().enumerate() {
                let max_age = item.max_age_seconds;
                let outcome = match item.into_spec() {
                    Ok(spec) => create_one(&state, principal, &request_id, spec, max_age).await,
                    Err(invalid) => Err(invalid),
                };
                results.push(match outcome {
                    Ok(done) => {
                        accepted += 1;
                        json!({ "index": index, "status": done.status.as_u16(), "scan": done.body })
                    }
                    Err(ApiError::Internal) => return Err(ApiError::Internal),
                    Err(refused) => json!({
                        "index": index,
                        "status": refused.status().as_u16(),
                        "error": refused.problem(),
                    }),
                });
            }
            let refused = results.len() - accepted;
            Ok(Replayable::new(
                StatusCode::OK,
                json!({ "accepted": accepted, "refused": refused, "results": results }),
            ))
        },
    )
    .await
}

/// `GET /api/v1/scans/{id}`.
pub(crate) async fn get_scan(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let id: ScanId = id.parse().map_err(|_| ApiError::not_found("scan"))?;
    let view = state
        .services
        .scan(&principal.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))?;
    Ok(axum::Json(scan_json(&view)))
}

/// A scan of the caller's tenant from the scans read model, or 404.
async fn scan_doc(
    state: &AppState,
    principal: &vantage_app::Principal,
    id: &str,
) -> Result<ScanDoc, ApiError> {
    let id: ScanId = id.parse().map_err(|_| ApiError::not_found("scan"))?;
    state
        .read
        .scan(principal.tenant.as_str(), &id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))
}

fn parse_scan_id(raw: &str) -> Result<ScanId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("scan"))
}

/// Query of `GET /api/v1/scans`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListScansQuery {
    pub status: Option<ScanStatus>,
    pub domain: Option<String>,
    pub trigger: Option<Trigger>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// `GET /api/v1/scans`: newest first, filtered, cursor-paginated (`limit` ≤ 100).
pub(crate) async fn list_scans(
    State(state): State<AppState>,
    caller: Authenticated,
    QueryParams(query): QueryParams<ListScansQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let limit = page_limit(query.limit, 20, MAX_PAGE)?;
    let filter = ScanFilter {
        status: query.status.map(|s| s.as_str().to_owned()),
        domain: query.domain.map(|d| d.trim().to_ascii_lowercase()),
        trigger: query
            .trigger
            .and_then(|t| serde_json::to_value(t).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
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
    Ok(axum::Json(json!({
        "items": page.items,
        "next_cursor": page.next_cursor,
    })))
}

/// `GET /api/v1/scans/{id}/status`: where the scan is; `Retry-After` while it is not finished.
pub(crate) async fn scan_status(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let view = state
        .services
        .scan(&principal.tenant, parse_scan_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))?;
    let terminal = view.status.is_terminal();
    let mut response = axum::Json(json!({
        "id": view.id,
        "status": view.status,
        "terminal": terminal,
        "updated_at": view.updated_at,
        "observation_count": view.observation_count,
        "failure_reason": view.failure_reason,
    }))
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelScanRequest {
    pub reason: Option<String>,
}

/// `POST /api/v1/scans/{id}/cancel`: 409 when the scan has already ended.
pub(crate) async fn cancel_scan(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: OptionalJsonBody<CancelScanRequest>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Scope::ScanWrite)?;
    let id = parse_scan_id(&id)?;
    let reason = body.value.and_then(|b| b.reason);
    idempotency::once(
        &state,
        principal.tenant.as_str(),
        &headers,
        &format!("/api/v1/scans/{id}/cancel"),
        &body.raw,
        || async {
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
            Ok(Replayable::new(StatusCode::OK, scan_json(&view)))
        },
    )
    .await
}

/// `DELETE /api/v1/scans/{id}`: 204; 409 while the scan is queued or running.
pub(crate) async fn delete_scan(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.require(Scope::ScanWrite)?;
    let context = command_context(principal, &request_id);
    state
        .services
        .command_scan(&context, parse_scan_id(&id)?, ScanCommand::Delete)
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// The release decision of a `post_deploy` scan: it fails on any critical or high finding that is not
/// triaged away (false positive, accepted risk, fixed).
fn gate(scan: &ScanDoc, findings: &[FindingView]) -> Value {
    if scan.spec.trigger != Trigger::PostDeploy {
        return Value::Null;
    }
    if !scan.status.is_terminal() {
        return json!({ "decision": "pending", "policy": GATE_POLICY, "blocking": [] });
    }
    if scan.status != ScanStatus::Completed {
        return json!({ "decision": "fail", "policy": GATE_POLICY, "blocking": [],
            "reason": format!("the scan {}", scan.status.as_str()) });
    }
    let blocking: Vec<&str> = findings
        .iter()
        .filter(|f| {
            matches!(
                f.finding.finding.severity,
                Severity::Critical | Severity::High
            ) && matches!(f.triage, TriageState::Open | TriageState::Acknowledged)
        })
        .map(|f| f.finding.finding.fingerprint.as_str())
        .collect();
    json!({
        "decision": if blocking.is_empty() { "pass" } else { "fail" },
        "policy": GATE_POLICY,
        "blocking": blocking,
    })
}

const GATE_POLICY: &str = "fail on any open or acknowledged critical or high finding";

/// `GET /api/v1/scans/{id}/summary`: status, counts, score and letter grade, grades, and the release
/// `gate` of `post_deploy` scans.
pub(crate) async fn scan_summary(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let scan = scan_doc(&state, principal, &id).await?;
    let findings = state
        .read
        .findings(
            principal.tenant.as_str(),
            &scan.id,
            &FindingFilter::default(),
            None,
        )
        .await?
        .unwrap_or_default();
    let diff = state.read.diff(principal.tenant.as_str(), &scan.id).await?;
    Ok(axum::Json(json!({
        "id": scan.id,
        "status": scan.status,
        "target": scan.spec.target,
        "trigger": scan.spec.trigger,
        "created_at": scan.created_at,
        "finished_at": scan.finished_at,
        "score": scan.score,
        "grade": scan.score.map(letter),
        "grades": scan.grades,
        "findings": scan.findings,
        "ruleset_version": scan.ruleset_version,
        "previous_scan_id": scan.previous_scan_id,
        "diff": diff.map(|d| json!({
            "new": d.new.len(),
            "fixed": d.fixed.len(),
            "unchanged": d.unchanged.len(),
            "regressions": d.regressions.len(),
        })),
        "gate": gate(&scan, &findings),
    })))
}

/// Query of `GET /api/v1/scans/{id}/observations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationsQuery {
    pub probe: Option<ProbeKind>,
}

/// `GET /api/v1/scans/{id}/observations`: what each probe saw (public-safe by construction), in the
/// order the log recorded it.
pub(crate) async fn scan_observations(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ObservationsQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let id = parse_scan_id(&id)?;
    if state.services.scan(&principal.tenant, id).await?.is_none() {
        return Err(ApiError::not_found("scan"));
    }
    let mut items = Vec::new();
    for event in state.services.store().read_stream(&scan_stream(id)).await? {
        if event.event_type != "ProbeObserved" {
            continue;
        }
        let ScanEvent::ProbeObserved(observed) = ScanEvent::decode(
            &event.event_type,
            event.schema_version,
            event.payload.as_str(),
        )
        .map_err(vantage_app::AppError::from)?
        else {
            continue;
        };
        if query.probe.is_some_and(|p| p != observed.probe) {
            continue;
        }
        items.push(json!({
            "id": observed.observation_id,
            "probe": observed.probe,
            "asset": observed.asset,
            "observed_at": event.occurred_at,
            "data": observed.data,
        }));
    }
    Ok(axum::Json(json!({ "scan_id": id, "items": items })))
}

/// Query of `GET /api/v1/scans/{id}/findings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    pub severity: Option<Severity>,
    pub category: Option<String>,
    pub compliance: Option<String>,
    pub triage: Option<TriageState>,
    pub as_of: Option<String>,
}

/// `GET /api/v1/scans/{id}/findings`: highest priority first, with each fingerprint's triage (as of
/// `as_of` when given).
pub(crate) async fn scan_findings(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<FindingsQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let id = parse_scan_id(&id)?.to_string();
    let as_of = as_of(query.as_of.as_deref())?;
    let filter = FindingFilter {
        severity: query.severity,
        category: query.category,
        compliance: query.compliance,
        triage: query.triage,
    };
    let items = state
        .read
        .findings(principal.tenant.as_str(), &id, &filter, as_of)
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))?;
    Ok(axum::Json(json!({
        "scan_id": id,
        "count": items.len(),
        "items": items,
    })))
}

/// `GET /api/v1/scans/{id}/findings/{finding_id}` (a finding's id is its fingerprint).
pub(crate) async fn scan_finding(
    State(state): State<AppState>,
    caller: Authenticated,
    Path((id, finding_id)): Path<(String, String)>,
) -> Result<axum::Json<FindingView>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let id = parse_scan_id(&id)?.to_string();
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
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("finding"))
}

/// Query of `GET /api/v1/scans/compare`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    pub scan_a: String,
    pub scan_b: String,
}

/// `GET /api/v1/scans/compare?scan_a&scan_b`: what is new in b, fixed since a, and unchanged.
pub(crate) async fn compare_scans(
    State(state): State<AppState>,
    caller: Authenticated,
    QueryParams(query): QueryParams<CompareQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let a = scan_doc(&state, principal, &query.scan_a).await?;
    let b = scan_doc(&state, principal, &query.scan_b).await?;
    let comparison = state
        .read
        .compare(principal.tenant.as_str(), &a.id, &b.id)
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))?;
    Ok(axum::Json(json!({
        "scan_a": comparison.scan_a,
        "scan_b": comparison.scan_b,
        "same_target": a.spec.target == b.spec.target,
        "summary": {
            "new": comparison.new.len(),
            "fixed": comparison.fixed.len(),
            "unchanged": comparison.unchanged.len(),
        },
        "new": comparison.new,
        "fixed": comparison.fixed,
        "unchanged": comparison.unchanged,
    })))
}

/// `GET /api/v1/scans/{id}/history`: the scan's lifecycle as the log recorded it — every event but the
/// observations (which `/observations` lists), with who and when.
pub(crate) async fn scan_history(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let id = parse_scan_id(&id)?;
    let events = state.services.store().read_stream(&scan_stream(id)).await?;
    if events
        .first()
        .is_none_or(|e| e.metadata.tenant != principal.tenant.as_str())
    {
        return Err(ApiError::not_found("scan"));
    }
    let items: Vec<Value> = events
        .iter()
        .filter(|e| e.event_type != "ProbeObserved")
        .map(|e| {
            json!({
                "stream_version": e.stream_version,
                "event_type": e.event_type,
                "occurred_at": e.occurred_at,
                "actor": e.metadata.actor,
                "request_id": e.metadata.request_id,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "scan_id": id, "items": items })))
}
