//! API key routes: issue (the token is shown once), list, who-am-I, rotate (the new token is shown
//! once; the old secret keeps working for a grace period), revoke. Managing keys needs the
//! `admin` scope; `GET /keys/me` answers any valid key. Revoking the tenant's last admin key is 409.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_app::KeySummary;
use vantage_domain::ids::ApiKeyId;
use vantage_domain::project::ProjectId;
use vantage_domain::scope::{Scope, Scopes};
use vantage_domain::tenant::TenantId;

use crate::Items;
use crate::auth::{Authorized, command_context};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody};
use crate::request_id::RequestId;
use crate::{AppState, NO_STORE};

/// The body of `POST /api/v1/keys`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({ "name": "ci-pipeline", "scopes": ["scan:read", "scan:write"] }))]
pub struct IssueKeyRequest {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Limit the key to these projects (their other projects' resources are not found to it, and
    /// routes spanning every project refuse it); absent: every project.
    pub projects: Option<Vec<String>>,
}

/// A key just issued, with its token: shown this once, never again.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IssuedKeyView {
    pub id: ApiKeyId,
    pub name: String,
    pub scopes: Scopes,
    /// The projects it is limited to; absent: every project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projects: Option<BTreeSet<ProjectId>>,
    pub revoked: bool,
    /// Send as `Authorization: Bearer <token>` or `X-API-Key: <token>`.
    pub token: String,
}

/// The calling key.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({
    "id": "0192f3a4-5b6c-7d8e-9f01-23456789abcd", "name": "ci-pipeline",
    "scopes": ["scan:read", "scan:write"], "tenant": "default"
}))]
pub struct KeyIdentity {
    pub id: ApiKeyId,
    pub name: String,
    pub scopes: Scopes,
    pub tenant: TenantId,
    /// The projects it is limited to; absent: every project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projects: Option<BTreeSet<ProjectId>>,
}

/// `POST /api/v1/keys`: 201 with the token, which is never shown again.
pub(crate) async fn issue_key(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    body: JsonBody<IssueKeyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.principal();
    let IssueKeyRequest {
        name,
        scopes,
        projects,
    } = body.value;
    let scopes = Scopes::new(scopes)?;
    let context = command_context(principal, &request_id);
    let issued = match projects {
        None => {
            state
                .services
                .issue_api_key(&context, &name, scopes)
                .await??
        }
        Some(projects) => {
            let projects = projects
                .iter()
                .map(|p| ProjectId::parse(p))
                .collect::<Result<BTreeSet<_>, _>>()?;
            state
                .services
                .issue_project_api_key(&context, &name, scopes, projects)
                .await??
        }
    };
    Ok((
        StatusCode::CREATED,
        NO_STORE,
        Json(IssuedKeyView {
            id: issued.token.key_id,
            token: issued.token.expose(),
            name: issued.name,
            scopes: issued.scopes,
            projects: issued.projects,
            revoked: false,
        }),
    ))
}

/// `GET /api/v1/keys`: every key of the tenant, revoked ones too; never a secret.
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    caller: Authorized,
) -> Result<Json<Items<KeySummary>>, ApiError> {
    let principal = caller.principal();
    let items = state.services.api_keys(&principal.tenant).await?;
    Ok(Json(Items { items }))
}

/// `GET /api/v1/keys/me`: the calling key.
pub(crate) async fn me(
    State(state): State<AppState>,
    caller: Authorized,
) -> Result<Json<KeyIdentity>, ApiError> {
    let principal = caller.principal();
    let key = state
        .services
        .api_keys(&principal.tenant)
        .await?
        .into_iter()
        .find(|k| k.id == principal.key_id)
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(KeyIdentity {
        id: key.id,
        name: key.name,
        scopes: key.scopes,
        tenant: principal.tenant.clone(),
        projects: key.projects,
    }))
}

/// `DELETE /api/v1/keys/{id}`: 204; 404 for another tenant's or an unknown key; 409 for the last
/// active admin key.
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.principal();
    let id: ApiKeyId = id.parse().map_err(|_| ApiError::not_found("API key"))?;
    let context = command_context(principal, &request_id);
    state.services.revoke_api_key(&context, id).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /api/v1/keys/{id}/rotate` (optional).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({ "grace_seconds": 3600 }))]
pub struct RotateKeyRequest {
    /// How long the current secret keeps working, 0-86400 seconds [default: 3600].
    pub grace_seconds: Option<u32>,
}

/// A key's new token after a rotation: shown this once, never again.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RotatedKeyView {
    pub id: ApiKeyId,
    pub name: String,
    pub scopes: Scopes,
    /// The new token. Send as `Authorization: Bearer <token>` or `X-API-Key: <token>`.
    pub token: String,
    /// Until when the previous token is still accepted.
    pub previous_valid_until: chrono::DateTime<chrono::Utc>,
}

/// The grace period of a rotation when none is asked for.
const DEFAULT_ROTATION_GRACE_SECONDS: u32 = 3600;

/// `POST /api/v1/keys/{id}/rotate`: a new secret for the same key (tenant, name, scopes); the old
/// secret works until `previous_valid_until`.
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(id): Path<String>,
    body: OptionalJsonBody<RotateKeyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.principal();
    let id: ApiKeyId = id.parse().map_err(|_| ApiError::not_found("API key"))?;
    let grace = body
        .value
        .unwrap_or_default()
        .grace_seconds
        .unwrap_or(DEFAULT_ROTATION_GRACE_SECONDS);
    let context = command_context(principal, &request_id);
    let rotated = state
        .services
        .rotate_api_key(&context, id, std::time::Duration::from_secs(grace.into()))
        .await??;
    Ok((
        NO_STORE,
        Json(RotatedKeyView {
            id: rotated.token.key_id,
            token: rotated.token.expose(),
            name: rotated.name,
            scopes: rotated.scopes,
            previous_valid_until: rotated.previous_valid_until,
        }),
    ))
}
