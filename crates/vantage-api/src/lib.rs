//! The HTTP API: routes, extractors, authentication, and the one error type that every failure becomes
//! (RFC 9457 `application/problem+json` with a stable `code` and the `request_id`).
//!
//! Only this crate knows HTTP. Handlers translate requests into application calls
//! ([`vantage_app::Services`]) and results into responses; they hold no business rule.

mod audit;
mod auth;
mod compliance;
mod dashboard;
mod domains;
mod error;
mod extract;
mod health;
mod idempotency;
mod keys;
mod live;
mod notifications;
mod openapi;
mod outbound;
mod projects;
mod rate_limit;
mod reports;
mod request_id;
mod routes;
mod scans;
mod tenant;
mod triage;
mod ui;

pub use error::{ApiError, PROBLEM_CODES};
pub use rate_limit::{RateLimitConfig, RateLimits};
pub use request_id::RequestId;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use vantage_app::Services;

/// The headers of a response that carries a secret (a new API key, a webhook's signing secret) or
/// content (a scan's content samples): no cache may keep it.
pub(crate) const NO_STORE: [(axum::http::HeaderName, &str); 1] =
    [(axum::http::header::CACHE_CONTROL, "no-store")];

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest page a list returns (`limit`), except notifications (200).
pub const MAX_PAGE: u32 = 100;

/// A list.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct Items<T> {
    pub items: Vec<T>,
}
/// Longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a server-sent event stream lasts by default (clients then resume with Last-Event-ID).
pub const DEFAULT_LIVE_MAX: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// What every handler can reach. axum clones the state for every extractor and middleware of every
/// request, so it is one `Arc` around [`SharedState`] (which it dereferences to).
#[derive(Clone, Debug)]
pub struct AppState(std::sync::Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Clone, Debug)]
pub struct SharedState {
    pub services: Services,
    /// How far each projector of this process has got (for `/ready` and `/metrics`).
    pub projections: vantage_projections::StatusBoard,
    /// The read models every query route reads: the primary database, or a streaming replica of
    /// it (`with_read_replica`), which may lag behind.
    pub read: vantage_projections::ReadDb,
    /// The primary read-model database, for the reads that decide a command (what a tenant's
    /// erasure must cover, whether a project still has dependents): never a lagging replica.
    pub primary: vantage_projections::ReadDb,
    /// Whether `read` is a replica (`/ready` then reports how far behind it is).
    pub reads_from_replica: bool,
    /// Per-key request buckets.
    pub limits: std::sync::Arc<RateLimits>,
    /// How long one server-sent event stream lasts before the client is asked to reconnect.
    pub live_max: std::time::Duration,
    /// Most connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// How scans reach workers, for `/ready`.
    pub dispatch: ScanDispatch,
}

/// How this process hands scans to workers.
#[derive(Clone, Default)]
pub enum ScanDispatch {
    /// Workers that read the same store (in this process, or beside it on the embedded store); they
    /// take scans of every vantage point.
    #[default]
    InProcess,
    /// NATS JetStream, to `vantage worker` processes each serving one vantage point.
    Nats(std::sync::Arc<dyn vantage_app::WorkerPools>),
}

impl std::fmt::Debug for ScanDispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InProcess => "InProcess",
            Self::Nats(_) => "Nats",
        })
    }
}

impl AppState {
    /// The state of an API process with the default rate limits.
    pub fn new(
        services: Services,
        projections: vantage_projections::StatusBoard,
        read: vantage_projections::ReadDb,
    ) -> Self {
        Self(std::sync::Arc::new(SharedState {
            services,
            projections,
            primary: read.clone(),
            read,
            reads_from_replica: false,
            limits: std::sync::Arc::new(RateLimits::new(RateLimitConfig::default())),
            live_max: DEFAULT_LIVE_MAX,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            dispatch: ScanDispatch::InProcess,
        }))
    }

    /// The parts, to change while the state is being built (a copy if it is already shared).
    fn parts(&mut self) -> &mut SharedState {
        std::sync::Arc::make_mut(&mut self.0)
    }

    /// The same state answering queries from `replica`, a streaming replica of the primary
    /// read-model database.
    pub fn with_read_replica(mut self, replica: vantage_projections::ReadDb) -> Self {
        let parts = self.parts();
        parts.read = replica;
        parts.reads_from_replica = true;
        self
    }

    /// The same state reporting scans dispatched as `dispatch` says.
    pub fn with_dispatch(mut self, dispatch: ScanDispatch) -> Self {
        self.parts().dispatch = dispatch;
        self
    }

    /// The same state with streams that last at most `max`.
    pub fn with_live_max(mut self, max: std::time::Duration) -> Self {
        self.parts().live_max = max;
        self
    }

    /// The same state serving at most `max` connections at once (at least one).
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.parts().max_connections = max.max(1);
        self
    }

    /// The same state with other rate limits.
    pub fn with_rate_limits(mut self, config: RateLimitConfig) -> Self {
        self.parts().limits = std::sync::Arc::new(RateLimits::new(config));
        self
    }
}

/// The whole HTTP surface: every operation of the route table (the API ones behind the rate limits),
/// the OpenAPI document and the docs.
pub fn router(state: AppState) -> Router {
    let mut api = Router::new();
    let mut public = Router::new();
    for operation in routes::operations() {
        // The route table's idempotency and requirement are enforced here, before the handler runs
        // (the requirement first: the idempotency layer keeps responses per tenant).
        let requirement = operation.requirement();
        let handler = if operation.is_idempotent() {
            operation
                .handler
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    |State(state): State<AppState>, request, next| {
                        idempotency::enforce(state, request, next)
                    },
                ))
        } else {
            operation.handler
        };
        let handler = match requirement {
            Some(requirement) => handler.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                move |State(state): State<AppState>, request, next| {
                    auth::authorize(state, requirement, request, next)
                },
            )),
            None => handler,
        };
        if operation.path.starts_with("/api/") {
            api = api.route(operation.path, handler);
        } else {
            public = public.route(operation.path, handler);
        }
    }
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        rate_limit::enforce,
    ));
    // The docs pages are HTML a browser renders: they only load what this server serves, and no
    // other site may frame them.
    let docs = Router::new()
        .route("/docs", get(openapi::docs))
        .route("/docs/init.js", get(openapi::docs_init_js))
        .route("/docs/swagger-ui-bundle.js", get(openapi::swagger_js))
        .route("/docs/swagger-ui.css", get(openapi::swagger_css))
        .route("/docs/problems", get(openapi::problems))
        .layer(axum::middleware::map_response(
            openapi::page_security_headers,
        ));
    public
        .merge(api)
        .merge(docs)
        .merge(ui::routes())
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        // A body declared larger than the limit is refused before anything reads it, so a client
        // that sent `Expect: 100-continue` is told 413 instead of being invited to send it.
        .layer(axum::middleware::from_fn(refuse_declared_oversized_bodies))
        .layer(axum::middleware::from_fn(refuse_oversized_heads))
        // Outermost: every response, including the ones the layers above produce, gets a request id
        // and, if it is an error, a problem+json body.
        .layer(axum::middleware::from_fn(
            request_id::request_id_and_problems,
        ))
}

/// Connections served at once unless configured: beyond it, new ones wait in the listen backlog
/// until one ends (idle ones end after [`HEADER_READ_TIMEOUT`]), so a flood of connections cannot
/// exhaust the process's file descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Longest request target (path and query) answered; longer is 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields a request may carry; more is 431.
pub const MAX_HEADERS: usize = 100;
/// Most bytes of header names and values a request may carry; more is 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// hyper's own limits sit above those, so that what crosses ours is answered by us, as
/// problem+json with a request id (what crosses hyper's is answered by hyper, bare).
const HYPER_MAX_HEADERS: usize = 4 * MAX_HEADERS;
const HYPER_MAX_BUF_BYTES: usize = 256 * 1024;

/// 414 for a request target longer than [`MAX_URI_BYTES`], 431 for more than [`MAX_HEADERS`]
/// header fields or [`MAX_HEADER_BYTES`] of them.
async fn refuse_oversized_heads(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return ApiError::UriTooLong.into_response();
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge.into_response();
    }
    next.run(request).await
}

/// 413 for a request that waits for `100 Continue` before sending a body whose `Content-Length`
/// exceeds [`MAX_BODY_BYTES`]: answered before the body is asked for. (A body already on its way is
/// refused by the body limit as it is read, which keeps the connection usable.)
async fn refuse_declared_oversized_bodies(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let expects_continue = request
        .headers()
        .get(axum::http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects_continue {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|bytes| bytes > MAX_BODY_BYTES as u64) {
        return axum::response::IntoResponse::into_response(ApiError::PayloadTooLarge);
    }
    next.run(request).await
}

/// The OpenAPI 3.1 document of this API, as served at `/openapi.json` and committed as
/// `schemas/openapi.json`.
pub fn openapi_document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut text = serde_json::to_string_pretty(&openapi::document(&routes::operations()))
            .expect("the document serialises");
        text.push('\n');
        text
    })
}

/// How long a client may take to send a request's body once its headers are in (408 after it).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's headers, counted from when the connection is
/// ready for the next request: a connection that sends nothing, or drips a header line at a time,
/// is closed after it (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves, then drains in-flight requests; over
/// TLS when `tls` is given (the handshake must finish within [`HEADER_READ_TIMEOUT`]).
///
/// HTTP/1.1 through hyper directly (what `axum::serve` does, plus a timer, so that
/// [`HEADER_READ_TIMEOUT`] applies); each connection gets the client's address (the rate limiter
/// keys unauthenticated requests by it) and a cheap clone of the one router — serving a `Router`
/// per connection would copy its whole route table (~100 KiB each).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(state.max_connections));
    let router = router(state);
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_BUF_BYTES)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the limit, new connections wait in the backlog, not in memory.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: keep serving the connections there are.
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = router.clone();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(client));
                app.clone().oneshot(request)
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%error, %client, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%client, "TLS handshake timed out");
                                return;
                            }
                        };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%error, %client, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
