//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// Liveness: the process answers.
pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the event store answers, and how far the log goes.
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.services.store();
    store.ping().await.map_err(|error| {
        tracing::warn!(%error, "not ready");
        ApiError::Unavailable {
            detail: "the event store is unreachable".into(),
        }
    })?;
    let head = store
        .head_position()
        .await
        .map_err(|_| ApiError::Unavailable {
            detail: "the event store is unreachable".into(),
        })?;
    Ok(Json(
        json!({ "status": "ready", "store": "ok", "head_position": head }),
    ))
}
