//! The HTTP API: routes, extractors, authentication, and the one error type that every failure becomes
//! (RFC 9457 `application/problem+json` with a stable `code` and the `request_id`).
//!
//! Only this crate knows HTTP. Handlers translate requests into application calls
//! ([`vantage_app::Services`]) and results into responses; they hold no business rule.

mod auth;
mod error;
mod extract;
mod health;
mod request_id;
mod scans;

pub use error::ApiError;
pub use request_id::RequestId;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use vantage_app::Services;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub services: Services,
    /// How far each projector of this process has got (for `/ready` and `/metrics`).
    pub projections: vantage_projections::StatusBoard,
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/scans", post(scans::create_scan))
        .route("/scans/{id}", get(scans::get_scan));
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", api)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        // Outermost: every response, including the ones the layers above produce, gets a request id
        // and, if it is an error, a problem+json body.
        .layer(axum::middleware::from_fn(
            request_id::request_id_and_problems,
        ))
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
