//! Read-only routes over the tenant-wide read models: domains (latest scan, history), notifications
//! (and their read receipts), the dashboard (stats, trends, command center), compliance (frameworks,
//! coverage of a scan) and the audit trail (events, chain verification). Every one is an index lookup
//! on a read model, except `GET /audit/verify`, which by its nature walks the whole log.

use axum::Extension;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use vantage_domain::ids::NotificationId;
use vantage_domain::scope::Scope;
use vantage_projections::query::AuditFilter;
use vantage_rules::compliance::FRAMEWORKS;

use crate::auth::{Authenticated, command_context};
use crate::error::ApiError;
use crate::extract::{QueryParams, as_of, invalid_field, page_limit};
use crate::request_id::RequestId;
use crate::{AppState, MAX_PAGE};

fn domain_name(raw: &str) -> String {
    raw.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Query of `GET /api/v1/domains/{domain}/latest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsOfQuery {
    pub as_of: Option<String>,
}

/// `GET /api/v1/domains/{domain}/latest`: the domain's latest completed scan (as of `as_of`).
pub(crate) async fn domain_latest(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(domain): Path<String>,
    QueryParams(query): QueryParams<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let latest = state
        .read
        .domain_latest(
            principal.tenant.as_str(),
            &domain_name(&domain),
            as_of(query.as_of.as_deref())?,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("completed scan of this domain"))?;
    let mut body = serde_json::to_value(&latest).map_err(|_| ApiError::Internal)?;
    body["grade"] = json!(vantage_rules::grade::letter(latest.score));
    Ok(axum::Json(body))
}

/// Query of `GET /api/v1/domains/{domain}/history`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/domains/{domain}/history`: completed scans of the domain, newest first.
pub(crate) async fn domain_history(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(domain): Path<String>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let limit = page_limit(query.limit, 20, MAX_PAGE)?;
    let before = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<u64>().map_err(|_| ApiError::BadRequest {
                code: "invalid_query",
                detail: "the cursor is not one this server issued".into(),
            })
        })
        .transpose()?;
    let items = state
        .read
        .domain_history(
            principal.tenant.as_str(),
            &domain_name(&domain),
            before,
            limit,
        )
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|h| h.position.to_string()))
        .flatten();
    Ok(axum::Json(
        json!({ "items": items, "next_cursor": next_cursor }),
    ))
}

/// Most notifications one request lists.
const MAX_NOTIFICATIONS: u32 = 200;

/// Query of `GET /api/v1/notifications`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsQuery {
    #[serde(default)]
    pub unread_only: bool,
    pub limit: Option<u32>,
}

/// `GET /api/v1/notifications`: newest first (`limit` ≤ 200).
pub(crate) async fn notifications(
    State(state): State<AppState>,
    caller: Authenticated,
    QueryParams(query): QueryParams<NotificationsQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let limit = page_limit(query.limit, 50, MAX_NOTIFICATIONS)?;
    let items = state
        .read
        .notifications(principal.tenant.as_str(), query.unread_only, limit)
        .await?;
    Ok(axum::Json(json!({ "items": items })))
}

/// `GET /api/v1/notifications/unread-count`.
pub(crate) async fn unread_count(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let unread = state.read.unread_count(principal.tenant.as_str()).await?;
    Ok(axum::Json(json!({ "unread": unread })))
}

/// `PATCH /api/v1/notifications/{id}/read`.
pub(crate) async fn mark_read(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let missing = || ApiError::not_found("notification");
    let id: NotificationId = id.parse().map_err(|_| missing())?;
    let mut notification = state
        .read
        .notification(principal.tenant.as_str(), &id.to_string())
        .await?
        .ok_or_else(missing)?;
    let context = command_context(principal, &request_id);
    state
        .services
        .mark_notification_read(&context, id)
        .await??;
    notification.read = true;
    Ok(axum::Json(
        serde_json::to_value(notification).map_err(|_| ApiError::Internal)?,
    ))
}

/// `PATCH /api/v1/notifications/read-all`: every notification derived so far.
pub(crate) async fn mark_all_read(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authenticated,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let context = command_context(principal, &request_id);
    let up_to = state
        .services
        .mark_all_notifications_read(&context)
        .await??;
    Ok(axum::Json(json!({ "read_up_to_position": up_to })))
}

/// `GET /api/v1/dashboard/stats`.
pub(crate) async fn stats(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let stats = state.read.stats(principal.tenant.as_str()).await?;
    Ok(axum::Json(
        serde_json::to_value(stats).map_err(|_| ApiError::Internal)?,
    ))
}

/// Most days one trends request covers.
const MAX_TREND_DAYS: u32 = 366;

/// Query of `GET /api/v1/dashboard/trends`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendsQuery {
    /// One domain's days; the whole tenant's without.
    pub domain: Option<String>,
    /// How many days back from today (default 30, at most 366).
    pub days: Option<u32>,
}

/// `GET /api/v1/dashboard/trends`: per day, oldest first: scans, score and counts by severity.
pub(crate) async fn trends(
    State(state): State<AppState>,
    caller: Authenticated,
    QueryParams(query): QueryParams<TrendsQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let days = match query.days {
        None => 30,
        Some(d) if (1..=MAX_TREND_DAYS).contains(&d) => d,
        Some(_) => {
            return Err(invalid_field(
                "days",
                format!("must be between 1 and {MAX_TREND_DAYS}"),
            ));
        }
    };
    let today = state.services.pipeline.clock().now();
    let since = (today - chrono::Duration::days(i64::from(days) - 1))
        .format("%Y-%m-%d")
        .to_string();
    let domain = query.domain.as_deref().map(domain_name);
    let items = state
        .read
        .trends(principal.tenant.as_str(), domain.as_deref(), &since)
        .await?;
    Ok(axum::Json(json!({
        "domain": domain,
        "since": since,
        "items": items,
    })))
}

/// `GET /api/v1/dashboard/command-center`: health score and the five top priorities.
pub(crate) async fn command_center(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let center = state.read.command_center(principal.tenant.as_str()).await?;
    Ok(axum::Json(
        serde_json::to_value(center).map_err(|_| ApiError::Internal)?,
    ))
}

/// `GET /api/v1/compliance/frameworks`: every framework Vantage maps findings to, with its controls.
pub(crate) async fn frameworks(caller: Authenticated) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::ScanRead)?;
    let items: Vec<Value> = FRAMEWORKS
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "name": f.name,
                "version": f.version,
                "controls": f.controls.iter().map(|c| json!({
                    "id": c.id,
                    "title": c.title,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "items": items })))
}

/// Query of `GET /api/v1/compliance/coverage`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageQuery {
    pub scan_id: String,
    pub framework: Option<String>,
}

/// `GET /api/v1/compliance/coverage?scan_id[&framework]`: per control, passing, failing or not
/// assessed by the scan.
pub(crate) async fn coverage(
    State(state): State<AppState>,
    caller: Authenticated,
    QueryParams(query): QueryParams<CoverageQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let tenant = principal.tenant.as_str();
    if let Some(framework) = &query.framework
        && vantage_rules::compliance::framework(framework).is_none()
    {
        let known: Vec<&str> = FRAMEWORKS.iter().map(|f| f.id).collect();
        return Err(invalid_field(
            "framework",
            format!("unknown framework; expected one of {}", known.join(", ")),
        ));
    }
    let missing = || ApiError::not_found("scan");
    let scan_id: vantage_domain::ids::ScanId = query.scan_id.parse().map_err(|_| missing())?;
    let scan = state
        .read
        .scan(tenant, &scan_id.to_string())
        .await?
        .ok_or_else(missing)?;
    let items = state
        .read
        .coverage(tenant, &scan.id, query.framework.as_deref())
        .await?;
    Ok(axum::Json(json!({
        "scan_id": scan.id,
        "status": scan.status,
        "items": items,
    })))
}

/// Query of `GET /api/v1/audit/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Events after this log position (the `next_cursor` of the previous page).
    pub after: Option<u64>,
    /// The event type, e.g. `TriageSet`.
    pub action: Option<String>,
    pub actor: Option<String>,
    pub stream: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub as_of: Option<String>,
    pub limit: Option<u32>,
}

/// `GET /api/v1/audit/events`: the tenant's command events by log position, oldest first.
pub(crate) async fn audit_events(
    State(state): State<AppState>,
    caller: Authenticated,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::AuditRead)?;
    let limit = page_limit(query.limit, 50, MAX_PAGE)?;
    let filter = AuditFilter {
        action: query.action,
        actor: query.actor,
        stream: query.stream,
        since: query.since,
        until: query.until,
    };
    let items = state
        .read
        .audit(
            principal.tenant.as_str(),
            query.after.unwrap_or(0),
            &filter,
            as_of(query.as_of.as_deref())?,
            limit,
        )
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.position))
        .flatten();
    Ok(axum::Json(
        json!({ "items": items, "next_cursor": next_cursor }),
    ))
}

/// `GET /api/v1/audit/verify`: walks the whole hash chain (every tenant's events: the chain is one)
/// and reports the first break.
pub(crate) async fn audit_verify(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::AuditRead)?;
    let report = vantage_store::verify_chain(state.services.store().as_ref(), |_| {}).await?;
    Ok(axum::Json(json!({
        "ok": report.first_break.is_none(),
        "events_checked": report.events_checked,
        "head_hash": report.head_hash,
        "first_break": report.first_break.map(|b| json!({
            "global_position": b.global_position,
            "event_id": b.event_id,
            "stream": b.stream,
            "stream_version": b.stream_version,
            "reason": b.reason,
        })),
    })))
}
