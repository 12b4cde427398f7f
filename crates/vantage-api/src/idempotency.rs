//! `Idempotency-Key` on POST routes: the first response to a key is kept for 24 hours (per tenant)
//! and returned again, with `Idempotent-Replayed: true`, to a request with the same key, method, path
//! and body. The same key with a different request is 422; a request still in progress under the key
//! is 409. A failed request releases its key, so it can be retried.
//!
//! `POST /keys` does not take part: its response holds a secret, which is never stored. Stored
//! replies are sealed with the tenant's personal-data key (a reply may quote a comment), so erasing
//! the tenant makes them unreadable like everything else it wrote.

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use vantage_store::{IdempotencyBegin, StoredResponse};

use crate::AppState;
use crate::error::ApiError;

/// Seconds a client should wait before polling pending work (sent with every 202).
pub const POLL_AFTER_SECONDS: &str = "2";

/// A response that can be stored and replayed.
#[derive(Debug, Clone)]
pub struct Replayable {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Value,
}

impl Replayable {
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            location: None,
            body,
        }
    }

    pub fn at(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }

    /// As it is stored for replays: the body as its JSON text.
    fn stored(self) -> StoredResponse {
        StoredResponse {
            status: self.status.as_u16(),
            body: self.body.to_string(),
            location: self.location,
        }
    }
}

/// A stored (or about to be stored) response as HTTP.
fn respond(stored: StoredResponse, replayed: bool) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        stored.body,
    )
        .into_response();
    let headers = response.headers_mut();
    if let Some(location) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    if status == StatusCode::ACCEPTED {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(POLL_AFTER_SECONDS),
        );
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(Some(key.to_owned()))
    } else {
        Err(ApiError::BadRequest {
            code: "invalid_idempotency_key",
            detail: "Idempotency-Key must be 1-255 printable ASCII characters".into(),
        })
    }
}

/// Runs `handle` at most once per `Idempotency-Key` of `tenant` for this `path` and `body`.
pub async fn once<F, Fut>(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    handle: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Replayable, ApiError>>,
{
    let Some(key) = idempotency_key(headers)? else {
        return Ok(respond(handle().await?.stored(), false));
    };
    let mut hasher = Sha256::new();
    hasher.update(b"POST ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    let request_hash = hex::encode(hasher.finalize());
    let now = state.services.pipeline.clock().now();
    let idempotency = &state.services.idempotency;
    match idempotency.begin(tenant, &key, &request_hash, now).await? {
        IdempotencyBegin::Started => {}
        IdempotencyBegin::Replay(stored) => {
            let body = state
                .services
                .pipeline
                .vault()
                .open_text(tenant, &stored.body)
                .await?;
            return Ok(respond(StoredResponse { body, ..stored }, true));
        }
        IdempotencyBegin::InProgress => {
            return Err(ApiError::Conflict {
                code: "idempotency_key_in_use",
                detail: "a request with this Idempotency-Key is still being processed".into(),
            });
        }
        IdempotencyBegin::Mismatch => {
            return Err(ApiError::Unprocessable {
                code: "idempotency_key_reused",
                detail: "this Idempotency-Key was used with a different request".into(),
                errors: vec![],
            });
        }
    }
    // The body is serialised once: what is stored is exactly what is sent.
    let outcome = handle().await.map(Replayable::stored);
    let vault = state.services.pipeline.vault();
    let recorded = match &outcome {
        Ok(stored) => match vault.seal_text(tenant, &stored.body).await {
            Ok(body) => {
                let sealed = StoredResponse {
                    body,
                    ..stored.clone()
                };
                idempotency.complete(tenant, &key, &sealed).await
            }
            Err(error) => {
                tracing::warn!(%error, "could not seal the idempotent response");
                idempotency.release(tenant, &key).await
            }
        },
        Err(_) => idempotency.release(tenant, &key).await,
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, "could not record the idempotent response");
    }
    Ok(respond(outcome?, false))
}
