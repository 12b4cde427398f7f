//! The HTTP API: routes, extractors, authentication, and the one error type that every failure becomes
//! (RFC 9457 `application/problem+json` with a stable `code` and the `request_id`).
//!
//! Only this crate knows HTTP. Handlers translate requests into application calls
//! ([`vantage_app::Services`]) and results into responses; they hold no business rule.

mod auth;
mod error;
mod extract;
mod health;
mod idempotency;
mod insights;
mod keys;
mod rate_limit;
mod request_id;
mod scans;
mod triage;

pub use error::ApiError;
pub use rate_limit::{RateLimitConfig, RateLimits};
pub use request_id::RequestId;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use vantage_app::Services;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest page a list returns (`limit`), except notifications (200).
pub const MAX_PAGE: u32 = 100;
/// Longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub services: Services,
    /// How far each projector of this process has got (for `/ready` and `/metrics`).
    pub projections: vantage_projections::StatusBoard,
    /// The read models every query route reads.
    pub read: vantage_projections::ReadDb,
    /// Per-key request buckets.
    pub limits: std::sync::Arc<RateLimits>,
}

impl AppState {
    /// The state of an API process with the default rate limits.
    pub fn new(
        services: Services,
        projections: vantage_projections::StatusBoard,
        read: vantage_projections::ReadDb,
    ) -> Self {
        Self {
            services,
            projections,
            read,
            limits: std::sync::Arc::new(RateLimits::new(RateLimitConfig::default())),
        }
    }

    /// The same state with other rate limits.
    pub fn with_rate_limits(mut self, config: RateLimitConfig) -> Self {
        self.limits = std::sync::Arc::new(RateLimits::new(config));
        self
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/scans", post(scans::create_scan).get(scans::list_scans))
        .route("/scans/batch", post(scans::create_batch))
        .route("/scans/compare", get(scans::compare_scans))
        .route(
            "/scans/{id}",
            get(scans::get_scan).delete(scans::delete_scan),
        )
        .route("/scans/{id}/status", get(scans::scan_status))
        .route("/scans/{id}/cancel", post(scans::cancel_scan))
        .route("/scans/{id}/summary", get(scans::scan_summary))
        .route("/scans/{id}/observations", get(scans::scan_observations))
        .route("/scans/{id}/findings", get(scans::scan_findings))
        .route(
            "/scans/{id}/findings/{finding_id}",
            get(scans::scan_finding),
        )
        .route("/scans/{id}/history", get(scans::scan_history))
        .route("/domains/{domain}/latest", get(insights::domain_latest))
        .route("/domains/{domain}/history", get(insights::domain_history))
        .route("/findings/{fingerprint}", get(triage::get_fingerprint))
        .route("/findings/{fingerprint}/state", patch(triage::set_state))
        .route(
            "/findings/{fingerprint}/comments",
            get(triage::list_comments).post(triage::add_comment),
        )
        .route(
            "/findings/{fingerprint}/comments/{id}",
            delete(triage::delete_comment),
        )
        .route("/notifications", get(insights::notifications))
        .route("/notifications/unread-count", get(insights::unread_count))
        .route("/notifications/read-all", patch(insights::mark_all_read))
        .route("/notifications/{id}/read", patch(insights::mark_read))
        .route("/dashboard/stats", get(insights::stats))
        .route("/dashboard/trends", get(insights::trends))
        .route("/dashboard/command-center", get(insights::command_center))
        .route("/compliance/frameworks", get(insights::frameworks))
        .route("/compliance/coverage", get(insights::coverage))
        .route("/audit/events", get(insights::audit_events))
        .route("/audit/verify", get(insights::audit_verify))
        .route("/keys", post(keys::issue_key).get(keys::list_keys))
        .route("/keys/me", get(keys::me))
        .route("/keys/{id}", delete(keys::revoke_key))
        .route_layer(axum::middleware::from_fn_with_state(
            state.limits.clone(),
            rate_limit::enforce,
        ));
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
