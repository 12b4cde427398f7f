//! A domain's scans: its latest completed scan (as of a position or time) and its history, from the
//! domain-history read model.

use axum::Json;
use axum::extract::{Path, State};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_projections::model::DomainScanDoc;
use vantage_projections::query::Page;

use crate::auth::Authorized;
use crate::error::ApiError;
use crate::extract::{QueryParams, as_of, page_limit};
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
