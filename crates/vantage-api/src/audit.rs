//! The audit trail: the tenant's command events, a walk of the whole hash chain, and the signed
//! checkpoint of the log's head to keep outside the database.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_projections::model::AuditDoc;
use vantage_projections::query::AuditFilter;

use crate::auth::Authorized;
use crate::error::ApiError;
use crate::extract::{QueryParams, as_of, page_limit};
use crate::{AppState, MAX_PAGE};

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
