//! The API's one error type and its RFC 9457 rendering.
//!
//! Handlers return [`ApiError`]; it travels in the response's extensions and the outermost middleware
//! renders it with the request id. Responses that other layers produce with an error status and no body
//! (timeouts, …) are rendered there too, so no client ever sees a non-problem error.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use vantage_app::AppError;
use vantage_domain::DomainError;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// An RFC 9457 problem document, as every error answers (`application/problem+json`).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Problem {
    /// A link to this code's row on `/docs/problems`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable and machine-readable; see [`PROBLEM_CODES`].
    pub code: String,
    pub detail: String,
    /// The request's id, as in the `X-Request-ID` header.
    pub request_id: String,
    /// The invalid fields (422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// The token to repeat the request with (428 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_token: Option<String>,
    /// Until when `confirmation_token` is accepted (428 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every problem `code` this API answers with: code, status, meaning.
pub const PROBLEM_CODES: &[(&str, u16, &str)] = &[
    ("bad_request", 400, "The request is malformed."),
    (
        "invalid_query",
        400,
        "A query parameter is unknown, malformed, or a cursor was not issued by this server.",
    ),
    ("malformed_json", 400, "The body is not valid JSON."),
    ("unreadable_body", 400, "The body could not be read."),
    (
        "invalid_idempotency_key",
        400,
        "Idempotency-Key must be 1-255 printable ASCII characters.",
    ),
    ("unauthorized", 401, "No API key, or not a valid one."),
    (
        "insufficient_scope",
        403,
        "The key lacks the scope this route needs.",
    ),
    (
        "project_limited",
        403,
        "The route spans every project of the tenant; a key limited to some projects cannot use it.",
    ),
    (
        "project_not_empty",
        409,
        "The project still has schedules or webhooks; delete them first.",
    ),
    (
        "not_found",
        404,
        "No such resource or route; another tenant's resources are never visible.",
    ),
    (
        "method_not_allowed",
        405,
        "The route does not support this method.",
    ),
    ("already_exists", 409, "The resource exists already."),
    (
        "scan_terminal",
        409,
        "The scan has ended; it cannot be changed any more.",
    ),
    (
        "scan_active",
        409,
        "The scan is queued or running; cancel it or wait for it to end first.",
    ),
    ("out_of_order", 409, "A worker step came out of order."),
    (
        "scan_not_completed",
        409,
        "Only a completed scan has this (a compliance package).",
    ),
    (
        "last_admin_key",
        409,
        "The tenant's last active admin key cannot be revoked.",
    ),
    ("key_already_revoked", 409, "The key was revoked already."),
    (
        "tenant_erased",
        409,
        "The tenant was erased; nothing can be done in its name any more.",
    ),
    (
        "concurrent_modification",
        409,
        "The resource changed concurrently; retry.",
    ),
    (
        "idempotency_key_in_use",
        409,
        "A request with this Idempotency-Key is still in progress.",
    ),
    (
        "content_destroyed",
        410,
        "The content samples were destroyed (retention ended, scan deleted, tenant erased).",
    ),
    (
        "request_timeout",
        408,
        "The body did not arrive within 10 seconds of the headers.",
    ),
    ("payload_too_large", 413, "The body is larger than 64 KiB."),
    (
        "uri_too_long",
        414,
        "The request target (path and query) is longer than 8 KiB.",
    ),
    (
        "headers_too_large",
        431,
        "More than 100 header fields, or more than 32 KiB of them.",
    ),
    (
        "unsupported_media_type",
        415,
        "The body must be application/json.",
    ),
    (
        "invalid_body",
        422,
        "The JSON has an unknown or missing field, or a value of the wrong type.",
    ),
    (
        "validation_failed",
        422,
        "A field or parameter is invalid; see errors.",
    ),
    (
        "target_refused",
        422,
        "The target is not on the public internet (SSRF guard).",
    ),
    (
        "idempotency_key_reused",
        422,
        "This Idempotency-Key was used with a different request.",
    ),
    (
        "confirmation_required",
        428,
        "Repeat the request with the confirmation token this reply carries, before it expires.",
    ),
    (
        "rate_limited",
        429,
        "The key's rate limit is exhausted; see Retry-After.",
    ),
    (
        "internal_error",
        500,
        "Something failed on the server; it has been logged.",
    ),
    (
        "unavailable",
        503,
        "A dependency is unavailable, or the request timed out.",
    ),
];

/// Everything an API call can fail with. Each variant's status is in its doc.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// 400: the body is not JSON, or a header is malformed.
    BadRequest { code: &'static str, detail: String },
    /// 401: no credentials, or they are not valid.
    Unauthorized,
    /// 403: the key lacks the scope this route needs.
    Forbidden { scope: &'static str },
    /// 403: the route spans every project and the key is limited to some.
    ProjectLimited,
    /// 404: no such resource (or another tenant's).
    NotFound { detail: String },
    /// 405
    MethodNotAllowed,
    /// 409: the command conflicts with the resource's state.
    Conflict { code: &'static str, detail: String },
    /// 410: the resource existed and was destroyed for good.
    Gone { code: &'static str, detail: String },
    /// 408: the body did not arrive in time.
    RequestTimeout,
    /// 413
    PayloadTooLarge,
    /// 414: the request target is too long.
    UriTooLong,
    /// 431: too many header fields, or too large.
    HeadersTooLarge,
    /// 415
    UnsupportedMediaType,
    /// 422: the body is JSON but its content is invalid.
    Unprocessable {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 428: the request must be repeated with the confirmation token given here.
    ConfirmationRequired {
        detail: String,
        token: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// 429: the key's rate limit is exhausted; retry after the given seconds.
    TooManyRequests {
        retry_after_seconds: u64,
        limit: u32,
    },
    /// 503: a dependency (the store) is unavailable, or the request timed out.
    Unavailable { detail: String },
    /// 500: something failed that the client cannot fix. Details are logged, not returned.
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } | Self::ProjectLimited => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Gone { .. } => StatusCode::GONE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ConfirmationRequired { .. } => StatusCode::PRECONDITION_REQUIRED,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, documented machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Conflict { code, .. }
            | Self::Gone { code, .. }
            | Self::Unprocessable { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { .. } => "insufficient_scope",
            Self::ProjectLimited => "project_limited",
            Self::NotFound { .. } => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ConfirmationRequired { .. } => "confirmation_required",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal => "internal_error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest { detail, .. }
            | Self::NotFound { detail }
            | Self::Conflict { detail, .. }
            | Self::Gone { detail, .. }
            | Self::Unprocessable { detail, .. }
            | Self::ConfirmationRequired { detail, .. }
            | Self::Unavailable { detail } => detail.clone(),
            Self::Unauthorized => {
                "send a valid API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'".into()
            }
            Self::Forbidden { scope } => format!("this API key lacks the '{scope}' scope"),
            Self::ProjectLimited => {
                "this route spans every project of the tenant, and this API key \
                                     is limited to some projects"
                    .into()
            }
            Self::MethodNotAllowed => "this route does not support that method".into(),
            Self::RequestTimeout => format!(
                "the body did not arrive within {} s of the headers",
                crate::BODY_READ_TIMEOUT.as_secs()
            ),
            Self::PayloadTooLarge => {
                format!(
                    "request bodies are limited to {} bytes",
                    crate::MAX_BODY_BYTES
                )
            }
            Self::UnsupportedMediaType => {
                "send the body as 'Content-Type: application/json'".into()
            }
            Self::UriTooLong => format!(
                "the request target is limited to {} bytes",
                crate::MAX_URI_BYTES
            ),
            Self::HeadersTooLarge => format!(
                "requests are limited to {} header fields and {} bytes of them",
                crate::MAX_HEADERS,
                crate::MAX_HEADER_BYTES
            ),
            Self::TooManyRequests {
                retry_after_seconds,
                ..
            } => {
                format!("this API key's rate limit is exhausted; retry in {retry_after_seconds} s")
            }
            Self::Internal => "an internal error occurred; it has been logged".into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound {
            detail: format!("{what} not found"),
        }
    }

    /// The problem document, without the request id (added by the middleware).
    pub(crate) fn problem(&self) -> Value {
        let status = self.status();
        let mut problem = json!({
            "type": format!("/docs/problems#{}", self.code()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "code": self.code(),
            "detail": self.detail(),
        });
        if let Self::Unprocessable { errors, .. } = self
            && !errors.is_empty()
        {
            problem["errors"] = json!(errors);
        }
        if let Self::ConfirmationRequired {
            token, expires_at, ..
        } = self
        {
            problem["confirmation_token"] = json!(token);
            problem["confirmation_expires_at"] = json!(expires_at);
        }
        problem
    }

    /// The error a bare error status stands for (responses made by layers, not handlers).
    pub(crate) fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found("resource"),
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::URI_TOO_LONG => Self::UriTooLong,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Self::HeadersTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests {
                retry_after_seconds: 1,
                limit: 0,
            },
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable {
                detail: "the request took too long or a dependency is unavailable".into(),
            },
            status if status.is_client_error() => Self::BadRequest {
                code: "bad_request",
                detail: status.canonical_reason().unwrap_or("bad request").into(),
            },
            _ => Self::Internal,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::TooManyRequests {
            retry_after_seconds,
            ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        }
        response.extensions_mut().insert(Arc::new(self));
        response
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Contention(stream) => Self::Conflict {
                code: "concurrent_modification",
                detail: format!("{stream} changed concurrently; retry the request"),
            },
            AppError::Store(vantage_store::StoreError::Unwritable(reason)) => {
                tracing::error!(%reason, "event store cannot write");
                Self::Unavailable {
                    detail: "the event store cannot write now (its disk is full or read-only); \
                             nothing was recorded; retry later"
                        .into(),
                }
            }
            AppError::Store(vantage_store::StoreError::Backend(reason)) => {
                tracing::error!(%reason, "event store unavailable");
                Self::Unavailable {
                    detail: "the event store is unavailable; retry later".into(),
                }
            }
            other => {
                tracing::error!(error = %other, "internal error");
                Self::Internal
            }
        }
    }
}

impl From<vantage_projections::ProjectionError> for ApiError {
    fn from(error: vantage_projections::ProjectionError) -> Self {
        use vantage_projections::ProjectionError;
        match error {
            ProjectionError::BadInput(detail) => Self::BadRequest {
                code: "invalid_query",
                detail,
            },
            ProjectionError::Database(error) => {
                tracing::error!(%error, "read-model database failed");
                Self::Unavailable {
                    detail: "the read models are unavailable; retry later".into(),
                }
            }
            other => {
                tracing::error!(error = %other, "read-model query failed");
                Self::Internal
            }
        }
    }
}

impl From<vantage_store::StoreError> for ApiError {
    fn from(error: vantage_store::StoreError) -> Self {
        AppError::from(error).into()
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let detail = error.to_string();
        match error {
            DomainError::NotFound(what) => Self::not_found(what),
            DomainError::TargetRefused { reason } => Self::Unprocessable {
                code: "target_refused",
                detail,
                errors: vec![FieldError {
                    field: "target".to_owned(),
                    reason,
                }],
            },
            DomainError::Invalid { field, reason } => Self::Unprocessable {
                code: "validation_failed",
                detail,
                errors: vec![FieldError {
                    field: field.to_owned(),
                    reason,
                }],
            },
            other => Self::Conflict {
                code: other.code(),
                detail,
            },
        }
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
