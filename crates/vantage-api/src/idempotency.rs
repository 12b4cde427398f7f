//! `Idempotency-Key` on POST routes: the first response to a key is kept for 24 hours (per tenant)
//! and returned again, with `Idempotent-Replayed: true`, to a request with the same key, method, path
//! and body. The same key with a different request is 422; a request still in progress under the key
//! is 409. A failed request releases its key, so it can be retried. The route table applies it:
//! every operation declared `.idempotent()` gets the route layer [`enforce`], and its handler only
//! returns a [`Replayable`].
//!
//! `POST /keys` does not take part: its response holds a secret, which is never stored. Stored
//! replies are sealed with the tenant's personal-data key (a reply may quote a comment), so erasing
//! the tenant makes them unreadable like everything else it wrote.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use vantage_store::{IdempotencyBegin, StoredResponse};

use crate::AppState;
use crate::auth::Authorized;
use crate::error::ApiError;

/// Seconds a client should wait before polling pending work (sent with every 202).
pub const POLL_AFTER_SECONDS: &str = "2";

/// The response of an idempotent operation's handler: JSON, a status, perhaps a `Location`.
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

impl IntoResponse for Replayable {
    fn into_response(self) -> Response {
        respond(self.stored(), false)
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

/// The route layer of every operation the route table declares idempotent (it runs after
/// [`crate::auth::authorize`], so the caller is known): without an `Idempotency-Key` the request
/// goes straight to its handler; with one, the first successful response to the key is kept and
/// later requests with the same key, method, path and body get it again instead of running the
/// handler. A failed request (any non-2xx response) releases its key.
pub(crate) async fn enforce(state: AppState, request: Request, next: Next) -> Response {
    once(state, request, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn once(state: AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    let Some(key) = idempotency_key(request.headers())? else {
        return Ok(next.run(request).await);
    };
    let tenant = request
        .extensions()
        .get::<Authorized>()
        .map(|caller| caller.principal().tenant.as_str().to_owned())
        .ok_or(ApiError::Unauthorized)?;
    let (parts, body) = request.into_parts();
    // Read as the handler's body extractor reads it: within the body limit set on the request.
    let mut whole = Request::new(body);
    *whole.extensions_mut() = parts.extensions.clone();
    let body = crate::extract::read_body(whole, &state).await?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(&body);
    let request_hash = hex::encode(hasher.finalize());
    let now = state.services.pipeline.clock().now();
    let idempotency = &state.services.idempotency;
    match idempotency.begin(&tenant, &key, &request_hash, now).await? {
        IdempotencyBegin::Started => {}
        IdempotencyBegin::Replay(stored) => {
            let body = state
                .services
                .pipeline
                .vault()
                .open_text(&tenant, &stored.body)
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
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if !response.status().is_success() {
        release(&state, &tenant, &key).await;
        return Ok(response);
    }
    // What is stored is exactly what is sent: the handler's status, body and `Location`.
    let (head, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, "could not read the response to keep it for replays");
            release(&state, &tenant, &key).await;
            return Err(ApiError::Internal);
        }
    };
    let stored = StoredResponse {
        status: head.status.as_u16(),
        body: String::from_utf8_lossy(&body).into_owned(),
        location: head
            .headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned),
    };
    let recorded = match state
        .services
        .pipeline
        .vault()
        .seal_text(&tenant, &stored.body)
        .await
    {
        Ok(sealed) => {
            let sealed = StoredResponse {
                body: sealed,
                ..stored
            };
            idempotency.complete(&tenant, &key, &sealed).await
        }
        Err(error) => {
            tracing::warn!(%error, "could not seal the idempotent response");
            idempotency.release(&tenant, &key).await
        }
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, "could not record the idempotent response");
    }
    Ok(Response::from_parts(head, Body::from(body)))
}

/// Frees `key` for a retry after its request failed.
async fn release(state: &AppState, tenant: &str, key: &str) {
    if let Err(error) = state.services.idempotency.release(tenant, key).await {
        tracing::warn!(%error, "could not release an Idempotency-Key");
    }
}
