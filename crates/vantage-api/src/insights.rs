//! Read-only routes over the tenant-wide read models: domains (latest scan, history), notifications
//! (and their read receipts), the dashboard (stats, trends, command center), compliance (frameworks,
//! coverage of a scan) and the audit trail (events, chain verification). Every one is an index lookup
//! on a read model, except `GET /audit/verify`, which by its nature walks the whole log.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_domain::ids::NotificationId;
use vantage_domain::project::ProjectId;
use vantage_domain::scan::ScanStatus;
use vantage_projections::model::{AuditDoc, CoverageDoc, DomainScanDoc, NotificationDoc, TrendDoc};
use vantage_projections::query::{AuditFilter, CommandCenter, Page, Stats};
use vantage_rules::compliance::FRAMEWORKS;

use crate::auth::{Authorized, command_context};
use crate::error::ApiError;
use crate::extract::{QueryParams, as_of, invalid_field, page_limit};
use crate::request_id::RequestId;
use crate::{AppState, MAX_PAGE};

/// A domain as the read models key it: trimmed, lower case, without a trailing dot.
pub(crate) fn domain_name(raw: &str) -> String {
    raw.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Query of `GET /api/v1/domains/{domain}/latest`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsOfQuery {
    /// As it stood then: a log position or an RFC 3339 time.
    pub as_of: Option<String>,
}

/// A list.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// A domain's latest completed scan.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DomainLatest {
    #[serde(flatten)]
    pub scan: DomainScanDoc,
    /// The overall grade (A+ … F, T or M; absent when the target could not be reached).
    pub grade: Option<String>,
}

/// `GET /api/v1/domains/{domain}/latest`: the domain's latest completed scan (as of `as_of`).
pub(crate) async fn domain_latest(
    State(state): State<AppState>,
    caller: Authorized,
    Path(domain): Path<String>,
    QueryParams(query): QueryParams<AsOfQuery>,
) -> Result<Json<DomainLatest>, ApiError> {
    let principal = caller.principal();
    let latest = state
        .read
        .domain_latest(
            principal.tenant.as_str(),
            &domain_name(&domain),
            as_of(query.as_of.as_deref())?,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("completed scan of this domain"))?;
    Ok(Json(DomainLatest {
        grade: latest.overall.as_ref().and_then(|o| o.grade.clone()),
        scan: latest,
    }))
}

/// Query of `GET /api/v1/domains/{domain}/history`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Page size, 1-100.
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/domains/{domain}/history`: completed scans of the domain, newest first.
pub(crate) async fn domain_history(
    State(state): State<AppState>,
    caller: Authorized,
    Path(domain): Path<String>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<Page<DomainScanDoc>>, ApiError> {
    let principal = caller.principal();
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
    Ok(Json(Page { items, next_cursor }))
}

/// Most notifications one request lists.
const MAX_NOTIFICATIONS: u32 = 200;

/// Query of `GET /api/v1/notifications`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsQuery {
    #[serde(default)]
    pub unread_only: bool,
    /// One project's (a key limited to one project: its own).
    pub project: Option<String>,
    /// Page size, 1-200.
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
}

/// `GET /api/v1/notifications`: newest first (`limit` ≤ 200).
pub(crate) async fn notifications(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<NotificationsQuery>,
) -> Result<Json<Items<NotificationDoc>>, ApiError> {
    let principal = caller.principal();
    let project = project_scope(principal, query.project.as_deref())?;
    let limit = page_limit(query.limit, 50, MAX_NOTIFICATIONS)?;
    let items = state
        .read
        .notifications(
            principal.tenant.as_str(),
            project.as_ref().map(ProjectId::as_str),
            query.unread_only,
            limit,
        )
        .await?;
    Ok(Json(Items { items }))
}

/// How many notifications are unread.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({ "unread": 3 }))]
pub struct UnreadCount {
    pub unread: i64,
}

/// `GET /api/v1/notifications/unread-count`.
pub(crate) async fn unread_count(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<StatsQuery>,
) -> Result<Json<UnreadCount>, ApiError> {
    let principal = caller.principal();
    let project = project_scope(principal, query.project.as_deref())?;
    let unread = state
        .read
        .unread_count(
            principal.tenant.as_str(),
            project.as_ref().map(ProjectId::as_str),
        )
        .await?;
    Ok(Json(UnreadCount { unread }))
}

/// `PATCH /api/v1/notifications/{id}/read`.
pub(crate) async fn mark_read(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<Json<NotificationDoc>, ApiError> {
    let principal = caller.principal();
    let missing = || ApiError::not_found("notification");
    let id: NotificationId = id.parse().map_err(|_| missing())?;
    let mut notification = state
        .read
        .notification(principal.tenant.as_str(), &id.to_string())
        .await?
        .filter(|n| principal.projects.allows(&n.project))
        .ok_or_else(missing)?;
    let context = command_context(principal, &request_id);
    state
        .services
        .mark_notification_read(&context, id)
        .await??;
    notification.read = true;
    Ok(Json(notification))
}

/// Every notification derived up to this log position is read.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({ "read_up_to_position": 1042 }))]
pub struct AllRead {
    pub read_up_to_position: u64,
}

/// `PATCH /api/v1/notifications/read-all`: every notification derived so far.
pub(crate) async fn mark_all_read(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
) -> Result<Json<AllRead>, ApiError> {
    let principal = caller.principal();
    let context = command_context(principal, &request_id);
    let up_to = state
        .services
        .mark_all_notifications_read(&context)
        .await??;
    Ok(Json(AllRead {
        read_up_to_position: up_to,
    }))
}

/// Query of `GET /api/v1/dashboard/stats` and `GET /api/v1/notifications/unread-count`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// One project's; the whole tenant's without (a key limited to one project: its own).
    pub project: Option<String>,
}

/// Which project a dashboard or the notifications answer for: the one asked for, if the caller may see it (another
/// is not found); without one, the whole tenant, or for a key limited to exactly one project that
/// project (a key limited to several must name one).
fn project_scope(
    principal: &vantage_app::Principal,
    asked: Option<&str>,
) -> Result<Option<ProjectId>, ApiError> {
    match (asked, principal.projects.limited_to()) {
        (Some(raw), _) => {
            let project = ProjectId::parse(raw).map_err(ApiError::from)?;
            if principal.projects.allows(project.as_str()) {
                Ok(Some(project))
            } else {
                Err(ApiError::not_found("project"))
            }
        }
        (None, None) => Ok(None),
        (None, Some(only)) if only.len() == 1 => Ok(only.iter().next().cloned()),
        (None, Some(_)) => Err(ApiError::ProjectLimited),
    }
}

/// `GET /api/v1/dashboard/stats`: the tenant's totals, or a project's.
pub(crate) async fn stats(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let principal = caller.principal();
    let project = project_scope(principal, query.project.as_deref())?;
    let stats = state
        .read
        .stats(
            principal.tenant.as_str(),
            project.as_ref().map(ProjectId::as_str),
        )
        .await?;
    Ok(Json(stats))
}

/// Most days one trends request covers.
const MAX_TREND_DAYS: u32 = 366;

/// Query of `GET /api/v1/dashboard/trends`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrendsQuery {
    /// One domain's days; the whole tenant's without.
    pub domain: Option<String>,
    /// One project's scans only (a key limited to one project: its own).
    pub project: Option<String>,
    /// How many days back from today (default 30, at most 366).
    #[schemars(range(min = 1, max = 366))]
    pub days: Option<u32>,
}

/// Days of the tenant, or of one domain.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Trends {
    pub domain: Option<String>,
    /// The first day covered (`YYYY-MM-DD`, UTC).
    pub since: String,
    pub items: Vec<TrendDoc>,
}

/// `GET /api/v1/dashboard/trends`: per day, oldest first: scans, score and counts by severity.
pub(crate) async fn trends(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<TrendsQuery>,
) -> Result<Json<Trends>, ApiError> {
    let principal = caller.principal();
    let project = project_scope(principal, query.project.as_deref())?;
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
        .trends(
            principal.tenant.as_str(),
            project.as_ref().map(ProjectId::as_str),
            domain.as_deref(),
            &since,
        )
        .await?;
    Ok(Json(Trends {
        domain,
        since,
        items,
    }))
}

/// Query of `GET /api/v1/dashboard/command-center`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandCenterQuery {
    /// Start of the period: an RFC 3339 time or a date (midnight UTC) [default: seven days before
    /// `date_to`].
    pub date_from: Option<String>,
    /// End of the period, exclusive: an RFC 3339 time or a date (midnight UTC) [default: now,
    /// rounded up to the whole second].
    pub date_to: Option<String>,
    /// One project's (a finding counts in the project of the latest scan that saw it); a key
    /// limited to one project: its own.
    pub project: Option<String>,
}

/// The longest period a command center covers.
const MAX_PERIOD_DAYS: i64 = 366;

/// The first whole second after `now` (`now` itself if it is one): the default end of a period,
/// so that the requests of one second ask the same question and share its answer.
fn next_whole_second(now: DateTime<Utc>) -> DateTime<Utc> {
    let whole = now.timestamp() + i64::from(now.timestamp_subsec_nanos() > 0);
    DateTime::from_timestamp(whole, 0).unwrap_or(now)
}

/// An RFC 3339 time, or a date meaning its midnight UTC.
fn moment(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    vantage_projections::query::parse_moment(raw)
        .ok_or_else(|| invalid_field(field, "must be an RFC 3339 time or a YYYY-MM-DD date"))
}

/// `GET /api/v1/dashboard/command-center`: health score and the five top priorities now, and what
/// happened between `date_from` and `date_to` (the last seven days by default).
pub(crate) async fn command_center(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<CommandCenterQuery>,
) -> Result<Json<CommandCenter>, ApiError> {
    let principal = caller.principal();
    let project = project_scope(principal, query.project.as_deref())?;
    let date_to = match &query.date_to {
        Some(raw) => moment("date_to", raw)?,
        None => next_whole_second(state.services.pipeline.clock().now()),
    };
    let date_from = match &query.date_from {
        Some(raw) => moment("date_from", raw)?,
        None => date_to - chrono::Duration::days(7),
    };
    if date_from >= date_to {
        return Err(invalid_field("date_from", "must be before date_to"));
    }
    if date_to - date_from > chrono::Duration::days(MAX_PERIOD_DAYS) {
        return Err(invalid_field(
            "date_from",
            format!("the period is at most {MAX_PERIOD_DAYS} days"),
        ));
    }
    let mut center = state
        .read
        .command_center(
            principal.tenant.as_str(),
            project.as_ref().map(ProjectId::as_str),
            date_from,
            date_to,
        )
        .await?;
    let mut opened = Vec::with_capacity(center.top_priorities.len());
    for doc in center.top_priorities {
        opened.push(crate::triage::note_opened(&state, doc).await?);
    }
    center.top_priorities = opened;
    Ok(Json(center))
}

/// One control of a framework.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ControlView {
    pub id: &'static str,
    pub title: &'static str,
}

/// A compliance framework Vantage maps findings to.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FrameworkView {
    /// Use it in `framework=` (e.g. `owasp-asvs`).
    pub id: &'static str,
    pub name: &'static str,
    pub version: &'static str,
    pub controls: Vec<ControlView>,
}

/// `GET /api/v1/compliance/frameworks`: every framework Vantage maps findings to, with its controls.
pub(crate) async fn frameworks() -> Result<Json<Items<FrameworkView>>, ApiError> {
    let items = FRAMEWORKS
        .iter()
        .map(|f| FrameworkView {
            id: f.id,
            name: f.name,
            version: f.version,
            controls: f
                .controls
                .iter()
                .map(|c| ControlView {
                    id: c.id,
                    title: c.title,
                })
                .collect(),
        })
        .collect();
    Ok(Json(Items { items }))
}

/// Query of `GET /api/v1/compliance/coverage`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoverageQuery {
    pub scan_id: String,
    pub framework: Option<String>,
}

/// A scan's coverage of each framework (or of one).
#[derive(Debug, Serialize, JsonSchema)]
pub struct CoverageReport {
    pub scan_id: String,
    pub status: ScanStatus,
    pub items: Vec<CoverageDoc>,
}

/// `GET /api/v1/compliance/coverage?scan_id[&framework]`: per control, passing, failing or not
/// assessed by the scan.
pub(crate) async fn coverage(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<CoverageQuery>,
) -> Result<Json<CoverageReport>, ApiError> {
    let principal = caller.principal();
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
    let scan_id = crate::scans::visible_scan_id(&state, principal, &query.scan_id).await?;
    let scan = state
        .read
        .scan(tenant, &scan_id.to_string())
        .await?
        .ok_or_else(missing)?;
    let items = state
        .read
        .coverage(tenant, &scan.id, query.framework.as_deref())
        .await?;
    Ok(Json(CoverageReport {
        scan_id: scan.id,
        status: scan.status,
        items,
    }))
}

/// Query of `GET /api/v1/audit/events`.
#[derive(Debug, Deserialize, JsonSchema)]
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
    /// As it stood then: a log position or an RFC 3339 time.
    pub as_of: Option<String>,
    /// Page size, 1-100.
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

/// A page of the audit trail.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditPage {
    pub items: Vec<AuditDoc>,
    /// Pass as `after` for the next page.
    pub next_cursor: Option<u64>,
}

/// `GET /api/v1/audit/events`: the tenant's command events by log position, oldest first.
pub(crate) async fn audit_events(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let principal = caller.principal();
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
    Ok(Json(AuditPage { items, next_cursor }))
}

/// The first place the hash chain breaks.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChainBreakView {
    pub global_position: u64,
    pub event_id: String,
    pub stream: String,
    pub stream_version: u64,
    pub reason: String,
}

/// The result of walking the hash chain.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({
    "ok": true, "events_checked": 1042,
    "head_hash": "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c0e2a4c6e8a0c2e4a6c8e0a2c4e6a8b0d",
    "first_break": null
}))]
pub struct ChainReport {
    pub ok: bool,
    pub events_checked: u64,
    /// The chain hash of the last event (anchor it elsewhere to detect a rewrite of everything).
    pub head_hash: String,
    pub first_break: Option<ChainBreakView>,
}

/// `GET /api/v1/audit/verify`: walks the whole hash chain (every tenant's events: the chain is one)
/// and reports the first break.
pub(crate) async fn audit_verify(
    State(state): State<AppState>,
    _caller: Authorized,
) -> Result<Json<ChainReport>, ApiError> {
    let report = vantage_store::verify_chain(state.services.store().as_ref(), |_| {}).await?;
    Ok(Json(ChainReport {
        ok: report.first_break.is_none(),
        events_checked: report.events_checked,
        head_hash: report.head_hash,
        first_break: report.first_break.map(|b| ChainBreakView {
            global_position: b.global_position,
            event_id: b.event_id,
            stream: b.stream,
            stream_version: b.stream_version,
            reason: b.reason,
        }),
    }))
}

/// `GET /api/v1/audit/checkpoint`: the log's head signed with the server's key, to keep outside the
/// database; `vantage verify --checkpoints` later proves the log still holds it.
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    _caller: Authorized,
) -> Result<Json<vantage_reports::checkpoint::SignedCheckpoint>, ApiError> {
    let store = state.services.store();
    let head = store.head_position().await?;
    let head_hash = match head {
        0 => vantage_store::GENESIS_HASH.to_owned(),
        _ => store
            .read_all(head - 1, 1)
            .await?
            .into_iter()
            .next()
            .map(|e| e.hash)
            .ok_or(ApiError::Internal)?,
    };
    Ok(Json(vantage_reports::checkpoint::SignedCheckpoint::sign(
        &state.services.signing_key,
        head,
        &head_hash,
        state.services.pipeline.clock().now(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_ends_at_the_next_whole_second() {
        let at = |raw: &str| DateTime::parse_from_rfc3339(raw).unwrap().to_utc();
        assert_eq!(
            next_whole_second(at("2026-12-06T10:00:00.000001Z")),
            at("2026-12-06T10:00:01Z")
        );
        assert_eq!(
            next_whole_second(at("2026-12-06T10:00:00.999999Z")),
            at("2026-12-06T10:00:01Z")
        );
        assert_eq!(
            next_whole_second(at("2026-12-06T10:00:00Z")),
            at("2026-12-06T10:00:00Z")
        );
    }
}
