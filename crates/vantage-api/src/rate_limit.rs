//! Per-key rate limits: GCRA token buckets from `governor`, one bucket per API key for every API
//! request and a stricter one for scan creation (`POST /scans`, `POST /scans/batch`). Every API
//! response carries `X-RateLimit-Limit` (the bucket's capacity), `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset` (seconds until the bucket is full again); a refused request is 429 with
//! `Retry-After`.
//!
//! The key is authenticated first (a lookup in the per-tenant registry cache) and the request draws
//! from the bucket of the key it proved, so nobody can spend another key's budget by presenting its
//! id with a wrong secret. Requests that prove no key draw from a bucket of their client address,
//! and each is counted (`vantage_auth_failures_total` on `/metrics`) and logged with that address.
//! The proven principal is handed on to the handler, which does not look the key up again. Buckets
//! of keys not seen for a while are dropped when the table grows large.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Buckets kept before those of idle keys are dropped.
const MAX_TRACKED_KEYS: usize = 10_000;

/// Requests per minute per key; each bucket holds ten seconds' worth (at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Every API request.
    pub requests_per_minute: NonZeroU32,
    /// Scan creation, on top of the general limit.
    pub scans_per_minute: NonZeroU32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_minute: NonZeroU32::new(1_200).expect("non-zero"),
            scans_per_minute: NonZeroU32::new(60).expect("non-zero"),
        }
    }
}

fn quota(per_minute: NonZeroU32) -> Quota {
    let burst = NonZeroU32::new((per_minute.get() / 6).max(1)).expect("at least one");
    Quota::with_period(Duration::from_secs(60) / per_minute.get())
        .expect("a positive period")
        .allow_burst(burst)
}

/// The buckets of one API process.
pub struct RateLimits {
    requests: Limiter,
    scans: Limiter,
    /// Requests to the API that proved no key.
    auth_failures: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("tracked_keys", &self.requests.len())
            .finish()
    }
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            requests: RateLimiter::keyed(quota(config.requests_per_minute))
                .with_middleware::<StateInformationMiddleware>(),
            scans: RateLimiter::keyed(quota(config.scans_per_minute))
                .with_middleware::<StateInformationMiddleware>(),
            auth_failures: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Requests to the API that proved no key, since start.
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes one token from `limiter` for `key`: the headers to send, or the 429.
    fn take(limiter: &Limiter, key: &String) -> Result<Headers, ApiError> {
        match limiter.check_key(key) {
            Ok(snapshot) => {
                let quota = snapshot.quota();
                let limit = quota.burst_size().get();
                let remaining = snapshot.remaining_burst_capacity();
                let refill = quota.replenish_interval() * (limit - remaining);
                Ok(Headers {
                    limit,
                    remaining,
                    reset_seconds: refill.as_secs_f64().ceil() as u64,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::TooManyRequests {
                    retry_after_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
                    limit: not_until.quota().burst_size().get(),
                })
            }
        }
    }

    fn check(&self, key: &String, creates_scans: bool) -> Result<Headers, ApiError> {
        if self.requests.len() > MAX_TRACKED_KEYS {
            self.requests.retain_recent();
            self.scans.retain_recent();
        }
        let general = Self::take(&self.requests, key)?;
        if creates_scans {
            Self::take(&self.scans, key)
        } else {
            Ok(general)
        }
    }
}

/// The `X-RateLimit-*` values of an admitted request.
#[derive(Debug, Clone, Copy)]
struct Headers {
    limit: u32,
    remaining: u32,
    reset_seconds: u64,
}

impl Headers {
    fn write(self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset_seconds));
    }
}

/// Whether the request creates scans. Under `nest` the request's URI has lost its `/api/v1` prefix;
/// the original URI has not.
fn creates_scans(request: &Request) -> bool {
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri().path(), |original| original.path());
    request.method() == Method::POST && matches!(path, "/api/v1/scans" | "/api/v1/scans/batch")
}

/// Middleware over the API routes: authenticates, then takes a token from the bucket of the proven
/// key, or of the client address when no key was proven.
pub(crate) async fn enforce(
    State(state): State<crate::AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let limits = &state.limits;
    let presented = crate::auth::presented_key(request.headers()).map(str::to_owned);
    let principal = match presented {
        Some(raw) => match state.services.authenticate(&raw).await {
            Ok(principal) => principal,
            Err(error) => return ApiError::from(error).into_response(),
        },
        None => None,
    };
    let bucket = match &principal {
        Some(principal) => format!("key:{}", principal.key_id),
        None => {
            limits
                .auth_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let client = request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip().to_string());
            tracing::info!(
                client = client.as_deref().unwrap_or("unknown"),
                path = %request.uri().path(),
                "a request to the API proved no key"
            );
            format!("client:{}", client.unwrap_or_default())
        }
    };
    if let Some(principal) = principal {
        request
            .extensions_mut()
            .insert(crate::auth::Authenticated(principal));
    }
    match limits.check(&bucket, creates_scans(&request)) {
        Ok(headers) => {
            let mut response = next.run(request).await;
            headers.write(response.headers_mut());
            response
        }
        Err(refused) => {
            let limit = match &refused {
                ApiError::TooManyRequests { limit, .. } => *limit,
                _ => 0,
            };
            let mut response = refused.into_response();
            Headers {
                limit,
                remaining: 0,
                reset_seconds: 0,
            }
            .write(response.headers_mut());
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RateLimits {
        RateLimits::new(RateLimitConfig {
            requests_per_minute: NonZeroU32::new(60).expect("non-zero"),
            scans_per_minute: NonZeroU32::new(6).expect("non-zero"),
        })
    }

    #[test]
    fn a_bucket_holds_ten_seconds_and_refuses_past_it() {
        let limits = limits();
        let key = "k".to_owned();
        let first = limits.check(&key, false).expect("admitted");
        assert_eq!((first.limit, first.remaining), (10, 9));
        for _ in 0..9 {
            limits.check(&key, false).expect("admitted");
        }
        assert!(matches!(
            limits.check(&key, false),
            Err(ApiError::TooManyRequests { limit: 10, .. })
        ));
        assert!(limits.check(&"other".to_owned(), false).is_ok());
    }

    #[test]
    fn scan_creation_has_a_stricter_bucket() {
        let limits = limits();
        let key = "k".to_owned();
        let first = limits.check(&key, true).expect("admitted");
        assert_eq!((first.limit, first.remaining), (1, 0));
        match limits.check(&key, true) {
            Err(ApiError::TooManyRequests {
                retry_after_seconds,
                ..
            }) => assert!((1..=10).contains(&retry_after_seconds)),
            other => panic!("expected 429, got {other:?}"),
        }
    }
}
