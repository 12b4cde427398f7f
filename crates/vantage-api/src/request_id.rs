//! Request ids and problem rendering: the outermost middleware.
//!
//! A client's `X-Request-ID` is kept when it is 1–128 printable ASCII bytes; otherwise a UUIDv7 is
//! made. Either way it is echoed on the response and recorded on every event the request appends.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::error::ApiError;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

fn accepted(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| text.to_owned())
}

pub(crate) async fn request_id_and_problems(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(accepted)
        .unwrap_or_else(|| vantage_app::new_id().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path()
    );
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    // The access log: the path only — a query may carry an event token.
    tracing::debug!(
        parent: &span,
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request answered"
    );
    let problem = response.extensions_mut().remove::<Arc<ApiError>>();
    let is_problem = problem.is_some();
    let unexplained_error = (status.is_client_error() || status.is_server_error())
        && response.headers().get(header::CONTENT_TYPE).is_none();
    if is_problem || unexplained_error {
        let error = problem.map_or_else(|| ApiError::for_status(status), |e| (*e).clone());
        let mut body = error.problem();
        body["request_id"] = serde_json::Value::from(id.clone());
        if error.status() != status {
            body["status"] = serde_json::Value::from(status.as_u16());
        }
        let headers = std::mem::take(response.headers_mut());
        response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response.headers_mut().remove(header::CONTENT_LENGTH);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}
