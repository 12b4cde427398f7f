//! Liveness, readiness (store reachable, projector lag) and Prometheus metrics.

use std::fmt::Write as _;

use axum::http::header;
use axum::response::IntoResponse;

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::ApiError;
use crate::{AppState, ScanDispatch};

/// The process answers.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({ "status": "ok" }))]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// One projector's progress, as this process sees it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProjectorLag {
    pub name: String,
    /// The log position it has applied up to (shown to a key with `audit:read` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Events it is behind the log head.
    pub lag_events: u64,
    /// Age of the oldest event it has not applied.
    pub lag_seconds: f64,
    /// Whether this process runs it (false: another process holds its lease).
    pub active: bool,
    /// Why its last batch failed (shown to a key with `audit:read` only).
    pub last_error: Option<String>,
}

/// How scans get from this process to workers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DispatchReadiness {
    /// `in_process`: workers share this process's store; `nats`: scan jobs go through NATS
    /// JetStream to `vantage worker` processes.
    pub via: &'static str,
    /// Whether a scan requested now is handed to workers at once. When false (NATS unreachable)
    /// the API still takes scans: they are recorded in the log and dispatched when NATS is back.
    pub ready: bool,
}

/// How far the replica that answers queries lags behind (when the server reads from one).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReplicaReadiness {
    /// The lowest log position any read model has reached, as the replica has it (shown to a key
    /// with `audit:read` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Events the replica's read models are behind the log's head.
    pub lag_events: u64,
    /// Seconds since the replica last replayed a transaction of the primary (PostgreSQL's
    /// `pg_last_xact_replay_timestamp`); it also grows while the primary writes nothing. Absent
    /// before the first replay.
    pub replay_age_seconds: Option<f64>,
}

/// The event store answers; how far behind each projector is, and whether scans are being
/// dispatched. The log's head and the projectors' positions and errors (how much a deployment holds,
/// and its internals) are shown only to a caller presenting a key with `audit:read`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Readiness {
    /// Always `ready` (an unready process answers 503).
    pub status: &'static str,
    pub store: &'static str,
    /// The log's highest readable position (shown to a key with `audit:read` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_position: Option<u64>,
    pub projectors: Vec<ProjectorLag>,
    pub dispatch: DispatchReadiness,
    /// Present when queries are answered from a read replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_replica: Option<ReplicaReadiness>,
}

/// What this server is and where to go from here.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(example = serde_json::json!({
    "name": "Vantage", "version": "0.1.0", "status": "ok", "docs": "/docs",
    "openapi": "/openapi.json", "health": "/health",
    "links": { "docs": "/docs", "openapi": "/openapi.json", "health": "/health", "ready": "/ready",
               "api": "/api/v1", "signing_key": "/api/v1/compliance/signing-key" }
}))]
pub struct ApiRoot {
    pub name: &'static str,
    pub version: &'static str,
    /// Always `ok` (the process answers; `/ready` says whether its store does).
    pub status: &'static str,
    /// Interactive API documentation.
    pub docs: &'static str,
    /// The OpenAPI 3.1 document.
    pub openapi: &'static str,
    /// Liveness.
    pub health: &'static str,
    pub links: RootLinks,
}

/// Where the public entry points are.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RootLinks {
    pub docs: &'static str,
    pub openapi: &'static str,
    pub health: &'static str,
    pub ready: &'static str,
    /// The versioned API (authenticated).
    pub api: &'static str,
    /// The public key that signs compliance packages.
    pub signing_key: &'static str,
}

/// `GET /`: the server's name and version and links to its documentation.
pub(crate) async fn root() -> Json<ApiRoot> {
    Json(ApiRoot {
        name: "Vantage",
        version: env!("CARGO_PKG_VERSION"),
        status: "ok",
        docs: "/docs",
        openapi: "/openapi.json",
        health: "/health",
        links: RootLinks {
            docs: "/docs",
            openapi: "/openapi.json",
            health: "/health",
            ready: "/ready",
            api: "/api/v1",
            signing_key: "/api/v1/compliance/signing-key",
        },
    })
}

/// Liveness: the process answers.
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Longest wait for the event store's answer before `/ready` says it is unreachable: probes (load
/// balancers, Kubernetes) give up after a second or two, and a database that is away would
/// otherwise hold the request for the whole connection-pool timeout.
const STORE_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: the event store answers, and how far the log goes.
pub(crate) async fn ready(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Readiness>, ApiError> {
    // Public (orchestrators poll it without credentials); details for an auditor's key only. A
    // request without a key is not an authentication failure.
    let detailed = match crate::auth::presented_key(&headers) {
        Some(key) => state
            .services
            .authenticate(key)
            .await
            .ok()
            .flatten()
            .is_some_and(|principal| {
                principal
                    .scopes
                    .allows(vantage_domain::scope::Scope::AuditRead)
            }),
        None => false,
    };
    let store = state.services.store();
    let pinged = tokio::time::timeout(STORE_PING_TIMEOUT, store.ping())
        .await
        .unwrap_or_else(|_| {
            Err(vantage_store::StoreError::backend(format!(
                "no answer within {} s",
                STORE_PING_TIMEOUT.as_secs()
            )))
        });
    pinged.map_err(|error| {
        tracing::warn!(%error, "not ready");
        let detail = match error {
            // Our own sentence (disk full, read-only), not a driver's message.
            vantage_store::StoreError::Unwritable(reason) => {
                format!("the event store cannot write: {reason}")
            }
            _ => "the event store is unreachable".into(),
        };
        ApiError::Unavailable { detail }
    })?;
    // Projectors first, then the head: a projector never passes the head it read, so one found
    // ahead of the head read after it means the log lost events it had.
    let snapshot = state.projections.snapshot();
    let head = store
        .head_position()
        .await
        .map_err(|_| ApiError::Unavailable {
            detail: "the event store is unreachable".into(),
        })?;
    if let Some(ahead) = snapshot.iter().find(|p| p.position > head) {
        tracing::error!(
            projector = %ahead.name,
            position = ahead.position,
            head,
            "a read model is ahead of the event log: events were removed from the log"
        );
        return Err(ApiError::Unavailable {
            detail: format!(
                "read model {} is at log position {}, ahead of the log's head {head}: events \
                 were removed from the log (run vantage verify with its checkpoints)",
                ahead.name, ahead.position
            ),
        });
    }
    let read_replica = if state.reads_from_replica {
        Some(
            replica_readiness(&state, &snapshot, head)
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "not ready: the read replica does not answer");
                    ApiError::Unavailable {
                        detail: "the read-model replica is unreachable".into(),
                    }
                })?,
        )
    } else {
        None
    };
    let projectors = snapshot
        .into_iter()
        .map(|p| ProjectorLag {
            lag_events: head.saturating_sub(p.position),
            name: p.name,
            position: Some(p.position),
            lag_seconds: p.lag_seconds,
            active: p.active,
            last_error: p.last_error,
        })
        .collect();
    let dispatch = match &state.dispatch {
        ScanDispatch::InProcess => DispatchReadiness {
            via: "in_process",
            ready: true,
        },
        ScanDispatch::Nats(pools) => DispatchReadiness {
            via: "nats",
            ready: pools.connected(),
        },
    };
    let readiness = Readiness {
        status: "ready",
        store: "ok",
        head_position: Some(head),
        projectors,
        dispatch,
        read_replica,
    };
    Ok(Json(if detailed {
        readiness
    } else {
        readiness.for_outsiders()
    }))
}

impl Readiness {
    /// What a caller without an auditor's key sees: whether the server is ready and how far behind
    /// each projector is, not the log's head, positions or projector errors.
    fn for_outsiders(mut self) -> Self {
        self.head_position = None;
        for projector in &mut self.projectors {
            projector.position = None;
            projector.last_error = None;
        }
        if let Some(replica) = &mut self.read_replica {
            replica.position = None;
        }
        self
    }
}

/// Where the replica's read models are: the least of the projectors' checkpoints as it has them.
async fn replica_readiness(
    state: &AppState,
    projectors: &[vantage_projections::ProjectorStatus],
    head: u64,
) -> Result<ReplicaReadiness, String> {
    let ask = async {
        let mut position = head;
        for projector in projectors {
            position = position.min(state.read.checkpoint(&projector.name).await?);
        }
        let replay_age_seconds = state.read.replay_age_seconds().await?;
        Ok::<_, vantage_projections::ProjectionError>(ReplicaReadiness {
            position: Some(position),
            lag_events: head.saturating_sub(position),
            replay_age_seconds,
        })
    };
    match tokio::time::timeout(STORE_PING_TIMEOUT, ask).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "no answer within {} s",
            STORE_PING_TIMEOUT.as_secs()
        )),
    }
}

/// Prometheus text exposition: log head and, per projector, position and lag.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let head = state.services.store().head_position().await.ok();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP vantage_log_head_position Highest readable global position of the event log."
    );
    let _ = writeln!(out, "# TYPE vantage_log_head_position gauge");
    if let Some(head) = head {
        let _ = writeln!(out, "vantage_log_head_position {head}");
    }
    let projectors = state.projections.snapshot();
    for (name, help, value) in [
        (
            "vantage_projection_position",
            "Global position a projector has applied up to.",
            0,
        ),
        (
            "vantage_projection_lag_events",
            "Events a projector is behind the log head.",
            1,
        ),
        (
            "vantage_projection_lag_seconds",
            "Age of the oldest event a projector has not applied.",
            2,
        ),
        (
            "vantage_projection_active",
            "1 if this process runs the projector, 0 on standby.",
            3,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for p in &projectors {
            let v = match value {
                0 => p.position as f64,
                1 => head.map_or(p.lag_events, |h| h.saturating_sub(p.position)) as f64,
                2 => p.lag_seconds,
                _ => f64::from(u8::from(p.active)),
            };
            let _ = writeln!(out, "{name}{{projector=\"{}\"}} {v}", p.name);
        }
    }
    let live = &state.services.live;
    let _ = writeln!(
        out,
        "# HELP vantage_live_events_published_total Events passed to this process's live \
         subscribers, by source (fanout: NATS; log: read from the log)."
    );
    let _ = writeln!(out, "# TYPE vantage_live_events_published_total counter");
    for source in vantage_app::LiveSource::ALL {
        let _ = writeln!(
            out,
            "vantage_live_events_published_total{{source=\"{}\"}} {}",
            source.as_str(),
            live.published_from(source)
        );
    }
    let _ = writeln!(
        out,
        "# HELP vantage_live_position Highest log position passed to live subscribers."
    );
    let _ = writeln!(out, "# TYPE vantage_live_position gauge");
    let _ = writeln!(out, "vantage_live_position {}", live.published_up_to());
    let _ = writeln!(
        out,
        "# HELP vantage_auth_failures_total API requests that proved no key (missing, malformed, \
         unknown, revoked or a wrong secret)."
    );
    let _ = writeln!(out, "# TYPE vantage_auth_failures_total counter");
    let _ = writeln!(
        out,
        "vantage_auth_failures_total {}",
        state.limits.auth_failures()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
