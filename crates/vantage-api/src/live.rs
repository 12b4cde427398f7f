//! Server-sent events: one scan's live stream (`GET /api/v1/scans/{id}/events`), the tenant's whole
//! log (`GET /api/v1/events`), and short-lived event tokens for browsers, whose `EventSource` cannot
//! send an API key (`POST /api/v1/scans/{id}/event-token`).
//!
//! Every SSE event's `id` is the event's global log position; `Last-Event-ID` (the header browsers
//! send on reconnecting, or `?last_event_id=`) resumes right after it. A comment line goes out every
//! [`HEARTBEAT`]; a stream lasts at most the server's `live_max_seconds` (clients reconnect and
//! resume), and one whose client reads too slowly ends with an `overflow` event.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::Stream;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_app::{EventGrant, Follow, LiveItem, MAX_EVENT_TOKEN_SECONDS};
use vantage_domain::tenant::TenantId;

use crate::AppState;
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::extract::QueryParams;

/// How often an idle stream sends a comment, so proxies and clients know it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Query of `GET /api/v1/scans/{id}/events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanEventsQuery {
    /// Resume after this log position (as the `Last-Event-ID` header does).
    pub last_event_id: Option<u64>,
    /// A token from `POST /api/v1/scans/{id}/event-token`, for clients that cannot send an API key.
    pub event_token: Option<String>,
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only these event types, comma-separated (e.g. `ScanCompleted,TriageSet`).
    pub types: Option<String>,
    /// Resume after this log position (as the `Last-Event-ID` header does).
    pub last_event_id: Option<u64>,
}

/// A token for one scan's live stream.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventToken {
    /// Pass as `?event_token=`; valid for this scan's stream only, read-only.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// The stream's URL with the token.
    pub url: String,
}

/// What the `data` of a live stream's event holds: a committed event, or — as the `overflow`
/// event that ends the stream of a client reading too slowly — where to resume.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum LiveData<'a> {
    Event(&'a vantage_app::LiveEvent),
    Overflow(Overflow),
}

/// The last event of a stream whose client read too slowly.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Overflow {
    pub detail: String,
    /// The last position the stream sent: reconnect with it as Last-Event-ID.
    pub last_event_id: u64,
}

/// Where a client resumes: `?last_event_id=`, else the `Last-Event-ID` header, else `None`.
fn resume_after(query: Option<u64>, headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    if let Some(position) = query {
        return Ok(Some(position));
    }
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest {
                code: "invalid_header",
                detail: "Last-Event-ID must be a log position (a whole number)".into(),
            }),
    }
}

/// The SSE stream of what `follow` yields, ending after `max` or when the follower ends.
fn sse(
    state: &AppState,
    follow: Follow,
    after: u64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let queue = vantage_app::follow(state.services.clone(), follow, after);
    let deadline = tokio::time::Instant::now() + state.live_max;
    let events = futures::stream::unfold((queue, after), move |(mut queue, last)| async move {
        let item = tokio::time::timeout_at(deadline, queue.recv())
            .await
            .ok()
            .flatten()?;
        let (event, last) = match item {
            LiveItem::Event(event) => (
                Event::default()
                    .id(event.position.to_string())
                    .event(event.event_type.clone())
                    .json_data(LiveData::Event(&event)),
                event.position,
            ),
            LiveItem::Overflow => (
                Event::default()
                    .event("overflow")
                    .json_data(LiveData::Overflow(Overflow {
                        detail: "the client read too slowly and is disconnected; reconnect with \
                                 Last-Event-ID"
                            .into(),
                        last_event_id: last,
                    })),
                last,
            ),
        };
        let event = event.unwrap_or_else(|_| Event::default().comment("unserialisable event"));
        Some((Ok(event), (queue, last)))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT))
}

/// `GET /api/v1/scans/{id}/events`: the scan's events — status changes, each observation as a
/// summary, the verdict at completion — caught up from the log, then live, until the scan ends.
/// Authenticated by an API key with `scan:read`, or by `?event_token=` for this scan.
pub(crate) async fn scan_events(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    QueryParams(query): QueryParams<ScanEventsQuery>,
    caller: Option<Authorized>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = crate::scans::parse_scan_id(&raw)?;
    let tenant = match (&query.event_token, caller) {
        (Some(token), _) => {
            let grant = state
                .services
                .keyring
                .check_event_token(token, state.services.pipeline.clock().now())
                .map_err(|_| ApiError::Unauthorized)?;
            if grant.scan_id != id {
                return Err(ApiError::Unauthorized);
            }
            if state.services.scan(&grant.tenant, id).await?.is_none() {
                return Err(ApiError::not_found("scan"));
            }
            grant.tenant
        }
        (None, Some(caller)) => {
            let principal = caller.principal();
            crate::scans::visible_scan(&state, principal, &raw).await?;
            principal.tenant.clone()
        }
        (None, None) => return Err(ApiError::Unauthorized),
    };
    let after = resume_after(query.last_event_id, &headers)?.unwrap_or(0);
    Ok(sse(
        &state,
        Follow::Scan {
            tenant,
            scan_id: id,
        },
        after,
    ))
}

/// `GET /api/v1/events`: every event of the caller's tenant (public-safe, as the audit trail
/// shows them), optionally only some types: from now, or caught up from the log after a given
/// position, then live.
pub(crate) async fn tenant_events(
    State(state): State<AppState>,
    caller: Authorized,
    QueryParams(query): QueryParams<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let principal = caller.principal();
    let types = query.types.as_deref().map(|types| {
        types
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    // Without a position the firehose starts now; history is what `/audit/events` pages through.
    let after = match resume_after(query.last_event_id, &headers)? {
        Some(position) => position,
        None => state.services.store().head_position().await?,
    };
    Ok(sse(
        &state,
        Follow::Tenant {
            tenant: principal.tenant.clone(),
            types,
        },
        after,
    ))
}

/// `POST /api/v1/scans/{id}/event-token`: a token for this scan's live stream, valid five minutes.
pub(crate) async fn event_token(
    State(state): State<AppState>,
    caller: Authorized,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<EventToken>), ApiError> {
    let principal = caller.principal();
    let id = crate::scans::visible_scan(&state, principal, &id).await?.id;
    let grant = EventGrant {
        tenant: TenantId::clone(&principal.tenant),
        scan_id: id,
        expires_at: state.services.pipeline.clock().now()
            + chrono::Duration::seconds(MAX_EVENT_TOKEN_SECONDS),
    };
    let token = state.services.keyring.mint_event_token(&grant);
    Ok((
        StatusCode::CREATED,
        Json(EventToken {
            url: format!("/api/v1/scans/{id}/events?event_token={token}"),
            token,
            expires_at: grant.expires_at,
        }),
    ))
}
