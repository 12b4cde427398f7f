//! Webhook and schedule routes. Webhooks (create — the signing secret is shown once —, list, get,
//! change, delete, their delivery log, a test delivery) need `admin`: a webhook sends the tenant's
//! events out. Schedules need `scan:write` to create or delete and `scan:read` to list. Both belong
//! to a project; lists take `project`, and a key limited to some projects sees only theirs (another
//! project's webhook or schedule is not found).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_domain::DomainError;
use vantage_domain::ids::{DeliveryId, ScheduleId, WebhookId};
use vantage_domain::scan::ScanSpec;
use vantage_domain::schedule::{Cadence, CronCadence};
use vantage_domain::target::Profile;
use vantage_domain::webhook::WebhookUrl;
use vantage_projections::model::{DeliveryDoc, ScheduleDoc, WebhookDoc};

use crate::AppState;
use crate::Items;
use crate::auth::{Authorized, command_context};
use crate::error::{ApiError, FieldError};
use crate::extract::{JsonBody, QueryParams};
use crate::request_id::RequestId;
use crate::scans::CreateScanRequest;

/// Deliveries listed per webhook.
const MAX_DELIVERIES: u32 = 100;

/// A refusal of the SSRF guard, named after the field that was refused.
fn refused(error: DomainError, field: &str) -> ApiError {
    match error {
        DomainError::TargetRefused { reason } => ApiError::Unprocessable {
            code: "target_refused",
            detail: format!("{field} is not allowed: {reason}"),
            errors: vec![FieldError {
                field: field.to_owned(),
                reason,
            }],
        },
        other => other.into(),
    }
}

fn webhook_url(raw: &str) -> Result<WebhookUrl, ApiError> {
    WebhookUrl::parse(raw).map_err(ApiError::from)
}

fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("webhook"))
}

/// Query of the webhook and schedule lists.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectQuery {
    /// Only this project's.
    pub project: Option<String>,
}

/// Whether a resource of `project` belongs in a list the caller asked for `only`.
fn listed(principal: &vantage_app::Principal, only: Option<&str>, project: &str) -> bool {
    only.is_none_or(|only| only == project) && principal.projects.allows(project)
}

/// Webhook `id` of the caller's tenant, when the caller may see its project; else 404.
async fn visible_webhook(
    state: &AppState,
    principal: &vantage_app::Principal,
    raw: &str,
) -> Result<(WebhookId, WebhookDoc), ApiError> {
    let id = webhook_id(raw)?;
    let doc = state
        .read
        .webhook(principal.tenant.as_str(), &id.to_string())
        .await?
        .filter(|doc| listed(principal, None, &doc.project))
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok((id, doc))
}

/// The body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({
    "url": "https://hooks.example.com/vantage", "event_filter": ["scan.completed", "finding.new"]
}))]
pub struct CreateWebhookRequest {
    /// An http(s) URL whose host passes the SSRF guard; redirects are not followed.
    pub url: String,
    /// Which outbound events to send: `scan.completed`, `scan.failed`, `finding.new`,
    /// `finding.regressed`, `triage.changed`.
    pub event_filter: Vec<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// The project whose scans it reports (see `POST /api/v1/scans`).
    pub project: Option<String>,
}

/// The body of `PATCH /api/v1/webhooks/{id}` (the secret cannot be changed).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({ "enabled": false }))]
pub struct UpdateWebhookRequest {
    pub url: Option<String>,
    pub event_filter: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// A webhook (never its secret).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({
    "id": "0192f3a4-5b6c-7d8e-9f01-23456789abcd", "url": "https://hooks.example.com/vantage",
    "event_filter": ["scan.completed"], "enabled": true, "project": "default",
    "created_at": "2026-12-05T10:00:00Z", "updated_at": "2026-12-05T10:00:00Z"
}))]
pub struct WebhookResource {
    pub id: String,
    pub url: String,
    pub event_filter: Vec<String>,
    pub enabled: bool,
    pub project: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookDoc> for WebhookResource {
    fn from(doc: WebhookDoc) -> Self {
        Self {
            id: doc.id,
            url: doc.url,
            event_filter: doc.events,
            enabled: doc.active,
            project: doc.project,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        }
    }
}

/// A webhook just created, with its signing secret: shown this once, never again.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CreatedWebhookResource {
    pub id: WebhookId,
    pub url: String,
    pub event_filter: Vec<String>,
    pub enabled: bool,
    /// `whsec_…`: verify deliveries with it as Standard Webhooks describes.
    pub secret: String,
}

/// `POST /api/v1/webhooks`: 201 with the secret.
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    body: JsonBody<CreateWebhookRequest>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let principal = caller.principal();
    let CreateWebhookRequest {
        url,
        event_filter,
        enabled,
        project,
    } = body.value;
    let project = crate::scans::project_for(principal, project.as_deref())?;
    let url = webhook_url(&url)?;
    let enabled = enabled.unwrap_or(true);
    let context = command_context(principal, &request_id);
    let created = state
        .services
        .create_webhook(&context, url.clone(), event_filter, enabled, project)
        .await?
        .map_err(|e| refused(e, "url"))?;
    Ok((
        StatusCode::CREATED,
        crate::NO_STORE,
        Json(CreatedWebhookResource {
            id: created.id,
            url: url.as_str().to_owned(),
            event_filter: created.events.into_iter().collect(),
            enabled,
            secret: created.secret,
        }),
    ))
}

/// `GET /api/v1/webhooks`.
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<ProjectQuery>,
) -> Result<Json<Items<WebhookResource>>, ApiError> {
    let principal = caller.principal();
    let items = state.read.webhooks(principal.tenant.as_str()).await?;
    Ok(Json(Items {
        items: items
            .into_iter()
            .filter(|doc| listed(principal, query.project.as_deref(), &doc.project))
            .map(Into::into)
            .collect(),
    }))
}

/// `GET /api/v1/webhooks/{id}`.
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<Json<WebhookResource>, ApiError> {
    let principal = caller.principal();
    let (_, doc) = visible_webhook(&state, principal, &id).await?;
    Ok(Json(doc.into()))
}

/// `PATCH /api/v1/webhooks/{id}`: 204.
pub(crate) async fn update_webhook(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
    body: JsonBody<UpdateWebhookRequest>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.principal();
    let (id, _) = visible_webhook(&state, principal, &id).await?;
    let UpdateWebhookRequest {
        url,
        event_filter,
        enabled,
    } = body.value;
    let change = vantage_app::WebhookChange {
        url: url.as_deref().map(webhook_url).transpose()?,
        events: event_filter,
        enabled,
    };
    let context = command_context(principal, &request_id);
    state
        .services
        .update_webhook(&context, id, change)
        .await?
        .map_err(|e| refused(e, "url"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/webhooks/{id}`: 204; its secret is forgotten.
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.principal();
    let (id, _) = visible_webhook(&state, principal, &id).await?;
    let context = command_context(principal, &request_id);
    state.services.delete_webhook(&context, id).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/webhooks/{id}/deliveries`: the last 100, most recently attempted first.
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<Json<Items<DeliveryDoc>>, ApiError> {
    let principal = caller.principal();
    let (id, _) = visible_webhook(&state, principal, &id).await?;
    let items = state
        .read
        .deliveries(
            principal.tenant.as_str(),
            &id.to_string(),
            None,
            MAX_DELIVERIES,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(Json(Items { items }))
}

/// A test delivery was asked for.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TestDelivery {
    /// The `webhook-id` the receiver will see; its attempts appear in the delivery log.
    pub delivery_id: DeliveryId,
}

/// `POST /api/v1/webhooks/{id}/test`: 202 with the delivery's id.
pub(crate) async fn test_webhook(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TestDelivery>), ApiError> {
    let principal = caller.principal();
    let (id, _) = visible_webhook(&state, principal, &id).await?;
    let context = command_context(principal, &request_id);
    let delivery_id = state.services.test_webhook(&context, id).await??;
    Ok((StatusCode::ACCEPTED, Json(TestDelivery { delivery_id })))
}

// ---- schedules ----------------------------------------------------------------------------------

/// The body of `POST /api/v1/schedules`: what to scan, and either `interval_seconds` or `cron`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({
    "target": "example.com", "cron": "0 6 * * 1-5", "timezone": "Europe/Paris"
}))]
pub struct CreateScheduleRequest {
    /// A domain (`example.com`) or an http(s) URL.
    pub target: String,
    pub ports: Option<Vec<u16>>,
    pub paths: Option<Vec<String>>,
    pub profile: Option<Profile>,
    pub vantage_point: Option<String>,
    /// Each scan keeps content samples (see `POST /api/v1/scans`).
    pub include_content_sample: Option<bool>,
    /// Days each scan's samples are kept (7–30, default 7).
    pub content_retention_days: Option<u16>,
    /// Seconds between scans (60 to 31 days), counted from the schedule's creation.
    pub interval_seconds: Option<u32>,
    /// A cron expression: five fields (minute hour day-of-month month day-of-week) or six with
    /// seconds first; fires at most once a minute.
    pub cron: Option<String>,
    /// The IANA time zone `cron` is read in (default `UTC`).
    pub timezone: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// The project its scans belong to (see `POST /api/v1/scans`).
    pub project: Option<String>,
}

/// A schedule.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScheduleResource {
    pub id: String,
    pub spec: ScanSpec,
    pub interval_seconds: Option<u32>,
    pub cron: Option<CronCadence>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    /// When it next starts a scan (none when disabled).
    pub next_run_at: Option<DateTime<Utc>>,
}

impl ScheduleResource {
    fn of(doc: ScheduleDoc, now: DateTime<Utc>) -> Self {
        Self {
            next_run_at: doc.schedule.next_slot(doc.created_at, now),
            id: doc.id,
            interval_seconds: doc.schedule.interval_seconds,
            cron: doc.schedule.cron,
            enabled: doc.schedule.enabled,
            spec: doc.schedule.spec,
            created_at: doc.created_at,
        }
    }
}

/// A schedule just created.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CreatedSchedule {
    pub id: ScheduleId,
}

/// `POST /api/v1/schedules`: 201.
pub(crate) async fn create_schedule(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    body: JsonBody<CreateScheduleRequest>,
) -> Result<(StatusCode, Json<CreatedSchedule>), ApiError> {
    let principal = caller.principal();
    let request = body.value;
    let cadence = match (request.interval_seconds, request.cron) {
        (Some(seconds), None) if request.timezone.is_none() => Cadence::Interval { seconds },
        (None, Some(expression)) => Cadence::Cron(
            CronCadence::parse(&expression, request.timezone.as_deref().unwrap_or("UTC"))
                .map_err(ApiError::from)?,
        ),
        _ => {
            return Err(ApiError::Unprocessable {
                code: "validation_failed",
                detail: "give either interval_seconds or cron (with an optional timezone)".into(),
                errors: vec![FieldError {
                    field: "cron".into(),
                    reason: "exactly one of interval_seconds and cron".into(),
                }],
            });
        }
    };
    let spec = CreateScanRequest {
        target: request.target,
        ports: request.ports,
        paths: request.paths,
        profile: request.profile,
        trigger: None,
        vantage_point: request.vantage_point,
        max_age_seconds: None,
        include_content_sample: request.include_content_sample,
        content_retention_days: request.content_retention_days,
        project: request.project,
    }
    .into_spec(principal)?;
    let context = command_context(principal, &request_id);
    let id = state
        .services
        .create_schedule(&context, spec, cadence, request.enabled.unwrap_or(true))
        .await??;
    Ok((StatusCode::CREATED, Json(CreatedSchedule { id })))
}

/// `GET /api/v1/schedules`: oldest first.
pub(crate) async fn list_schedules(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<ProjectQuery>,
) -> Result<Json<Items<ScheduleResource>>, ApiError> {
    let principal = caller.principal();
    let now = state.services.pipeline.clock().now();
    let items = state.read.schedules(principal.tenant.as_str()).await?;
    Ok(Json(Items {
        items: items
            .into_iter()
            .filter(|doc| {
                let project = doc.schedule.spec.project.as_str();
                listed(principal, query.project.as_deref(), project)
            })
            .map(|doc| ScheduleResource::of(doc, now))
            .collect(),
    }))
}

/// `DELETE /api/v1/schedules/{id}`: 204.
pub(crate) async fn delete_schedule(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.principal();
    let id: ScheduleId = id.parse().map_err(|_| ApiError::not_found("schedule"))?;
    if principal.projects.limited_to().is_some() {
        let visible = state
            .read
            .schedule(principal.tenant.as_str(), &id.to_string())
            .await?
            .is_some_and(|doc| {
                principal
                    .projects
                    .allows(doc.schedule.spec.project.as_str())
            });
        if !visible {
            return Err(ApiError::not_found("schedule"));
        }
    }
    let context = command_context(principal, &request_id);
    state.services.delete_schedule(&context, id).await??;
    Ok(StatusCode::NO_CONTENT)
}
