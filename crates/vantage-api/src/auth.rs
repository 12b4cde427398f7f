//! Authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`, resolved to a [`Principal`].

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use vantage_app::Principal;
use vantage_domain::scope::Scope;

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl Authenticated {
    /// Fails with 403 unless the key has `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<&Principal, ApiError> {
        if self.0.scopes.allows(scope) {
            Ok(&self.0)
        } else {
            Err(ApiError::Forbidden {
                scope: scope.as_str(),
            })
        }
    }

    /// As [`Self::require`], for routes whose answer spans every project of the tenant (dashboards,
    /// triage, audit, key management …): a key limited to some projects is refused (403
    /// `project_limited`).
    pub fn require_tenant_wide(&self, scope: Scope) -> Result<&Principal, ApiError> {
        let principal = self.require(scope)?;
        if principal.projects.limited_to().is_some() {
            Err(ApiError::ProjectLimited)
        } else {
            Ok(principal)
        }
    }
}

/// The command context of a request made by `principal`.
pub(crate) fn command_context(
    principal: &Principal,
    request_id: &crate::RequestId,
) -> vantage_app::CommandContext {
    vantage_app::CommandContext {
        tenant: principal.tenant.clone(),
        actor: format!("apikey:{}", principal.key_id),
        request_id: Some(request_id.0.clone()),
        correlation_id: vantage_app::new_id(),
        causation_id: None,
    }
}

/// The key a request presents: `Authorization: Bearer <key>`, else `X-API-Key: <key>`.
pub(crate) fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers.get("x-api-key")?.to_str().ok().map(str::trim)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate limiter authenticated the request already (API routes).
        if let Some(proven) = parts.extensions.get::<Authenticated>() {
            return Ok(proven.clone());
        }
        let key = presented_key(&parts.headers).ok_or(ApiError::Unauthorized)?;
        state
            .services
            .authenticate(key)
            .await?
            .map(Authenticated)
            .ok_or(ApiError::Unauthorized)
    }
}
