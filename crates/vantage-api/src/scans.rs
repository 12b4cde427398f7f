//! Scan routes: `POST /api/v1/scans` and `GET /api/v1/scans/{id}`.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vantage_app::{CommandContext, ScanView, new_id};
use vantage_domain::DomainError;
use vantage_domain::ids::ScanId;
use vantage_domain::scan::ScanSpec;
use vantage_domain::scope::Scope;
use vantage_domain::target::{Paths, Ports, Profile, ScanTarget, Trigger, VantagePoint};
use vantage_store::{IdempotencyBegin, StoredResponse};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, FieldError};
use crate::extract::JsonBody;
use crate::request_id::RequestId;

/// Seconds a client should wait before polling a queued scan.
const POLL_AFTER_SECONDS: &str = "2";

/// The body of `POST /api/v1/scans`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateScanRequest {
    pub target: String,
    pub ports: Option<Vec<u16>>,
    pub paths: Option<Vec<String>>,
    pub profile: Option<Profile>,
    pub trigger: Option<Trigger>,
    pub vantage_point: Option<String>,
}

impl CreateScanRequest {
    /// Validates every field and reports all invalid ones at once.
    fn into_spec(self) -> Result<ScanSpec, ApiError> {
        let mut errors = Vec::new();
        let mut check = |result: Result<(), DomainError>| {
            if let Err(DomainError::Invalid { field, reason }) = result {
                errors.push(FieldError {
                    field: field.to_owned(),
                    reason,
                });
            }
        };
        let target = ScanTarget::parse(&self.target);
        check(target.as_ref().map(|_| ()).map_err(Clone::clone));
        let ports = self.ports.map_or(Ok(Ports::default()), Ports::new);
        check(ports.as_ref().map(|_| ()).map_err(Clone::clone));
        let paths = self.paths.map_or(Ok(Paths::default()), Paths::new);
        check(paths.as_ref().map(|_| ()).map_err(Clone::clone));
        let vantage_point = self
            .vantage_point
            .as_deref()
            .map_or(Ok(VantagePoint::default()), VantagePoint::parse);
        check(vantage_point.as_ref().map(|_| ()).map_err(Clone::clone));
        match (target, ports, paths, vantage_point) {
            (Ok(target), Ok(ports), Ok(paths), Ok(vantage_point)) => Ok(ScanSpec {
                target,
                ports,
                paths,
                profile: self.profile.unwrap_or_default(),
                trigger: self.trigger.unwrap_or(Trigger::Api),
                vantage_point,
            }),
            _ => Err(ApiError::Unprocessable {
                code: "validation_failed",
                detail: "the scan request is invalid".into(),
                errors,
            }),
        }
    }
}

fn scan_json(view: &ScanView) -> Value {
    let mut body = serde_json::to_value(view).unwrap_or_default();
    body["kind"] = json!(view.spec.target.kind());
    body["links"] = json!({
        "self": format!("/api/v1/scans/{}", view.id),
    });
    body
}

fn context(principal: &vantage_app::Principal, request_id: &RequestId) -> CommandContext {
    CommandContext {
        tenant: principal.tenant.clone(),
        actor: format!("apikey:{}", principal.key_id),
        request_id: Some(request_id.0.clone()),
        correlation_id: new_id(),
        causation_id: None,
    }
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

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        stored.body,
    )
        .into_response();
    if let Some(location) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// `POST /api/v1/scans`: validate, append ScanRequested, answer 202 with the queued scan.
pub(crate) async fn create_scan(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: Authenticated,
    headers: HeaderMap,
    body: JsonBody<CreateScanRequest>,
) -> Result<Response, ApiError> {
    let principal = caller.require(Scope::ScanWrite)?;
    let spec = body.value.into_spec()?;
    let key = idempotency_key(&headers)?;
    let tenant = principal.tenant.as_str();
    if let Some(key) = &key {
        let mut hasher = Sha256::new();
        hasher.update(b"POST /api/v1/scans\n");
        hasher.update(&body.raw);
        let request_hash = hex::encode(hasher.finalize());
        let now = state.services.pipeline.clock().now();
        match state
            .services
            .idempotency
            .begin(tenant, key, &request_hash, now)
            .await
            .map_err(vantage_app::AppError::from)?
        {
            IdempotencyBegin::Started => {}
            IdempotencyBegin::Replay(stored) => return Ok(replay(stored)),
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
    }
    let outcome = start(&state, principal, &request_id, spec).await;
    if let Some(key) = &key {
        let idempotency = &state.services.idempotency;
        let recorded = match &outcome {
            Ok((location, body)) => {
                let stored = StoredResponse {
                    status: StatusCode::ACCEPTED.as_u16(),
                    body: body.to_string(),
                    location: Some(location.clone()),
                };
                idempotency.complete(tenant, key, &stored).await
            }
            Err(_) => idempotency.release(tenant, key).await,
        };
        if let Err(error) = recorded {
            tracing::warn!(%error, "could not record the idempotent response");
        }
    }
    let (location, body) = outcome?;
    let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(POLL_AFTER_SECONDS),
    );
    Ok(response)
}

async fn start(
    state: &AppState,
    principal: &vantage_app::Principal,
    request_id: &RequestId,
    spec: ScanSpec,
) -> Result<(String, Value), ApiError> {
    let context = context(principal, request_id);
    let id = state.services.start_scan(&context, spec).await??;
    let view = state
        .services
        .scan(&principal.tenant, id)
        .await?
        .ok_or(ApiError::Internal)?;
    Ok((format!("/api/v1/scans/{id}"), scan_json(&view)))
}

/// `GET /api/v1/scans/{id}`.
pub(crate) async fn get_scan(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let principal = caller.require(Scope::ScanRead)?;
    let id: ScanId = id.parse().map_err(|_| ApiError::not_found("scan"))?;
    let view = state
        .services
        .scan(&principal.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))?;
    Ok(axum::Json(scan_json(&view)))
}
