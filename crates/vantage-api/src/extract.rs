//! Request body extraction: JSON only, bounded, unknown fields refused, and every failure a problem.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A JSON body parsed into `T`.
#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The whole body, bounded by the body limit and by [`crate::BODY_READ_TIMEOUT`]: a client that
/// stalls part-way through its body is answered 408.
pub(crate) async fn read_body<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<Bytes, ApiError> {
    tokio::time::timeout(
        crate::BODY_READ_TIMEOUT,
        Bytes::from_request(request, state),
    )
    .await
    .map_err(|_| ApiError::RequestTimeout)?
    .map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest {
                code: "unreadable_body",
                detail: rejection.body_text(),
            }
        }
    })
}

fn declares_json(request: &Request) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !declares_json(&request) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let raw = read_body(request, state).await?;
        Ok(Self {
            value: parse(&raw)?,
        })
    }
}

/// An optional JSON body: an empty body is `None`; anything else must be JSON, as for [`JsonBody`].
#[derive(Debug)]
pub struct OptionalJsonBody<T> {
    pub value: Option<T>,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = declares_json(&request);
        let raw = read_body(request, state).await?;
        if raw.is_empty() {
            return Ok(Self { value: None });
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        Ok(Self {
            value: Some(parse(&raw)?),
        })
    }
}

/// Parses JSON: a syntax error is 400 `malformed_json`; a shape error (unknown or missing field, wrong
/// type) is 422 `invalid_body` naming the field by its path (`ports[2]`).
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let value: T = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| classify(raw, &error.path().to_string(), error.into_inner()))?;
    deserializer
        .end()
        .map_err(|error| classify(raw, ".", error))?;
    Ok(value)
}

fn classify(raw: &[u8], path: &str, error: serde_json::Error) -> ApiError {
    // serde_json reports some shape errors as syntax (a `null` where an enum's string belongs is
    // "expected value"): only a body that is not JSON at all is malformed.
    let well_formed = || serde_json::from_slice::<serde::de::IgnoredAny>(raw).is_ok();
    let shape_error = error.is_data() || (error.is_syntax() && well_formed());
    if !shape_error {
        return ApiError::BadRequest {
            code: "malformed_json",
            detail: format!("the body is not valid JSON: {error}"),
        };
    }
    let reason = error.to_string();
    // serde names an unknown field in its message, not in the path.
    let field = match (path, reason.split('`').nth(1)) {
        (".", Some(unknown)) if reason.starts_with("unknown field") => unknown.to_owned(),
        (".", _) => "body".to_owned(),
        (path, _) => path.to_owned(),
    };
    ApiError::Unprocessable {
        code: "invalid_body",
        detail: reason.clone(),
        errors: vec![FieldError { field, reason }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scans::CreateScanRequest;
    use proptest::prelude::*;

    fn client_error(error: &ApiError) -> bool {
        error.status().is_client_error()
    }

    #[test]
    fn a_null_where_a_value_belongs_is_an_invalid_field_not_malformed_json() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code, reason = "only its shape is tested")]
        struct Body {
            state: vantage_domain::triage::TriageState,
        }
        let error = parse::<Body>(br#"{"state": null}"#).unwrap_err();
        let ApiError::Unprocessable { code, errors, .. } = error else {
            panic!("{error:?}");
        };
        assert_eq!(code, "invalid_body");
        assert_eq!(errors[0].field, "state");
        assert!(matches!(
            parse::<Body>(br#"{"state": nul"#),
            Err(ApiError::BadRequest {
                code: "malformed_json",
                ..
            })
        ));
    }

    proptest! {
        /// Arbitrary bytes as a scan request body: never a panic, never a server error.
        #[test]
        fn any_body_is_accepted_or_a_client_error(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Err(error) = parse::<CreateScanRequest>(&body) {
                prop_assert!(client_error(&error), "{error:?}");
            }
        }

        /// JSON-shaped bodies with arbitrary fields and values: the same.
        #[test]
        fn any_json_object_is_accepted_or_a_client_error(
            fields in proptest::collection::btree_map("[a-z_]{1,12}", prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                "\\PC{0,40}".prop_map(serde_json::Value::from),
                proptest::collection::vec(any::<u16>(), 0..40).prop_map(|v| serde_json::json!(v)),
            ], 0..8)
        ) {
            let body = serde_json::to_vec(&fields).unwrap();
            if let Err(error) = parse::<CreateScanRequest>(&body) {
                prop_assert!(client_error(&error), "{error:?}");
            }
        }
    }

    #[test]
    fn errors_name_the_field() {
        let Err(ApiError::Unprocessable { errors, .. }) =
            parse::<CreateScanRequest>(br#"{"target": "a.example", "ports": [80, "x"]}"#)
        else {
            panic!("expected a 422");
        };
        assert_eq!(errors[0].field, "ports[1]");
        let Err(ApiError::BadRequest { code, .. }) =
            parse::<CreateScanRequest>(br#"{"target": "a.example"} trailing"#)
        else {
            panic!("expected a 400");
        };
        assert_eq!(code, "malformed_json");
    }
}

/// Query parameters parsed into `T`: anything malformed (unknown parameter, wrong type) is 400
/// `invalid_query` naming what was wrong.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Self(q.0))
            .map_err(|rejection| ApiError::BadRequest {
                code: "invalid_query",
                detail: rejection.body_text(),
            })
    }
}

/// A page size: `default` when absent, else 1..=`max` (422 naming `limit` otherwise).
pub fn page_limit(raw: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match raw {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(invalid_field(
            "limit",
            format!("must be between 1 and {max}"),
        )),
    }
}

/// A 422 for one invalid field.
pub fn invalid_field(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::Unprocessable {
        code: "validation_failed",
        detail: format!("{field} is invalid"),
        errors: vec![FieldError {
            field: field.to_owned(),
            reason: reason.into(),
        }],
    }
}

/// Parses an optional `as_of` (a log position or an RFC 3339 time).
pub fn as_of(raw: Option<&str>) -> Result<Option<vantage_projections::query::AsOf>, ApiError> {
    raw.map(|raw| {
        vantage_projections::query::AsOf::parse(raw).map_err(|e| invalid_field("as_of", e))
    })
    .transpose()
}
