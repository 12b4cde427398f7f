//! The tenant's notifications (new findings, regressions, failed scans, certificates near expiry):
//! listing, the unread count, and read receipts for one or all.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_domain::ids::NotificationId;
use vantage_domain::project::ProjectId;
use vantage_projections::model::NotificationDoc;

use crate::auth::{Authorized, command_context, project_scope};
use crate::dashboard::StatsQuery;
use crate::error::ApiError;
use crate::extract::{QueryParams, page_limit};
use crate::request_id::RequestId;
use crate::{AppState, Items};

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
