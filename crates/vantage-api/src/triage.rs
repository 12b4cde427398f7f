//! Triage routes: a fingerprint's state (`PATCH /findings/{fingerprint}/state`) and its comments. A
//! fingerprint is known once a completed scan of the caller's tenant has found it; any other is 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_domain::ids::CommentId;
use vantage_domain::triage::{Fingerprint, TriageState};
use vantage_projections::model::{CommentDoc, FingerprintDoc};

use crate::AppState;
use crate::Items;
use crate::auth::{Authorized, command_context};
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, as_of};
use crate::idempotency::Replayable;
use crate::request_id::RequestId;
use crate::scans::to_json;

/// A fingerprint of the caller's tenant that the read models know, or 404.
async fn known(
    state: &AppState,
    tenant: &str,
    raw: &str,
) -> Result<(Fingerprint, FingerprintDoc), ApiError> {
    let fingerprint = Fingerprint::parse(raw).map_err(|_| ApiError::not_found("finding"))?;
    let doc = state
        .read
        .fingerprint(tenant, fingerprint.as_str(), None)
        .await?
        .filter(|doc| doc.times_seen > 0)
        .ok_or_else(|| ApiError::not_found("finding"))?;
    Ok((fingerprint, doc))
}

/// The body of `PATCH /api/v1/findings/{fingerprint}/state`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({
    "state": "accepted_risk", "note": "Legacy admin app, retired in Q3"
}))]
pub struct SetTriageRequest {
    pub state: TriageState,
    pub note: Option<String>,
}

/// Query of `GET /api/v1/findings/{fingerprint}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FingerprintQuery {
    /// As it stood then: a log position or an RFC 3339 time.
    pub as_of: Option<String>,
}

/// `GET /api/v1/findings/{fingerprint}`: what is known of a fingerprint across scans (as of `as_of`).
pub(crate) async fn get_fingerprint(
    State(state): State<AppState>,
    caller: Authorized,
    Path(raw): Path<String>,
    QueryParams(query): QueryParams<FingerprintQuery>,
) -> Result<Json<FingerprintDoc>, ApiError> {
    let principal = caller.principal();
    let tenant = principal.tenant.as_str();
    let (fingerprint, now) = known(&state, tenant, &raw).await?;
    let doc = match as_of(query.as_of.as_deref())? {
        None => now,
        Some(as_of) => state
            .read
            .fingerprint(tenant, fingerprint.as_str(), Some(as_of))
            .await?
            .ok_or_else(|| ApiError::not_found("finding"))?,
    };
    Ok(Json(note_opened(&state, doc).await?))
}

/// `doc` with its triage note opened: read models keep what people wrote sealed.
pub(crate) async fn note_opened(
    state: &AppState,
    mut doc: FingerprintDoc,
) -> Result<FingerprintDoc, ApiError> {
    if let Some(note) = &doc.triage_note {
        let vault = state.services.pipeline.vault();
        doc.triage_note = Some(vault.open_text(&doc.tenant, note).await?);
    }
    Ok(doc)
}

/// A triage state as recorded.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({
    "fingerprint": "5b0c8f3e1d2a4c6b9e7f0a1b2c3d4e5f", "state": "accepted_risk",
    "note": "Legacy admin app, retired in Q3"
}))]
pub struct TriageRecorded {
    pub fingerprint: String,
    pub state: TriageState,
    pub note: Option<String>,
}

/// `PATCH /api/v1/findings/{fingerprint}/state`: SetTriage. Answers with the state as recorded.
pub(crate) async fn set_state(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(raw): Path<String>,
    body: JsonBody<SetTriageRequest>,
) -> Result<Json<TriageRecorded>, ApiError> {
    let principal = caller.principal();
    let (fingerprint, _) = known(&state, principal.tenant.as_str(), &raw).await?;
    let SetTriageRequest {
        state: triage,
        note,
    } = body.value;
    let context = command_context(principal, &request_id);
    state
        .services
        .set_triage(&context, fingerprint.clone(), triage, note.clone())
        .await??;
    Ok(Json(TriageRecorded {
        fingerprint: fingerprint.as_str().to_owned(),
        state: triage,
        note: note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
    }))
}

/// `GET /api/v1/findings/{fingerprint}/comments`: oldest first.
pub(crate) async fn list_comments(
    State(state): State<AppState>,
    caller: Authorized,
    Path(raw): Path<String>,
) -> Result<Json<Items<CommentDoc>>, ApiError> {
    let principal = caller.principal();
    let tenant = principal.tenant.as_str();
    let (fingerprint, _) = known(&state, tenant, &raw).await?;
    let mut items = state.read.comments(tenant, fingerprint.as_str()).await?;
    let vault = state.services.pipeline.vault();
    for comment in &mut items {
        comment.body = vault.open_text(tenant, &comment.body).await?;
    }
    Ok(Json(Items { items }))
}

/// The body of `POST /api/v1/findings/{fingerprint}/comments`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({ "body": "Owner: web team, ticket WEB-12" }))]
pub struct AddCommentRequest {
    pub body: String,
}

/// A comment just added.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CommentAdded {
    pub id: CommentId,
    pub fingerprint: String,
    pub body: String,
    pub author: String,
}

/// `POST /api/v1/findings/{fingerprint}/comments`: 201 with the comment's id.
pub(crate) async fn add_comment(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path(raw): Path<String>,
    body: JsonBody<AddCommentRequest>,
) -> Result<Replayable, ApiError> {
    let principal = caller.principal();
    let (fingerprint, _) = known(&state, principal.tenant.as_str(), &raw).await?;
    let text = body.value.body;
    let context = command_context(principal, &request_id);
    let id = state
        .services
        .add_comment(&context, fingerprint.clone(), text.clone())
        .await??;
    let location = format!("/api/v1/findings/{}/comments/{id}", fingerprint.as_str());
    let added = CommentAdded {
        id,
        fingerprint: fingerprint.as_str().to_owned(),
        body: text.trim().to_owned(),
        author: context.actor,
    };
    Ok(Replayable::new(StatusCode::CREATED, to_json(&added)).at(location))
}

/// `DELETE /api/v1/findings/{fingerprint}/comments/{id}`: 204; 404 for an unknown or deleted comment.
pub(crate) async fn delete_comment(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authorized,
    Path((raw, comment)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.principal();
    let (fingerprint, _) = known(&state, principal.tenant.as_str(), &raw).await?;
    let comment: CommentId = comment
        .parse()
        .map_err(|_| ApiError::not_found("comment"))?;
    let context = command_context(principal, &request_id);
    state
        .services
        .delete_comment(&context, fingerprint, comment)
        .await??;
    Ok(StatusCode::NO_CONTENT)
}
