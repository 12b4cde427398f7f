//! Compliance: the frameworks Vantage maps findings to, and a completed scan's coverage of their
//! controls.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_domain::scan::ScanStatus;
use vantage_projections::model::CoverageDoc;
use vantage_rules::compliance::FRAMEWORKS;

use crate::auth::Authorized;
use crate::error::ApiError;
use crate::extract::{QueryParams, invalid_field};
use crate::{AppState, Items};

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
